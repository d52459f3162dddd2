"""The change feed of the three-run story, and its publication to the outbox and to PostgreSQL."""

from __future__ import annotations

import json

import psycopg
import pytest
from pyspark.sql import functions as F

from cdi.gold.changes import CHANGES_TABLE
from cdi.gold.propagation import outbox_path, publication_frame, publish, publish_postgres
from gold_fixtures import RUN_TIMES, data_commits, make_config, start_postgres, story  # noqa: F401  (fixture)


def feed(story, run_id):
    rows = story["lake"].read(CHANGES_TABLE).where(f"run_id = '{run_id}'").collect()
    return {r["customer_id"]: r.asDict(recursive=True) for r in rows}


def attrs(change):
    return {a["attribute"]: (a["old_value"], a["new_value"]) for a in change["changed_attributes"]}


def test_first_run_reports_every_customer_as_new_with_its_values(story):
    changes = feed(story, "r1")
    assert {c: ch["change_type"] for c, ch in changes.items()} == {c: "new" for c in ("C1", "C2", "C3", "C5", "C6")}
    assert attrs(changes["C2"]) == {
        "first_name": (None, "Bob"),
        "last_name": (None, "Ray"),
        "email": (None, "bob@example.com"),
        "income": (None, "52000.0"),
        "source_record_keys": (None, "crm:2"),
    }
    assert {ch["changed_at"] for ch in changes.values()} == {RUN_TIMES["r1"].replace(tzinfo=None)}


def test_update_lists_only_the_changed_attribute_with_old_and_new_value(story):
    c1 = feed(story, "r2")["C1"]
    assert c1["change_type"] == "updated"
    assert c1["changed_attributes"] == [{"attribute": "email", "old_value": "ann@old.example", "new_value": "ann@new.example"}]


def test_merge_names_the_retired_id_and_the_retired_id_points_to_the_survivor(story):
    changes = feed(story, "r2")
    assert (changes["C3"]["change_type"], changes["C3"]["retired_ids"]) == ("merged", ["C2"])
    assert attrs(changes["C3"])["email"] == ("bob.ray@shop.example", "bob@example.com")
    assert (changes["C2"]["change_type"], changes["C2"]["related_ids"]) == ("retired", ["C3"])


def test_split_marks_both_sides_and_deleted_records_retire_their_customer(story):
    changes = feed(story, "r2")
    summary = {c: (ch["change_type"], ch["related_ids"]) for c, ch in changes.items()}
    assert summary == {
        "C1": ("updated", []),
        "C2": ("retired", ["C3"]),
        "C3": ("merged", ["C2"]),
        "C5": ("retired", []),
        "C6": ("split", ["C7"]),
        "C7": ("split", ["C6"]),
    }
    assert attrs(changes["C6"]) == {
        "email": ("dana@shop.example", "dana@crm.example"),
        "source_record_keys": ("crm:6,shop:6", "crm:6"),
    }


def test_rerun_with_no_new_input_writes_no_changes(story):
    assert story["results"]["r3"].changes == {}
    assert feed(story, "r3") == {}
    assert [h["run_id"] for h in data_commits(story["lake"], CHANGES_TABLE)] == ["r2", "r1"]


def test_stage_reports_changes_by_type(story):
    assert story["results"]["r2"].changes == {"new": 0, "updated": 1, "merged": 1, "split": 2, "retired": 2}


# ------------------------------------------------------------------ outbox


def outbox_lines(story, run_id):
    text = outbox_path(story["outbox"], run_id).read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines()]


def test_outbox_has_one_file_per_run_with_changes_and_nothing_else(story):
    files = sorted(p.name for p in story["outbox"].iterdir())
    assert files == ["run_id=r1.jsonl", "run_id=r2.jsonl"]


def test_outbox_message_carries_the_full_golden_record_with_provenance(story):
    messages = {m["customer_id"]: m for m in outbox_lines(story, "r2")}
    assert set(messages) == {"C1", "C2", "C3", "C5", "C6", "C7"}
    c3 = messages["C3"]
    assert (c3["change_type"], c3["retired_ids"], c3["run_id"]) == ("merged", ["C2"], "r2")
    golden = c3["golden"]
    assert golden["email"] == "bob@example.com" and golden["is_current"] is True
    assert golden["provenance"]["email"]["record_key"] == "crm:2"
    assert golden["provenance"]["email"]["rule"] == "most_recent"
    assert "middle_name" in golden and golden["middle_name"] is None
    retired = messages["C2"]["golden"]
    assert retired["is_current"] is False and retired["valid_to"].startswith("2025-02-01T00:00:00")


