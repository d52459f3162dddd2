"""``silver/records``: one standardised row per live source customer record.

For every customer source, ``bronze/<source>`` is read through the lake, each mapped column is
resolved (a column name, or a dotted path into a struct, a map or a JSON string such as
"address.city"), the latest version of each source record is kept (by the source's parsed
``updated_at``, then ``_ingested_at``), and the sources are unioned and standardised once by
:func:`cdi.silver.standardise.standardise_records`. Text sources hold strings and Parquet sources
native types; everything is read as text except dates and timestamps already typed as such.

    >>> rows = write_records(spark, cfg, Lake(spark, cfg.lake_root, job="link"))  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from functools import reduce

from pyspark.sql import Column, DataFrame, SparkSession, Window
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

from cdi.config import CdiConfig, ColumnSpec, SourceConfig
from cdi.lake import Lake
from cdi.silver.standardise import (
    STAGED_ATTRIBUTES,
    STAGED_COLUMNS,
    parse_date,
    parse_timestamp,
    standardise_records,
)

log = logging.getLogger(__name__)

RECORDS_TABLE = "silver/records"
OPERATION = "STANDARDISE"
LINEAGE_COLUMNS = ("_source", "_source_record_id", "_batch_id", "_ingested_at", "_source_file", "_row_hash")


class MappingError(ValueError):
    """A source's mapping names a column its bronze table does not have."""


