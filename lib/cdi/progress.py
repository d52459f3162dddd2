"""Progress and run summaries: every long step logs its stage, rows and elapsed time, and a run
ends with one short table of what happened. On a terminal (and with INFO logging on) the running
steps also show as a live line with a spinner and their elapsed time, so a step that takes a
minute is visibly alive; the display goes away when the last step ends and leaves only the logs.

    >>> summary = RunSummary(run_id="r1")
    >>> with summary.step("ingest", "crm") as step:
    ...     step.rows = 120
    >>> print(summary.format())  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

log = logging.getLogger("cdi")


@dataclass
class Step:
    stage: str
    name: str
    rows: int | None = None
    details: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    status: str = "running"


@dataclass
class RunSummary:
    """Collects the steps of one run; ``format()`` renders the closing table."""

    run_id: str
    steps: list[Step] = field(default_factory=list)
    # what a reader of the summary must look at (listed under the table)
    warnings: list[str] = field(default_factory=list)
    # where the live display draws; None: stderr when it is a terminal and INFO logging is on
    console: Console | None = field(default=None, repr=False, compare=False)
    _display: Progress | None = field(default=None, init=False, repr=False, compare=False)

    def _live_console(self) -> Console | None:
        if self.console is not None:
            return self.console
        if sys.stderr.isatty() and log.isEnabledFor(logging.INFO):
            return Console(stderr=True)
        return None

    def _show(self, stage: str, name: str) -> TaskID | None:
        if self._display is None:
            console = self._live_console()
            if console is None or not console.is_terminal:
                return None
            self._display = Progress(
                SpinnerColumn(), TextColumn("[bold]{task.fields[stage]}[/] {task.description}"), TimeElapsedColumn(),
                console=console, transient=True, redirect_stderr=True, redirect_stdout=False,
            )  # fmt: skip
            self._display.start()
        return self._display.add_task(name, total=None, stage=stage)

    def _hide(self, task: TaskID | None) -> None:
        if task is None or self._display is None:
            return
        self._display.remove_task(task)
        if not self._display.tasks:
            self._display.stop()
            self._display = None

    def warn(self, message: str) -> None:
        """Log ``message`` as a warning and list it at the end of the summary."""
        log.warning("%s", message)
        self.warnings.append(message)

    @contextmanager
    def step(self, stage: str, name: str) -> Iterator[Step]:
        st = Step(stage, name)
        self.steps.append(st)
        log.info("[%s] %s: started", stage, name)
        task = self._show(stage, name)
        start = time.perf_counter()
        try:
            yield st
            st.status = "ok"
        except BaseException:
            st.status = "failed"
            raise
        finally:
            st.seconds = time.perf_counter() - start
            self._hide(task)
            rows = f", rows={st.rows:,}" if st.rows is not None else ""
            extra = "".join(f", {k}={v}" for k, v in st.details.items())
            log.info("[%s] %s: %s in %.1fs%s%s", stage, name, st.status, st.seconds, rows, extra)

    def as_dict(self) -> dict[str, Any]:
        """The summary as plain data (``cdi run --json``): the same steps, figures and warnings."""
        steps = [
            {"stage": st.stage, "step": st.name, "status": st.status, "rows": st.rows, "seconds": round(st.seconds, 3),
             "details": dict(st.details)}
            for st in self.steps
        ]  # fmt: skip
        total = round(sum(s.seconds for s in self.steps), 3)
        return {"run_id": self.run_id, "steps": steps, "total_seconds": total, "warnings": list(self.warnings)}

    def format(self) -> str:
        lines = [f"run {self.run_id}", f"{'stage':<8} {'step':<28} {'status':<7} {'rows':>12} {'secs':>8}  details"]
        for st in self.steps:
            rows = f"{st.rows:,}" if st.rows is not None else "-"
            details = ", ".join(f"{k}={v}" for k, v in st.details.items())
            lines.append(f"{st.stage:<8} {st.name:<28} {st.status:<7} {rows:>12} {st.seconds:>8.1f}  {details}")
        total = sum(s.seconds for s in self.steps)
        lines.append(f"total {total:.1f}s")
        lines.extend(f"warning: {w}" for w in self.warnings)
        return "\n".join(lines)
