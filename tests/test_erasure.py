"""Erasure (issue 18): a demo customer is erased, then every file under the lake root, the outbox
and the PostgreSQL target is scanned for their name, e-mail, phone and national id (zero hits),
and a re-delivery of the same source rows does not bring them back."""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from lake_scan import scan
from pg_fixture import postgres_dsn  # noqa: F401  (fixture)

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[1]
HASH_KEY = "erasure-test-key-0123456789"
PG_PASSWORD = "pw MARK3R-erasure 's3cret"  # the server trusts local users: given, sent, never needed


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def _pg_text(dsn: str) -> str:
    """Every row of every table in the target database, as JSON text."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        tables = conn.execute(
            "SELECT table_schema, table_name FROM information_schema.tables WHERE table_schema NOT IN ('pg_catalog', 'information_schema')"
        ).fetchall()
        out = []
        for schema_name, table in tables:
            rows = conn.execute(f'SELECT row_to_json(t)::text FROM "{schema_name}"."{table}" t').fetchall()
            out += [r[0] for r in rows]
    return "\n".join(out)


@pytest.fixture(scope="module")
def erased_lake(spark, tmp_path_factory, postgres_dsn):  # noqa: F811
    from cdi.config import load_config
    from cdi.pipeline import demo_generator, run

    work = tmp_path_factory.mktemp("erasure")
    demo_generator()(persons=500, seed=7, out=str(work / "data"))
    env = {
        "CDI_LAKE_ROOT": str(work / "lake"),
        "CDI_DEMO_DATA": str(work / "data"),
        "CDI_OUTBOX_DIR": str(work / "outbox"),
        "CDI_HASH_KEY": HASH_KEY,
        "CDI_PG_DSN": postgres_dsn,
        "CDI_PG_PASSWORD": PG_PASSWORD,
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    logs = _Records()
    root_logger = logging.getLogger()
    level = root_logger.level
    root_logger.addHandler(logs)
    root_logger.setLevel(logging.INFO)  # as `cdi run` logs (-v adds debug lines)
    try:
        cfg = load_config(ROOT / "conf" / "demo.yaml")
        summary = run(cfg, spark=spark).summary
        yield {"cfg": cfg, "work": work, "spark": spark, "logs": logs, "summary": summary}
    finally:
        root_logger.removeHandler(logs)
        root_logger.setLevel(level)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _pick_person(lake, avoid: set[str] = frozenset()):
    """A customer with several records and a national id whose values no other customer shares,
    and the values to scan for (golden and every record's own spelling)."""
    golden = lake.read("gold/golden_records").where("is_current")
    records = lake.read("silver/records")
    emap = lake.read("silver/entity_map")
    owners = records.join(emap.select("record_key", "customer_id"), "record_key")
    attrs = ["full_name", "email", "phone", "national_id"]
    shared = set()
    for a in attrs:
        counts = owners.where(F.col(a).isNotNull()).groupBy(a).agg(F.countDistinct("customer_id").alias("n"))
        shared |= {r[0] for r in counts.where("n > 1").collect()}
    candidates = (
        golden.where("national_id IS NOT NULL AND email IS NOT NULL AND phone IS NOT NULL AND size(source_record_keys) >= 3")
        .orderBy(F.size("source_record_keys").desc(), "customer_id")
        .collect()
    )
    for row in candidates:
        if row["customer_id"] in avoid:
            continue
        own = owners.where(F.col("customer_id") == row["customer_id"]).select(*attrs).collect()
        values = {str(r[a]) for r in own for a in attrs if r[a] is not None} | {str(row[a]) for a in attrs}
        if not values & shared:
            digits = "".join(c for c in row["phone"] if c.isdigit())
            return row, sorted(values | {digits})
    pytest.fail("no customer in the demo lake has values of their own")


def test_erased_customer_leaves_no_trace_and_stays_erased(erased_lake):
    from cdi.config import load_config
    from cdi.errors import CustomerNotFoundError
    from cdi.lake import Lake
    from cdi.pipeline import erase, run
    from cdi.privacy.erasure import Selector

    cfg, work, spark = erased_lake["cfg"], erased_lake["work"], erased_lake["spark"]
    lake = Lake(spark, cfg.lake_root)
    person, needles = _pick_person(lake)
    folders = [work / "lake", work / "outbox"]
    dsn = cfg.propagation.postgres.dsn
    before = scan(folders, needles)
    assert {n.lower() for n, _ in before} == {n.lower() for n in needles}, "every value must be found before (the scan works)"
    assert person["email"].lower() in _pg_text(dsn).lower()

    planned = erase(cfg, Selector("customer", person["customer_id"]), "ticket 4711", "test", dry_run=True, spark=spark)
    assert planned.dry_run and planned.rows_removed["silver/records"] == len(person["source_record_keys"])
    assert scan(folders, needles) == before and not lake.exists("privacy/erasure_audit")  # a dry run changes nothing

    started = time.monotonic()
    # by e-mail, written as a person would type it: the lake finds the record through silver's standard form
    report = erase(cfg, Selector("email", f"  {person['email'].upper()} "), "ticket 4711", "test", spark=spark)
    seconds = time.monotonic() - started
    print(f"erasure took {seconds:.1f}s: {report.as_dict()}")

    assert report.customers >= 1 and report.records == len(person["source_record_keys"])
    assert report.rows_removed["gold/golden_records"] >= 1 and report.rows_removed["silver/records"] == report.records
    assert any(t.startswith("bronze/") for t in report.rows_removed)
    assert report.outbox_lines_removed >= 1 and report.postgres_rows_removed == 1
    after = scan(folders, needles)
    assert not after, f"values left after erasure: {sorted(after)[:10]}"
    pg = _pg_text(dsn).lower()
    assert not [n for n in needles if n.lower() in pg]
    assert person["customer_id"].lower() in pg  # the erasure message names the id downstream, and only the id

    audit = lake.read("privacy/erasure_audit").collect()
    assert [(a["by"], a["reason"], a["selector"]) for a in audit] == [("test", "ticket 4711", "email")]
    register = lake.read("privacy/erasure_register")
    assert register.where("kind = 'record'").count() >= report.records
    erased_customer = lake.read("gold/golden_records").where(F.col("customer_id") == person["customer_id"])
    assert erased_customer.count() == 0

    with pytest.raises(CustomerNotFoundError):
        erase(cfg, Selector("customer", person["customer_id"]), "again", "test", spark=spark)

    # a second person's erasure dies half-way (PostgreSQL unreachable): the tables are already
    # clean, and the next run finishes the rest instead of rolling anything back
    second, second_needles = _pick_person(lake, avoid={person["customer_id"]})
    import cdi.privacy.erasure as erasure

    real = erasure.erase_postgres

    def unreachable(*args, **kwargs):
        raise OSError("connection refused")

    erasure.erase_postgres = unreachable
    try:
        with pytest.raises(OSError):
            erase(cfg, Selector("customer", second["customer_id"]), "ticket 4712", "test", spark=spark)
    finally:
        erasure.erase_postgres = real
    assert lake.read("privacy/erasure_pending").count() == 1
    assert lake.read("silver/records").where(F.col("record_key").isin(second["source_record_keys"])).count() == 0
    assert second["email"].lower() in _pg_text(dsn).lower()  # not yet

    # every source delivers its files again (new modification times): the person's rows are
    # quarantined as erased, without their text, and nobody else's are
    for path in (work / "data").rglob("*"):
        if path.is_file() and path.suffix in (".csv", ".jsonl", ".json", ".parquet"):
            os.utime(path, (path.stat().st_atime, path.stat().st_mtime + 60))
    run(load_config(ROOT / "conf" / "demo.yaml"), spark=spark)
    erased_rows = lake.read("bronze/_quarantine").where(F.col("_reason").startswith("erased"))
    keys = {f"{r['_source']}:{r['_source_record_id']}" for r in erased_rows.collect()}
    assert set(person["source_record_keys"]) <= keys
    assert erased_rows.where("_raw IS NOT NULL").count() == 0
    assert lake.read("silver/records").where(F.col("record_key").isin(person["source_record_keys"])).count() == 0
    assert not scan(folders, needles)
    assert not [n for n in needles if n.lower() in _pg_text(dsn).lower()]
    # the run finished the second erasure first
    assert lake.read("privacy/erasure_pending").count() == 0
    assert sorted(a["reason"] for a in lake.read("privacy/erasure_audit").collect()) == ["ticket 4711", "ticket 4712"]
    assert not scan(folders, second_needles)
    assert not [n for n in second_needles if n.lower() in _pg_text(dsn).lower()]


def test_secrets_appear_in_no_log_commit_summary_or_outbox(erased_lake):
    """The run above had a PostgreSQL password and a hash key set: neither is in any file under
    the lake (Delta commit metadata included), the outbox, the run summary or the log records."""
    from cdi.privacy.register import salt

    work, logs, summary = erased_lake["work"], erased_lake["logs"], erased_lake["summary"]
    secrets = ["MARK3R-erasure", HASH_KEY, salt(HASH_KEY)]
    assert logs.lines, "the run logged"
    assert not scan([work / "lake", work / "outbox"], secrets)
    text = summary.format() + json.dumps(summary.as_dict(), default=str) + "\n".join(logs.lines)
    assert not [s for s in secrets if s in text]
