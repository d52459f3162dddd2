"""The ingest stage: lineage, nothing lost, idempotent and incremental, crash-safe, drift-aware."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from decimal import Decimal

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from bronze_fixtures import (
    bronze_config,
    bronze_rows,
    crm_source,
    quarantine_reasons,
    write_jsonl,
    write_lines,
)
from cdi import schema
from cdi.bronze import (
    LEDGER_TABLE,
    QUARANTINE_TABLE,
    IngestError,
    IngestLedger,
    format_results,
    run_ingest,
)
from cdi.lake import Lake
from cdi.progress import RunSummary
from pyspark.sql import functions as F

LINEAGE = ["_source", "_source_record_id", "_batch_id", "_ingested_at", "_source_file", "_source_line", "_row_hash", "_deleted"]


def bump_mtime(path) -> None:
    """Make a rewritten file's modification time differ for sure (coarse file system clocks)."""
    later = time.time() + 5
    os.utime(path, (later, later))


@pytest.fixture(scope="module")
def ingested(spark, tmp_path_factory):
    """One run over four small sources of three formats; shared by the read-only tests below."""
    root = tmp_path_factory.mktemp("bronze_ingest")
    write_lines(
        root / "crm" / "contacts.csv",
        [
            "region,id,name,email,modified",
            "EU,1,Ann,ann@x.org,2023-01-05 10:00:00",
            'EU,2,"Smith, Bob",,2023-02-30 10:00:00',
            "US,3,Cy,cy@x.org,2023-01-07 08:00:00",
        ],
    )
    write_lines(
        root / "pos" / "cards.csv",
        ["card_no;first;birth;modified", "400;Łukasz;05.01.1980;30.01.2023 10:00", "401;Eva;31.12.1975;01.02.2023 09:30"],
    )
    write_jsonl(
        root / "web" / "accounts.jsonl",
        [
            {"account_id": "W1", "name": "Ann", "address": {"city": "Kraków", "zip": "30-001"}},
            '{"account_id": "W2", "name": "B',
        ],
    )
    (root / "billing").mkdir()
    pq.write_table(
        pa.table({"billing_id": pa.array([" ", "B7"]), "amount": pa.array([Decimal("1.50"), Decimal("2.00")], pa.decimal128(9, 2))}),
        root / "billing" / "customers.parquet",
    )
    cfg = bronze_config(
        root / "lake",
        [
            crm_source(root / "crm", id_columns=["region", "id"]),
            {
                "name": "pos",
                "kind": "customers",
                "format": "csv",
                "path": str(root / "pos"),
                "options": {"delimiter": ";"},
                "id_columns": ["card_no"],
                "updated_at": {"column": "modified", "formats": ["dd.MM.yyyy HH:mm"]},
            },
            {"name": "web", "kind": "customers", "format": "json", "path": str(root / "web"), "id_columns": ["account_id"]},
            {"name": "billing", "kind": "customers", "format": "parquet", "path": str(root / "billing"), "id_columns": ["billing_id"]},
        ],
        max_quarantine_share=0.5,
    )
    lake = Lake(spark, cfg.lake_root, job="ingest", run_id="r1")
    summary = RunSummary(run_id="r1")
    results = run_ingest(spark, cfg, lake, "r1", summary=summary)
    return cfg, lake, {r.source: r for r in results}, summary


