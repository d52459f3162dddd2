"""``cdi maintain``: compaction, vacuum, contracts switched on for old tables, dead runs rolled back."""

from __future__ import annotations

import pytest

from cdi.cli import main
from cdi.lake import Lake
from cdi.lake.maintenance import maintain

SIMPLE = "id long, grp string"
MAP = "record_key string, source string, customer_id string"


@pytest.mark.parametrize("engine", ["delta-spark", "deltalake"])
def test_maintain_compacts_vacuums_and_switches_on_missing_contracts(spark, lake_root, engine):
    lake = Lake(spark, str(lake_root), job="test", run_id="r1", engine=engine)
    for i in range(3):
        lake.write("t", spark.createDataFrame([(i, "a")], SIMPLE).coalesce(1))
    # a contract table as an older cdi wrote it: no Change Data Feed, no constraint
    lake.engine.write(lake.path("silver/entity_map"), spark.createDataFrame([("a:1", "a", "C1")], MAP), "append", lake.ctx, "APPEND")
    assert "delta.enableChangeDataFeed" not in lake.properties("silver/entity_map")

    report = maintain(lake, retention_hours=0)

    by_table = {t.table: t for t in report.tables}
    assert set(by_table) == {"t", "silver/entity_map"}
    assert by_table["t"].files_compacted == 3 and len(lake.file_paths("t")) == 1
    assert by_table["t"].files_vacuumed == 3  # the compacted files, no longer referenced
    assert sorted(r["id"] for r in lake.read("t").collect()) == [0, 1, 2]
    assert by_table["silver/entity_map"].contract_added == [
        "statistics on key columns only", "change data feed", "constraint silver_entity_map_keys"
    ]
    assert lake.properties("silver/entity_map")["delta.dataSkippingStatsColumns"] == "`record_key`,`source`,`customer_id`"
    assert by_table["t"].contract_added == []  # written by this cdi: statistics chosen when created
    props = lake.properties("silver/entity_map")
    assert props["delta.enableChangeDataFeed"] == "true" and "delta.constraints.silver_entity_map_keys" in props
    assert maintain(lake, retention_hours=0).tables[1].contract_added == []


def test_cdi_maintain_dry_run_lists_and_removes_nothing(spark, lake_root, tmp_path, capsys):
    lake = Lake(spark, str(lake_root), job="test", run_id="r1")
    lake.write("t", spark.createDataFrame([(1, "a")], SIMPLE))
    lake.write("t", spark.createDataFrame([(2, "a")], SIMPLE), mode="overwrite")
    files_before = sorted(p.name for p in (lake_root / "t").glob("*.parquet"))
    env = tmp_path / "env.yaml"
    env.write_text(f"lake_root: {lake_root}\n", encoding="utf-8")

    assert main(["maintain", "--conf", str(env), "--retain-hours", "0", "--dry-run"]) == 0

    out = capsys.readouterr().out
    assert "t " in out and "vacuumed" in out
    assert sorted(p.name for p in (lake_root / "t").glob("*.parquet")) == files_before
    with pytest.raises(SystemExit) as usage:
        main(["maintain", "--conf", str(env), "--retain-hours", "-1"])
    assert usage.value.code == 2


def test_a_run_first_rolls_back_the_transaction_a_dead_run_left_open(spark, lake_root, tmp_path, monkeypatch):
    import dataclasses
    import socket
    import subprocess

    from cdi.config import load_config
    from cdi.lake import transactions
    from cdi.pipeline import run

    lake = Lake(spark, str(lake_root), job="test", run_id="r1")
    lake.write("a", spark.createDataFrame([(1, "a")], SIMPLE))
    before = lake.version("a")
    gone = subprocess.Popen(["true"])
    gone.wait()  # a process id that no longer runs, as a killed run's would be
    monkeypatch.setattr(transactions, "holder_name", lambda: f"{socket.gethostname()}:{gone.pid}")
    transactions.Transactions(lake)._mark("t-dead", "pair", transactions.OPEN, {"a": before}, "dead-run")
    dead = Lake(spark, str(lake_root), job="link", run_id="dead-run")
    dead.ctx = dataclasses.replace(dead.ctx, txn_id="t-dead")
    dead.write("a", spark.createDataFrame([(2, "a")], SIMPLE))
    monkeypatch.undo()
    env = tmp_path / "env.yaml"
    env.write_text(f"lake_root: {lake_root}\n", encoding="utf-8")

    run(load_config(env), stages=(), spark=spark)

    assert sorted(r["id"] for r in lake.read("a").collect()) == [1]
    assert Lake(spark, str(lake_root)).recover() == []
