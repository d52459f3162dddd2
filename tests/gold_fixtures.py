"""Helpers for the gold-stage tests: hand-built silver tables, a small config, and a throwaway
PostgreSQL server (reused from ``tests/pg_fixture.py`` when that module exists)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from datetime import date, datetime, timezone
from glob import glob
from pathlib import Path
from typing import Any, Iterator

import pytest
from pyspark.sql.types import (
    ArrayType,
    BooleanType,
    DateType,
    DoubleType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from cdi.config import CdiConfig

STRING_ATTRIBUTES = (
    "first_name",
    "middle_name",
    "last_name",
    "full_name",
    "gender",
    "email",
    "phone",
    "address_line1",
    "address_line2",
    "city",
    "postcode",
    "region",
    "country",
    "national_id",
    "marital_status",
)

RECORD_SCHEMA = StructType(
    [
        StructField("record_key", StringType()),
        StructField("source", StringType()),
        StructField("source_record_id", StringType()),
        *[StructField(a, StringType()) for a in STRING_ATTRIBUTES[:4]],
        StructField("date_of_birth", DateType()),
        *[StructField(a, StringType()) for a in STRING_ATTRIBUTES[4:]],
        StructField("income", DoubleType()),
        StructField("deceased", BooleanType()),
        StructField("date_of_death", DateType()),
        StructField("updated_at", TimestampType()),
        StructField("email_std", StringType()),
        StructField("quality_flags", ArrayType(StringType())),
    ]
)
ENTITY_MAP_SCHEMA = StructType(
    [
        StructField("record_key", StringType()),
        StructField("source", StringType()),
        StructField("source_record_id", StringType()),
        StructField("customer_id", StringType()),
        StructField("run_id", StringType()),
    ]
)
ID_HISTORY_SCHEMA = StructType(
    [
        StructField("event_type", StringType()),
        StructField("customer_id", StringType()),
        StructField("related_ids", ArrayType(StringType())),
        StructField("run_id", StringType()),
        StructField("at", TimestampType()),
    ]
)


def ts(text: str) -> datetime:
    """A UTC timestamp from ``2024-01-01`` or ``2024-01-01T10:00``."""
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def record(source: str, source_record_id: str, updated_at: str | None = "2024-01-01", **attrs: Any) -> dict:
    """One silver record; unknown attribute names fail loudly."""
    names = set(RECORD_SCHEMA.fieldNames())
    unknown = set(attrs) - names
    if unknown:
        raise KeyError(f"not silver/records columns: {sorted(unknown)}")
    row = {name: None for name in names}
    row.update(
        record_key=f"{source}:{source_record_id}",
        source=source,
        source_record_id=source_record_id,
        updated_at=ts(updated_at) if updated_at else None,
        quality_flags=[],
    )
    for key, value in attrs.items():
        if key in ("date_of_birth", "date_of_death") and isinstance(value, str):
            value = date.fromisoformat(value)
        row[key] = value
    if row["email"]:
        row["email_std"] = row["email"].lower()  # silver's match key for these plain addresses
    return row


def records_df(spark, rows: list[dict]):
    names = RECORD_SCHEMA.fieldNames()
    return spark.createDataFrame([tuple(r[n] for n in names) for r in rows], RECORD_SCHEMA)


def entity_map_df(spark, mapping: dict[str, str], run_id: str = "r1"):
    rows = []
    for record_key, customer_id in sorted(mapping.items()):
        source, _, source_record_id = record_key.partition(":")
        rows.append((record_key, source, source_record_id, customer_id, run_id))
    return spark.createDataFrame(rows, ENTITY_MAP_SCHEMA)


def id_history_df(spark, events: list[tuple[str, str, list[str], str, str]]):
    """(event_type, customer_id, related_ids, run_id, at) tuples."""
    return spark.createDataFrame([(e, c, r, run, ts(at)) for e, c, r, run, at in events], ID_HISTORY_SCHEMA)


def write_silver(lake, rows: list[dict], mapping: dict[str, str], events=None, run_id: str = "r1") -> None:
    """Replace silver/records and silver/entity_map (and append id_history events) as silver would."""
    lake.write("silver/records", records_df(lake.spark, rows), mode="overwrite")
    lake.write("silver/entity_map", entity_map_df(lake.spark, mapping, run_id), mode="overwrite")
    if events:
        lake.write("silver/id_history", id_history_df(lake.spark, events), mode="append")


def make_config(
    lake_root,
    ranks: dict[str, int] | None = None,
    survivorship: dict | None = None,
    propagation: dict | None = None,
    facts: list[dict] | None = None,
) -> CdiConfig:
    """A config with customer sources of the given trust ranks (crm 1, shop 2, pos 3 by default)."""
    ranks = ranks or {"crm": 1, "shop": 2, "pos": 3}
    sources = [
        {"name": name, "kind": "customers", "format": "csv", "path": f"/nonexistent/{name}.csv", "id_columns": ["id"], "trust_rank": rank}
        for name, rank in ranks.items()
    ]
    sources += facts or []
    data: dict[str, Any] = {"lake_root": str(lake_root), "sources": sources}
    if survivorship is not None:
        data["survivorship"] = survivorship
    if propagation is not None:
        data["propagation"] = propagation
    return CdiConfig(**data)


# ------------------------------------------------------------------ PostgreSQL


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_bin(name: str) -> str | None:
    found = sorted(glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


def _as_postgres(cmd: list[str]) -> list[str]:
    """initdb and postgres refuse to run as root: run them as the ``postgres`` user then."""
    if os.geteuid() != 0:
        return cmd
    runuser = shutil.which("runuser")
    if runuser:
        return [runuser, "-u", "postgres", "--", *cmd]
    return ["su", "postgres", "-s", "/bin/sh", "-c", " ".join(cmd)]


def start_postgres() -> Iterator[str]:
    """A throwaway server on 127.0.0.1 with trust auth; yields a DSN, stops and removes it after."""
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not initdb or not pg_ctl:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not installed: run install.sh")
    base = Path(tempfile.mkdtemp(prefix="cdi-pg-"))
    data, sock = base / "data", base / "sock"
    sock.mkdir()
    if os.geteuid() == 0:
        shutil.chown(base, "postgres")
        shutil.chown(sock, "postgres")
    port = _free_port()
    started = False
    try:
        subprocess.run(
            _as_postgres([initdb, "-D", str(data), "-U", "cdi", "--auth=trust", "-E", "UTF8", "--no-sync"]),
            check=True,
            capture_output=True,
            timeout=120,
        )
        opts = f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run(
            _as_postgres([pg_ctl, "-D", str(data), "-o", opts, "-l", str(base / "log"), "-w", "-t", "60", "start"]),
            check=True,
            capture_output=True,
            timeout=90,
        )
        started = True
        yield f"host=127.0.0.1 port={port} user=cdi dbname=postgres"
    finally:
        if started:
            subprocess.run(_as_postgres([pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"]), capture_output=True, timeout=60)
        shutil.rmtree(base, ignore_errors=True)


# ------------------------------------------------------------------ a three-run story

RUN_TIMES = {"r1": ts("2025-01-01"), "r2": ts("2025-02-01"), "r3": ts("2025-03-01")}


def _story_inputs(run: str) -> tuple[list[dict], dict[str, str], list]:
    """Silver as it stands before each run.

    r1: C1 (crm:1, shop:1), C2 (crm:2), C3 (crm:3, pos:3, shop:3), C5 (pos:5), C6 (crm:6, shop:6): all new.
    r2: crm:1 gets a new email (C1 updated); C2 is merged into C3 (crm:2 moves, C2 retired);
        shop:6 is split off C6 into the new C7; pos:5 is deleted at source (C5 retired).
    r3: nothing new.
    """
    first = run == "r1"
    rows = [
        record("crm", "1", "2024-12-01" if first else "2025-01-15", first_name="Ann", last_name="Lee",
               email="ann@old.example" if first else "ann@new.example", phone="+447700900001",
               address_line1="1 Acre Lane", city="London", postcode="SW1A 1AA", country="GB", date_of_birth="1980-02-03"),
        record("shop", "1", "2024-11-01", first_name="Ann", last_name="Lee", email="ann@shop.example", city="Leeds", country="GB"),
        record("crm", "2", "2024-10-01", first_name="Bob", last_name="Ray", email="bob@example.com", income=52000.0),
        record("crm", "3", "2024-09-01", first_name="Robert", last_name="Ray", phone="+447700900003"),
        record("pos", "3", "2024-12-20", first_name="Bob", last_name="Ray", address_line1="9 Mill Road", city="York", country="GB"),
        record("shop", "3", "2024-06-01", first_name="Bob", last_name="Ray", email="bob.ray@shop.example", phone="+44 7700 900333"),
        record("crm", "6", "2024-05-01", first_name="Dana", last_name="Fox", email="dana@crm.example"),
        record("shop", "6", "2024-07-01", first_name="Dana", last_name="Fox", email="dana@shop.example"),
    ]
    mapping = {"crm:1": "C1", "shop:1": "C1", "crm:2": "C2", "crm:3": "C3", "pos:3": "C3", "shop:3": "C3", "crm:6": "C6", "shop:6": "C6"}
    if first:
        rows.append(record("pos", "5", "2024-08-01", first_name="Cy", last_name="Dee"))
        mapping["pos:5"] = "C5"
        return rows, mapping, [("new", c, [], "r1", "2025-01-01") for c in ("C1", "C2", "C3", "C5", "C6")]
    mapping.update({"crm:2": "C3", "shop:6": "C7"})
    if run == "r2":
        at = "2025-02-01"
        events = [("merge", "C3", ["C2"], "r2", at), ("retired", "C2", ["C3"], "r2", at),
                  ("split", "C6", ["C7"], "r2", at), ("retired", "C5", [], "r2", at)]
        return rows, mapping, events
    return rows, mapping, []


FACT_SOURCES = [
    {
        "name": "shop_orders", "kind": "orders", "format": "csv", "path": "/nonexistent/orders.csv",
        "id_columns": ["order_no"], "customer_ref": {"column": "customer_no", "source": "shop"},
        "mapping": {"fact_id": "order_no", "event_at": "ordered_at", "amount": "total", "currency": "cur", "status": "state"},
    },
    {
        "name": "pos_tickets", "kind": "tickets", "format": "csv", "path": "/nonexistent/tickets.csv",
        "id_columns": ["ticket"], "customer_ref": {"column": "cust", "source": "pos"},
        "mapping": {"fact_id": "ticket", "event_at": "opened", "subject": "topic", "status": "status"},
    },
    {
        "name": "crm_campaigns", "kind": "interactions", "format": "csv", "path": "/nonexistent/campaigns.csv",
        "id_columns": ["response_id"], "customer_ref": {"column": "crm_id", "source": "crm"},
        "mapping": {"event_at": "sent_at", "campaign": "campaign", "channel": "channel", "status": "response"},
    },
]


def _bronze(spark, source: str, columns: list[str], rows: list[tuple], id_column: str):
    """A bronze table: the source's columns as strings plus the lineage columns."""
    data = []
    for i, row in enumerate(rows):
        values = dict(zip(columns, row))
        data.append((*row, source, values[id_column], "b1", ts("2025-01-01"), f"{source}.csv", f"h{i}"))
    lineage = ["_source", "_source_record_id", "_batch_id", "_ingested_at", "_source_file", "_row_hash"]
    schema = StructType(
        [StructField(c, StringType()) for c in columns + lineage[:3]]
        + [StructField("_ingested_at", TimestampType())]
        + [StructField(c, StringType()) for c in lineage[4:]]
    )
    return spark.createDataFrame(data, schema)


