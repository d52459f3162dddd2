"""Lineage columns every bronze row carries (the ``bronze/<source>`` table contract).

* ``_source``: the source name from the configuration.
* ``_source_record_id``: the source's id column(s) as text, joined with ``|``.
* ``_batch_id``: the ingest batch that wrote the row (one per source and run attempt).
* ``_ingested_at``: when that batch ran (UTC).
* ``_source_file``: the file URI (``file:/...``), Delta table path or JDBC location read.
* ``_source_line``: 1-based line of text files, row number in Parquet files, else null.
* ``_row_hash``: SHA-256 of the row's source values (JSON of the columns sorted by name, nulls
  left out), so a column added later with nulls does not change the hash of unchanged rows.
* ``_deleted``: true on a tombstone, the row a snapshot source's batch writes for a record it no
  longer has (its source columns are null; :mod:`cdi.bronze.snapshots`); false otherwise, null
  in rows written before the column existed (read as false: :func:`deleted`).

    >>> df.select(record_id(["id", "region"], df.columns))  # doctest: +SKIP
"""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F

from cdi.schema import (
    BATCH_ID,
    DELETED,
    INGESTED_AT,
    LINEAGE_COLUMNS,
    RECORD_ID,
    ROW_HASH,
    SOURCE,
    SOURCE_FILE,
    SOURCE_LINE,
    SOURCE_LINE_END,
)
from cdi.sql import identifier

__all__ = [
    "BATCH_ID",
    "DELETED",
    "INGESTED_AT",
    "LINEAGE_COLUMNS",
    "PARSE_ERROR",
    "RAW",
    "RAW_BYTES",
    "RECORD_ID",
    "RESERVED",
    "ROW_HASH",
    "SOURCE",
    "SOURCE_FILE",
    "SOURCE_LINE",
    "SOURCE_LINE_END",
    "column",
    "deleted",
    "record_id",
    "row_hash",
    "top_level",
]  # fmt: skip

# working columns the readers attach next to the source's own columns
RAW = "_raw"  # the decoded text line (text formats)
RAW_BYTES = "_raw_bytes"  # the line's bytes, kept when they could not be decoded
PARSE_ERROR = "_parse_error"  # "<reason code>: <detail>" when the line did not parse
RESERVED = frozenset(LINEAGE_COLUMNS) | {SOURCE_LINE_END, RAW, RAW_BYTES, PARSE_ERROR, "_reason", "_outcome", "_cdi_corrupt"}


def deleted(columns: list[str] | tuple[str, ...]) -> Column:
    """True for a tombstone; a table without ``_deleted`` (written before it existed) has none."""
    if DELETED in columns:
        return F.coalesce(F.col(DELETED), F.lit(False))
    return F.lit(False)


def column(name: str, available: list[str] | tuple[str, ...]) -> Column:
    """A top-level column by its exact name, else a dotted path into a struct (nested JSON)."""
    if name in available:
        return F.col(identifier(name))
    return F.col(".".join(identifier(part) for part in name.split(".")))


def top_level(name: str, available: list[str] | tuple[str, ...]) -> str:
    """The top-level column a configured name lives in (``address.city`` -> ``address``)."""
    return name if name in available else name.split(".", 1)[0]


def record_id(id_columns: list[str], available: list[str]) -> Column:
    return F.concat_ws("|", *[column(c, available).cast("string") for c in id_columns])


def row_hash(columns: list[str]) -> Column:
    values = F.struct(*[F.col(identifier(c)) for c in sorted(columns)])
    return F.sha2(F.to_json(values), 256)
