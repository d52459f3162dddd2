"""The whole pipeline on the generated demo universe at the shipped default size, through the
shipped configuration: linkage quality against the generator's truth, the table contracts, the
one-customer view, and a re-run on unchanged input that changes nothing."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[1]

CONTRACT = {
    "bronze/_quarantine": ["_source", "_batch_id", "_source_file", "_reason", "_raw"],
    "silver/records": [
        "record_key", "source", "source_record_id", "first_name", "middle_name", "last_name", "full_name",
        "date_of_birth", "gender", "email", "phone", "address_line1", "address_line2", "city", "postcode",
        "region", "country", "national_id", "marital_status", "income", "updated_at",
    ],
    "silver/facts": ["fact_key", "source", "kind", "record_key"],
    "silver/pairs": ["record_key_l", "record_key_r", "match_probability", "match_weight", "run_id"],
    "silver/entity_map": ["record_key", "source", "source_record_id", "customer_id", "run_id"],
    "gold/golden_records": ["customer_id", "first_name", "last_name", "email", "valid_from", "valid_to", "is_current"],
    "gold/customer_360": ["customer_id", "age_band", "gender", "income_band"],
    "gold/changes": ["customer_id", "change_type", "run_id", "changed_at"],
}
BRONZE_LINEAGE = ["_source", "_source_record_id", "_batch_id", "_ingested_at", "_source_file", "_row_hash"]


@pytest.fixture(scope="module")
def demo_run(spark, tmp_path_factory):
    """One full run of `cdi run --conf conf/demo.yaml` into a temporary lake."""
    from cdi.config import load_config
    from cdi.lake import Lake
    from cdi.pipeline import run

    work = tmp_path_factory.mktemp("e2e")
    env = {
        "CDI_LAKE_ROOT": str(work / "lake"),
        "CDI_DEMO_DATA": str(work / "data"),
        "CDI_OUTBOX_DIR": str(work / "outbox"),
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        cfg = load_config(ROOT / "conf" / "demo.yaml")
        first = run(cfg, spark=spark)
        lake = Lake(spark, cfg.lake_root)
        yield {"cfg": cfg, "lake": lake, "first": first, "data": work / "data", "work": work}
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def test_linkage_quality_meets_the_target_through_cdi_evaluate(demo_run, capsys):
    from cdi.cli import main

    report_path = demo_run["work"] / "evaluation.json"
    code = main(
        ["evaluate", "--conf", str(ROOT / "conf" / "demo.yaml"), "--truth",
         str(demo_run["data"] / "truth.csv"), "--out", str(report_path)]
    )
    assert code == 0, capsys.readouterr().err
    report = json.loads(report_path.read_text())
    pairwise = report["pairwise"]
    assert pairwise["precision"] >= 0.97, report
    assert pairwise["recall"] >= 0.93, report
    assert report["records_only_in_truth"] == 0


def test_every_table_honours_its_contract(demo_run):
    lake = demo_run["lake"]
    for table, columns in CONTRACT.items():
        df = lake.read(table)
        missing = [c for c in columns if c not in df.columns]
        assert not missing, f"{table} lacks {missing}"
    for src in demo_run["cfg"].sources:
        df = lake.read(f"bronze/{src.name}")
        assert set(BRONZE_LINEAGE) <= set(df.columns), src.name
    records = lake.read("silver/records")
    assert records.count() == records.select("record_key").distinct().count()
    facts = lake.read("silver/facts")
    assert facts.count() == facts.select("fact_key").distinct().count() > 0
    current = lake.read("gold/golden_records").where("is_current")
    assert current.count() == current.select("customer_id").distinct().count()
    assert current.count() == lake.read("silver/entity_map").select("customer_id").distinct().count()


def test_every_malformed_row_of_the_manifest_is_quarantined(demo_run):
    manifest = json.loads((demo_run["data"] / "manifest.json").read_text())
    expected = sum(len(rows) for rows in manifest["malformed_rows"].values())
    quarantined_sources = demo_run["lake"].read("bronze/_quarantine")
    # sources reading the same file twice (customers and their facts) quarantine its rows twice
    per_file = {r["_source_file"].rsplit("/", 2)[-2] + "/" + r["_source_file"].rsplit("/", 1)[-1]
                for r in quarantined_sources.select("_source_file").distinct().collect()}
    assert set(manifest["malformed_rows"]) <= per_file
    assert quarantined_sources.count() >= expected


def test_customer_view_shows_sources_and_facts(demo_run):
    from pyspark.sql import functions as F

    from cdi.gold.customer_view import customer_view

    lake = demo_run["lake"]
    em = lake.read("silver/entity_map")
    busiest = (
        em.groupBy("customer_id").agg(F.countDistinct("source").alias("n")).orderBy(F.desc("n"), "customer_id").first()
    )
    assert busiest["n"] >= 3
    view = customer_view(lake.spark, demo_run["cfg"], lake, busiest["customer_id"])
    text = view.format()
    assert busiest["customer_id"] in text
    assert len({r["source"] for r in view.records}) == busiest["n"]


def test_rerun_on_unchanged_input_changes_no_id_and_writes_no_changes(demo_run, spark):
    from cdi.pipeline import run

    lake = demo_run["lake"]
    before = lake.read("silver/entity_map").select("record_key", "customer_id")
    changes_before = lake.read("gold/changes").count()
    second = run(demo_run["cfg"], spark=spark, full=True)
    assert second.up_to_date_since is None and second.link is not None
    after = lake.read("silver/entity_map").select("record_key", "customer_id")
    assert before.exceptAll(after).count() == 0 and after.exceptAll(before).count() == 0
    assert lake.read("gold/changes").where(f"run_id = '{second.run_id}'").count() == 0
    assert lake.read("gold/changes").count() == changes_before


def test_a_run_with_nothing_new_keeps_silver_and_gold_and_a_changed_record_is_computed(demo_run, spark):
    """Runs last in this module: it changes a CRM contact in the demo data."""
    from cdi.pipeline import run
    from cdi.run_inputs import last_recorded, today

    cfg, lake = demo_run["cfg"], demo_run["lake"]
    recorded = last_recorded(lake)
    assert recorded is not None
    if recorded[1].day != today(lake):
        pytest.skip("the day changed since the previous run (UTC midnight): silver and gold are computed again")
    kept = ("silver/records", "silver/entity_map", "silver/pairs", "gold/golden_records", "gold/changes", "gold/customer_360")
    versions = {t: lake.version(t) for t in kept}
    quiet = run(cfg, spark=spark)
    assert quiet.up_to_date_since is not None
    assert quiet.link is None and quiet.gold is None and quiet.customer_360 is None
    assert {t: lake.version(t) for t in kept} == versions
    steps = {(s.stage, s.name) for s in quiet.summary.steps}
    assert ("silver", "up to date") in steps and ("silver", "standardise") not in steps

    # the generator corrupts some rows on purpose (other encodings, quotes): edit a plain one
    contacts = demo_run["data"] / "crm" / "contacts.csv"
    lines = contacts.read_bytes().split(b"\n")
    header = lines[0].decode().split(",")
    street, modified = header.index("street"), header.index("last_modified")
    i = next(i for i, line in enumerate(lines[1:], 1) if line.isascii() and b'"' not in line and line.count(b",") == len(header) - 1)
    fields = lines[i].decode().split(",")
    fields[street], fields[modified] = "17 Moved Lane", "2026-12-01 09:00:00"
    lines[i] = ",".join(fields).encode()
    contacts.write_bytes(b"\n".join(lines))
    moved = dict(zip(header, fields, strict=True))

    changed = run(cfg, stages=("ingest", "link"), spark=spark)
    assert changed.up_to_date_since is None and changed.link is not None
    record = lake.read("silver/records").where(f"record_key = 'crm:{moved['contact_id']}'").first()
    assert record is not None and "moved" in record["address_line1"].lower()