def write_bronze_facts(lake) -> None:
    """Six shop orders of shop:3 (C3) and one of shop:1, a pos:3 ticket, crm campaign responses."""
    orders = [(f"O{i}", "3", f"2024-0{i}-10 12:00:00", f"{10 * i}.50", "EUR", "paid") for i in range(1, 7)]
    orders.append(("O9", "1", "2024-05-01 09:00:00", "99.00", "GBP", "paid"))
    lake.write("bronze/shop_orders", _bronze(lake.spark, "shop_orders", ["order_no", "customer_no", "ordered_at", "total", "cur", "state"], orders, "order_no"))
    tickets = [("T1", "3", "2024-07-01T08:00:00", "delivery late", "open")]
    lake.write("bronze/pos_tickets", _bronze(lake.spark, "pos_tickets", ["ticket", "cust", "opened", "topic", "status"], tickets, "ticket"))
    responses = [("R1", "2", "2024-03-01 10:00:00", "spring", "email", "clicked"), ("R2", "3", "2024-04-01 10:00:00", "easter", "sms", "ignored")]
    lake.write("bronze/crm_campaigns", _bronze(lake.spark, "crm_campaigns", ["response_id", "crm_id", "sent_at", "campaign", "channel", "response"], responses, "response_id"))


def run_story(spark, lake_root, propagation: dict | None = None) -> tuple[CdiConfig, dict[str, dict]]:
    """Run the gold stage once per run of the story above; results per run id."""
    from cdi.gold.stage import run_gold
    from cdi.gold.survivorship import trust_ranks
    from cdi.lake import Lake
    from cdi.silver.facts import write_facts

    cfg = make_config(lake_root, propagation=propagation, facts=FACT_SOURCES)
    results = {}
    write_bronze_facts(Lake(spark, str(lake_root), job="test"))
    write_facts(Lake(spark, str(lake_root), job="test"), cfg.fact_sources, cfg.customer_360)
    for run, at in RUN_TIMES.items():
        lake = Lake(spark, str(lake_root), job="test", run_id=run)
        rows, mapping, events = _story_inputs(run)
        write_silver(lake, rows, mapping, events, run_id=run)
        results[run] = run_gold(lake, cfg.survivorship, trust_ranks(cfg), run, run_at=at, publish_to=cfg.propagation)
    return cfg, results


_STORY: dict[str, Any] = {}


@pytest.fixture(scope="session")
def story(spark, tmp_path_factory) -> dict[str, Any]:
    """The three-run story, run once per test session and shared by the gold test modules:
    ``cfg``, ``lake`` (a Lake on its root), ``outbox`` (the outbox folder) and ``results``."""
    if not _STORY:
        from cdi.lake import Lake

        base = tmp_path_factory.mktemp("gold-story")
        outbox = base / "outbox"
        cfg, results = run_story(spark, base / "lake", propagation={"outbox_dir": str(outbox)})
        _STORY.update(cfg=cfg, lake=Lake(spark, str(base / "lake"), job="test"), outbox=outbox, results=results)
    return _STORY


SETUP_OPERATIONS = {"CREATE TABLE", "ADD CONSTRAINT", "SET PROPERTIES"}


def data_commits(lake, table: str) -> list[dict]:
    """The table's commits that changed rows, newest first (not the creation of a contract
    table and its constraint, which come before its first rows)."""
    return [h for h in lake.history(table) if h["operation"] not in SETUP_OPERATIONS]
