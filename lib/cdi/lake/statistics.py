"""Which columns a table's Delta log may keep minimum and maximum values for.

Delta writes per-file statistics (min, max, null count) into its transaction log, in plain text
(``_delta_log/*.json``) and in checkpoints. For a column holding an e-mail or a name those are the
values themselves, and the log keeps them for as long as the log lives: long after a DELETE and a
VACUUM have removed the rows. So the lake gives statistics only to columns that hold keys,
lineage, times and flags (``delta.dataSkippingStatsColumns``); customer attributes and the source
systems' own columns get none. Data skipping on keys (``customer_id``, ``run_id``, ...) stays.

    >>> from pyspark.sql.types import StructType, StructField, StringType, TimestampType
    >>> s = StructType([StructField("customer_id", StringType()), StructField("email", StringType()),
    ...                 StructField("valid_from", TimestampType()), StructField("national_id", StringType())])
    >>> statistics_columns(s)
    ['customer_id', 'valid_from']
"""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql.types import ArrayType, BinaryType, BooleanType, MapType, NullType, StructType

from cdi.config import CANONICAL_ATTRIBUTES

STATS_COLUMNS_PROPERTY = "delta.dataSkippingStatsColumns"
NUM_INDEXED_PROPERTY = "delta.dataSkippingNumIndexedCols"

_NEVER = frozenset({"_raw", "_raw_bytes", "_reason", *CANONICAL_ATTRIBUTES})
_NO_STATISTICS = (StructType, ArrayType, MapType, BooleanType, BinaryType, NullType)  # Delta keeps none for these
_KEY_NAMES = frozenset({"source", "kind", "run_id", "change_type", "event_type", "version", "action"})
_KEY_SUFFIXES = ("_id", "_key", "_at", "_from", "_to", "_l", "_r")


def _is_key_name(name: str) -> bool:
    if name in _NEVER:
        return False
    if name.startswith("_"):  # the lake's own lineage columns
        return True
    return name in _KEY_NAMES or name.endswith(_KEY_SUFFIXES)


def statistics_columns(schema: StructType, table: str = "", partition_by: Sequence[str] = ()) -> list[str]:
    """Top-level key, lineage, time and flag columns, in the table's order. A bronze table's
    own columns are the source system's, named as it likes (``tax_id``): only lineage there.
    Partition columns are left out (Delta prunes by them without statistics, and refuses them)."""
    raw = table.startswith("bronze/")
    return [
        f.name
        for f in schema.fields
        if not isinstance(f.dataType, _NO_STATISTICS)
        and _is_key_name(f.name)
        and (f.name.startswith("_") or not raw)
        and f.name not in partition_by
    ]


def statistics_properties(schema: StructType, table: str = "", partition_by: Sequence[str] = ()) -> dict[str, str]:
    """The table properties that keep the log free of customer values (see the module doc)."""
    columns = statistics_columns(schema, table, partition_by)
    if not columns:
        return {NUM_INDEXED_PROPERTY: "0"}
    return {STATS_COLUMNS_PROPERTY: ",".join(f"`{c}`" for c in columns)}


def bounded_columns(properties: dict[str, str]) -> frozenset[str] | None:
    """The columns a table's properties give statistics to; None when they do not say (all)."""
    if properties.get(NUM_INDEXED_PROPERTY, "").strip() == "0":
        return frozenset()
    listed = properties.get(STATS_COLUMNS_PROPERTY)
    if listed is None:
        return None
    return frozenset(c.strip().strip("`") for c in listed.split(",") if c.strip())
