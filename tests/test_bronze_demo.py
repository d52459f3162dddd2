"""End to end on generated demo data: every deliberately malformed row is quarantined with the
right file, line and reason, and every well-formed row reaches bronze (conf/sources/*.yaml)."""

from __future__ import annotations

import csv
import os
from collections import Counter
from pathlib import Path

import pytest
from bronze_fixtures import postgres_server  # noqa: F401  (fixture)
from cdi.bronze import QUARANTINE_TABLE, run_ingest
from cdi.config import load_config
from cdi_demo import generate
from cdi.lake import Lake

CONF = Path(__file__).resolve().parents[1] / "conf" / "sources"
SOURCE_FILES = ("crm", "webshop", "pos", "billing", "support", "marketing")
REASON_OF_KIND = {
    "broken_quoting": "malformed_csv",
    "invalid_json": "invalid_json",
    "impossible_date": "invalid_type",
    "invalid_utf8": "invalid_encoding",
    "overlong_field": "overlong_field",
    "missing_id": "missing_id",
}


def demo_config(tmp_path: Path, data: Path, files: list[str], lake: str):
    env = tmp_path / f"{lake}.yaml"
    includes = ", ".join(str(CONF / f"{name}.yaml") for name in files)
    env.write_text(f"include: [{includes}]\nlake_root: {tmp_path / lake}\ningest: {{max_quarantine_share: 0.15}}\n")
    previous = os.environ.get("CDI_DEMO_DATA")
    os.environ["CDI_DEMO_DATA"] = str(data)
    try:
        return load_config(env)
    finally:
        if previous is None:
            del os.environ["CDI_DEMO_DATA"]
        else:
            os.environ["CDI_DEMO_DATA"] = previous


def truth_ids(data: Path, source: str) -> set[str]:
    with open(data / "truth.csv", newline="", encoding="utf-8") as fh:
        return {r["source_record_id"] for r in csv.DictReader(fh) if r["source"] == source}


@pytest.fixture(scope="module")
def demo(spark, tmp_path_factory):
    root = tmp_path_factory.mktemp("bronze_demo")
    data = root / "data"
    manifest = generate(persons=200, seed=11, out=data)
    cfg = demo_config(root, data, list(SOURCE_FILES), "lake")
    lake = Lake(spark, cfg.lake_root, job="ingest", run_id="demo")
    # the text sources hold every malformed row; Parquet sources are covered in test_bronze_ingest
    text_sources = [s.name for s in cfg.sources if s.format in ("csv", "json")]
    results = {r.source: r for r in run_ingest(spark, cfg, lake, "demo", sources=text_sources)}
    return root, data, manifest, cfg, lake, results


def test_every_malformed_row_is_quarantined_with_its_reason_and_no_well_formed_row_is(demo):
    _, data, manifest, cfg, lake, results = demo
    quarantined: dict[str, dict[int, str]] = {}
    for r in lake.read(QUARANTINE_TABLE).select("_source", "_source_line", "_reason").collect():
        quarantined.setdefault(r["_source"], {})[r["_source_line"]] = r["_reason"].split(":", 1)[0]
    checked_files = set()
    for source in (s for s in cfg.sources if s.name in results):
        relative = str(Path(source.path).relative_to(data))
        expected = {e["line"]: REASON_OF_KIND[e["kind"]] for e in manifest["malformed_rows"].get(relative, [])}
        assert quarantined.get(source.name, {}) == expected, source.name
        info = manifest["files"][relative]
        result = results[source.name]
        assert (result.rows_read, result.rows_bronze) == (info["rows"], info["well_formed_rows"]), source.name
        assert result.identity_holds
        checked_files.add(relative)
    assert set(manifest["malformed_rows"]) <= checked_files
    assert sum(len(v) for v in manifest["malformed_rows"].values()) >= 30


def test_bronze_holds_exactly_the_well_formed_customer_records(demo):
    _, data, _, cfg, lake, results = demo
    for source in (s for s in cfg.customer_sources if s.name in results):
        ids = {r[0] for r in lake.read(f"bronze/{source.name}").select("_source_record_id").distinct().collect()}
        assert ids == truth_ids(data, source.name), source.name


@pytest.mark.postgres
def test_demo_crm_served_by_postgres_ingests_like_the_csv(spark, demo, postgres_server, monkeypatch):  # noqa: F811  (fixture)
    from cdi_demo.postgres_loader import load_crm_into_postgres

    root, data, manifest, _, _, _ = demo
    loaded = load_crm_into_postgres(postgres_server.dsn, data / "crm" / "contacts.csv", table="crm_contacts")
    monkeypatch.setenv("CDI_CRM_JDBC_URL", postgres_server.jdbc_url)
    monkeypatch.setenv("CDI_CRM_JDBC_USER", postgres_server.user)
    monkeypatch.setenv("CDI_CRM_JDBC_PASSWORD", postgres_server.password)
    cfg = demo_config(root, data, ["crm_postgres"], "lake_pg")
    assert cfg.source("crm").format == "jdbc"
    lake = Lake(spark, cfg.lake_root, job="ingest", run_id="pg")
    [result] = run_ingest(spark, cfg, lake, "pg")

    ids = {r[0] for r in lake.read("bronze/crm").select("_source_record_id").collect()}
    assert ids == truth_ids(data, "crm")
    skipped = {s["line"] for s in loaded["lines_skipped"]}
    in_database = [e for e in manifest["malformed_rows"]["crm/contacts.csv"] if e["line"] not in skipped]
    reasons = Counter(r[0].split(":", 1)[0] for r in lake.read(QUARANTINE_TABLE).select("_reason").collect())
    assert reasons == Counter(REASON_OF_KIND[e["kind"]] for e in in_database)
    assert result.rows_read == loaded["rows_loaded"] and result.identity_holds
    assert result.watermark is not None and run_ingest(spark, cfg, lake, "pg2")[0].rows_bronze == 0
