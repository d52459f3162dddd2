"""Which rows go to quarantine, and why: one ``_reason`` per row, null for a good row.

A reason is ``<code>: <detail>``; the code is stable (reports group by it), the detail names the
field and, for a bad value, shows it. Checks run in this order and the first failing one wins:

================  ====================================================================
code              when
================  ====================================================================
invalid_encoding  a field (or the line) holds bytes that do not decode (U+FFFD after decoding)
malformed_csv     the CSV line has unbalanced quotes or does not split into the header's fields
invalid_json      the JSON line does not parse, or is not a JSON object
missing_id        an id column (for fact sources also the customer reference) is null or blank
overlong_field    a text field is longer than ``max_field_length``
missing_required  a ``required`` field is null or blank
invalid_type      a ``types`` field (or the ``updated_at`` column) does not parse with its formats
duplicate_id      (after all the others, :func:`duplicate_id_reason`) the batch has other rows with
                  the same id and different content
================  ====================================================================

Type checks apply to text values; columns a typed source (Parquet, Delta, JDBC) already typed
passed that source's own type system.

    >>> checked = classify(df, source, columns, max_field_length=2000)  # doctest: +SKIP
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, DataType, StringType, StructType

from cdi.config import SourceConfig

from . import lineage as L
from .readers.lines import REPLACEMENT

REASON = "_reason"
REASON_CODES = (
    "invalid_encoding",
    "malformed_csv",
    "invalid_json",
    "missing_id",
    "overlong_field",
    "missing_required",
    "invalid_type",
    "duplicate_id",
)
_SHOWN_VALUE = 80


def reason_code(reason: Column) -> Column:
    return F.substring_index(reason, ":", 1)


def _field_type(schema: StructType, name: str) -> DataType | None:
    """Type of a top-level column, or of a dotted path into structs; None when absent."""
    if name in schema.fieldNames():
        return schema[name].dataType
    current: DataType = schema
    for part in name.split("."):
        if not isinstance(current, StructType) or part not in current.fieldNames():
            return None
        current = current[part].dataType
    return current


def _text_leaves(dtype: DataType, path: str, ref: Column) -> list[tuple[str, Column, bool]]:
    """(name, column, is_array) for every string field, looking into structs and string arrays."""
    if isinstance(dtype, StringType):
        return [(path, ref, False)]
    if isinstance(dtype, ArrayType) and isinstance(dtype.elementType, StringType):
        return [(path, ref, True)]
    if isinstance(dtype, StructType):
        out = []
        for f in dtype.fields:
            out.extend(_text_leaves(f.dataType, f"{path}.{f.name}", ref.getField(f.name)))
        return out
    return []


def _blank(col: Column, dtype: DataType) -> Column:
    if isinstance(dtype, StringType):
        return col.isNull() | (F.trim(col) == "")
    return col.isNull()


def _parses(col: Column, kind: str, formats: list[str]) -> Column:
    """True when the text value parses as ``kind`` with one of ``formats`` (or Spark's defaults)."""
    if kind in ("date", "timestamp"):
        if formats:
            return F.coalesce(*[F.try_to_timestamp(col, F.lit(fmt)) for fmt in formats]).isNotNull()
        return col.try_cast(kind).isNotNull()
    if formats:
        return F.coalesce(*[F.try_to_number(col, F.lit(fmt)) for fmt in formats]).isNotNull()
    target = {"int": "bigint", "double": "double", "decimal": "decimal(38,10)"}[kind]
    return F.trim(col).try_cast(target).isNotNull()


def _shown(col: Column) -> Column:
    return F.when(F.length(col) > _SHOWN_VALUE, F.concat(F.substring(col, 1, _SHOWN_VALUE), F.lit("..."))).otherwise(col)


def type_checks(source: SourceConfig) -> dict[str, tuple[str, list[str]]]:
    """Declared type checks plus the implicit one of the ``updated_at`` column."""
    checks: dict[str, tuple[str, list[str]]] = {c: (t, list(source.type_formats.get(c, []))) for c, t in source.types.items()}
    if source.updated_at and source.updated_at.column not in checks:
        checks[source.updated_at.column] = ("timestamp", list(source.updated_at.formats))
    return checks


def id_checks(source: SourceConfig) -> list[tuple[str, str]]:
    """(column, how the detail names it) for the columns a row cannot be without."""
    out = [(c, c) for c in source.id_columns]
    if source.customer_ref and source.customer_ref.column not in source.id_columns:
        out.append((source.customer_ref.column, f"{source.customer_ref.column} (customer reference)"))
    return out


def classify(df: DataFrame, source: SourceConfig, columns: list[str], max_field_length: int) -> DataFrame:
    """``df`` plus ``_reason``; checks on columns the data lacks are skipped (drift reports them)."""
    schema = df.schema
    available = list(columns)
    rules: list[tuple[Column, Column]] = []

    leaves = []
    for c in columns:
        leaves.extend(_text_leaves(schema[c].dataType, c, L.column(c, available)))

    for name, ref, is_array in leaves:
        if is_array:
            bad = F.exists(ref, lambda x: x.contains(REPLACEMENT) | ~F.is_valid_utf8(x))
        else:
            bad = ref.contains(REPLACEMENT) | ~F.is_valid_utf8(ref)
        rules.append((bad, F.lit(f"invalid_encoding: {name} holds bytes that are not valid text (U+FFFD)")))
    if L.RAW_BYTES in schema.fieldNames():
        rules.append((F.col(L.RAW_BYTES).isNotNull(), F.lit("invalid_encoding: the line holds bytes that are not valid text")))

    if L.PARSE_ERROR in schema.fieldNames():
        rules.append((F.col(L.PARSE_ERROR).isNotNull(), F.col(L.PARSE_ERROR)))

    for c, label in id_checks(source):
        dtype = _field_type(schema, c)
        if dtype is not None and c.split(".", 1)[0] in available:
            rules.append((_blank(L.column(c, available), dtype), F.lit(f"missing_id: {label} is empty")))

    for name, ref, is_array in leaves:
        if is_array:
            bad = F.exists(ref, lambda x: F.length(x) > max_field_length)
            detail = F.lit(f"overlong_field: {name} has an element longer than {max_field_length} characters")
        else:
            bad = F.length(ref) > max_field_length
            detail = F.format_string(f"overlong_field: {name} has %d characters (max {max_field_length})", F.length(ref))
        rules.append((bad, detail))

    for c in source.required:
        dtype = _field_type(schema, c)
        if dtype is not None:
            rules.append((_blank(L.column(c, available), dtype), F.lit(f"missing_required: {c} is empty")))

    for c, (kind, formats) in type_checks(source).items():
        if not isinstance(_field_type(schema, c), StringType):
            continue
        ref = L.column(c, available)
        how = f" ({' or '.join(formats)})" if formats else ""
        bad = ref.isNotNull() & (F.trim(ref) != "") & ~_parses(ref, kind, formats)
        detail = F.concat(F.lit(f"invalid_type: {c}='"), _shown(ref), F.lit(f"' is not a {kind}{how}"))
        rules.append((bad, detail))

    reason = F.coalesce(*[F.when(cond, msg) for cond, msg in rules]) if rules else F.lit(None)
    return df.withColumn(REASON, reason.cast("string"))


def duplicate_id_reason(source: SourceConfig) -> Column:
    """``duplicate_id: ...`` for a row whose id other otherwise good rows of the batch share with
    different content (``_row_hash``), else null; identical repeats are not duplicates.

    ``duplicate_ids: quarantine`` (the default) rejects every such row: which one is right is not
    for bronze to guess. ``latest`` keeps the one with the greatest ``updated_at`` (then the last
    file and line) and rejects the others. One window over the id (a shuffle of the batch).
    ``versions`` keeps them all: each row is a version of its record, and silver reads the latest.
    """
    if source.duplicate_ids == "versions":
        return F.lit(None).cast("string")
    good = F.col(REASON).isNull()
    by_id = Window.partitionBy(L.RECORD_ID)
    hash_of_good = F.when(good, F.col(L.ROW_HASH))
    differs = good & (F.min(hash_of_good).over(by_id) != F.max(hash_of_good).over(by_id))
    rows = F.count(hash_of_good).over(by_id)
    ids = ", ".join(source.id_columns)
    if source.duplicate_ids == "latest":
        updated = F.lit(None).cast("timestamp")
        if source.updated_at is not None:
            ref = F.col(source.updated_at.column)
            formats = list(source.updated_at.formats)
            updated = F.coalesce(*[F.try_to_timestamp(ref, F.lit(f)) for f in formats]) if formats else ref.try_cast("timestamp")
        order = by_id.orderBy(good.desc(), updated.desc_nulls_last(), F.col(L.SOURCE_FILE).desc(), F.col(L.SOURCE_LINE).desc())
        first = F.row_number().over(order) == 1
        kept_line = F.first(F.col(L.SOURCE_LINE)).over(order.rowsBetween(Window.unboundedPreceding, Window.unboundedFollowing))
        return F.when(
            differs & ~first,
            F.format_string(
                f"duplicate_id: {ids} '%s' appears in %d rows of this batch with different content; "
                "the latest (line %s) was kept",
                F.col(L.RECORD_ID),
                rows,
                kept_line.cast("string"),
            ),
        )
    return F.when(
        differs,
        F.format_string(
            f"duplicate_id: {ids} '%s' appears in %d rows of this batch with different content; fix the source, "
            "or set duplicate_ids: latest to keep the latest",
            F.col(L.RECORD_ID),
            rows,
        ),
    )