def bronze_table(source: SourceConfig) -> str:
    return f"bronze/{source.name}"


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
        raise MappingError(
            f"{where}: no column '{parts[0]}' for mapping '{path}' (columns: {', '.join(df.columns)}). "
            "Fix the mapping in the source's config, or re-ingest the source if its file changed."
        )
    col, dtype = F.col(f"`{top.name}`"), top.dataType
    for i, part in enumerate(parts[1:], start=1):
        if isinstance(dtype, StructType):
            sub = {f.name.lower(): f for f in dtype.fields}.get(part.lower())
            if sub is None:
                raise MappingError(
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
            raise MappingError(
                f"{where}: '{'.'.join(parts[:i])}' is a {dtype.simpleString()}, not a struct, map or JSON "
                f"text, so mapping '{path}' cannot reach into it"
            )
    return col, dtype


def _as_text(col: Column, dtype: DataType) -> Column:
    if isinstance(dtype, (StructType, ArrayType, MapType)):
        return F.to_json(col)
    return col.cast("string")


def _formats(source: SourceConfig, spec: ColumnSpec) -> list[str]:
    return list(spec.formats) or list(source.type_formats.get(spec.column, []))


def _date(col: Column, dtype: DataType, formats: list[str]) -> Column:
    if isinstance(dtype, (DateType, TimestampType, TimestampNTZType)):
        return F.to_date(col)
    return parse_date(_as_text(col, dtype), formats)


def _timestamp(col: Column, dtype: DataType, formats: list[str]) -> Column:
    if isinstance(dtype, (TimestampType, TimestampNTZType)):
        return col.cast("timestamp")
    if isinstance(dtype, DateType):
        return col.cast("timestamp")
    if isinstance(dtype, NumericType):
        return parse_timestamp(col.cast("long").cast("string"), formats)
    return parse_timestamp(_as_text(col, dtype), formats)


def check_formats(spark: SparkSession, source: SourceConfig) -> None:
    """Fail early, naming the source and field, on a datetime pattern Spark cannot compile.

    Runs one tiny query on a literal row (no data): a bad pattern would otherwise fail the whole
    stage later with an error that does not say which source it came from.
    """
    specs = {"updated_at": source.updated_at, "date_of_birth": source.column_spec("date_of_birth")}
    for target, spec in specs.items():
        if spec is None:
            continue
        for fmt in _formats(source, spec):
            try:
                spark.range(1).select(F.try_to_timestamp(F.lit("2000-01-01"), F.lit(fmt))).collect()
            except Exception as exc:  # noqa: BLE001 - any Spark error here means the pattern
                raise MappingError(
                    f"source '{source.name}': {target} format {fmt!r} is not a valid Spark datetime pattern "
                    f"(see Spark's 'Datetime Patterns' page; e.g. dd.MM.yyyy): {str(exc).splitlines()[0]}"
                ) from None


def stage_source(bronze: DataFrame, source: SourceConfig) -> DataFrame:
    """The latest version of each record of one source, as the staged raw text that
    :func:`~cdi.silver.standardise.standardise_records` expects (:data:`STAGED_COLUMNS`)."""
    table = bronze_table(source)
    missing = [c for c in LINEAGE_COLUMNS if c not in bronze.columns]
    if missing:
        raise MappingError(f"{table}: lineage column(s) {missing} are missing; re-ingest the source with `cdi ingest`")
    values: dict[str, Column] = {}
    phone_region = None
    for target in STAGED_ATTRIBUTES:
        spec = source.column_spec(target)
        if spec is None:
            values[target] = F.lit(None).cast("string")
            continue
        col, dtype = resolve_column(bronze, spec.column, f"{table} (source '{source.name}', {target})")
        values[target] = _as_text(col, dtype)
        if target == "phone":
            phone_region = spec.default_region
    dob_spec = source.column_spec("date_of_birth")
    if dob_spec is None:
        dob, dob_raw = F.lit(None).cast("date"), F.lit(None).cast("string")
    else:
        col, dtype = resolve_column(bronze, dob_spec.column, f"{table} (source '{source.name}', date_of_birth)")
        dob, dob_raw = _date(col, dtype, _formats(source, dob_spec)), _as_text(col, dtype)
    if source.updated_at is None:
        updated, updated_raw = F.lit(None).cast("timestamp"), F.lit(None).cast("string")
    else:
        col, dtype = resolve_column(bronze, source.updated_at.column, f"{table} (source '{source.name}', updated_at)")
        updated, updated_raw = _timestamp(col, dtype, _formats(source, source.updated_at)), _as_text(col, dtype)

    record_id = F.col("_source_record_id").cast("string")
    staged = bronze.where(record_id.isNotNull()).select(
        F.concat(F.lit(f"{source.name}:"), record_id).alias("record_key"),
        F.lit(source.name).alias("source"),
        record_id.alias("source_record_id"),
        *[values[t].alias(t) for t in STAGED_ATTRIBUTES],
        dob.alias("date_of_birth"),
        dob_raw.alias("_raw_date_of_birth"),
        updated.alias("updated_at"),
        updated_raw.alias("_raw_updated_at"),
        F.lit(source.default_country).cast("string").alias("_default_country"),
        F.lit(phone_region).cast("string").alias("_phone_region"),
        F.col("_batch_id").cast("string").alias("_batch_id"),
        F.col("_row_hash").cast("string").alias("_row_hash"),
        F.col("_ingested_at").cast("timestamp").alias("_ingested_at"),
    )
    return latest_versions(staged)


def latest_versions(staged: DataFrame) -> DataFrame:
    """One row per record_key: the newest by updated_at (unknown last), then _ingested_at, then
    batch and row hash so a tie is still decided the same way on every run."""
    order = Window.partitionBy("record_key").orderBy(
        F.col("updated_at").desc_nulls_last(),
        F.col("_ingested_at").desc_nulls_last(),
        F.col("_batch_id").desc_nulls_last(),
        F.col("_row_hash").desc_nulls_last(),
    )
    return staged.withColumn("_version", F.row_number().over(order)).where(F.col("_version") == 1).drop("_version")


def build_records(spark: SparkSession, cfg: CdiConfig, lake: Lake) -> DataFrame:
    """``silver/records`` as a DataFrame (no action): every customer source staged, unioned, standardised."""
    sources = cfg.customer_sources
    if not sources:
        raise ValueError(f"{cfg.config_file or 'config'}: no source of kind 'customers'; silver/records needs at least one")
    staged = []
    for source in sources:
        table = bronze_table(source)
        if not lake.exists(table):
            raise MappingError(f"{table} does not exist in {lake.root}: run `cdi ingest` for source '{source.name}' first")
        check_formats(spark, source)
        staged.append(stage_source(lake.read(table), source))
    columns = [name for name, _ in STAGED_COLUMNS]
    union = reduce(lambda a, b: a.unionByName(b), [s.select(*columns) for s in staged])
    return standardise_records(union)


def write_records(spark: SparkSession, cfg: CdiConfig, lake: Lake) -> int:
    """Rebuild ``silver/records`` (overwrite, operation STANDARDISE); returns the rows written."""
    records = build_records(spark, cfg, lake)
    sources = [s.name for s in cfg.customer_sources]
    lake.write(RECORDS_TABLE, records, mode="overwrite", operation=OPERATION, allow_new_columns=True,
               metadata={"sources": sources})
    rows = lake.read(RECORDS_TABLE).count()  # stage boundary: Parquet footers answer the count
    log.info("%s: %d records from %d source(s) %s", RECORDS_TABLE, rows, len(sources), sources)
    return rows
