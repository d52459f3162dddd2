"""Life events from the golden history: a customer whose source record changes address, income
and marital status over three runs (with source timestamps) yields the right events with
effective times; a value that changes only because entity resolution brought in an older record
is not an event; the customer 360 shows the latest of each (cdi.gold.life_events)."""

from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from cdi import schema
from cdi.config import Customer360Config
from cdi.gold.customer_360 import run_customer_360
from cdi.gold.life_events import derive_life_events
from cdi.gold.stage import run_gold
from cdi.gold.survivorship import trust_ranks
from cdi.lake import Lake
from gold_fixtures import make_config, record, ts, write_silver

RUNS = {"r1": ts("2026-01-10T06:00"), "r2": ts("2026-02-10T06:00"), "r3": ts("2026-03-10T06:00")}
ADDRESS_1 = {"address_line1": "1 Old Road", "postcode": "AB1 1AA", "city": "Leeds", "country": "GB"}
ADDRESS_2 = {"address_line1": "9 New Street", "postcode": "ZZ9 9ZZ", "city": "York", "country": "GB"}


def _inputs(run: str) -> tuple[list[dict], dict[str, str]]:
    anna = dict(first_name="Anna", last_name="Smith", email="anna@example.com", income=40000.0, marital_status="single")
    if run == "r1":
        rows = [record("crm", "1", "2025-06-01", **anna, **ADDRESS_1)]
    elif run == "r2":  # she moved on 2026-01-20 and married; income up 25%
        rows = [record("crm", "1", "2026-01-20", **{**anna, "income": 50000.0, "marital_status": "married"}, **ADDRESS_2)]
    else:  # a shop record of hers, older and less trusted, is linked: nothing in her life changed
        changed = {**anna, "income": 50000.0, "marital_status": "married"}
        rows = [record("crm", "1", "2026-01-20", **changed, **ADDRESS_2),
                record("shop", "7", "2024-03-01", first_name="Anna", last_name="Smith", email="old.anna@example.com")]  # fmt: skip
        # Bob: no update times at his source; his own record's phone changes
    bob = record("pos", "5", None, first_name="Bob", last_name="Jones", phone="+441130000001" if run == "r1" else "+441130000002")
    # Carl: in r3 an old CRM record of his (more trusted, updated long ago) is linked and its
    # e-mail wins by source priority: the golden e-mail changes, his life did not
    carl = [record("pos", "9", "2026-01-01", first_name="Carl", last_name="Berg", email="carl@new.example")]
    if run == "r3":
        carl.append(record("crm", "9", "2020-01-01", first_name="Carl", last_name="Berg", email="carl@old.example"))
    # Dora: alive in r1; in r2 her CRM record says she died on 5 January (updated on the 25th).
    # Ed: first seen in r2, already marked deceased, no date of death
    dora = dict(first_name="Dora", last_name="Lind", email="dora@example.com")
    died = {"deceased": True, "date_of_death": "2026-01-05"}
    deaths = [record("crm", "4", "2025-05-01" if run == "r1" else "2026-01-25", **dora, **({"deceased": False} if run == "r1" else died))]
    if run != "r1":
        deaths.append(record("crm", "6", "2026-02-01", first_name="Ed", last_name="Holm", deceased=True))
    keys = {r["record_key"]: "C1" for r in rows}
    keys.update({bob["record_key"]: "C2", **{r["record_key"]: "C3" for r in carl}, "crm:4": "C4", "crm:6": "C5"})
    return [*rows, bob, *carl, *deaths], keys


