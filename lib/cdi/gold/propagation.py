"""Publishing golden-record changes, exactly once per run, to an outbox and to PostgreSQL.

What a run publishes is read back from the lake: its rows in ``gold/changes`` joined with the
golden version the change produced (the new version; for a retired id the version it closed).
Runs are published in order and only when not yet published, so a run that failed half-way is
published by the next one and a repeated run publishes nothing:

- **outbox**: ``<outbox_dir>/run_id=<id>.jsonl``, one JSON object per changed customer
  (``run_id``, ``customer_id``, ``change_type``, ``changed_at``, ``changed_attributes``,
  ``retired_ids``, ``related_ids`` and ``golden``: the full golden record with ``provenance``
  per attribute). Written to a temporary file and linked into place atomically; an existing
  file means the run was published and is left alone.
- **PostgreSQL** (``propagation.postgres``): one row per customer in ``table``, upserted by
  ``customer_id`` (``INSERT ... ON CONFLICT (customer_id) DO UPDATE``) with ``cdi_run_id``,
  ``cdi_change_type`` and ``cdi_changed_at`` (an older run never overwrites a newer one); the
  table ``<table>_publications`` logs the runs published, in the same transaction as the rows,
  so publishing a run again changes nothing. The connection is built from the config's DSN and
  separate parameters (``host``, ``user``, ``password``, ...) by the driver (:func:`conninfo`),
  never by pasting text, so a password with spaces or quotes works; no DSN and no host switch the
  target off. Connection errors name the config key, never the DSN or password.

Rows reach the driver through ``toLocalIterator()`` one partition of about
:data:`ROWS_PER_PARTITION` customers at a time (range boundaries come from a sample), never all
at once.

    >>> publish(lake, cfg.propagation)  # doctest: +SKIP
    {'outbox': {'runs': ['20261124T0600Z-ab12cd'], 'rows': 42}, 'postgres': {...}}
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from cdi import schema
from cdi.config import PostgresTarget, PropagationConfig
from cdi.errors import PropagationError, one_line
from cdi.lake import Lake
from cdi.privacy.masking import NONE, TOKEN, masked, token_salt
from cdi.redaction import Redactor
from cdi.schema import ATTRIBUTE_TYPES

from .changes import CHANGES_TABLE
from .customer_360 import marketing_aggregates
from .history import GOLDEN_TABLE
from .survivorship import GOLDEN_ATTRIBUTES, prov_column

log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 500
# toLocalIterator brings one whole partition to the driver at a time, and a message is a few KB:
# partitions of about this many rows keep that to tens of MB however many customers a run changed
# (with the shuffle's own partitioning, 430k changes made 300 MB partitions and the driver ran
# out of heap).
ROWS_PER_PARTITION = 5_000
_JSON_OPTIONS = {"ignoreNullFields": "false"}
_PG_TYPES = {name: {"date": "date", "double": "double precision", "boolean": "boolean"}[dtype.simpleString()] for name, dtype in ATTRIBUTE_TYPES.items()}


@dataclass
class TargetResult:
    runs: list[str] = field(default_factory=list)
    rows: int = 0
    skipped: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"runs": self.runs, "rows": self.rows, "skipped": self.skipped}


def provenance_struct() -> Column:
    """All ``<attr>_prov`` columns as one struct keyed by attribute (a JSON object once serialised)."""
    return F.struct(*[F.col(prov_column(a)).alias(a) for a in GOLDEN_ATTRIBUTES])


def _masking(prop: PropagationConfig | None) -> tuple[set[str], Callable[[Column], Column]]:
    """The attributes ``prop`` masks and how (:mod:`cdi.privacy.masking`)."""
    if prop is None or prop.masking == NONE or not prop.masked_attributes:
        return set(), lambda c: c
    salt_hex = token_salt(prop.token_key) if prop.masking == TOKEN and prop.token_key else None
    return set(prop.masked_attributes), lambda c: masked(c, prop.masking, salt_hex)


def opted_out(lake: Lake, channel: str) -> DataFrame:
    """``customer_id`` of the customers whose latest consent answer on ``channel`` is no (one
    rule with ``customer_360.consent_<channel>``: the latest response that answered for it)."""
    if not (lake.exists(schema.FACTS) and lake.exists(schema.ENTITY_MAP)):
        return lake.spark.createDataFrame([], "customer_id string")
    owners = lake.read(schema.ENTITY_MAP).select("record_key", "customer_id")
    answers = marketing_aggregates(lake.read(schema.FACTS).join(owners, "record_key", "inner"))
    return answers.where(F.col(f"consent_{channel}") == F.lit(False)).select("customer_id")


def publication_frame(lake: Lake, run_id: str, prop: PropagationConfig | None = None, run_rows: int | None = None) -> DataFrame:
    """One row per customer changed in ``run_id``: ``customer_id``, ``message`` (outbox JSON)
    and ``row`` (the flat JSON the PostgreSQL upsert reads); the attributes ``prop`` masks are
    masked in the golden record and in the changed values. ``run_rows``: the run's rows in the
    change feed (sizes the partitions), counted here when not given."""
    hidden, mask = _masking(prop)
    changes = lake.read(CHANGES_TABLE).where(F.col("run_id") == run_id)
    partitions = max(1, math.ceil((changes.count() if run_rows is None else run_rows) / ROWS_PER_PARTITION))
    if prop is not None and prop.opt_out_channel:
        changes = changes.join(opted_out(lake, prop.opt_out_channel), "customer_id", "left_anti")
    changes = changes.alias("c")
    if hidden:
        changed = F.transform(
            "changed_attributes",
            lambda a: F.when(
                a["attribute"].isin(sorted(hidden)),
                F.struct(a["attribute"].alias("attribute"), mask(a["old_value"]).alias("old_value"),
                         mask(a["new_value"]).alias("new_value")),
            ).otherwise(a),
        )  # fmt: skip
        changes = changes.withColumn("changed_attributes", changed).alias("c")
    golden = lake.read(GOLDEN_TABLE).alias("g")
    produced = (F.col("g.valid_from") == F.col("c.changed_at")) | (
        (F.col("c.change_type") == "retired") & (F.col("g.valid_to") == F.col("c.changed_at"))
    )
    joined = changes.join(golden, (F.col("g.customer_id") == F.col("c.customer_id")) & produced, "inner")
    golden_fields = [
        F.col("g.customer_id").alias("customer_id"),
        *[(mask(F.col(f"g.{a}")) if a in hidden else F.col(f"g.{a}")).alias(a) for a in GOLDEN_ATTRIBUTES],
        provenance_struct().alias("provenance"),
        F.col("g.source_record_keys").alias("source_record_keys"),
        F.col("g.record_hash").alias("record_hash"),
        F.col("g.valid_from").alias("valid_from"),
        F.col("g.valid_to").alias("valid_to"),
        F.col("g.is_current").alias("is_current"),
    ]
    record = F.struct(*golden_fields)
    message = F.struct(
        F.col("c.run_id").alias("run_id"),
        F.col("c.customer_id").alias("customer_id"),
        F.col("c.change_type").alias("change_type"),
        F.col("c.changed_at").alias("changed_at"),
        F.col("c.changed_attributes").alias("changed_attributes"),
        F.col("c.retired_ids").alias("retired_ids"),
        F.col("c.related_ids").alias("related_ids"),
        record.alias("golden"),
    )
    row = F.struct(
        *golden_fields,
        F.col("c.run_id").alias("cdi_run_id"),
        F.col("c.change_type").alias("cdi_change_type"),
        F.col("c.changed_at").alias("cdi_changed_at"),
    )
    return joined.select(
        F.col("c.customer_id").alias("customer_id"),
        F.to_json(message, _JSON_OPTIONS).alias("message"),
        F.to_json(row, _JSON_OPTIONS).alias("row"),
    ).repartitionByRange(partitions, "customer_id").sortWithinPartitions("customer_id")


def runs_in_order(lake: Lake) -> dict[str, int]:
    """Run ids present in the change feed, oldest first, with their rows (one row per run: small)."""
    if not lake.exists(CHANGES_TABLE):
        return {}
    rows = (
        lake.read(CHANGES_TABLE)
        .groupBy("run_id")
        .agg(F.min("changed_at").alias("at"), F.count(F.lit(1)).alias("changed"))
        .orderBy("at", "run_id")
        .collect()
    )
    return {r["run_id"]: r["changed"] for r in rows}


def _batches(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def _stream(frame: DataFrame, column: str) -> Iterator[str]:
    for row in frame.select(column).toLocalIterator(prefetchPartitions=False):
        yield row[0]


# ------------------------------------------------------------------ outbox


def outbox_path(outbox_dir: str | os.PathLike, run_id: str) -> Path:
    return Path(outbox_dir) / f"run_id={run_id}.jsonl"


def remove_partial_outbox_files(outbox_dir: str | os.PathLike) -> list[Path]:
    """Delete the temporary files a killed publisher left in the outbox; their paths.

    Call only while holding the lake's lease: then no publisher is writing one.
    """
    folder = Path(outbox_dir)
    if not folder.is_dir():
        return []
    partial = sorted(folder.glob(".run_id=*.tmp"))
    for path in partial:
        path.unlink(missing_ok=True)
    return partial


def publish_outbox(frame: DataFrame, outbox_dir: str | os.PathLike, run_id: str, batch_size: int = DEFAULT_BATCH_SIZE) -> int | None:
    """Write one run's JSON-lines file atomically; None when the file already exists (published)."""
    final = outbox_path(outbox_dir, run_id)
    if final.exists():
        return None
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.{uuid.uuid4().hex}.tmp")
    rows = 0
    try:
        with open(tmp, "w", encoding="utf-8") as out:
            for batch in _batches(_stream(frame, "message"), batch_size):
                out.write("\n".join(batch) + "\n")
                rows += len(batch)
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(tmp, final)  # atomic and never overwrites: a concurrent publisher of this run wins once
        except FileExistsError:
            return None
    finally:
        tmp.unlink(missing_ok=True)
    log.info("outbox: %s written (%d changes)", final, rows)
    return rows


