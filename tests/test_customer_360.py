"""The customer 360 on a small hand-built lake: aggregates equal the hand-computed figures
(multi-currency, POS as purchases, billing lateness, latest consent, RFM, tenure, bands), and
facts that reach no customer are counted and reported, never dropped silently."""

from __future__ import annotations

import logging
from datetime import datetime

import pytest
from cdi import schema
from cdi.config import Customer360Config, load_config
from cdi.gold.customer_360 import (
    CUSTOMER_360_COLUMNS,
    age_band_labels,
    build_customer_360,
    income_band_labels,
    with_rfm,
)
from cdi.errors import FactMappingError
from cdi.silver.facts import parse_flag, read_facts
from cdi.silver.standardise import parse_amount
from customer_360_fixtures import EXPECTED, EXPECTED_UNMATCHED, RUN_ID, shared_lake
from pyspark.sql import functions as F


@pytest.fixture()
def built(spark, tmp_path_factory):
    return shared_lake(spark, tmp_path_factory)


def test_one_row_per_current_customer_with_the_contract_columns(built):
    c360 = built["lake"].read("gold/customer_360")
    assert sorted(r["customer_id"] for r in c360.select("customer_id").collect()) == ["C1", "C2", "C3", "C4"]
    assert list(c360.columns) == list(CUSTOMER_360_COLUMNS) + ["run_id"]
    types = {f.name: f.dataType.simpleString() for f in c360.schema.fields}
    assert types == {**dict.fromkeys(c360.columns, "string"), **schema.CUSTOMER_360_TYPES}  # the README's reference
    assert {r["run_id"] for r in c360.select("run_id").distinct().collect()} == {RUN_ID}


@pytest.mark.parametrize("customer", sorted(EXPECTED))
def test_aggregates_equal_hand_computed_figures(built, customer):
    row = built["lake"].read("gold/customer_360").where(F.col("customer_id") == customer).first().asDict()
    wrong = {}
    for column, expected in EXPECTED[customer].items():
        actual = row[column]
        if isinstance(expected, float):
            ok = actual is not None and actual == pytest.approx(expected, abs=0.005)
        else:
            ok = actual == expected
        if not ok:
            wrong[column] = (actual, expected)
    assert not wrong, f"{customer}: column -> (actual, expected): {wrong}"


def test_run_figures_count_customers_revenue_unmatched_and_segments(built):
    figures = built["figures"]
    assert figures.customers == 4 and figures.buyers == 3
    assert figures.revenue == pytest.approx(1606.4 + 500.0 + 12.0)
    assert figures.facts == 24 and figures.unmatched_facts == 3 and figures.unconvertible_facts == 1
    assert figures.segments == {"women": 1, "gb_buyers": 1, "mid_income": 2, "nobody": 0}


def test_unmatched_and_unconvertible_facts_are_reported_per_source(built):
    rows = built["lake"].read("gold/unmatched_facts").where(F.col("run_id") == RUN_ID).collect()
    got = {
        r["source"]: (r["facts"], r["matched"], r["unmatched"], r["no_reference"], r["unconvertible"],
                      r["unconvertible_currencies"], r["sample_unmatched_reference"])
        for r in rows
    }  # fmt: skip
    assert got == EXPECTED_UNMATCHED
    assert all(r["customer_source"] == "crm" for r in rows)


def test_unmatched_and_unconvertible_facts_are_logged_with_source_and_example(built):
    warnings = "\n".join(m for level, m in built["log"] if level == logging.WARNING)
    assert "fact source 'webshop': 3 of 7 facts reference no current crm customer" in warnings
    assert "'77'" in warnings
    assert "fact source 'webshop': 1 facts in currency CHF without a rate" in warnings
    assert "'pos'" not in warnings


def test_latest_ingested_version_of_a_fact_counts_once(spark, built):
    facts = read_facts(built["lake"], built["cfg"].source("webshop"), built["cfg"].customer_360)
    o1 = facts.where(F.col("fact_id") == "o1").collect()
    assert len(o1) == 1 and o1[0]["amount"] == 100.0  # batch b2 corrected b1's 90.00
    assert o1[0]["channel"] == "web" and o1[0]["event_at"] == datetime(2026, 6, 1, 10)


def test_mapping_to_a_missing_column_names_table_and_column(built, tmp_path):
    cfg = built["cfg"]
    broken = cfg.source("pos").model_copy(update={"mapping": {"amount": "total", "event_at": "ts"}})
    with pytest.raises(FactMappingError, match=r"bronze/pos: mapping.amount maps to column 'total'"):
        read_facts(built["lake"], broken, cfg.customer_360)


