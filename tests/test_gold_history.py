"""SCD2 history of golden records over three runs: create; update + merge + split + retire; no-op.

The story (tests/gold_fixtures.py) runs once per session and is shared with the change-feed and
customer-view tests.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from pyspark.sql import functions as F

from cdi.gold.history import GOLDEN_TABLE, customer_as_of, versions_of
from gold_fixtures import RUN_TIMES, data_commits, story  # noqa: F401  (fixture)

T1, T2 = RUN_TIMES["r1"], RUN_TIMES["r2"]


def naive(value):
    return value.replace(tzinfo=None)


def versions(story, customer_id):
    rows = versions_of(story["lake"], customer_id).collect()
    return [(r["run_id"], r["valid_from"], r["valid_to"], r["is_current"]) for r in rows]


def current(story, customer_id):
    return versions_of(story["lake"], customer_id).where("is_current").first()


def test_first_run_creates_one_current_version_per_customer(story):
    assert story["results"]["r1"].golden_records == 5
    first = data_commits(story["lake"], GOLDEN_TABLE)[-1]["version"]
    assert story["lake"].read(GOLDEN_TABLE, version=first).where("is_current").count() == 5


def test_update_closes_the_old_version_and_adds_a_new_one(story):
    assert versions(story, "C1") == [("r1", naive(T1), naive(T2), False), ("r2", naive(T2), None, True)]
    rows = versions_of(story["lake"], "C1").select("email", "record_hash").collect()
    assert rows[0]["email"] == "ann@old.example" and rows[1]["email"] == "ann@new.example"
    assert rows[0]["record_hash"] != rows[1]["record_hash"]


def test_merge_retires_the_absorbed_id_and_versions_the_survivor(story):
    assert versions(story, "C2") == [("r1", naive(T1), naive(T2), False)]
    c3 = current(story, "C3")
    assert c3["source_record_keys"] == ["crm:2", "crm:3", "pos:3", "shop:3"]
    assert c3["income"] == 52000.0 and c3["income_prov"]["record_key"] == "crm:2"


def test_split_gives_the_new_id_its_records_and_a_new_version_to_the_old(story):
    assert versions(story, "C7") == [("r2", naive(T2), None, True)]
    assert [v[0] for v in versions(story, "C6")] == ["r1", "r2"]
    c6, c7 = current(story, "C6"), current(story, "C7")
    assert (c6["source_record_keys"], c7["source_record_keys"]) == (["crm:6"], ["shop:6"])
    assert (c6["email"], c7["email"]) == ("dana@crm.example", "dana@shop.example")


def test_record_deleted_at_source_retires_its_customer(story):
    assert versions(story, "C5") == [("r1", naive(T1), naive(T2), False)]


def test_exactly_one_current_version_per_live_customer(story):
    rows = story["lake"].read(GOLDEN_TABLE).where("is_current").select("customer_id").collect()
    assert sorted(r[0] for r in rows) == ["C1", "C3", "C6", "C7"]


def test_as_of_returns_the_version_valid_then(story):
    lake, spark = story["lake"], story["lake"].spark
    assert customer_as_of(spark, lake, "C1", T1 - timedelta(days=1)) is None
    assert customer_as_of(spark, lake, "C1", T1 + timedelta(days=3))["email"] == "ann@old.example"
    at_t2 = customer_as_of(spark, lake, "C1", T2)  # valid_from is inclusive
    assert (at_t2["email"], at_t2["run_id"]) == ("ann@new.example", "r2")


def test_as_of_sees_a_retired_customer_only_while_it_lived(story):
    lake, spark = story["lake"], story["lake"].spark
    assert customer_as_of(spark, lake, "C2", T1 + timedelta(hours=1))["email"] == "bob@example.com"
    assert customer_as_of(spark, lake, "C2", T2) is None


def test_rerun_without_new_input_adds_no_table_version(story):
    result = story["results"]["r3"]
    assert result.table_version is None and result.versions_written == 0
    assert result.golden_records == 4
    assert [h["run_id"] for h in data_commits(story["lake"], GOLDEN_TABLE)] == ["r2", "r1"]


def test_delta_versions_give_table_level_time_travel(story):
    first = story["lake"].read(GOLDEN_TABLE, version=data_commits(story["lake"], GOLDEN_TABLE)[-1]["version"])
    assert first.count() == 5 and first.where(F.col("valid_to").isNotNull()).count() == 0


def test_gold_stage_without_silver_says_which_table_and_what_to_run(spark, tmp_path):
    from cdi.errors import MissingTableError
    from cdi.gold.stage import run_gold
    from cdi.lake import Lake
    from gold_fixtures import make_config

    with pytest.raises(MissingTableError, match=r"silver/records does not exist .* run the link stage"):
        run_gold(Lake(spark, str(tmp_path)), make_config(tmp_path).survivorship, {}, "r0")


def test_golden_change_feed_shows_the_closed_version_and_the_new_one(story):
    lake = story["lake"]
    r2 = data_commits(lake, GOLDEN_TABLE)[0]["version"]
    feed = lake.changes(GOLDEN_TABLE, r2, r2).where("customer_id = 'C1'")
    got = sorted((r["_change_type"], r["is_current"], r["run_id"], r["email"]) for r in feed.collect())
    assert got == [
        ("insert", True, "r2", "ann@new.example"),
        ("update_postimage", False, "r1", "ann@old.example"),
        ("update_preimage", True, "r1", "ann@old.example"),
    ]
