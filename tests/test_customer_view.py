"""One view of a customer across sources, on the lake of the three-run story (C3 has records in
crm, shop and pos, and facts in all three fact sources)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from cdi.gold.customer_view import (
    AmbiguousCustomerError,
    CustomerNotFoundError,
    customer_view,
    find_customer_ids,
    register_views,
)
from gold_fixtures import RUN_TIMES, story  # noqa: F401  (fixture)


@pytest.fixture(scope="module")
def c3(story):
    return customer_view(story["lake"].spark, story["cfg"], story["lake"], "C3")


@pytest.mark.parametrize(
    "key, expected",
    [
        ("C3", ["C3"]),
        ("shop:3", ["C3"]),
        ("BOB.RAY@Shop.Example", ["C3"]),
        ("bob.ray+news@shop.example", ["C3"]),  # silver's match key drops +tags
        ("+44 7700 900333", ["C3"]),
        ("07700 900333", ["C3"]),  # national form: matched by its trailing digits
        ("0044 7700 900001", ["C1"]),
        ("nobody@example.com", []),
    ],
)
def test_find_customer_ids_resolves_ids_record_keys_emails_and_phones(story, key, expected):
    assert find_customer_ids(story["lake"].spark, story["lake"], key) == expected


def test_view_has_golden_record_with_provenance(c3):
    assert (c3.customer_id, c3.status) == ("C3", "current")
    assert c3.golden["email"] == "bob@example.com"
    assert c3.provenance["email"]["record_key"] == "crm:2"
    assert c3.provenance["address_line1"]["source"] == "pos"


def test_view_lists_every_source_record_behind_the_customer(c3):
    assert [r["record_key"] for r in c3.records] == ["crm:2", "crm:3", "pos:3", "shop:3"]
    assert {r["source"] for r in c3.records} == {"crm", "shop", "pos"}


def test_view_shows_the_latest_facts_of_each_fact_source(c3):
    orders = c3.facts["shop_orders"]
    assert [f["fact_id"] for f in orders] == ["O6", "O5", "O4", "O3", "O2"]  # newest five of six
    assert orders[0]["amount"] == 60.5 and orders[0]["currency"] == "EUR"
    assert [f["subject"] for f in c3.facts["pos_tickets"]] == ["delivery late"]
    assert [(f["campaign"], f["record_key"]) for f in c3.facts["crm_campaigns"]] == [("easter", "crm:3"), ("spring", "crm:2")]


def test_format_prints_golden_values_with_their_origin_and_the_facts(c3):
    text = c3.format()
    assert text.startswith("customer C3 (current)")
    assert "bob@example.com" in text and "<- crm:2 by most_recent" in text
    assert "recent shop_orders (5)" in text and "60.50 EUR" in text
    assert "source records (4)" in text


def test_json_holds_the_same_view_with_iso_times(c3):
    import json

    from cdi.cli import json_text

    data = json.loads(json_text(c3.as_dict()))
    assert (data["customer_id"], data["status"], data["golden"]["email"]) == ("C3", "current", "bob@example.com")
    assert data["provenance"]["email"]["record_key"] == "crm:2"
    assert [r["record_key"] for r in data["records"]] == ["crm:2", "crm:3", "pos:3", "shop:3"]
    assert [f["fact_id"] for f in data["facts"]["shop_orders"]][:2] == ["O6", "O5"]
    valid_from = data["golden"]["valid_from"]
    assert valid_from == c3.golden["valid_from"].isoformat(), valid_from


def test_view_as_of_shows_the_version_and_records_known_then(story):
    view = customer_view(story["lake"].spark, story["cfg"], story["lake"], "C3", as_of=RUN_TIMES["r1"] + timedelta(days=1))
    assert view.status.startswith("superseded")
    assert view.golden["email"] == "bob.ray@shop.example"
    assert [r["record_key"] for r in view.records] == ["crm:3", "pos:3", "shop:3"]
    assert [f["campaign"] for f in view.facts["crm_campaigns"]] == ["easter"]


def test_view_of_a_retired_id_points_to_where_its_records_went(story):
    view = customer_view(story["lake"].spark, story["cfg"], story["lake"], "C2")
    assert (view.status, view.successor_ids) == ("retired", ["C3"])
    assert "records now belong to: C3" in view.format()


def test_unknown_and_ambiguous_keys_raise_clear_errors(story, monkeypatch):
    spark, cfg, lake = story["lake"].spark, story["cfg"], story["lake"]
    with pytest.raises(CustomerNotFoundError, match="no customer matches 'nobody@example.com'"):
        customer_view(spark, cfg, lake, "nobody@example.com")
    monkeypatch.setattr("cdi.gold.customer_view.find_customer_ids", lambda *a: ["C1", "C6"])
    with pytest.raises(AmbiguousCustomerError, match="matches 2 customers: C1, C6"):
        customer_view(spark, cfg, lake, "ann@shared.example")


def test_register_views_exposes_tables_for_sql(story):
    spark = story["lake"].spark
    names = register_views(spark, story["cfg"], story["lake"])
    assert set(names) == {
        "golden_records", "golden_current", "entity_map", "source_records",
        "facts_shop_orders", "facts_pos_tickets", "facts_crm_campaigns", "customer_facts",
    }
    per_customer = spark.sql(
        "SELECT customer_id, count(*) AS n FROM customer_facts GROUP BY customer_id ORDER BY customer_id"
    ).collect()
    assert [(r["customer_id"], r["n"]) for r in per_customer] == [("C1", 1), ("C3", 9)]
    assert spark.sql("SELECT count(*) FROM golden_current").first()[0] == 4
