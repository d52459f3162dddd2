"""Golden-record history (SCD type 2) in ``gold/golden_records``.

Every version of every customer is a row: the golden columns (see :mod:`cdi.gold.survivorship`),
``record_hash`` (SHA-256 of the attribute values), ``valid_from``, ``valid_to`` (null while
current), ``is_current`` and the ``run_id`` that wrote the version. A customer gets a new version
when its attribute values change (hash) or when the set of source records behind it changes
(merge, split, record added or removed); a provenance-only change (same value now also from a
newer record) is not a new version. A customer id that disappears from the entity map is closed
(retired) and gets no current row.

A run computes the new current golden set, compares it with the current rows (:func:`diff_golden`)
and applies the difference in one Delta ``MERGE`` (:func:`write_history`): the current versions
of changed and retired customers are closed (``valid_to`` = run time, ``is_current`` false) and
the new versions inserted; unchanged rows are not touched. No change, no commit. The table keeps a
Change Data Feed (inserts, and updates with pre/post images, per version), and Delta versions add
table-level time travel (``lake.read("gold/golden_records", timestamp=...)``).

    >>> diff = diff_golden(lake, golden)  # doctest: +SKIP
    >>> write_history(lake, diff, run_id, run_at)  # doctest: +SKIP
    >>> customer_as_of(spark, lake, "C000123", datetime(2026, 1, 1, tzinfo=timezone.utc))  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import reduce
from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import BooleanType, StringType, StructField, StructType, TimestampType

from cdi import schema
from cdi.lake import Lake, MergeSpec
from cdi.sql import literal

from .survivorship import GOLDEN_ATTRIBUTES, golden_columns, golden_schema, prov_column

log = logging.getLogger(__name__)

GOLDEN_TABLE = schema.GOLDEN_RECORDS
VERSION_COLUMNS = ("record_hash", "valid_from", "valid_to", "is_current", "run_id", "effective_from", "effective_to")
# statuses of a customer in a diff
NEW, CHANGED, RETIRED = "new", "changed", "retired"


def history_schema() -> StructType:
    fields = list(golden_schema().fields) + [
        StructField("record_hash", StringType()),
        StructField("valid_from", TimestampType()),
        StructField("valid_to", TimestampType()),
        StructField("is_current", BooleanType()),
        StructField("run_id", StringType()),
        StructField("effective_from", TimestampType()),
        StructField("effective_to", TimestampType()),
    ]
    return StructType(fields)


def history_columns() -> list[str]:
    return [*golden_columns(), *VERSION_COLUMNS]


def record_hash(prefix: str = "") -> Column:
    """SHA-256 of the attribute values (JSON keeps nulls apart from empty strings)."""
    values = F.struct(*[F.col(f"{prefix}{a}").alias(a) for a in GOLDEN_ATTRIBUTES])
    return F.sha2(F.to_json(values), 256)


def utc(value: datetime) -> datetime:
    """Naive datetimes are taken as UTC (Spark would read them in the driver's local zone)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@dataclass
class GoldenDiff:
    """Customers whose golden record changes in this run, against a pinned table version.

    ``rows`` has ``customer_id``, ``status`` (new | changed | retired), ``old`` (the current
    version's row as a struct, null for new customers) and ``new`` (the new golden record with
    its ``record_hash``, null for retired ones). It is persisted: the stage reads it several times.
    """

    rows: DataFrame
    current: DataFrame
    base_version: int | None
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not any(self.counts.values())

    def unpersist(self) -> None:
        self.rows.unpersist()


def current_versions(lake: Lake, version: int | None = None) -> DataFrame:
    """The current golden rows (all columns), or an empty frame before the first run. A table
    written before versions carried effective times, or before an attribute existed, reads them
    as null."""
    if not lake.exists(GOLDEN_TABLE):
        return lake.spark.createDataFrame([], history_schema())
    return with_history_columns(lake.read(GOLDEN_TABLE, version=version)).where(F.col("is_current"))


def with_history_columns(history: DataFrame) -> DataFrame:
    """``history`` with every column of :func:`history_schema` (``effective_from``/``effective_to``
    and attributes added since: null where the table predates them)."""
    missing = {f.name: F.lit(None).cast(f.dataType) for f in history_schema().fields if f.name not in history.columns}
    return history.withColumns(missing) if missing else history


def effective_from(run_at: datetime) -> Column:
    """When a diff row's new version became true at the source: the newest ``updated_at`` among
    the records of the values that changed (every value for a new customer), never later than
    the run that learnt it nor earlier than the version it replaces; the run's time when values
    changed but no source says when, the replaced version's when only the records behind it did."""
    differs = {a: F.col("old").isNull() | ~F.col(f"old.{a}").eqNullSafe(F.col(f"new.{a}")) for a in GOLDEN_ATTRIBUTES}
    latest = F.greatest(*[F.when(d, F.col(f"new.{prov_column(a)}.updated_at")) for a, d in differs.items()])
    learnt = F.lit(utc(run_at)).cast("timestamp")
    floor = F.coalesce(F.col("old.effective_from"), F.col("old.valid_from"))
    return (
        F.when(latest.isNotNull(), F.greatest(F.least(latest, learnt), floor))  # greatest() skips a null floor
        .when(reduce(lambda a, b: a | b, differs.values()), learnt)  # values changed, no source says when
        .otherwise(F.coalesce(floor, learnt))  # only the records behind it changed
    )


def diff_golden(lake: Lake, golden: DataFrame) -> GoldenDiff:
    """Compare the freshly survived golden set with the current versions (pinned to one version)."""
    base_version = lake.version(GOLDEN_TABLE) if lake.exists(GOLDEN_TABLE) else None
    current = current_versions(lake, base_version)
    new = golden.select(*golden_columns()).withColumn("record_hash", record_hash())
    old_struct = F.struct(*[F.col(f"o.{c}").alias(c) for c in history_columns()])
    new_struct = F.struct(*[F.col(f"n.{c}").alias(c) for c in [*golden_columns(), "record_hash"]])
    joined = current.alias("o").join(new.alias("n"), F.col("o.customer_id") == F.col("n.customer_id"), "full_outer")
    status = (
        F.when(F.col("o.customer_id").isNull(), F.lit(NEW))
        .when(F.col("n.customer_id").isNull(), F.lit(RETIRED))
        .when(
            ~F.col("o.record_hash").eqNullSafe(F.col("n.record_hash"))
            | ~F.col("o.source_record_keys").eqNullSafe(F.col("n.source_record_keys")),
            F.lit(CHANGED),
        )
    )
    rows = (
        joined.select(
            F.coalesce(F.col("o.customer_id"), F.col("n.customer_id")).alias("customer_id"),
            status.alias("status"),
            F.when(F.col("o.customer_id").isNotNull(), old_struct).alias("old"),
            F.when(F.col("n.customer_id").isNotNull(), new_struct).alias("new"),
        )
        .where(F.col("status").isNotNull())
        .persist()
    )
    counts = {NEW: 0, CHANGED: 0, RETIRED: 0}
    for row in rows.groupBy("status").count().collect():  # at most three rows
        counts[row["status"]] = row["count"]
    log.info("golden diff against version %s: %s", base_version, counts)
    return GoldenDiff(rows=rows, current=current, base_version=base_version, counts=counts)


def new_versions(diff: GoldenDiff, run_id: str, run_at: datetime) -> DataFrame:
    """The versions this run adds (new and changed customers), as golden_records rows."""
    return diff.rows.where(F.col("new").isNotNull()).select(
        *[F.col(f"new.{c}").alias(c) for c in [*golden_columns(), "record_hash"]],
        F.lit(utc(run_at)).cast("timestamp").alias("valid_from"),
        F.lit(None).cast("timestamp").alias("valid_to"),
        F.lit(True).alias("is_current"),
        F.lit(run_id).alias("run_id"),
        effective_from(run_at).alias("effective_from"),
        F.lit(None).cast("timestamp").alias("effective_to"),
    )


SCD2_MERGE_KEY = "_merge_key"


def write_history(lake: Lake, diff: GoldenDiff, run_id: str, run_at: datetime) -> int | None:
    """Close changed/retired versions and add new ones in one commit; the new table version.

    One ``MERGE``: rows keyed by ``customer_id`` close the matching current version, rows with a
    null key (the new versions) never match and are inserted. Nothing is written (``None``) when
    nothing changed, so a re-run adds no table version.
    """
    if diff.empty:
        log.info("golden records unchanged: no new version of %s", GOLDEN_TABLE)
        return None
    added = new_versions(diff, run_id, run_at)
    meta = {"base_version": diff.base_version, **{f"customers_{k}": v for k, v in diff.counts.items()}}
    if not lake.exists(GOLDEN_TABLE):
        result = lake.write(
            GOLDEN_TABLE, added, mode="append", partition_by=["is_current"], operation="SCD2 UPDATE", metadata=meta
        )
    else:
        missing = [f for f in history_schema().fields if f.name not in lake.read(GOLDEN_TABLE).columns]
        if missing:  # a table from before effective times or a newer attribute: evolve it once
            lake.add_columns(GOLDEN_TABLE, missing)
        # a closed version stays true at the source until its successor became true (a retired
        # customer's until the run that retired it)
        closing = diff.rows.where(F.col("old").isNotNull() & F.col("status").isin(CHANGED, RETIRED)).select(
            F.col("customer_id").alias(SCD2_MERGE_KEY),
            *[F.col(f"old.{c}").alias(c) for c in history_columns() if c != "effective_to"],
            F.when(F.col("new").isNotNull(), effective_from(run_at))
            .otherwise(F.lit(utc(run_at)).cast("timestamp"))
            .alias("effective_to"),
        )
        source = closing.unionByName(added.withColumn(SCD2_MERGE_KEY, F.lit(None).cast("string")))
        spec = MergeSpec(
            keys=(("customer_id", SCD2_MERGE_KEY),),
            target_condition="t.is_current",
            update=(("is_current", "false"), ("valid_to", literal(utc(run_at))), ("effective_to", "s.effective_to")),
            insert_condition=f"s.{SCD2_MERGE_KEY} IS NULL",
        )
        result = lake.merge(GOLDEN_TABLE, source, spec, operation="SCD2 UPDATE", metadata=meta)
    log.info("%s: version %s written by run %s (%s)", GOLDEN_TABLE, result.version, run_id, diff.counts)
    return result.version


def versions_of(lake: Lake, customer_id: str) -> DataFrame:
    """Every version of one customer, oldest first."""
    return lake.read(GOLDEN_TABLE).where(F.col("customer_id") == customer_id).orderBy("valid_from")


TIMES = ("recorded", "effective")
"""What ``as_of`` means: when the lake knew it (``valid_from``/``valid_to``), or when it was true
at the source (``effective_from``/``effective_to``; a version from before effective times falls
back to its recorded ones)."""


def as_of_filter(as_of: datetime, time: str = "recorded") -> Column:
    ts = F.lit(utc(as_of)).cast("timestamp")
    if time == "recorded":
        start, end = F.col("valid_from"), F.col("valid_to")
    elif time == "effective":
        start = F.coalesce(F.col("effective_from"), F.col("valid_from"))
        end = F.coalesce(F.col("effective_to"), F.col("valid_to"))
    else:
        raise ValueError(f"time must be one of {TIMES}, got {time!r}")
    return (start <= ts) & (end.isNull() | (end > ts))


def customer_as_of(
    spark: SparkSession, lake: Lake, customer_id: str, as_of: datetime, time: str = "recorded"
) -> dict[str, Any] | None:
    """The version of ``customer_id`` that was valid at ``as_of`` (None if it did not exist then),
    by the lake's recorded time or by the source's effective time (see :data:`TIMES`).

    Starts are inclusive and ends exclusive, so at most one version answers.
    """
    if not lake.exists(GOLDEN_TABLE):
        return None
    history = with_history_columns(lake.read(GOLDEN_TABLE))
    row = history.where((F.col("customer_id") == customer_id) & as_of_filter(as_of, time)).first()
    return row.asDict(recursive=True) if row is not None else None