def test_bronze_rows_carry_lineage_and_the_source_values_as_written(ingested):
    _, lake, results, _ = ingested
    crm = lake.read("bronze/crm")
    assert crm.columns == LINEAGE + ["region", "id", "name", "email", "modified"]
    types = {f.name: f.dataType.simpleString() for f in crm.schema.fields}
    assert {c: types[c] for c in LINEAGE} == {c: schema.LINEAGE_TYPES.get(c, "string") for c in LINEAGE}  # the README's reference
    rows = bronze_rows(lake, "crm", "_source", "_source_record_id", "_source_line", "name", "email")
    assert rows == [("crm", "EU|1", 2, "Ann", "ann@x.org"), ("crm", "US|3", 4, "Cy", "cy@x.org")]
    first = crm.where("id = '1'").first()
    values = {"region": "EU", "id": "1", "name": "Ann", "email": "ann@x.org", "modified": "2023-01-05 10:00:00"}
    expected_hash = hashlib.sha256(json.dumps(dict(sorted(values.items())), separators=(",", ":")).encode()).hexdigest()
    assert first["_row_hash"] == expected_hash
    assert first["_batch_id"] == results["crm"].batch_id and first["_source_file"].endswith("/crm/contacts.csv")
    assert bronze_rows(lake, "pos", "first", "birth", "modified") == [
        ("Eva", "31.12.1975", "01.02.2023 09:30"),
        ("Łukasz", "05.01.1980", "30.01.2023 10:00"),
    ]
    web = lake.read("bronze/web")
    assert web.schema["address"].dataType.simpleString() == "struct<city:string,zip:string>"
    assert web.select("account_id", "address.city").collect()[0] == ("W1", "Kraków")
    billing = lake.read("bronze/billing")
    assert billing.schema["amount"].dataType.simpleString() == "decimal(9,2)"
    assert billing.select("_source_record_id", "_source_line", "amount").collect() == [("B7", 2, Decimal("2.00"))]


def test_rejected_rows_are_in_quarantine_with_reason_raw_text_and_line(ingested):
    _, lake, _, _ = ingested
    q = lake.read(QUARANTINE_TABLE)
    assert {"_source", "_batch_id", "_source_file", "_reason", "_raw", "_source_line"} <= set(q.columns)
    got = sorted(tuple(r) for r in q.select("_source", "_source_line", "_source_record_id", "_reason", "_raw").collect())
    assert got == [
        ("billing", 1, None, "missing_id: billing_id is empty", '{"billing_id":" ","amount":1.50}'),
        (
            "crm",
            3,
            "EU|2",
            "invalid_type: modified='2023-02-30 10:00:00' is not a timestamp (yyyy-MM-dd HH:mm:ss)",
            'EU,2,"Smith, Bob",,2023-02-30 10:00:00',
        ),
        (
            "web",
            2,
            None,
            "invalid_json: the line does not parse as JSON (cut short, single-quoted or otherwise broken)",
            '{"account_id": "W2", "name": "B',
        ),
    ]


def test_rows_read_equal_rows_in_bronze_plus_quarantine_for_every_source_and_file(ingested):
    _, lake, results, summary = ingested
    expected = {"crm": (3, 2, 1), "pos": (2, 2, 0), "web": (2, 1, 1), "billing": (2, 1, 1)}
    assert {s: (r.rows_read, r.rows_bronze, r.rows_quarantined) for s, r in results.items()} == expected
    assert all(r.identity_holds and r.status == "ingested" for r in results.values())
    ledger = lake.read(LEDGER_TABLE).select("source", "unit", "rows_read", "rows_bronze", "rows_quarantined", "batch_id")
    by_source = {r["source"]: r for r in ledger.collect()}
    assert {s: (r["rows_read"], r["rows_bronze"], r["rows_quarantined"]) for s, r in by_source.items()} == expected
    assert by_source["crm"]["unit"].endswith("/crm/contacts.csv") and by_source["crm"]["batch_id"] == results["crm"].batch_id
    steps = {st.name: st for st in summary.steps}
    assert steps["crm"].rows == 3 and steps["crm"].details["quarantined"] == 1 and steps["crm"].status == "ok"
    table = format_results(list(results.values()))
    assert "crm" in table and "invalid_type=1" in table


