"""``silver/records``: one standardised row per live source customer record.

For every customer source, ``bronze/<source>`` is read through the lake, each mapping is
resolved (a column name, or a dotted path into a struct, a map or a JSON string such as
"address.city"; several columns joined; or a Spark SQL expression), the latest version of each source record is kept (by the source's parsed
``updated_at``, then ``_ingested_at``; a record whose latest ingested row is a tombstone, deleted
from a snapshot source, is left out: :func:`cdi.silver.columns.live_rows`), and the sources are unioned and standardised once by
:func:`cdi.silver.standardise.standardise_records`. Text sources hold strings and Parquet sources
native types; everything is read as text except dates and timestamps already typed as such.

    >>> rows = write_records(Lake(spark, cfg.lake_root, job="link"), cfg.customer_sources)  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import reduce

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from cdi import schema
from cdi.config import DATE_ATTRIBUTES, SourceConfig
from cdi.errors import ConfigError, SourceMappingError
from cdi.lake import Lake
from cdi.silver.columns import as_text, formats_of, live_rows, resolve_column, resolve_spec, typed_date, typed_timestamp
from cdi.silver.name_order import decide_name_orders, put_given_names_first
from cdi.silver.standardise import STAGED_ATTRIBUTES, STAGED_COLUMNS, standardise_records

log = logging.getLogger(__name__)

RECORDS_TABLE = schema.RECORDS
OPERATION = "STANDARDISE"


def check_formats(spark: SparkSession, source: SourceConfig) -> None:
    """Fail early, naming the source and field, on a datetime pattern Spark cannot compile.

    Runs one tiny query on a literal row (no data): a bad pattern would otherwise fail the whole
    stage later with an error that does not say which source it came from.
    """
    specs = {"updated_at": source.updated_at, **{name: source.column_spec(name) for name in DATE_ATTRIBUTES}}
    for target, spec in specs.items():
        if spec is None:
            continue
        for fmt in formats_of(source, spec):
            try:
                spark.range(1).select(F.try_to_timestamp(F.lit("2000-01-01"), F.lit(fmt))).collect()
            except Exception as exc:
                raise SourceMappingError(
                    f"source '{source.name}': {target} format {fmt!r} is not a valid Spark datetime pattern "
                    f"(see Spark's 'Datetime Patterns' page; e.g. dd.MM.yyyy): {str(exc).splitlines()[0]}"
                ) from None


def stage_source(bronze: DataFrame, source: SourceConfig) -> DataFrame:
    """The latest version of each record of one source, as the staged raw text that
    :func:`~cdi.silver.standardise.standardise_records` expects (:data:`STAGED_COLUMNS`)."""
    return latest_versions(source_rows(bronze, source))


def source_rows(bronze: DataFrame, source: SourceConfig) -> DataFrame:
    """Every live bronze row of one source as staged raw text (all versions of a record)."""
    table = schema.bronze(source.name)
    missing = [c for c in schema.REQUIRED_LINEAGE if c not in bronze.columns]
    if missing:
        raise SourceMappingError(f"{table}: lineage column(s) {missing} are missing; re-ingest the source with `cdi ingest`")
    values: dict[str, Column] = {}
    phone_region = None
    for target in STAGED_ATTRIBUTES:
        spec = source.column_spec(target)
        if spec is None:
            values[target] = F.lit(None).cast("string")
            continue
        col, dtype = resolve_spec(bronze, spec, f"{table} (source '{source.name}', {target})")
        values[target] = as_text(col, dtype)
        if target == "phone":
            phone_region = spec.default_region
    dates: list[Column] = []
    for target in DATE_ATTRIBUTES:  # parsed with the source's own formats; the raw text kept for the flags
        spec = source.column_spec(target)
        if spec is None:
            dates += [F.lit(None).cast("date").alias(target), F.lit(None).cast("string").alias(f"_raw_{target}")]
            continue
        col, dtype = resolve_spec(bronze, spec, f"{table} (source '{source.name}', {target})")
        dates += [typed_date(col, dtype, formats_of(source, spec)).alias(target), as_text(col, dtype).alias(f"_raw_{target}")]
    if source.updated_at is None:
        updated, updated_raw = F.lit(None).cast("timestamp"), F.lit(None).cast("string")
    else:
        col, dtype = resolve_column(bronze, source.updated_at.column, f"{table} (source '{source.name}', updated_at)")
        updated, updated_raw = typed_timestamp(col, dtype, formats_of(source, source.updated_at)), as_text(col, dtype)

    references = reference_keys(bronze, source, table)
    record_id = F.col("_source_record_id").cast("string")
    staged = live_rows(bronze).where(record_id.isNotNull()).select(
        F.concat(F.lit(f"{source.name}:"), record_id).alias("record_key"),
        F.lit(source.name).alias("source"),
        record_id.alias("source_record_id"),
        *[values[t].alias(t) for t in STAGED_ATTRIBUTES],
        *dates,
        updated.alias("updated_at"),
        updated_raw.alias("_raw_updated_at"),
        references.alias("reference_keys"),
        F.lit(source.default_country).cast("string").alias("_default_country"),
        F.lit(phone_region).cast("string").alias("_phone_region"),
        F.col("_batch_id").cast("string").alias("_batch_id"),
        F.col("_row_hash").cast("string").alias("_row_hash"),
        F.col("_ingested_at").cast("timestamp").alias("_ingested_at"),
    )
    return staged


def reference_keys(bronze: DataFrame, source: SourceConfig, table: str) -> Column:
    """The record keys the source's cross-reference columns name (``<source>:<id>``, a composite
    id joined by "|" as bronze joins it, and only when every part is there; blank values name
    nothing), null when there are none."""
    keys = []
    for ref in source.references:
        parts = []
        for c in ref.columns():
            col, dtype = resolve_column(bronze, c, f"{table} (source '{source.name}', references to '{ref.source}')")
            parts.append(F.nullif(F.trim(as_text(col, dtype)), F.lit("")))
        # a composite id with a part missing names no record: concat, unlike concat_ws, is then null
        value = F.concat(*[x for p in parts for x in (F.lit("|"), p)][1:])
        keys.append(F.when(value.isNotNull(), F.concat(F.lit(f"{ref.source}:"), value)))
    if not keys:
        return F.lit(None).cast("array<string>")
    return F.nullif(F.array_distinct(F.array_compact(F.array(*keys))), F.array().cast("array<string>"))


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


def build_records(lake: Lake, sources: Sequence[SourceConfig]) -> DataFrame:
    """``silver/records`` as a DataFrame: every customer source staged, unioned, names put given
    name first where a source writes them the other way round (one aggregate decides, see
    :mod:`cdi.silver.name_order`), standardised."""
    if not sources:
        raise ConfigError("no source of kind 'customers' is configured; silver/records needs at least one")
    staged = []
    for source in sources:
        table = schema.bronze(source.name)
        if not lake.exists(table):
            raise SourceMappingError(f"{table} does not exist in {lake.root}: run `cdi ingest` for source '{source.name}' first")
        check_formats(lake.spark, source)
        staged.append(source_rows(lake.read(table), source))
    columns = [name for name, _ in STAGED_COLUMNS]
    # the name order is decided on the rows as read (no window for the latest versions to run twice)
    orders = decide_name_orders(reduce(lambda a, b: a.unionByName(b), [s.select(*columns) for s in staged]), sources)
    union = reduce(lambda a, b: a.unionByName(b), [latest_versions(s).select(*columns) for s in staged])
    return standardise_records(put_given_names_first(union, orders))


def write_records(lake: Lake, sources: Sequence[SourceConfig]) -> int:
    """Rebuild ``silver/records`` (overwrite, operation STANDARDISE); returns the rows written."""
    records = build_records(lake, sources)
    names = [s.name for s in sources]
    lake.write(RECORDS_TABLE, records, mode="overwrite", operation=OPERATION, allow_new_columns=True,
               metadata={"sources": names})
    rows = lake.read(RECORDS_TABLE).count()  # stage boundary: Parquet footers answer the count
    log.info("%s: %d records from %d source(s) %s", RECORDS_TABLE, rows, len(names), names)
    return rows