@pytest.fixture(scope="module")
def life(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("life") / "lake"
    # e-mails from the most trusted source, as many companies set it (the CRM's is checked)
    cfg = make_config(root, survivorship={"attributes": {"email": {"rule": "source_priority"}}})
    for run, at in RUNS.items():
        lake = Lake(spark, str(root), job="test", run_id=run)
        rows, mapping = _inputs(run)
        write_silver(lake, rows, mapping, run_id=run)
        run_gold(lake, cfg.survivorship, trust_ranks(cfg), run, run_at=at)
    lake = Lake(spark, str(root), job="test", run_id="r3")
    settings = Customer360Config(as_of="2026-03-10")
    run_customer_360(lake, settings, [], [], "r3")
    return lake


def _events(lake):
    rows = lake.read("gold/life_events").orderBy("customer_id", "event_type").collect()
    return {(r["customer_id"], r["event_type"]): r.asDict() for r in rows}


def test_a_move_a_marriage_and_a_raise_are_events_at_the_time_the_source_says(life):
    events = _events(life)
    anna = {kind for cid, kind in events if cid == "C1"}
    assert anna == {"moved_home", "marital_status_changed", "income_rose"}
    moved = events[("C1", "moved_home")]
    assert (moved["old_value"], moved["new_value"]) == ("1 Old Road, AB1 1AA Leeds, GB", "9 New Street, ZZ9 9ZZ York, GB")
    assert moved["effective_at"] == datetime(2026, 1, 20)  # the source's update time, not the run's
    assert moved["recorded_at"] == datetime(2026, 2, 10, 6, 0)
    assert (moved["source"], moved["record_key"], moved["run_id"]) == ("crm", "crm:1", "r2")
    raise_ = events[("C1", "income_rose")]
    assert (raise_["old_amount"], raise_["new_amount"], raise_["change_share"]) == (40000.0, 50000.0, 0.25)
    assert (events[("C1", "marital_status_changed")]["old_value"], events[("C1", "marital_status_changed")]["new_value"]) == ("single", "married")


def test_a_record_brought_in_by_linkage_is_no_event_and_a_source_without_times_still_counts(life):
    events = _events(life)
    assert ("C1", "new_email") not in events  # r3's older shop record changed no e-mail of hers
    carl = life.read("gold/golden_records").where("customer_id = 'C3' and is_current").first()
    assert carl["email"] == "carl@old.example" and ("C3", "new_email") not in events
    phone = events[("C2", "new_phone")]
    assert (phone["old_value"], phone["new_value"]) == ("+441130000001", "+441130000002")
    assert phone["effective_at"] == phone["recorded_at"] == datetime(2026, 2, 10, 6, 0)  # unknown at the source


def test_the_customer_360_shows_the_latest_event_of_each_kind(life):
    c360 = {r["customer_id"]: r for r in life.read("gold/customer_360").collect()}
    anna, bob = c360["C1"], c360["C2"]
    assert anna["moved_at"] == datetime(2026, 1, 20) and anna["marital_status_changed_at"] == datetime(2026, 1, 20)
    assert anna["income_change_pct_12m"] == 25.0 and anna["moved_country_at"] is None
    assert bob["new_phone_at"] == datetime(2026, 2, 10, 6, 0) and bob["moved_at"] is None


def test_a_death_is_an_event_dated_by_the_date_of_death_and_ends_every_channel(spark, life):
    from cdi.gold.customer_360 import assemble_customer_360, current_customers, resolve_facts, to_reporting_currency

    events = _events(life)
    dora, ed = events[("C4", "deceased")], events[("C5", "deceased")]
    assert (dora["effective_at"], dora["recorded_at"], dora["old_value"], dora["new_value"]) == (
        datetime(2026, 1, 5), datetime(2026, 2, 10, 6), "false", "true",
    )
    assert (dora["source"], dora["record_key"], dora["run_id"]) == ("crm", "crm:4", "r2")
    # already dead when first seen: an event all the same, dated by the record's update time
    assert (ed["effective_at"], ed["old_value"], ed["run_id"]) == (datetime(2026, 2, 1), None, "r2")
    assert sum(kind == "deceased" for _, kind in events) == 2  # r3 repeats the death: no second event
    golden = life.read("gold/golden_records").where("customer_id = 'C4' and is_current").first()
    assert (golden["deceased"], golden["date_of_death"]) == (True, date(2026, 1, 5))

    # both Anna and Dora agreed to e-mails; only Anna can be reached
    settings = Customer360Config(as_of="2026-03-10")
    consent = [(f"marketing:m{i}", "marketing", "interactions", key, f"m{i}", key, datetime(2025, 12, 1), None, None,
                None, None, None, None, "x", None, True, None, None, None, "b1", datetime(2025, 12, 1))
               for i, key in enumerate(("crm:1", "crm:4"))]  # fmt: skip
    customers = current_customers(life)
    facts = resolve_facts(to_reporting_currency(spark.createDataFrame(consent, schema.FACTS_SCHEMA), settings), life, customers)
    c360 = {r["customer_id"]: r for r in assemble_customer_360(customers, facts, settings, life.read("gold/life_events")).collect()}
    assert (c360["C1"]["reachable_email"], c360["C4"]["reachable_email"]) == (True, False)
    assert (c360["C4"]["deceased"], c360["C4"]["deceased_at"], c360["C1"]["deceased_at"]) == (True, datetime(2026, 1, 5), None)


def test_the_service_shows_a_deceased_customer_as_such(life):
    from fastapi.testclient import TestClient

    from cdi.config import CdiConfig, ServiceConfig
    from cdi.service.app import create_app

    cfg = CdiConfig(lake_root=life.root, service=ServiceConfig(refresh_seconds=0))
    with TestClient(create_app(cfg)) as client:
        golden = client.get("/api/customers/C4").json()["golden"]
        assert (golden["deceased"], golden["date_of_death"]) == (True, "2026-01-05")
        assert "deceased 2026-01-05" in client.get("/customers/C4").text
        assert 'id="deceased"' not in client.get("/customers/C1").text


def test_an_income_change_below_the_configured_share_is_no_event(spark, life):
    history = life.read("gold/golden_records")
    assert derive_life_events(history, income_change_share=0.3).where("event_type like 'income%'").count() == 0
    assert derive_life_events(history, income_change_share=0.2).where("event_type = 'income_rose'").count() == 1


# --------------------------------------------------------------------------- audiences by condition


def _audience_lake(spark, root):
    c360 = spark.createDataFrame(
        [("C1", "Anna Smith", "Anna", "Smith", "anna@example.com", "+447700900123", "25-34", True, True, 25.0),
         ("C2", "Ben Ode", "Ben", "Ode", "ben@example.com", None, "25-34", False, False, None),
         ("C3", "Cleo Pry", "Cleo", "Pry", "cleo@example.com", "+447700900999", "45-54", True, True, None)],
        "customer_id string, full_name string, first_name string, last_name string, email string, phone string, "
        "age_band string, reachable_email boolean, reachable_sms boolean, income_change_pct_12m double",
    )  # fmt: skip
    events = spark.createDataFrame(
        [("C1", "moved_home", datetime(2026, 1, 20), datetime(2026, 2, 10), "a", "b", None, None, None, "crm", "crm:1", "r2"),
         ("C2", "moved_home", datetime(2026, 2, 1), datetime(2026, 2, 10), "c", "d", None, None, None, "crm", "crm:2", "r2"),
         ("C3", "new_phone", datetime(2026, 2, 1), datetime(2026, 2, 10), None, "e", None, None, None, "pos", "pos:3", "r2")],
        schema.LIFE_EVENTS_SCHEMA,
    )  # fmt: skip
    lake = Lake(spark, str(root), job="test", run_id="r1")
    lake.write("gold/customer_360", c360, mode="overwrite")
    lake.write("gold/life_events", events, mode="overwrite")
    return lake


def test_an_audience_by_life_event_and_demographics_takes_only_consenting_customers_masked(spark, tmp_path):
    from cdi import analytics

    lake = _audience_lake(spark, tmp_path / "lake")
    movers = "event_type = 'moved_home' and effective_at >= timestamp'2026-01-01' and age_band = '25-34'"
    found = analytics.audience(lake, movers, "email", str(tmp_path / "out" / "movers.csv"))
    # Ben moved too but never agreed to e-mails; Cleo did not move
    assert found["customers"] == 1 and found["preview"].to_dict("records") == [
        {"customer_id": "C1", "full_name": "Anna Smith", "first_name": "Anna", "last_name": "Smith", "contact": "a***@example.com"}
    ]
    assert (tmp_path / "out" / "movers.csv").read_text().splitlines() == [
        "customer_id,full_name,first_name,last_name,contact", "C1,Anna Smith,Anna,Smith,a***@example.com"
    ]
    sms = analytics.audience(lake, "income_change_pct_12m is null", "sms", masked=False)
    assert sms["preview"][["customer_id", "contact"]].values.tolist() == [["C3", "+447700900999"]]
    masked = analytics.audience(lake, "income_change_pct_12m is null", "sms")
    assert masked["preview"]["contact"].tolist() == ["+44********99"]


def test_an_audience_condition_is_checked_before_spark_with_a_did_you_mean(tmp_path, capsys):
    from cdi.cli import main
    from cdi.errors import ConfigError
    from cdi.gold.audience import check_condition

    with pytest.raises(ConfigError, match="'moved_att' \\(did you mean 'moved_at'\\?\\)"):
        check_condition("moved_att > date'2026-01-01'")
    with pytest.raises(ConfigError, match="aggregate"):
        check_condition("count(*) > 1")
    assert check_condition("event_type = 'moved_home'") and not check_condition("age_band = '25-34'")
    for call in ("reflect('java.lang.Runtime', 'getRuntime') is not null", "age > 1 and JAVA_METHOD('java.util.UUID', 'randomUUID') = ''",
                 "try_reflect('java.lang.System', 'exit', 1) is null"):  # fmt: skip
        with pytest.raises(ConfigError, match="runs Java code on the cluster"):
            check_condition(call)
    conf = tmp_path / "env.yaml"
    conf.write_text(f"lake_root: {tmp_path / 'lake'}\n")
    assert main(["audience", "--conf", str(conf), "--where", "ordrs > 0"]) == 2
    assert "did you mean 'orders'" in capsys.readouterr().err
    assert main(["audience", "--conf", str(conf), "--where", "orders > 0", "--channel", "fax"]) == 2


# --------------------------------------------------------------------------- two times in the history


def test_each_version_carries_when_it_became_true_at_the_source_and_as_of_answers_by_either(spark, life):
    from cdi.gold.history import customer_as_of

    versions = life.read("gold/golden_records").where("customer_id = 'C1'").orderBy("valid_from").collect()
    times = [(v["run_id"], v["valid_from"], v["effective_from"], v["effective_to"]) for v in versions]
    assert times[:2] == [
        ("r1", datetime(2026, 1, 10, 6), datetime(2025, 6, 1), datetime(2026, 1, 20)),  # true since her record's update
        ("r2", datetime(2026, 2, 10, 6), datetime(2026, 1, 20), datetime(2026, 1, 20)),
    ]
    # r3 only linked an older record: nothing became true later than what r2 said
    assert times[2][0] == "r3" and times[2][2] == datetime(2026, 1, 20) and times[2][3] is None
    feb = datetime(2026, 2, 1, tzinfo=timezone.utc)  # she had moved; the lake learnt it on 10 February
    assert customer_as_of(spark, life, "C1", feb)["address_line1"] == "1 Old Road"
    assert customer_as_of(spark, life, "C1", feb, "effective")["address_line1"] == "9 New Street"
    assert customer_as_of(spark, life, "C1", datetime(2025, 5, 1, tzinfo=timezone.utc), "effective") is None
    bob = life.read("gold/golden_records").where("customer_id = 'C2' and run_id = 'r2'").first()
    assert bob["effective_from"] == bob["valid_from"]  # no update time at his source: when the lake learnt it


def test_a_golden_table_from_before_effective_times_gets_them_on_its_next_change(spark, tmp_path):
    """Also: a table from before the deceased attributes gains them."""
    import shutil

    from cdi.gold.history import customer_as_of
    from cdi.gold.survivorship import prov_column

    older = ["effective_from", "effective_to", *[c for a in ("deceased", "date_of_death") for c in (a, prov_column(a))]]
    root = tmp_path / "lake"
    cfg = make_config(root)
    for run in ("r1", "r2"):
        lake = Lake(spark, str(root), job="test", run_id=run)
        rows, mapping = _inputs(run)
        write_silver(lake, rows, mapping, run_id=run)
        if run == "r2":  # the table as an older release wrote it: no effective times, no deaths
            old = lake.read("gold/golden_records").drop(*older).localCheckpoint()
            shutil.rmtree(root / "gold" / "golden_records")
            lake.write("gold/golden_records", old, partition_by=["is_current"])
        run_gold(lake, cfg.survivorship, trust_ranks(cfg), run, run_at=RUNS[run])
    versions = lake.read("gold/golden_records").where("customer_id = 'C1'").orderBy("valid_from").collect()
    assert [(v["effective_from"], v["effective_to"]) for v in versions] == [
        (None, datetime(2026, 1, 20)),  # unknown for the old version; closed when its successor became true
        (datetime(2026, 1, 20), None),
    ]
    feb = datetime(2026, 2, 1, tzinfo=timezone.utc)
    assert customer_as_of(spark, lake, "C1", feb, "effective")["address_line1"] == "9 New Street"
    jan = datetime(2026, 1, 15, tzinfo=timezone.utc)  # the old version falls back to its recorded start
    assert customer_as_of(spark, lake, "C1", jan, "effective")["address_line1"] == "1 Old Road"
    dora = lake.read("gold/golden_records").where("customer_id = 'C4'").orderBy("valid_from").collect()
    assert [(v["deceased"], v["date_of_death"]) for v in dora] == [(None, None), (True, date(2026, 1, 5))]