def test_reingest_adds_nothing_and_picks_up_only_new_files(spark, tmp_path):
    write_lines(tmp_path / "crm" / "a.csv", ["id,name,email,modified", "1,Ann,a@x.org,2023-01-05 10:00:00"])
    cfg = bronze_config(tmp_path / "lake", [crm_source(tmp_path / "crm")])
    lake = Lake(spark, cfg.lake_root, job="ingest")
    run_ingest(spark, cfg, lake, "r1")
    again = run_ingest(spark, cfg, lake, "r2")
    assert [(r.status, r.rows_read) for r in again] == [("up_to_date", 0)]
    write_lines(tmp_path / "crm" / "b.csv", ["id,name,email,modified", "2,Bob,b@x.org,2023-01-06 10:00:00"])
    third = run_ingest(spark, cfg, lake, "r3")
    assert [(r.status, r.rows_read, r.rows_bronze) for r in third] == [("ingested", 1, 1)]
    assert bronze_rows(lake, "crm", "id", "_source_line") == [("1", 2), ("2", 2)]
    assert lake.read("bronze/crm").select("_batch_id").distinct().count() == 2
    assert lake.read(LEDGER_TABLE).count() == 2


def test_a_crash_between_bronze_write_and_ledger_commit_leaves_every_row_once_after_rerun(spark, tmp_path, monkeypatch):
    write_lines(
        tmp_path / "crm" / "a.csv",
        ["id,name,email,modified", "1,Ann,a@x.org,2023-01-05 10:00:00", "2,Bob,b@x.org,not a date", "3,Cy,c@x.org,"],
    )
    cfg = bronze_config(tmp_path / "lake", [crm_source(tmp_path / "crm")], max_quarantine_share=0.5)
    lake = Lake(spark, cfg.lake_root, job="ingest")

    def crash(*args, **kwargs):
        raise RuntimeError("simulated crash before the ledger commit")

    with monkeypatch.context() as patch:
        patch.setattr(IngestLedger, "commit", crash)
        with pytest.raises(RuntimeError, match="simulated crash"):
            run_ingest(spark, cfg, lake, "r1")
    assert lake.read("bronze/crm").count() == 2 and lake.read(QUARANTINE_TABLE).count() == 1
    assert not lake.exists(LEDGER_TABLE)

    results = run_ingest(spark, cfg, lake, "r2")
    assert [(r.rows_read, r.rows_bronze, r.rows_quarantined) for r in results] == [(3, 2, 1)]
    assert bronze_rows(lake, "crm", "id", "_batch_id") == [("1", results[0].batch_id), ("3", results[0].batch_id)]
    assert lake.read(QUARANTINE_TABLE).select("_batch_id").collect() == [(results[0].batch_id,)]
    assert run_ingest(spark, cfg, lake, "r3")[0].status == "up_to_date"


def test_unfinished_batches_of_two_sources_are_removed_and_a_clean_run_reads_the_shared_quarantine_history_once(spark, tmp_path, monkeypatch):
    rows = ["id,name,email,modified", "1,Ann,a@x.org,2023-01-05 10:00:00", "2,Bob,b@x.org,not a date"]
    sources = [crm_source(tmp_path / "crm"), {**crm_source(tmp_path / "shop"), "name": "shop"}]
    for name in ("crm", "shop"):
        write_lines(tmp_path / name / "a.csv", rows)

    def crash(*args, **kwargs):
        raise RuntimeError("simulated crash before the ledger commit")

    for number, source in enumerate(sources, start=1):  # each dead run leaves one source's rows behind
        cfg = bronze_config(tmp_path / "lake", [source], max_quarantine_share=0.5)
        with monkeypatch.context() as patch:
            patch.setattr(IngestLedger, "commit", crash)
            with pytest.raises(RuntimeError, match="simulated crash"):
                run_ingest(spark, cfg, Lake(spark, cfg.lake_root, job="ingest"), f"r{number}")
    cfg = bronze_config(tmp_path / "lake", sources, max_quarantine_share=0.5)
    lake = Lake(spark, cfg.lake_root, job="ingest")
    assert lake.read(QUARANTINE_TABLE).count() == 2

    results = run_ingest(spark, cfg, lake, "r3")
    assert sorted((r.source, r.rows_read, r.rows_bronze, r.rows_quarantined) for r in results) == [("crm", 2, 1, 1), ("shop", 2, 1, 1)]
    batches = {r.source: r.batch_id for r in results}
    assert sorted(lake.read(QUARANTINE_TABLE).select("_batch_id").collect()) == sorted((b,) for b in batches.values())
    for name, batch in batches.items():
        assert bronze_rows(lake, name, "id", "_batch_id") == [("1", batch)]

    read = []
    history = Lake.history
    monkeypatch.setattr(Lake, "history", lambda self, table, *a, **k: read.append(table) or history(self, table, *a, **k))
    write_lines(tmp_path / "shop" / "b.csv", ["id,name,email,modified", "3,Cy,c@x.org,2023-01-07 10:00:00"])
    assert [r.status for r in run_ingest(spark, cfg, lake, "r4")] == ["up_to_date", "ingested"]
    assert read.count(QUARANTINE_TABLE) == 1  # shared by the sources, read once a run when nothing is left to remove