def test_publishing_again_neither_rewrites_nor_adds_outbox_files(story):
    before = {p.name: p.read_bytes() for p in story["outbox"].iterdir()}
    again = publish(story["lake"], story["cfg"].propagation)
    assert again["outbox"] == {"runs": [], "rows": 0, "skipped": []}
    assert {p.name: p.read_bytes() for p in story["outbox"].iterdir()} == before


def test_a_large_run_reaches_the_driver_in_bounded_partitions_in_customer_order(story, monkeypatch, tmp_path):
    """At ~400k changes one shuffle partition held 300 MB and the driver ran out of heap mid-publication."""
    import cdi.gold.propagation as propagation

    monkeypatch.setattr(propagation, "ROWS_PER_PARTITION", 2)
    frame = publication_frame(story["lake"], "r2", story["cfg"].propagation)
    sizes = frame.rdd.glom().map(len).collect()
    assert len(sizes) == 3 and sum(sizes) == 6
    assert propagation.publish_outbox(frame, tmp_path, "r2") == 6
    ids = [json.loads(line)["customer_id"] for line in outbox_path(tmp_path, "r2").read_text().splitlines()]
    assert ids == sorted(ids) == ["C1", "C2", "C3", "C5", "C6", "C7"]
    assert outbox_path(tmp_path, "r2").read_bytes() == outbox_path(story["outbox"], "r2").read_bytes()


# ------------------------------------------------------------------ PostgreSQL


@pytest.fixture(scope="module")
def postgres_dsn():
    yield from start_postgres()


def pg_rows(dsn, sql):
    with psycopg.connect(dsn) as conn:
        return conn.execute(sql).fetchall()


@pytest.mark.postgres
def test_postgres_upserts_each_run_once_and_republishing_changes_nothing(story, postgres_dsn, tmp_path, monkeypatch):
    spark, lake = story["lake"].spark, story["lake"]
    monkeypatch.setenv("CDI_TEST_PG_DSN", postgres_dsn)
    conf = tmp_path / "env.yaml"
    conf.write_text(
        f"lake_root: {lake.root}\n"
        "propagation:\n  postgres:\n    dsn: ${CDI_TEST_PG_DSN}\n    table: public.golden_customers\n",
        encoding="utf-8",
    )
    from cdi.config import load_config

    cfg = load_config(conf)
    assert cfg.propagation.postgres.dsn == postgres_dsn

    first = publish(lake, cfg.propagation)
    assert first["postgres"]["runs"] == ["r1", "r2"] and first["postgres"]["rows"] == 11
    table = "SELECT customer_id, email, is_current, cdi_change_type, cdi_run_id, source_record_keys, provenance->'email'->>'record_key', cdi_published_at FROM golden_customers ORDER BY customer_id"
    snapshot = pg_rows(postgres_dsn, table)
    assert [r[:6] for r in snapshot] == [
        ("C1", "ann@new.example", True, "updated", "r2", ["crm:1", "shop:1"]),
        ("C2", "bob@example.com", False, "retired", "r2", ["crm:2"]),
        ("C3", "bob@example.com", True, "merged", "r2", ["crm:2", "crm:3", "pos:3", "shop:3"]),
        ("C5", None, False, "retired", "r2", ["pos:5"]),
        ("C6", "dana@crm.example", True, "split", "r2", ["crm:6"]),
        ("C7", "dana@shop.example", True, "split", "r2", ["shop:6"]),
    ]
    assert snapshot[2][6] == "crm:2"

    second = publish(lake, cfg.propagation)
    assert second["postgres"]["runs"] == [] and second["postgres"]["rows"] == 0
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        assert publish_postgres(conn, publication_frame(lake, "r2"), "public.golden_customers", "r2") is None
    assert pg_rows(postgres_dsn, table) == snapshot
    log = pg_rows(postgres_dsn, "SELECT run_id, rows FROM golden_customers_publications ORDER BY run_id")
    assert log == [("r1", 5), ("r2", 6)]


