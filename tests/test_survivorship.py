"""Survivorship rules on hand-built conflicts: each rule, tie-breakers, groups, provenance."""

from __future__ import annotations

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from cdi.config import SurvivorshipConfig
from cdi.gold.survivorship import golden_schema, plan_units, survive, trust_ranks
from gold_fixtures import entity_map_df, make_config, record, records_df, ts

ADDRESS = ["address_line1", "address_line2", "city", "postcode", "region", "country"]

RULES = {
    "default": {"rule": "most_recent", "tie_breakers": ["source_priority"]},
    "attributes": {
        "last_name": {"rule": "source_priority"},
        "first_name": {"rule": "most_frequent", "tie_breakers": ["source_priority"]},
        "middle_name": {"rule": "most_complete"},
        "national_id": {"rule": "first_non_null"},
    },
    "groups": {"address": {"attributes": ADDRESS, "rule": "most_recent", "required": ["address_line1"]}},
}

# customer -> records; sources rank crm 1, shop 2, pos 3
ROWS = [
    # P: source_priority beats recency; gender offered by one record only
    record("crm", "p1", "2024-01-01", last_name="Prior", gender="F"),
    record("shop", "p1", "2024-06-01", last_name="Later"),
    # R: most_recent; a blank newer value is no value
    record("crm", "r1", "2024-01-01", email="r@old.example"),
    record("pos", "r1", "2024-06-01", email="r@new.example"),
    record("shop", "r1", "2024-09-01", email="   "),
    # F: most_frequent, the record supplying it picked by trust rank
    record("crm", "f1", "2024-06-01", first_name="Jon"),
    record("shop", "f1", "2024-01-01", first_name="John"),
    record("pos", "f1", "2024-02-01", first_name="John"),
    # M: most_complete
    record("crm", "m1", "2024-06-01", middle_name="J"),
    record("pos", "m1", "2024-01-01", middle_name="James"),
    # N: first_non_null: trust rank, then recency, then record_key
    record("crm", "n1", "2024-01-01"),
    record("shop", "n1", "2024-01-01", national_id="N-1"),
    record("shop", "n2", "2024-01-01", national_id="N-2"),
    record("pos", "n1", "2024-12-01", national_id="N-3"),
    # T: most_recent ties, source_priority breaks the tie
    record("shop", "t1", "2024-05-01", email="t@shop.example"),
    record("crm", "t1", "2024-05-01", email="t@crm.example"),
    # A: the newest record with a first address line supplies the whole address
    record("crm", "a1", "2024-06-01", address_line1="1 Acre Lane", postcode="SW1A 1AA", country="GB"),
    record("shop", "a1", "2024-01-01", address_line1="2 Bath Rd", city="Leeds", postcode="LS1 1AA", region="West Yorkshire", country="GB"),
    record("pos", "a1", "2024-12-01", country="FR"),
    # X: a record of no customer in the entity map is ignored
    record("pos", "x1", "2030-01-01", email="nobody@example.com"),
]
CUSTOMER_OF = {
    r["record_key"]: r["source_record_id"][0].upper() for r in ROWS if r["record_key"] != "pos:x1"
}


@pytest.fixture(scope="module")
def golden(spark, tmp_path_factory):
    cfg = make_config(tmp_path_factory.mktemp("lake"), survivorship=RULES)
    df = survive(records_df(spark, ROWS), entity_map_df(spark, CUSTOMER_OF), cfg.survivorship, trust_ranks(cfg))
    return {r["customer_id"]: r.asDict(recursive=True) for r in df.collect()}


def pick(golden, customer, attr):
    row = golden[customer]
    prov = row[f"{attr}_prov"]
    return row[attr], (prov["record_key"], prov["rule"]) if prov else None


def test_source_priority_prefers_the_most_trusted_source_over_a_newer_record(golden):
    assert pick(golden, "P", "last_name") == ("Prior", ("crm:p1", "source_priority"))


def test_a_value_offered_by_one_record_is_credited_to_the_attribute_rule(golden):
    assert pick(golden, "P", "gender") == ("F", ("crm:p1", "most_recent"))
    assert pick(golden, "P", "email") == (None, None)


def test_most_recent_takes_the_newest_value_and_ignores_blank_strings(golden):
    assert pick(golden, "R", "email") == ("r@new.example", ("pos:r1", "most_recent"))


def test_most_frequent_takes_the_majority_value_from_its_most_trusted_holder(golden):
    assert pick(golden, "F", "first_name") == ("John", ("shop:f1", "most_frequent"))


def test_most_complete_takes_the_longest_value(golden):
    assert pick(golden, "M", "middle_name") == ("James", ("pos:m1", "most_complete"))


