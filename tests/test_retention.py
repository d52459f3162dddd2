"""Retention (issue 18, item 6): old quarantine rows lose their raw text, superseded old bronze
versions go, and what silver uses or a snapshot compares with stays whatever its age."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cdi import schema
from cdi.config import PrivacyConfig
from cdi.lake import Lake
from cdi.privacy.retention import apply_retention

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def _ago(days: int) -> datetime:
    return (NOW - timedelta(days=days)).replace(tzinfo=None)


def test_retention_clears_old_raw_text_and_superseded_versions_only(spark, lake_root):
    lake = Lake(spark, str(lake_root), job="test", run_id="r1")
    quarantine = spark.createDataFrame(
        [("crm", "b1", "f.csv", 3, 3, "9", "invalid_type: x", "9,Old,Row", None, "h9", _ago(100), "r0"),
         ("crm", "b3", "f.csv", 4, 4, "8", "invalid_type: y", "8,New,Row", None, "h8", _ago(1), "r1")],
        schema.QUARANTINE_SCHEMA,
    )  # fmt: skip
    lake.write(schema.QUARANTINE, quarantine, partition_by=[schema.SOURCE])
    bronze = spark.createDataFrame(
        [("crm", "1", "b1", _ago(100), "h1a", "Ann"),  # silver's version (the source's newest update)
         ("crm", "1", "b2", _ago(50), "h1b", "Anne"),  # superseded and old: goes
         ("crm", "1", "b3", _ago(1), "h1c", "Anna"),  # the latest delivery: stays
         ("crm", "2", "b1", _ago(100), "h2a", "Bob"),  # the only version: stays
         ("crm", "3", "b1", _ago(100), "h3a", "Cy"),  # superseded and old: goes
         ("crm", "3", "b2", _ago(50), "h3b", "Cyd")],  # silver's and the latest: stays
        "_source string, _source_record_id string, _batch_id string, _ingested_at timestamp, _row_hash string, name string",
    )  # fmt: skip
    lake.write("bronze/crm", bronze, partition_by=[schema.SOURCE])
    records = spark.createDataFrame(
        [("crm:1", "crm", "1", "b1"), ("crm:2", "crm", "2", "b1"), ("crm:3", "crm", "3", "b2")],
        "record_key string, source string, source_record_id string, _batch_id string",
    )
    lake.write(schema.RECORDS, records)

    done = apply_retention(lake, PrivacyConfig(quarantine_raw_days=30, bronze_versions_days=30), NOW)

    assert done == {schema.QUARANTINE: 1, "bronze/crm": 2}
    raw = {r["_source_record_id"]: r["_raw"] for r in lake.read(schema.QUARANTINE).collect()}
    assert raw == {"9": None, "8": "8,New,Row"}  # the old row stays, counted, without its text
    left = sorted((r["_source_record_id"], r["_batch_id"]) for r in lake.read("bronze/crm").collect())
    assert left == [("1", "b1"), ("1", "b3"), ("2", "b1"), ("3", "b2")]

    assert apply_retention(lake, PrivacyConfig(quarantine_raw_days=30, bronze_versions_days=30), NOW) == {
        schema.QUARANTINE: 0, "bronze/crm": 0
    }  # nothing more to do: no rewrite
    assert apply_retention(lake, PrivacyConfig(), NOW) == {}  # retention is off unless configured