# ------------------------------------------------------------------ PostgreSQL


def _identifier(name: str):
    from psycopg import sql

    return sql.Identifier(*name.split("."))


def _log_table(table: str) -> str:
    return table + "_publications"


def postgres_columns() -> list[tuple[str, str]]:
    cols = [("customer_id", "text PRIMARY KEY")]
    cols += [(a, _PG_TYPES.get(a, "text")) for a in GOLDEN_ATTRIBUTES]
    cols += [
        ("provenance", "jsonb"),
        ("source_record_keys", "text[]"),
        ("record_hash", "text"),
        ("valid_from", "timestamptz"),
        ("valid_to", "timestamptz"),
        ("is_current", "boolean"),
        ("cdi_run_id", "text NOT NULL"),
        ("cdi_change_type", "text"),
        ("cdi_changed_at", "timestamptz"),
        ("cdi_published_at", "timestamptz NOT NULL DEFAULT now()"),
    ]
    return cols


def ensure_postgres_tables(conn, table: str) -> None:
    from psycopg import sql

    columns = sql.SQL(", ").join(sql.SQL("{} {}").format(sql.Identifier(n), sql.SQL(t)) for n, t in postgres_columns())
    conn.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {} ({})").format(_identifier(table), columns))
    for name, dtype in postgres_columns():  # a table an older release made gains the attributes added since
        if "PRIMARY KEY" not in dtype:
            conn.execute(
                sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} {}").format(_identifier(table), sql.Identifier(name), sql.SQL(dtype))
            )
    conn.execute(
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} (run_id text PRIMARY KEY, rows integer NOT NULL, "
            "published_at timestamptz NOT NULL DEFAULT now())"
        ).format(_identifier(_log_table(table)))
    )