def test_new_column_is_added_and_a_missing_mapped_column_fails_only_its_source(spark, tmp_path, caplog):
    write_lines(tmp_path / "crm" / "a.csv", ["id,name,email,modified", "1,Ann,a@x.org,2023-01-05 10:00:00"])
    write_lines(tmp_path / "pos" / "a.csv", ["card_no,name", "400,Eva"])
    pos = {"name": "pos", "kind": "customers", "format": "csv", "path": str(tmp_path / "pos"), "id_columns": ["card_no"]}
    cfg = bronze_config(tmp_path / "lake", [crm_source(tmp_path / "crm"), pos])
    lake = Lake(spark, cfg.lake_root, job="ingest")
    run_ingest(spark, cfg, lake, "r1")

    write_lines(tmp_path / "crm" / "b.csv", ["id,name,email,modified,tier", "2,Bob,b@x.org,2023-01-06 10:00:00,gold"])
    with caplog.at_level(logging.INFO, logger="cdi.bronze.ingest"):
        results = run_ingest(spark, cfg, lake, "r2")
    assert results[0].new_columns == ["tier"]
    assert any("new column(s) ['tier']" in m for m in caplog.messages)
    assert bronze_rows(lake, "crm", "id", "tier") == [("1", None), ("2", "gold")]

    write_lines(tmp_path / "crm" / "c.csv", ["id,name,modified", "3,Cy,2023-01-07 10:00:00"])
    write_lines(tmp_path / "pos" / "b.csv", ["card_no,name", "401,Max"])
    with pytest.raises(IngestError) as err:
        run_ingest(spark, cfg, lake, "r3")
    message = str(err.value)
    assert "source 'crm'" in message and "c.csv has no column 'email' (mapped to email)" in message
    outcome = {r.source: r.status for r in err.value.results}
    assert outcome == {"crm": "failed", "pos": "ingested"}
    assert bronze_rows(lake, "crm", "id") == [("1",), ("2",)]
    assert bronze_rows(lake, "pos", "card_no") == [("400",), ("401",)]
    assert not any(u.endswith("c.csv") for u in (r[0] for r in lake.read(LEDGER_TABLE).select("unit").collect()))


def test_a_source_over_its_quarantine_limit_fails_and_commits_nothing(spark, tmp_path):
    write_lines(
        tmp_path / "crm" / "a.csv",
        ["id,name,email,modified", "1,Ann,a@x.org,2023-01-05 10:00:00", ",Bob,b@x.org,", '3,"Cy,c@x.org,'],
    )
    source = crm_source(tmp_path / "crm", max_quarantine_share=0.5)
    cfg = bronze_config(tmp_path / "lake", [source])
    lake = Lake(spark, cfg.lake_root, job="ingest")
    with pytest.raises(IngestError) as err:
        run_ingest(spark, cfg, lake, "r1")
    message = str(err.value)
    assert "source 'crm': 2 of 3 rows (66.7%) were quarantined, more than the limit of 50.0%" in message
    assert "malformed_csv 1" in message and "missing_id 1" in message
    assert quarantine_reasons(lake, "crm") == {3: "missing_id", 4: "malformed_csv"}
    assert not lake.exists("bronze/crm") or lake.read("bronze/crm").count() == 0
    assert not lake.exists(LEDGER_TABLE)

    relaxed = bronze_config(tmp_path / "lake", [{**source, "max_quarantine_share": 0.9}])
    results = run_ingest(spark, relaxed, lake, "r2")
    assert [(r.rows_bronze, r.rows_quarantined) for r in results] == [(1, 2)]
    assert lake.read(QUARANTINE_TABLE).select("_batch_id").distinct().collect() == [(results[0].batch_id,)]
    assert lake.read(QUARANTINE_TABLE).count() == 2


