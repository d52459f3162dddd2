"""The live progress line: shown on a terminal while steps run, gone when they end, never elsewhere."""

from __future__ import annotations

import io
import logging
import sys

import pytest
from rich.console import Console

from cdi.progress import RunSummary


def _terminal() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=True, width=100), out


def test_running_steps_show_live_with_stage_and_elapsed_time_and_nested_steps_share_one_display():
    console, out = _terminal()
    summary = RunSummary(run_id="r1", console=console)
    with summary.step("gold", "survivorship") as outer:
        display = summary._display
        assert display is not None and display.live.is_started
        with summary.step("gold", "history diff") as inner:
            assert summary._display is display  # one display for nested steps: rich allows one live display
            assert [t.description for t in display.tasks] == ["survivorship", "history diff"]
            inner.rows = 3
        outer.rows = 5
    assert summary._display is None and not display.live.is_started
    drawn = out.getvalue()
    assert "survivorship" in drawn and "history diff" in drawn and "0:00:00" in drawn
    assert [(s.name, s.status, s.rows) for s in summary.steps] == [("survivorship", "ok", 5), ("history diff", "ok", 3)]


def test_a_failed_step_takes_the_display_down_with_it():
    console, _ = _terminal()
    summary = RunSummary(run_id="r1", console=console)
    with pytest.raises(RuntimeError), summary.step("ingest", "crm"):
        raise RuntimeError("boom")
    assert summary._display is None and summary.steps[0].status == "failed"


def test_no_display_when_stderr_is_not_a_terminal_or_logging_is_quiet(monkeypatch, caplog):
    summary = RunSummary(run_id="r1")
    with summary.step("ingest", "crm"):
        assert summary._display is None  # pytest's captured stderr is no terminal
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    caplog.set_level(logging.WARNING, logger="cdi")
    with summary.step("ingest", "webshop"):
        assert summary._display is None  # -q: nothing but warnings