def _upsert_statement(table: str):
    from psycopg import sql

    names = [n for n, _ in postgres_columns() if n != "cdi_published_at"]
    target = _identifier(table)
    cols = sql.SQL(", ").join(sql.Identifier(n) for n in names)
    picked = sql.SQL(", ").join(sql.SQL("r.{}").format(sql.Identifier(n)) for n in names)
    updates = sql.SQL(", ").join(
        sql.SQL("{} = EXCLUDED.{}").format(sql.Identifier(n), sql.Identifier(n)) for n in names if n != "customer_id"
    )
    return sql.SQL(
        "INSERT INTO {t} AS g ({cols}, cdi_published_at) "
        "SELECT {picked}, now() FROM jsonb_populate_record(NULL::{t}, %s::jsonb) AS r "
        "ON CONFLICT (customer_id) DO UPDATE SET {updates}, cdi_published_at = now() "
        "WHERE g.cdi_changed_at IS NULL OR EXCLUDED.cdi_changed_at >= g.cdi_changed_at"
    ).format(t=target, cols=cols, picked=picked, updates=updates)


def published_runs(conn, table: str) -> set[str]:
    from psycopg import sql

    cur = conn.execute(sql.SQL("SELECT run_id FROM {}").format(_identifier(_log_table(table))))
    return {r[0] for r in cur.fetchall()}


