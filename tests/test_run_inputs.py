"""What silver and gold were computed from (cdi.run_inputs): the comparison that lets a run with
nothing new skip them, and what counts as a change."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from cdi.config import load_config
from cdi.run_inputs import UNREADABLE, InputsState, config_hash, describe_difference, inputs_state, last_recorded, model_state

ROOT = Path(__file__).resolve().parents[1]


def _state(**changes) -> InputsState:
    base = {"tables": {"bronze/crm": 3, "gold/golden_records": 7}, "config": "c", "code": "k", "model": "1:ab", "day": "2026-12-07"}
    base.update(changes)
    return InputsState(**base)


@pytest.fixture()
def cfg(monkeypatch, tmp_path):
    monkeypatch.setenv("CDI_LAKE_ROOT", str(tmp_path / "lake"))
    monkeypatch.setenv("CDI_DEMO_DATA", str(tmp_path / "data"))
    return load_config(ROOT / "conf" / "demo.yaml")


def test_any_table_version_config_code_model_or_day_change_recomputes():
    before = _state()
    assert _state().same(before)
    assert not _state(tables={"bronze/crm": 4, "gold/golden_records": 7}).same(before)
    assert not _state(tables={**before.tables, "steward/decisions": 0}).same(before)
    for field, value in (("config", "x"), ("code", "x"), ("model", "2:cd"), ("model", None), ("day", "2026-12-08")):
        assert not _state(**{field: value}).same(before), field
    assert not before.same(None)
    assert not _state(day="no-state").same(_state(day="no-state"))  # a state that could not be read never matches


def test_the_recorded_state_round_trips_and_an_unreadable_one_means_recompute():
    state = _state()
    assert InputsState.from_json(state.to_json()) == state
    for bad in (None, "", "not json", "[]", '{"tables": 3}', '{"config": "c"}'):
        assert InputsState.from_json(bad) is None


def test_a_write_by_someone_else_during_the_run_stays_a_change():
    """The run read steward/decisions at version 2; a steward wrote version 3 while it linked.
    What the run records moves on only by its own commits, so the next run sees version 3 as new."""
    found = _state(tables={"bronze/crm": 3, "steward/decisions": 2, "gold/golden_records": 7})
    recorded = found.after_run({"gold/golden_records": 8, "silver/records": 5, "_cdi/lease": 9, "bronze/_ingested_files": 4}, "2:cd")
    assert recorded.tables == {"bronze/crm": 3, "gold/golden_records": 8, "silver/records": 5, "steward/decisions": 2}
    assert recorded.model == "2:cd"
    later = _state(tables={**recorded.tables, "steward/decisions": 3}, model="2:cd")
    assert not later.same(recorded) and "steward/decisions" in describe_difference(later, recorded)


def test_the_log_says_what_changed():
    now = _state(tables={"bronze/crm": 4, "gold/golden_records": 7}, model="2:cd")
    text = describe_difference(now, _state())
    assert "bronze/crm" in text and "linkage model" in text and "gold/golden_records" not in text


def test_config_hash_follows_what_shapes_results_but_not_session_settings_or_secrets(cfg):
    same = cfg.model_copy(update={"spark": cfg.spark.model_copy(update={"driver_memory": "9g"})})
    assert config_hash(same) == config_hash(cfg)
    other = cfg.model_copy(update={"linkage": cfg.linkage.model_copy(update={"cluster_threshold": 0.97})})
    assert config_hash(other) != config_hash(cfg)


def test_a_model_folder_replaced_in_place_is_a_change(cfg):
    assert model_state(cfg) is None
    folder = Path(cfg.lake_root) / "models" / "linkage" / "v0001"
    folder.mkdir(parents=True)
    (folder / "model.json").write_text(json.dumps({"m": 0.9}))
    (folder / "meta.json").write_text("{}")
    first = model_state(cfg)
    (folder / "model.json").write_text(json.dumps({"m": 0.8}))
    assert first is not None and first.startswith("1:") and model_state(cfg) != first


def test_the_state_counts_every_table_but_the_bookkeeping_and_reads_old_journals(spark, cfg):
    from cdi.lake import Lake
    from cdi.lake.runs import COMMITTED, RunJournal

    lake = Lake(spark, cfg.lake_root, job="test", run_id="r1")
    row = spark.createDataFrame([(1,)], "id int")
    for table in ("bronze/_scratch", "steward/decisions", "bronze/_ingested_files", "_cdi/lease"):
        lake.write(table, row)
    broken = Path(cfg.lake_root) / "silver" / "half_created" / "_delta_log"  # a first commit cut short
    broken.mkdir(parents=True)
    with_broken = inputs_state(lake, cfg)
    assert with_broken.tables == {"bronze/_scratch": 0, "steward/decisions": 0, "silver/half_created": UNREADABLE}
    assert len(with_broken.day) == 10 and with_broken.model is None
    assert not with_broken.same(with_broken)  # what cannot be read counts as changed
    shutil.rmtree(broken.parent)
    state = inputs_state(lake, cfg)

    # a journal from before `inputs` existed: nothing recorded, so the next run computes
    old_schema = "run_id string, outcome string, command string, stages array<string>, holder string, reason string, " \
                 "tables map<string,bigint>, recorded_at timestamp"  # fmt: skip
    lake.write("_cdi/runs", spark.createDataFrame([], old_schema))
    assert last_recorded(lake) is None
    journal = RunJournal(lake)
    journal.record("r1", COMMITTED, command="cdi run", inputs=state.to_json())
    journal.record("r2", COMMITTED, command="cdi ingest")  # records no state: the older one stands
    journal.record("r3", "failed_rolled_back", command="cdi run", inputs=_state().to_json())
    assert last_recorded(lake) == ("r1", state)
    assert inputs_state(lake, cfg).same(state)
    lake.write("steward/decisions", row)
    assert not inputs_state(lake, cfg).same(state)
