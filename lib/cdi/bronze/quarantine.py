"""``bronze/_quarantine``: every rejected input row, with why and where it came from.

Columns: ``_source``, ``_batch_id``, ``_source_file``, ``_source_line`` (line of a text file, row
of a Parquet file, else null), ``_source_line_end`` (the last line of a CSV record spanning lines;
equal to ``_source_line`` otherwise), ``_source_record_id`` (null when the id itself is missing),
``_reason`` (``<code>: <detail>``, see :mod:`cdi.bronze.validation`), ``_raw`` (the original text
line; for typed sources the row as JSON), ``_raw_bytes`` (the undecodable line's bytes, only for
``invalid_encoding``), ``_row_hash`` (as in bronze: snapshot sources re-read a rejected row without
rejecting it twice), ``_ingested_at`` and ``_run_id``. Partitioned by ``_source``.

Query it, for example: ``lake.read("bronze/_quarantine").where("_source = 'crm'")``.
"""

from __future__ import annotations

from datetime import datetime

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from cdi import schema
from cdi.lake import Lake, WriteResult
from cdi.privacy.register import ERASED_REASON_CODE

from . import lineage as L
from .ledger import QUARANTINE_TABLE
from .validation import REASON

QUARANTINE_SCHEMA = schema.QUARANTINE_SCHEMA


def quarantine_rows(rejected: DataFrame, source: str, batch_id: str, run_id: str, ingested_at: datetime, raw: Column) -> DataFrame:
    """The quarantine table's rows for the rejected rows of one batch."""
    record_id = F.col(L.RECORD_ID)
    line_end = F.col(L.SOURCE_LINE_END) if L.SOURCE_LINE_END in rejected.columns else F.col(L.SOURCE_LINE)
    return rejected.select(
        F.lit(source).alias(L.SOURCE),
        F.lit(batch_id).alias(L.BATCH_ID),
        F.col(L.SOURCE_FILE),
        F.col(L.SOURCE_LINE).cast("long").alias(L.SOURCE_LINE),
        line_end.cast("long").alias(L.SOURCE_LINE_END),
        F.when(F.trim(record_id) != "", record_id).alias(L.RECORD_ID),
        F.col(REASON).alias("_reason"),
        # an erased person's row is counted and placed, never kept: no raw text
        F.when(~F.col(REASON).startswith(ERASED_REASON_CODE), raw.cast("string")).alias(L.RAW),
        F.when(F.col(REASON).startswith("invalid_encoding"), F.col(L.RAW_BYTES)).alias(L.RAW_BYTES),
        F.col(L.ROW_HASH),
        F.lit(ingested_at).cast("timestamp").alias(L.INGESTED_AT),
        F.lit(run_id).alias("_run_id"),
    )


def write_quarantine(lake: Lake, rows: DataFrame, source: str, batch_id: str) -> WriteResult:
    return lake.write(
        QUARANTINE_TABLE,
        rows,
        mode="append",
        partition_by=[L.SOURCE],
        allow_new_columns=True,  # a quarantine table written before _source_line_end existed gains it
        operation="QUARANTINE",
        metadata={"source": source, "batch_id": batch_id},
    )


def ensure_quarantine_table(lake: Lake) -> None:
    """Create the (empty) table so users can always query it, even when nothing was rejected."""
    if not lake.exists(QUARANTINE_TABLE):
        empty = lake.spark.createDataFrame([], QUARANTINE_SCHEMA)
        lake.write(QUARANTINE_TABLE, empty, mode="append", partition_by=[L.SOURCE], operation="CREATE")