def publish_postgres(conn, frame: DataFrame, table: str, run_id: str, batch_size: int = DEFAULT_BATCH_SIZE) -> int | None:
    """Upsert one run's rows and log the run, in one transaction; None if it was published before."""
    from psycopg import sql

    upsert = _upsert_statement(table)
    with conn.transaction():
        claimed = conn.execute(
            sql.SQL("INSERT INTO {} (run_id, rows) VALUES (%s, 0) ON CONFLICT (run_id) DO NOTHING RETURNING run_id").format(
                _identifier(_log_table(table))
            ),
            (run_id,),
        ).fetchone()
        if claimed is None:
            return None
        rows = 0
        with conn.cursor() as cur:
            for batch in _batches(_stream(frame, "row"), batch_size):
                cur.executemany(upsert, [(r,) for r in batch])
                rows += len(batch)
        conn.execute(
            sql.SQL("UPDATE {} SET rows = %s, published_at = now() WHERE run_id = %s").format(
                _identifier(_log_table(table))
            ),
            (rows, run_id),
        )
    log.info("postgres: run %s upserted into %s (%d customers)", run_id, table, rows)
    return rows


def conninfo(target: PostgresTarget) -> str:
    """The libpq connection string, built by the driver from the DSN and the separate parameters
    (which win), each value quoted as libpq needs."""
    from psycopg import ProgrammingError
    from psycopg.conninfo import make_conninfo

    try:
        return make_conninfo(target.dsn, **target.parameters())
    except ProgrammingError:
        # libpq's message quotes a piece of the DSN, which may be a piece of the password
        raise PropagationError("propagation.postgres.dsn: not a valid libpq connection string") from None


def connect(target: PostgresTarget):
    """An autocommit connection; a failure names the config key and the server, never a secret."""
    import psycopg

    info = conninfo(target)
    try:
        return psycopg.connect(info, autocommit=True, connect_timeout=15)
    except psycopg.OperationalError as exc:
        given = psycopg.conninfo.conninfo_to_dict(info).get("password")
        reason = Redactor([target.dsn, target.password or "", str(given or "")]).text(one_line(exc))
        raise PropagationError(
            f"propagation.postgres: cannot connect ({reason}). Check propagation.postgres (dsn, host, user, "
            "password and their environment variables) and that the server is reachable; the run's changes "
            "stay unpublished there and are sent by the next run."
        ) from None


# ------------------------------------------------------------------ both


def publish(
    lake: Lake,
    prop: PropagationConfig,
    run_ids: list[str] | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> dict[str, Any]:
    """Publish every run of the change feed not yet published to each target of ``prop``.

    ``run_ids`` restricts the candidates; they are published oldest first either way.
    """
    pg = prop.postgres if prop.postgres and prop.postgres.enabled else None
    result: dict[str, Any] = {"outbox": None, "postgres": None}
    if not prop.outbox_dir and pg is None:
        log.info("propagation: no outbox_dir and no postgres configured; nothing published")
        return result
    runs = runs_in_order(lake)
    if run_ids is not None:
        runs = {r: n for r, n in runs.items() if r in set(run_ids)}

    if prop.outbox_dir:
        outbox = TargetResult()
        for run_id in runs:
            if outbox_path(prop.outbox_dir, run_id).exists():
                continue
            rows = publish_outbox(publication_frame(lake, run_id, prop, runs[run_id]), prop.outbox_dir, run_id, batch_size)
            if rows is None:
                outbox.skipped.append(run_id)
            else:
                outbox.runs.append(run_id)
                outbox.rows += rows
        result["outbox"] = outbox.as_dict()

    if pg is not None:
        target = TargetResult()
        with connect(pg) as conn:
            ensure_postgres_tables(conn, pg.table)
            done = published_runs(conn, pg.table)
            for run_id in runs:
                if run_id in done:
                    continue
                rows = publish_postgres(conn, publication_frame(lake, run_id, prop, runs[run_id]), pg.table, run_id, batch_size)
                if rows is None:
                    target.skipped.append(run_id)
                else:
                    target.runs.append(run_id)
                    target.rows += rows
        result["postgres"] = {**target.as_dict(), "table": pg.table}
    return result