def test_quintiles_split_buyers_into_five_groups_and_non_buyers_score_zero(spark):
    rows = [(f"B{i:02d}", i, float(100 * i), datetime(2026, 1, i)) for i in range(1, 11)]
    rows.append(("N01", 0, 0.0, None))
    df = spark.createDataFrame(rows, "customer_id string, orders int, revenue double, last_order_at timestamp")
    scored = {r["customer_id"]: r for r in with_rfm(df, F.lit(datetime(2026, 1, 31).date())).collect()}
    assert [scored[f"B{i:02d}"]["f_score"] for i in range(1, 11)] == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert [scored[f"B{i:02d}"]["m_score"] for i in range(1, 11)] == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert [scored[f"B{i:02d}"]["r_score"] for i in range(1, 11)] == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert scored["B10"]["recency_days"] == 21
    none = scored["N01"]
    assert (none["r_score"], none["f_score"], none["m_score"], none["rfm_score"], none["recency_days"]) == (
        0, 0, 0, "000", None
    )  # fmt: skip


def test_amounts_flags_parse_regional_spellings(spark):
    texts = ["12,50", "1.234,50", "1,234.50", "1234.5", " 7 ", "-3,10", "abc", None]
    flags = ["Y", "yes", "n", "FALSE", "1", "", "maybe", None]
    df = spark.createDataFrame(list(zip(texts, flags)), "a string, f string")
    out = df.select(parse_amount(F.col("a")).alias("a"), parse_flag(F.col("f")).alias("f")).collect()
    assert [r["a"] for r in out] == [12.5, 1234.5, 1234.5, 1234.5, 7.0, -3.1, None, None]
    assert [r["f"] for r in out] == [True, True, False, False, True, None, None, None]


def test_band_labels_follow_the_configured_bounds():
    settings = Customer360Config()
    assert age_band_labels(settings) == ["<18", "18-24", "25-34", "35-44", "45-54", "55-64", "65+"]
    assert income_band_labels(settings) == ["<20k", "20k-40k", "40k-60k", "60k-100k", "100k+"]


def test_unsorted_band_bounds_are_rejected(spark, built):
    cfg = built["cfg"]
    bad = cfg.model_copy(update={"customer_360": cfg.customer_360.model_copy(update={"age_bands": [30, 20]})})
    with pytest.raises(ValueError, match="customer_360.age_bands"):
        build_customer_360(built["lake"], bad.customer_360)


def test_analytics_config_file_loads_with_the_customer_360_and_segments_keys(tmp_path):
    from pathlib import Path

    conf = Path(__file__).resolve().parents[1] / "conf" / "analytics.yaml"
    env = tmp_path / "env.yaml"
    env.write_text(f"include: [{conf}]\nlake_root: /tmp/x\n", encoding="utf-8")
    cfg = load_config(env)
    assert cfg.customer_360.currency == "EUR" and {"USD", "GBP", "PLN"} <= set(cfg.customer_360.rates)
    assert len(cfg.segments) >= 3


def test_demographic_coverage_says_per_dimension_how_many_are_known_and_why_not(built):
    coverage = built["figures"].coverage
    # C3 has no birth date, income or marital status; every customer has a gender, region and country
    assert coverage["age_band"] == {"known": 3, "missing": 1, "unusable": 0, "share_known": 0.75,
                                    "summary": "75% known (1 without date_of_birth)"}  # fmt: skip
    assert coverage["income_band"]["summary"] == "75% known (1 without income_reporting)"
    assert coverage["marital_status"]["summary"] == "75% known (1 without marital_status)"
    assert {coverage[d]["summary"] for d in ("gender", "region", "country")} == {"100% known"}
    from cdi.gold.customer_360 import demographic_coverage

    nobody = demographic_coverage({f"{d}__{k}": v for d in ("age_band", "gender", "income_band", "marital_status", "region", "country")
                                   for k, v in (("known", 0), ("missing", 4))}, 4)  # fmt: skip
    assert nobody["region"]["summary"] == "0% known (no customer source provides region)"
    written = demographic_coverage({f"{d}__{k}": v for d in ("age_band", "gender", "income_band", "marital_status", "region", "country")
                                    for k, v in (("known", 3), ("missing", 0))}, 4)  # fmt: skip
    assert written["region"]["summary"] == "75% known (1 not an ISO 3166-2 subdivision of the customer's country)"
    assert written["age_band"]["summary"] == "75% known (1 birth date after the as-of date)"
