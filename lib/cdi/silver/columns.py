"""Reading a source's mapped columns out of its bronze table, the same way for customer records
and for facts: a mapping names a column, a dotted path into a struct or map, or a JSON path into
a text column; dates and timestamps already typed by the source are kept, text and epoch numbers
are parsed with the one set of parsers in :mod:`cdi.silver.standardise`.

    >>> col, dtype = resolve_column(bronze, "address.city", "bronze/crm (city)")  # doctest: +SKIP
    >>> typed_timestamp(col, dtype, ["dd.MM.yyyy HH:mm"])  # doctest: +SKIP
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import (
    ArrayType,
    DataType,
    DateType,
    MapType,
    NumericType,
    StringType,
    StructType,
    TimestampNTZType,
    TimestampType,
)

from cdi import schema
from cdi.config import ColumnSpec, MappedSpec, SourceConfig
from cdi.errors import SourceMappingError
from cdi.silver.standardise import parse_date, parse_timestamp


def is_tombstone(bronze: DataFrame) -> Column:
    """True on a bronze tombstone (``_deleted``; a table written before the column has none)."""
    if schema.DELETED in bronze.columns:
        return F.coalesce(F.col(schema.DELETED), F.lit(False))
    return F.lit(False)


def live_rows(bronze: DataFrame) -> DataFrame:
    """The bronze rows still in force: a tombstone (a record a snapshot source no longer has)
    retires every version of its record ingested up to it; a version ingested later revives the
    record. Tombstones themselves are left out. A table without tombstones is returned as is
    (one window over the record id otherwise).

        >>> live_rows(lake.read("bronze/crm"))  # doctest: +SKIP
    """
    if schema.DELETED not in bronze.columns:
        return bronze
    order = F.struct(F.col(schema.INGESTED_AT), F.col(schema.BATCH_ID))
    gone = is_tombstone(bronze)
    last = "__cdi_last_tombstone"
    with_last = bronze.withColumn(last, F.max(F.when(gone, order)).over(Window.partitionBy(schema.RECORD_ID)))
    kept = ~gone & (F.col(last).isNull() | (order > F.col(last)))
    return with_last.where(kept).drop(last)


def resolve_column(df: DataFrame, path: str, where: str) -> tuple[Column, DataType]:
    """The column at ``path`` and its type: an exact (possibly dotted) column name first, else a
    walk into structs and maps, else a JSON path into a string column. Names match case-insensitively."""
    fields = {f.name.lower(): f for f in df.schema.fields}
    exact = fields.get(path.lower())
    if exact is not None:
        return F.col(f"`{exact.name}`"), exact.dataType
    parts = path.split(".")
    top = fields.get(parts[0].lower())
    if top is None:
        raise SourceMappingError(
            f"{where}: no column '{parts[0]}' for mapping '{path}' (columns: {', '.join(df.columns)}). "
            "Fix the mapping in the source's config, or re-ingest the source if its file changed."
        )
    col, dtype = F.col(f"`{top.name}`"), top.dataType
    for i, part in enumerate(parts[1:], start=1):
        if isinstance(dtype, StructType):
            sub = {f.name.lower(): f for f in dtype.fields}.get(part.lower())
            if sub is None:
                raise SourceMappingError(
                    f"{where}: '{'.'.join(parts[:i])}' has no field '{part}' for mapping '{path}' "
                    f"(fields: {', '.join(dtype.fieldNames())})"
                )
            col, dtype = col.getField(sub.name), sub.dataType
        elif isinstance(dtype, MapType):
            col, dtype = col.getItem(part), dtype.valueType
        elif isinstance(dtype, StringType):
            json_path = "$" + "".join(f"['{p}']" for p in parts[i:])
            return F.get_json_object(col, json_path), StringType()
        else:
            raise SourceMappingError(
                f"{where}: '{'.'.join(parts[:i])}' is a {dtype.simpleString()}, not a struct, map or JSON "
                f"text, so mapping '{path}' cannot reach into it"
            )
    return col, dtype


def as_text(col: Column, dtype: DataType) -> Column:
    """Text of any value: nested values as JSON, scalars cast."""
    if isinstance(dtype, (StructType, ArrayType, MapType)):
        return F.to_json(col)
    return col.cast("string")


def formats_of(source: SourceConfig, spec: ColumnSpec | MappedSpec) -> list[str]:
    """The mapping's own datetime patterns, else the source's ``type_formats`` for that column."""
    return list(spec.formats) or list(source.type_formats.get(spec.column or "", []))


def resolve_spec(df: DataFrame, spec: MappedSpec, where: str) -> tuple[Column, DataType]:
    """The value a mapping gives and its type: one column (:func:`resolve_column`), several
    columns joined as text (blank parts skipped; all blank gives null), or a Spark SQL
    expression, checked against the table's columns here (analysis only, no job)."""
    if spec.expr is not None:
        col = F.expr(spec.expr)
        try:
            dtype = df.select(col).schema.fields[0].dataType
        except Exception as exc:  # Spark's AnalysisException / ParseException
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise SourceMappingError(
                f"{where}: expression {spec.expr!r} does not work on the source's columns "
                f"({', '.join(c for c in df.columns if not c.startswith('_'))}): {first}. Fix the mapping's expr."
            ) from None
        return col, dtype
    if spec.columns:
        parts = [F.nullif(F.trim(as_text(*resolve_column(df, c, where))), F.lit("")) for c in spec.columns]
        return F.nullif(F.concat_ws(spec.separator, *parts), F.lit("")), StringType()
    return resolve_column(df, spec.column or "", where)


def typed_date(col: Column, dtype: DataType, formats: list[str]) -> Column:
    if isinstance(dtype, (DateType, TimestampType, TimestampNTZType)):
        return F.to_date(col)
    return parse_date(as_text(col, dtype), formats)


def typed_timestamp(col: Column, dtype: DataType, formats: list[str]) -> Column:
    """A timestamp from a typed date/time, epoch seconds or milliseconds, or text in ``formats``."""
    if isinstance(dtype, (TimestampType, TimestampNTZType, DateType)):
        return col.cast("timestamp")
    if isinstance(dtype, NumericType):
        return parse_timestamp(col.cast("long").cast("string"), formats)
    return parse_timestamp(as_text(col, dtype), formats)