@pytest.mark.postgres
def test_a_postgres_table_an_older_release_made_gains_the_attributes_added_since(postgres_dsn):
    from cdi.gold.propagation import ensure_postgres_tables, postgres_columns

    older = [(n, t) for n, t in postgres_columns() if n not in ("deceased", "date_of_death")]
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS public.older_golden")
        conn.execute("CREATE TABLE public.older_golden (" + ", ".join(f'"{n}" {t}' for n, t in older) + ")")
        ensure_postgres_tables(conn, "public.older_golden")
        ensure_postgres_tables(conn, "public.older_golden")  # and again: nothing to add
    got = dict(pg_rows(postgres_dsn, "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'older_golden'"))
    assert got["deceased"] == "boolean" and got["date_of_death"] == "date" and len(got) == len(postgres_columns())


def test_empty_dsn_switches_postgres_off(story):
    cfg = make_config(story["lake"].root, propagation={"postgres": {"dsn": ""}})
    assert publish(story["lake"], cfg.propagation) == {"outbox": None, "postgres": None}


def test_masked_attributes_leave_the_lake_masked_partially_or_as_tokens(story, spark):
    from cdi.config import PropagationConfig
    from cdi.privacy.masking import masked, token, token_salt

    partial = PropagationConfig(masked_attributes=["email"])
    messages = {r["customer_id"]: json.loads(r["message"]) for r in publication_frame(story["lake"], "r2", partial).collect()}
    assert messages["C3"]["golden"]["email"] == "*" * 11 + ".com"  # bob@example.com, last four kept
    rows = {r["customer_id"]: json.loads(r["row"]) for r in publication_frame(story["lake"], "r2", partial).collect()}
    assert rows["C3"]["email"] == "*" * 11 + ".com"
    changed = [a for m in messages.values() for a in m["changed_attributes"] if a["attribute"] == "email"]
    assert changed and all("@" not in (a["old_value"] or "") + (a["new_value"] or "") for a in changed)

    key = "tok-key-0123456789abcdef"
    tokens = PropagationConfig(masked_attributes=["email"], masking="token", token_key=key)
    golden = {r["customer_id"]: json.loads(r["message"])["golden"] for r in publication_frame(story["lake"], "r2", tokens).collect()}
    assert golden["C3"]["email"] == token(token_salt(key), "bob@example.com")  # the same in Python and Spark

    values = spark.createDataFrame([("AB123456C",), ("12",), (None,)], "v string")
    shown = [r[0] for r in values.select(masked(F.col("v"), "partial")).collect()]
    assert shown == ["*****456C", "**", None]
    assert PropagationConfig().masked_attributes == ["national_id"] and PropagationConfig().masking == "partial"


def test_an_opt_out_on_the_configured_channel_keeps_a_customer_out_of_the_publication(story, spark, tmp_path):
    import shutil
    from datetime import datetime

    from cdi import schema
    from cdi.config import PropagationConfig
    from cdi.lake import Lake

    shutil.copytree(story["lake"].root, tmp_path / "lake")  # the shared story stays as it is
    lake = Lake(spark, str(tmp_path / "lake"), job="test")
    owner = {r["record_key"]: r["customer_id"] for r in lake.read("silver/entity_map").collect()}
    record = next(k for k, c in owner.items() if c == "C3")

    def answer(fact_id: str, at: str, consent: bool | None) -> tuple:
        values = {"fact_key": f"crm_campaigns:{fact_id}", "source": "crm_campaigns", "kind": "interactions",
                  "record_key": record, "fact_id": fact_id, "event_at": datetime.fromisoformat(at), "consent_email": consent}  # fmt: skip
        return tuple(values.get(f.name) for f in schema.FACTS_SCHEMA.fields)

    said = [answer("A1", "2024-01-01", True), answer("A2", "2024-06-01", False), answer("A3", "2024-09-01", None)]
    lake.write(schema.FACTS, spark.createDataFrame(said, schema.FACTS_SCHEMA), mode="overwrite")

    everyone = {r["customer_id"] for r in publication_frame(lake, "r2", PropagationConfig()).collect()}
    honoured = {r["customer_id"] for r in publication_frame(lake, "r2", PropagationConfig(opt_out_channel="email")).collect()}
    assert "C3" in everyone and honoured == everyone - {"C3"}  # the latest answer (June) said no; September did not answer
    other = {r["customer_id"] for r in publication_frame(lake, "r2", PropagationConfig(opt_out_channel="sms")).collect()}
    assert other == everyone
