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
from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import BooleanType, StringType, StructField, StructType, TimestampType

from cdi import schema
from cdi.lake import Lake, MergeSpec
from cdi.sql import literal

from .survivorship import GOLDEN_ATTRIBUTES, golden_columns, golden_schema

log = logging.getLogger(__name__)

GOLDEN_TABLE = schema.GOLDEN_RECORDS
VERSION_COLUMNS = ("record_hash", "valid_from", "valid_to", "is_current", "run_id")
# statuses of a customer in a diff
NEW, CHANGED, RETIRED = "new", "changed", "retired"


def history_schema() -> StructType:
    fields = list(golden_schema().fields) + [
        StructField("record_hash", StringType()),
        StructField("valid_from", TimestampType()),
        StructField("valid_to", TimestampType()),
        StructField("is_current", BooleanType()),
        StructField("run_id", StringType()),
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
    """The current golden rows (all columns), or an empty frame before the first run."""
    if not lake.exists(GOLDEN_TABLE):
        return lake.spark.createDataFrame([], history_schema())
    return lake.read(GOLDEN_TABLE, version=version).where(F.col("is_current"))


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
        closing = diff.rows.where(F.col("old").isNotNull() & F.col("status").isin(CHANGED, RETIRED)).select(
            F.col("customer_id").alias(SCD2_MERGE_KEY), *[F.col(f"old.{c}").alias(c) for c in history_columns()]
        )
        source = closing.unionByName(added.withColumn(SCD2_MERGE_KEY, F.lit(None).cast("string")))
        spec = MergeSpec(
            keys=(("customer_id", SCD2_MERGE_KEY),),
            target_condition="t.is_current",
            update=(("is_current", "false"), ("valid_to", literal(utc(run_at)))),
            insert_condition=f"s.{SCD2_MERGE_KEY} IS NULL",
        )
        result = lake.merge(GOLDEN_TABLE, source, spec, operation="SCD2 UPDATE", metadata=meta)
    log.info("%s: version %s written by run %s (%s)", GOLDEN_TABLE, result.version, run_id, diff.counts)
    return result.version


def versions_of(lake: Lake, customer_id: str) -> DataFrame:
    """Every version of one customer, oldest first."""
    return lake.read(GOLDEN_TABLE).where(F.col("customer_id") == customer_id).orderBy("valid_from")


def as_of_filter(as_of: datetime) -> Column:
    ts = F.lit(utc(as_of)).cast("timestamp")
    return (F.col("valid_from") <= ts) & (F.col("valid_to").isNull() | (F.col("valid_to") > ts))


def customer_as_of(spark: SparkSession, lake: Lake, customer_id: str, as_of: datetime) -> dict[str, Any] | None:
    """The version of ``customer_id`` that was valid at ``as_of`` (None if it did not exist then).

    ``valid_from`` is inclusive and ``valid_to`` exclusive, so exactly one version answers.
    """
    if not lake.exists(GOLDEN_TABLE):
        return None
    row = lake.read(GOLDEN_TABLE).where((F.col("customer_id") == customer_id) & as_of_filter(as_of)).first()
    return row.asDict(recursive=True) if row is not None else None
