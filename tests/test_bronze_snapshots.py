"""Snapshot sources and unchanged rows: bronze keeps changed rows only; a record missing from a
``load: snapshot`` source's new batch is deleted (a tombstone) and leaves silver and gold; a
batch that would delete too much fails its source alone."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest
from bronze_fixtures import bronze_config, bronze_rows, crm_source, write_lines
from cdi.bronze import LEDGER_TABLE, IngestError, run_ingest
from cdi.lake import Lake
from cdi.silver import facts as facts_module
from cdi.silver.records import write_records
from pyspark.sql import functions as F

HEADER = "id,name,email,modified"
ROWS = {
    "1": "1,Ann,ann@x.org,2024-01-01 10:00:00",
    "2": "2,Bob,bob@x.org,2024-01-02 10:00:00",
    "3": "3,Cy,cy@x.org,2024-01-03 10:00:00",
    "4": "4,Di,di@x.org,2024-01-04 10:00:00",
}


def deliver(folder, name: str, ids: list[str], **changed: str) -> None:
    """A file of the given records (``changed`` replaces a record's line)."""
    write_lines(folder / name, [HEADER, *[changed.get(f"r{i}", ROWS[i]) for i in ids]])


def counts(results) -> list[tuple]:
    return [(r.status, r.rows_read, r.rows_bronze, r.rows_quarantined, r.rows_unchanged, r.rows_deleted) for r in results]


def silver_ids(lake, cfg) -> list[str]:
    write_records(lake, cfg.customer_sources)
    return sorted(r[0] for r in lake.read("silver/records").where("source = 'crm'").select("source_record_id").collect())


def test_redelivering_the_same_file_under_a_new_name_adds_no_bronze_rows(spark, tmp_path):
    deliver(tmp_path / "in", "day1.csv", ["1", "2", "3"])
    cfg = bronze_config(tmp_path / "lake", [crm_source(tmp_path / "in")])
    lake = Lake(spark, cfg.lake_root, job="ingest")
    run_ingest(spark, cfg, lake, "r1")
    deliver(tmp_path / "in", "day2.csv", ["1", "2", "3"])
    again = run_ingest(spark, cfg, lake, "r2")
    assert counts(again) == [("ingested", 3, 0, 0, 3, 0)]
    assert all(r.identity_holds for r in again)
    assert lake.read("bronze/crm").count() == 3
    ledger = {r["unit"].rsplit("/", 1)[-1]: (r["rows_read"], r["rows_unchanged"]) for r in lake.read(LEDGER_TABLE).collect()}
    assert ledger == {"day1.csv": (3, 0), "day2.csv": (3, 3)}


def test_a_changed_row_is_appended_once_and_a_reverted_row_again(spark, tmp_path):
    deliver(tmp_path / "in", "day1.csv", ["1", "2"])
    cfg = bronze_config(tmp_path / "lake", [crm_source(tmp_path / "in")])
    lake = Lake(spark, cfg.lake_root, job="ingest")
    run_ingest(spark, cfg, lake, "r1")
    bob = "2,Bobby,bob@x.org,2024-02-01 10:00:00"
    deliver(tmp_path / "in", "day2.csv", ["1", "2"], r2=bob)
    assert counts(run_ingest(spark, cfg, lake, "r2")) == [("ingested", 2, 1, 0, 1, 0)]
    deliver(tmp_path / "in", "day3.csv", ["1", "2"], r2=bob)
    assert counts(run_ingest(spark, cfg, lake, "r3")) == [("ingested", 2, 0, 0, 2, 0)]
    deliver(tmp_path / "in", "day4.csv", ["1", "2"])  # back to the first version: a change again
    assert counts(run_ingest(spark, cfg, lake, "r4")) == [("ingested", 2, 1, 0, 1, 0)]
    assert bronze_rows(lake, "crm", "id", "name") == [("1", "Ann"), ("2", "Bob"), ("2", "Bob"), ("2", "Bobby")]


def test_a_snapshot_without_some_ids_appends_tombstones_and_those_records_leave_silver(spark, tmp_path, caplog):
    deliver(tmp_path / "in", "day1.csv", ["1", "2", "3", "4"])
    cfg = bronze_config(tmp_path / "lake", [crm_source(tmp_path / "in", load="snapshot")])
    lake = Lake(spark, cfg.lake_root, job="ingest")
    run_ingest(spark, cfg, lake, "r1")
    deliver(tmp_path / "in", "day2.csv", ["1", "3"])
    with caplog.at_level(logging.WARNING, logger="cdi.bronze.ingest"):
        second = run_ingest(spark, cfg, lake, "r2")
    assert counts(second) == [("ingested", 2, 0, 0, 2, 2)]
    assert any("2 of 4 live record(s) are absent from the snapshot" in m for m in caplog.messages)
    tombstones = lake.read("bronze/crm").where("_deleted")
    assert sorted(tuple(r) for r in tombstones.select("_source_record_id", "_batch_id", "name", "_source_line").collect()) == [
        ("2", second[0].batch_id, None, None),
        ("4", second[0].batch_id, None, None),
    ]
    assert tombstones.where(F.col("_source_file").endswith("/in/day2.csv") & F.col("_row_hash").isNotNull()).count() == 2
    assert silver_ids(lake, cfg) == ["1", "3"]

    deliver(tmp_path / "in", "day3.csv", ["1", "3"])  # the same snapshot again: nothing to do
    assert counts(run_ingest(spark, cfg, lake, "r3")) == [("ingested", 2, 0, 0, 2, 0)]
    deliver(tmp_path / "in", "day4.csv", ["1", "2", "3"])  # record 2 is back, as it was
    assert counts(run_ingest(spark, cfg, lake, "r4")) == [("ingested", 3, 1, 0, 2, 0)]
    assert silver_ids(lake, cfg) == ["1", "2", "3"]


def test_an_append_source_never_deletes(spark, tmp_path):
    deliver(tmp_path / "in", "day1.csv", ["1", "2", "3", "4"])
    cfg = bronze_config(tmp_path / "lake", [crm_source(tmp_path / "in")])
    lake = Lake(spark, cfg.lake_root, job="ingest")
    run_ingest(spark, cfg, lake, "r1")
    deliver(tmp_path / "in", "day2.csv", ["1"])
    assert counts(run_ingest(spark, cfg, lake, "r2")) == [("ingested", 1, 0, 0, 1, 0)]
    assert lake.read("bronze/crm").where("_deleted").count() == 0
    assert silver_ids(lake, cfg) == ["1", "2", "3", "4"]


def test_a_snapshot_that_would_delete_too_much_fails_only_its_source(spark, tmp_path):
    deliver(tmp_path / "crm", "day1.csv", ["1", "2", "3", "4"])
    write_lines(tmp_path / "pos" / "a.csv", ["card,name", "400,Eva"])
    pos = {"name": "pos", "kind": "customers", "format": "csv", "path": str(tmp_path / "pos"), "id_columns": ["card"]}
    cfg = bronze_config(tmp_path / "lake", [crm_source(tmp_path / "crm", load="snapshot"), pos])
    lake = Lake(spark, cfg.lake_root, job="ingest")
    run_ingest(spark, cfg, lake, "r1")

    deliver(tmp_path / "crm", "day2.csv", ["1"])  # a cut-short export
    (tmp_path / "crm" / "day2b.csv").write_bytes(b"")  # and an empty one
    write_lines(tmp_path / "pos" / "b.csv", ["card,name", "401,Max"])
    with pytest.raises(IngestError) as err:
        run_ingest(spark, cfg, lake, "r2")
    message = str(err.value)
    assert "source 'crm': the snapshot in " in message and "day2.csv" in message and "day2b.csv" in message
    assert "lacks 3 of the source's 4 live records (75.0%), more than max_delete_share 50.0%" in message
    assert "raise sources[crm].max_delete_share" in message
    assert {r.source: r.status for r in err.value.results} == {"crm": "failed", "pos": "ingested"}
    assert lake.read("bronze/crm").count() == 4 and lake.read("bronze/crm").where("_deleted").count() == 0
    assert bronze_rows(lake, "pos", "card") == [("400",), ("401",)]

    relaxed = bronze_config(tmp_path / "lake", [crm_source(tmp_path / "crm", load="snapshot", max_delete_share=0.8), pos])
    assert counts(run_ingest(spark, relaxed, lake, "r3")) == [("ingested", 1, 0, 0, 1, 3), ("up_to_date", 0, 0, 0, 0, 0)]
    assert silver_ids(lake, relaxed) == ["1"]


def test_a_bronze_table_from_before_tombstones_gets_the_column_and_its_rows_stay_live(spark, tmp_path):
    cfg = bronze_config(tmp_path / "lake", [crm_source(tmp_path / "in", load="snapshot")])
    lake = Lake(spark, cfg.lake_root, job="ingest")
    at = datetime(2024, 1, 1, tzinfo=UTC)
    old = spark.createDataFrame(
        [("crm", i, "old-batch", at, "file:/old.csv", 2, f"h{i}", i, n, None, None) for i, n in [("1", "Ann"), ("2", "Bob")]],
        "_source string, _source_record_id string, _batch_id string, _ingested_at timestamp, _source_file string, "
        "_source_line long, _row_hash string, id string, name string, email string, modified string",
    )
    lake.write("bronze/crm", old)
    deliver(tmp_path / "in", "day1.csv", ["1", "3"])
    assert counts(run_ingest(spark, cfg, lake, "r1")) == [("ingested", 2, 2, 0, 0, 1)]
    bronze = lake.read("bronze/crm")
    assert "_deleted" in bronze.columns
    flags = bronze.select("_source_record_id", F.coalesce(F.col("_deleted").cast("string"), F.lit("null")))
    assert sorted(tuple(r) for r in flags.collect()) == [("1", "false"), ("1", "null"), ("2", "null"), ("2", "true"), ("3", "false")]
    assert silver_ids(lake, cfg) == ["1", "3"]


def test_a_fact_whose_latest_version_is_a_tombstone_is_not_live(spark):
    t1, t2 = datetime(2024, 1, 1), datetime(2024, 1, 2)
    bronze = spark.createDataFrame(
        [("O1", "b1", t1, False), ("O1", "b2", t2, True), ("O2", "b1", t1, None), ("O3", "b1", t1, True), ("O3", "b2", t2, False)],
        "_source_record_id string, _batch_id string, _ingested_at timestamp, _deleted boolean",
    )
    live = facts_module.latest_versions(bronze)
    assert sorted(r[0] for r in live.select("_source_record_id").collect()) == ["O2", "O3"]


def test_a_customer_whose_only_record_leaves_a_snapshot_source_is_retired_in_gold(spark, tmp_path):
    from cdi.gold.stage import run_gold
    from cdi.gold.survivorship import trust_ranks
    from cdi.schema import ENTITY_MAP_SCHEMA
    from cdi.silver.ids import assign_customer_ids
    from cdi.silver.linkage.stage import write_entity_map

    source = crm_source(tmp_path / "in", load="snapshot")
    cfg = bronze_config(tmp_path / "lake", [source])

    def run(run_id: str, at: datetime) -> None:
        lake = Lake(spark, cfg.lake_root, job="test", run_id=run_id)
        run_ingest(spark, cfg, lake, run_id)
        write_records(lake, cfg.customer_sources)
        # linkage stands aside: every record is its own cluster, ids and the entity map as silver writes them
        clusters = lake.read("silver/records").select("record_key", "source", "source_record_id", F.col("record_key").alias("cluster_id"))
        previous = lake.read_or_empty("silver/entity_map", ENTITY_MAP_SCHEMA)
        assignment = assign_customer_ids(clusters, previous, run_id, at)
        write_entity_map(lake, assignment.entity_map)
        run_gold(lake, cfg.survivorship, trust_ranks(cfg), run_id, run_at=at)

    deliver(tmp_path / "in", "day1.csv", ["1", "2", "3"])
    run("r1", datetime(2025, 1, 1, tzinfo=UTC))
    lake = Lake(spark, cfg.lake_root, job="test")
    customer = {r["record_key"]: r["customer_id"] for r in lake.read("silver/entity_map").collect()}["crm:3"]
    deliver(tmp_path / "in", "day2.csv", ["1", "2"])
    run("r2", datetime(2025, 2, 1, tzinfo=UTC))

    assert sorted(r[0] for r in lake.read("silver/entity_map").select("record_key").collect()) == ["crm:1", "crm:2"]
    versions = lake.read("gold/golden_records").where(F.col("customer_id") == customer).select("is_current").collect()
    assert [r[0] for r in versions] == [False]
    changes = lake.read("gold/changes").where((F.col("customer_id") == customer) & (F.col("run_id") == "r2"))
    assert [r[0] for r in changes.select("change_type").collect()] == ["retired"]
    assert lake.read("gold/golden_records").where("is_current").count() == 2
