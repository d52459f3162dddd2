"""What a batch changes against the source's current bronze state: unchanged rows and deletions.

The *current* version of a record is its latest ingested row in ``bronze/<source>`` (greatest
``_ingested_at``, then ``_batch_id``); the record is *live* unless that row is a tombstone.

* Every source: a good row whose ``_row_hash`` equals the current version of its
  ``_source_record_id`` is ``unchanged`` and not appended again, so a re-delivered file (new
  name, new modification time, same content) adds nothing to bronze.
* ``load: snapshot`` sources: a batch is the source's full current set of records, so every live
  record whose id the batch does not have (in any row, good or rejected) is deleted: a tombstone
  row is appended (lineage set, ``_deleted`` true, the source columns null). Silver drops a
  record whose current version is a tombstone; a later batch that has the id again revives it.

All of it is joins on the id against one aggregate of the bronze table; nothing is collected.

    >>> current = current_state(lake.read("bronze/crm", version=v))  # doctest: +SKIP
    >>> gone = absent_ids(current, checked)  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from . import lineage as L

CURRENT_HASH = "_cdi_current_hash"
CURRENT_DELETED = "_cdi_current_deleted"
# not null (the bronze contract); no row's hash, since a row's JSON never has a "_deleted" key (reserved)
TOMBSTONE_HASH = hashlib.sha256(b'{"_deleted":true}').hexdigest()


def current_state(bronze: DataFrame) -> DataFrame:
    """One row per ``_source_record_id`` of a bronze table: the current version's hash and
    whether it is a tombstone (``_cdi_current_hash``, ``_cdi_current_deleted``)."""
    latest = F.max(
        F.struct(
            F.col(L.INGESTED_AT).alias("at"),
            F.col(L.BATCH_ID).alias("batch"),
            F.col(L.ROW_HASH).alias("hash"),
            L.deleted(bronze.columns).alias("deleted"),
        )
    )
    return (
        bronze.where(F.col(L.RECORD_ID).isNotNull())
        .groupBy(L.RECORD_ID)
        .agg(latest.alias("v"))
        .select(L.RECORD_ID, F.col("v.hash").alias(CURRENT_HASH), F.col("v.deleted").alias(CURRENT_DELETED))
    )


def matches_current() -> Column:
    """On a batch joined (left) with :func:`current_state`: the row is the live current version."""
    return F.col(CURRENT_HASH).isNotNull() & ~F.col(CURRENT_DELETED) & (F.col(L.ROW_HASH) == F.col(CURRENT_HASH))


def absent_ids(current: DataFrame, batch: DataFrame) -> DataFrame:
    """The live records of ``current`` whose id no row of ``batch`` carries (one column, the id)."""
    live = current.where(~F.col(CURRENT_DELETED)).select(L.RECORD_ID)
    present = batch.where(F.col(L.RECORD_ID).isNotNull()).select(L.RECORD_ID).distinct()
    return live.join(present, on=L.RECORD_ID, how="left_anti")


def live_and_absent(current: DataFrame, batch: DataFrame) -> tuple[int, int]:
    """(live records, live records the batch lacks) in one job, for the delete guard."""
    present = batch.where(F.col(L.RECORD_ID).isNotNull()).select(L.RECORD_ID).distinct().withColumn("_present", F.lit(True))
    row = (
        current.where(~F.col(CURRENT_DELETED))
        .join(present, on=L.RECORD_ID, how="left")
        .agg(F.count(F.lit(1)).alias("live"), F.count(F.when(F.col("_present").isNull(), 1)).alias("absent"))
        .first()
    )
    return (int(row["live"]), int(row["absent"])) if row else (0, 0)


def tombstones(
    gone: DataFrame, source: str, batch_id: str, ingested_at: datetime, source_file: str, columns: list[str], types: StructType
) -> DataFrame:
    """Tombstone rows in the shape of the batch's bronze rows: lineage set, source columns null.
    ``types`` gives each source column's type (the bronze rows' schema)."""
    return gone.select(
        F.lit(source).alias(L.SOURCE),
        F.col(L.RECORD_ID),
        F.lit(batch_id).alias(L.BATCH_ID),
        F.lit(ingested_at).cast("timestamp").alias(L.INGESTED_AT),
        F.lit(source_file).alias(L.SOURCE_FILE),
        F.lit(None).cast("long").alias(L.SOURCE_LINE),
        F.lit(TOMBSTONE_HASH).alias(L.ROW_HASH),
        F.lit(True).alias(L.DELETED),
        *[F.lit(None).cast(types[c].dataType).alias(c) for c in columns],
    )