def test_first_non_null_orders_by_trust_then_recency_then_record_key(golden):
    # shop:n1 and shop:n2 tie on trust and recency: the record key decides (and says so)
    assert pick(golden, "N", "national_id") == ("N-1", ("shop:n1", "record_key"))


def test_tie_breaker_decides_when_the_rule_ties(golden):
    assert pick(golden, "T", "email") == ("t@crm.example", ("crm:t1", "source_priority"))


def test_group_comes_whole_from_one_record_never_mixed(golden):
    row = golden["A"]
    assert [row[a] for a in ADDRESS] == ["1 Acre Lane", None, None, "SW1A 1AA", None, "GB"]
    assert {row[f"{a}_prov"]["record_key"] for a in ADDRESS} == {"crm:a1"}


def test_no_customer_mixes_group_members_across_records(golden):
    for customer, row in golden.items():
        sources = {row[f"{a}_prov"]["record_key"] for a in ADDRESS if row[f"{a}_prov"]}
        assert len(sources) <= 1, (customer, sources)


def test_provenance_carries_source_and_the_records_updated_at(golden):
    prov = golden["R"]["email_prov"]
    assert (prov["source"], prov["updated_at"]) == ("pos", ts("2024-06-01").replace(tzinfo=None))


def test_lineage_lists_every_record_of_the_customer_and_nothing_else(golden):
    assert golden["N"]["source_record_keys"] == ["crm:n1", "pos:n1", "shop:n1", "shop:n2"]
    assert set(golden) == {"P", "R", "F", "M", "N", "T", "A"}


def test_group_most_complete_counts_filled_members_before_length(spark, tmp_path):
    rules = {"groups": {"address": {"attributes": ADDRESS, "rule": "most_complete", "tie_breakers": ["most_recent"]}}}
    cfg = make_config(tmp_path, survivorship=rules)
    rows = [
        record("crm", "g1", "2024-06-01", address_line1="1 Acre Lane", city="London"),
        record("shop", "g1", "2024-01-01", address_line1="2 Bath Rd", city="Leeds", postcode="LS1 1AA", country="GB"),
        record("pos", "g1", "2024-12-01", address_line1="3 A Very Long Street Name Avenue", country="GB"),
    ]
    em = entity_map_df(spark, {r["record_key"]: "G" for r in rows})
    got = survive(records_df(spark, rows), em, cfg.survivorship, trust_ranks(cfg)).select(
        *ADDRESS, F.col("city_prov.record_key").alias("from"), F.col("city_prov.rule").alias("rule")
    )
    expected = spark.createDataFrame(
        [("2 Bath Rd", None, "Leeds", "LS1 1AA", None, "GB", "shop:g1", "most_complete")], got.schema
    )
    assert_df_equality(got, expected)


def test_output_has_the_documented_golden_schema(spark, tmp_path):
    cfg = make_config(tmp_path)
    rows = [record("crm", "1", first_name="Ann")]
    got = survive(records_df(spark, rows), entity_map_df(spark, {"crm:1": "C1"}), cfg.survivorship, trust_ranks(cfg))
    assert [f.name for f in got.schema.fields] == golden_schema().fieldNames()
    assert [f.dataType.simpleString() for f in got.schema.fields] == [f.dataType.simpleString() for f in golden_schema().fields]


def test_grouped_attribute_follows_the_group_rule_not_its_own():
    rules = SurvivorshipConfig(
        attributes={"city": {"rule": "source_priority"}},
        groups={"address": {"attributes": ADDRESS, "rule": "most_recent"}},
    )
    units = {u.name: u for u in plan_units(rules)}
    assert "city" not in units
    assert units["address"].chain == ("most_recent", "source_priority", "first_non_null")


def test_provenance_keeps_only_update_times_a_source_gave_not_silvers_load_time_stand_in(spark):
    rows = [
        record("crm", "1", "2024-05-01", email="a@new.example"),  # a source time
        record("pos", "1", "2025-06-10", phone="+441130000001"),  # no source time: silver put its load time here
    ]
    loaded = {"crm:1": ts("2025-01-01"), "pos:1": ts("2025-06-10")}
    records = records_df(spark, rows)
    records = records.withColumn("_ingested_at", F.create_map(*[x for k, v in loaded.items() for x in (F.lit(k), F.lit(v))])[F.col("record_key")])
    cfg = make_config("/tmp/unused")
    golden = survive(records, entity_map_df(spark, {"crm:1": "C", "pos:1": "C"}), cfg.survivorship, trust_ranks(cfg)).first()
    assert golden["email_prov"]["updated_at"] == ts("2024-05-01").replace(tzinfo=None)
    assert golden["phone_prov"]["record_key"] == "pos:1" and golden["phone_prov"]["updated_at"] is None