def test_delta_source_adds_new_and_changed_rows_only(spark, tmp_path):
    external = Lake(spark, str(tmp_path / "ext"), job="export")
    external.write("customers", spark.createDataFrame([(1, "Ann"), (2, "Bob")], "id long, name string"))
    src = {"name": "partner", "kind": "customers", "format": "delta", "path": str(tmp_path / "ext" / "customers"), "id_columns": ["id"]}
    cfg = bronze_config(tmp_path / "lake", [src])
    lake = Lake(spark, cfg.lake_root, job="ingest")
    first = run_ingest(spark, cfg, lake, "r1")
    assert [(r.rows_read, r.rows_bronze) for r in first] == [(2, 2)]
    assert run_ingest(spark, cfg, lake, "r2")[0].status == "up_to_date"

    external.write("customers", spark.createDataFrame([(1, "Ann"), (2, "Bobby"), (3, "Cy")], "id long, name string"), mode="overwrite")
    third = run_ingest(spark, cfg, lake, "r3")
    assert [(r.rows_read, r.rows_bronze, r.rows_unchanged) for r in third] == [(3, 2, 1)]
    assert bronze_rows(lake, "partner", "id", "name") == [(1, "Ann"), (2, "Bob"), (2, "Bobby"), (3, "Cy")]
    assert lake.read("bronze/partner").where(F.col("_source_line").isNotNull()).count() == 0


def test_a_source_without_files_fails_naming_its_path(spark, tmp_path):
    cfg = bronze_config(tmp_path / "lake", [crm_source(tmp_path / "nowhere" / "*.csv")])
    with pytest.raises(IngestError, match=r"source 'crm': no files at .*nowhere/\*\.csv"):
        run_ingest(spark, cfg, Lake(spark, cfg.lake_root, job="ingest"), "r1")


@pytest.mark.parametrize("stats", ["from_commits", "counted_back"])
def test_a_batch_whose_commits_hold_other_counts_than_it_read_is_never_committed(spark, tmp_path, monkeypatch, stats):
    """The count identity (read = bronze + quarantined + unchanged) is checked against what the
    commits hold: their file statistics, or a count back from the tables where those are gone."""
    write_lines(
        tmp_path / "crm" / "a.csv",
        ["id,name,email,modified", "1,Ann,a@x.org,2023-01-05 10:00:00", "2,Bob,b@x.org,not a date", "3,Cy,c@x.org,"],
    )
    cfg = bronze_config(tmp_path / "lake", [crm_source(tmp_path / "crm")], max_quarantine_share=0.5)
    lake = Lake(spark, cfg.lake_root, job="ingest")
    real_rows_added, real_read = Lake.rows_added, Lake.read
    if stats == "from_commits":
        monkeypatch.setattr(Lake, "rows_added", lambda self, table, version: real_rows_added(self, table, version) + 1)
    else:  # no statistics: the batch is counted back from the tables, one row short of what was read
        monkeypatch.setattr(Lake, "rows_added", lambda self, table, version: None)
        monkeypatch.setattr(
            Lake, "read", lambda self, table, *a, **k: real_read(self, table, *a, **k).where("coalesce(id, '') != '3'")
            if table == "bronze/crm" else real_read(self, table, *a, **k),
        )
    with pytest.raises(IngestError, match=r"read 3 rows but .* bronze \(expected 2\).*please report this as a bug"):
        run_ingest(spark, cfg, lake, "r1")
    assert not lake.exists(LEDGER_TABLE)  # the batch is removed by the next run
    monkeypatch.undo()
    results = run_ingest(spark, cfg, lake, "r2")
    assert [(r.rows_read, r.rows_bronze, r.rows_quarantined) for r in results] == [(3, 2, 1)]
    assert lake.read("bronze/crm").count() == 2 and lake.read(QUARANTINE_TABLE).count() == 1

