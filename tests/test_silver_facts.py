"""silver/facts reads amounts, currencies and timestamps with the parsers of silver/records, and
`cdi customer show` shows the figures gold/customer_360 aggregates (same amounts, same currencies)."""

from __future__ import annotations

import datetime as dt

import pytest
from cdi import schema
from cdi.config import SourceConfig
from cdi.gold.customer_360 import reporting_rates
from cdi.gold.customer_view import customer_view
from cdi.lake import Lake
from cdi.silver.facts import canonical_facts
from cdi.silver.records import stage_source
from cdi.silver.standardise import standardise_records
from customer_360_fixtures import shared_lake
from pyspark.sql import functions as F

AMOUNTS = ["52.000", "52,000", "€1.234,56", "1,234.56", "12,50", "52k", "52 000 zł", "(100)", "1.0E7", "about 30k a year", None]
TIMES = ["1767225600", "1767225600000", "2026-01-01T10:00:00", "2026-01-01 10:00:00", "01.02.2026 10:00", "someday", None]

PEOPLE = SourceConfig(
    name="people", kind="customers", format="csv", path="/in/people.csv", id_columns=["id"],
    updated_at={"column": "at", "formats": ["dd.MM.yyyy HH:mm"]}, mapping={"income": "money", "last_name": "id"},
)  # fmt: skip
ORDERS = SourceConfig(
    name="orders", kind="orders", format="csv", path="/in/orders.csv", id_columns=["id"],
    customer_ref={"column": "id", "source": "people"},
    mapping={"amount": "money", "event_at": {"column": "at", "formats": ["dd.MM.yyyy HH:mm"]}},
)  # fmt: skip


def _bronze(spark, source: str, rows: list[tuple[str, str | None, str | None]]):
    data = [(i, f"b{i}", dt.datetime(2026, 1, 1), f"/in/{source}.csv", f"h{i}", source, i, money, at) for i, money, at in rows]
    return spark.createDataFrame(
        data,
        "_source_record_id string, _batch_id string, _ingested_at timestamp, _source_file string, _row_hash string, "
        "_source string, id string, money string, at string",
    )


def test_facts_and_customer_records_read_the_same_text_alike(spark):
    rows = [(str(i), money, TIMES[i % len(TIMES)]) for i, money in enumerate(AMOUNTS)]
    records = standardise_records(stage_source(_bronze(spark, "people", rows), PEOPLE))
    facts = canonical_facts(_bronze(spark, "orders", rows), ORDERS, currency="EUR")
    from_records = {
        r["source_record_id"]: (r["income"], r["income_currency"], r["_raw_updated_at"])
        for r in records.select("source_record_id", "income", "income_currency", F.col("updated_at").alias("_raw_updated_at")).collect()
    }
    from_facts = {r["fact_id"]: (r["amount"], r["currency"], r["event_at"]) for r in facts.collect()}
    ingested = dt.datetime(2026, 1, 1)
    for key, (amount, currency, event_at) in from_facts.items():
        income, income_currency, updated_at = from_records[key]
        assert amount == income, (AMOUNTS[int(key)], amount, income)
        # a record without a currency has none; a fact without one takes its source's default
        assert currency == (income_currency or "EUR"), (AMOUNTS[int(key)], currency, income_currency)
        # a record without a readable change time falls back to its ingestion time
        assert event_at == updated_at or (event_at is None and updated_at == ingested), (key, event_at, updated_at)
    assert from_facts["0"][0] == 52000.0 and from_facts["2"][:2] == (1234.56, "EUR") and from_facts["6"][:2] == (52000.0, "PLN")
    assert from_facts["0"][2] == dt.datetime(2026, 1, 1) and from_facts["1"][2] == dt.datetime(2026, 1, 1)


def test_customer_show_and_customer_360_agree_on_every_figure_both_show(spark, tmp_path_factory):
    built = shared_lake(spark, tmp_path_factory)
    cfg, source_lake = built["cfg"], built["lake"]
    # the view also reads each golden version's record hash, which the hand-built 360 lake lacks
    lake = Lake(spark, str(tmp_path_factory.mktemp("show") / "lake"), job="test")
    lake.write(schema.GOLDEN_RECORDS, source_lake.read(schema.GOLDEN_RECORDS).withColumn("record_hash", F.lit("h")))
    for table in (schema.ENTITY_MAP, schema.FACTS):
        lake.write(table, source_lake.read(table))
    rates = reporting_rates(cfg.customer_360)
    c360 = {r["customer_id"]: r for r in source_lake.read(schema.CUSTOMER_360).collect()}

    def money(facts: list[dict]) -> float:
        return sum(f["amount"] * rates[f["currency"]] for f in facts if f["amount"] is not None and f["currency"] in rates)

    for customer_id, row in sorted(c360.items()):
        shown = customer_view(spark, cfg, lake, customer_id, facts_per_source=1000).facts
        purchases = shown.get("webshop", []) + shown.get("pos", [])
        assert len(purchases) == row["orders"], customer_id
        assert money(purchases) == pytest.approx(row["revenue"], abs=0.005), customer_id
        assert money(shown.get("invoices", [])) == pytest.approx(row["invoiced"], abs=0.005), customer_id
        assert money(shown.get("payments", [])) == pytest.approx(row["paid"], abs=0.005), customer_id
        assert len(shown.get("support", [])) == row["tickets"], customer_id
        assert len(shown.get("marketing", [])) == row["responses"], customer_id
    # pos has no currency column: customer show takes customer_360.source_currencies as the 360 does
    pos = customer_view(spark, cfg, lake, "C1").facts["pos"]
    assert pos and {f["currency"] for f in pos} == {"GBP"}
