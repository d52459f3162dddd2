"""Canonical facts: the bronze tables of fact sources (orders, POS transactions, invoices,
payments, tickets, marketing responses) read into one typed shape, so the customer 360 never
looks at a source's own column names or formats.

Bronze keeps every ingested version of a source row (one per batch). A fact is the *latest*
version of its ``_source_record_id`` (greatest ``_ingested_at``, then ``_batch_id``), so a ticket
that was open in Monday's file and closed in Tuesday's counts once, as closed.

Parsing rules (documented because they decide figures):

* timestamps: the mapping's ``formats`` (Spark datetime patterns) are tried in order, then
  Spark's ISO parser; an unparseable value becomes null;
* amounts: ``1234.5``, ``1,234.50`` and ``1.234,50`` / ``12,50`` (decimal comma) are read; an
  unparseable amount becomes null;
* consent flags: Y/YES/TRUE/T/1 are true, N/NO/FALSE/F/0 false, anything else null (unknown);
* currency: upper-cased ISO code; a source without a currency column uses
  ``customer_360.source_currencies[source]`` or else the reporting currency.

    >>> facts = read_facts(lake, cfg.source("webshop_orders"))  # doctest: +SKIP
    >>> priced = to_reporting_currency(facts, cfg.customer_360)  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from functools import reduce

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import (
    BooleanType,
    DateType,
    DoubleType,
    NumericType,
    StringType,
    StructField,
    StructType,
    TimestampNTZType,
    TimestampType,
)

from cdi.config import CdiConfig, Customer360Config, SourceConfig

log = logging.getLogger(__name__)

PURCHASE_KINDS = ("orders", "transactions")
TIMESTAMP_FIELDS = ("event_at", "due_at", "closed_at")
FLAG_FIELDS = ("consent_email", "consent_sms", "consent_phone")
TEXT_FIELDS = ("channel", "status", "campaign", "subject", "reference_id")

FACT_SCHEMA = StructType(
    [
        StructField("source", StringType()),
        StructField("kind", StringType()),
        StructField("fact_id", StringType()),
        StructField("customer_ref", StringType()),
        StructField("customer_record_key", StringType()),
        StructField("event_at", TimestampType()),
        StructField("amount", DoubleType()),
        StructField("currency", StringType()),
        StructField("channel", StringType()),
        StructField("status", StringType()),
        StructField("due_at", TimestampType()),
        StructField("closed_at", TimestampType()),
        StructField("campaign", StringType()),
        StructField("subject", StringType()),
        StructField("consent_email", BooleanType()),
        StructField("consent_sms", BooleanType()),
        StructField("consent_phone", BooleanType()),
        StructField("reference_id", StringType()),
    ]
)

_TRUE = ("Y", "YES", "TRUE", "T", "1")
_FALSE = ("N", "NO", "FALSE", "F", "0")


class FactMappingError(ValueError):
    """A fact source's mapping names a column its bronze table does not have."""


def parse_timestamp(col: Column, formats: list[str] | tuple[str, ...] = ()) -> Column:
    """First format that parses wins; then Spark's ISO parser; else null (never an error)."""
    text = F.trim(col.cast("string"))
    attempts = [F.try_to_timestamp(text, F.lit(fmt)) for fmt in formats]
    attempts.append(F.try_to_timestamp(text))
    return F.coalesce(*attempts)


def parse_amount(col: Column) -> Column:
    """A decimal amount from text with either decimal point or decimal comma; null if unreadable.

    ``1.234,50`` and ``12,50``: the last separator is a comma followed by 1-2 digits, so it is the
    decimal mark and dots are grouping. Otherwise commas are grouping (``1,234.50``).
    """
    text = F.regexp_replace(F.trim(col.cast("string")), r"[\s\u00a0']", "")
    decimal_comma = text.rlike(r"^[+-]?[0-9.]*,[0-9]{1,2}$")
    normalised = F.when(
        decimal_comma, F.regexp_replace(F.regexp_replace(text, r"\.", ""), ",", ".")
    ).otherwise(F.regexp_replace(text, ",", ""))
    return normalised.try_cast("double")


def parse_flag(col: Column) -> Column:
    """Y/N-style consent answers to a boolean; anything else is unknown (null)."""
    text = F.upper(F.trim(col.cast("string")))
    return F.when(text.isin(*_TRUE), F.lit(True)).when(text.isin(*_FALSE), F.lit(False))


def _blank_to_null(col: Column) -> Column:
    text = F.trim(col.cast("string"))
    return F.when(text != "", text)


def _source_column(bronze: DataFrame, source: SourceConfig, column: str, role: str) -> Column:
    top = column.split(".")[0]
    if top not in bronze.columns:
        where = f" (config {source.origin})" if source.origin else ""
        raise FactMappingError(
            f"bronze/{source.name}: {role} maps to column '{column}', which the table lacks "
            f"(columns: {', '.join(c for c in bronze.columns if not c.startswith('_'))}){where}. "
            "Fix the source's mapping or re-ingest the source."
        )
    return F.col(column) if "." in column else F.col(f"`{column}`")


def _typed_timestamp(bronze: DataFrame, source: SourceConfig, field: str) -> Column:
    spec = source.column_spec(field)
    if spec is None:
        return F.lit(None).cast(TimestampType())
    col = _source_column(bronze, source, spec.column, f"mapping.{field}")
    dtype = bronze.select(col).schema.fields[0].dataType
    if isinstance(dtype, (TimestampType, TimestampNTZType, DateType)):
        return col.cast(TimestampType())
    return parse_timestamp(col, spec.formats)


def _typed_amount(bronze: DataFrame, source: SourceConfig) -> Column:
    spec = source.column_spec("amount")
    if spec is None:
        return F.lit(None).cast(DoubleType())
    col = _source_column(bronze, source, spec.column, "mapping.amount")
    if isinstance(bronze.select(col).schema.fields[0].dataType, NumericType):
        return col.cast(DoubleType())
    return parse_amount(col)


def _text(bronze: DataFrame, source: SourceConfig, field: str) -> Column:
    spec = source.column_spec(field)
    if spec is None:
        return F.lit(None).cast(StringType())
    return _blank_to_null(_source_column(bronze, source, spec.column, f"mapping.{field}"))


def latest_versions(bronze: DataFrame) -> DataFrame:
    """One row per ``_source_record_id``: the most recently ingested version."""
    order = Window.partitionBy("_source_record_id").orderBy(
        F.col("_ingested_at").desc_nulls_last(), F.col("_batch_id").desc_nulls_last()
    )
    return bronze.withColumn("__v", F.row_number().over(order)).where("__v = 1").drop("__v")


def canonical_facts(bronze: DataFrame, source: SourceConfig, default_currency: str) -> DataFrame:
    """The bronze rows of one fact source as canonical facts (:data:`FACT_SCHEMA`)."""
    if source.customer_ref is None:
        raise ValueError(f"source '{source.name}' is not a fact source (it has no customer_ref)")
    ref = _blank_to_null(_source_column(bronze, source, source.customer_ref.column, "customer_ref.column"))
    fact_id = _text(bronze, source, "fact_id") if source.column_spec("fact_id") else F.col("_source_record_id")
    currency = F.upper(_text(bronze, source, "currency")) if source.column_spec("currency") else F.lit(None)
    channel = _text(bronze, source, "channel")
    if source.kind in PURCHASE_KINDS:
        channel = F.coalesce(F.lower(channel), F.lit(source.name))
    columns = {
        "source": F.lit(source.name),
        "kind": F.lit(source.kind),
        "fact_id": fact_id.cast(StringType()),
        "customer_ref": ref,
        "customer_record_key": F.concat(F.lit(f"{source.customer_ref.source}:"), ref),
        "event_at": _typed_timestamp(bronze, source, "event_at"),
        "amount": _typed_amount(bronze, source),
        "currency": F.coalesce(currency, F.lit(default_currency)),
        "channel": channel,
        "status": F.lower(_text(bronze, source, "status")),
        "due_at": _typed_timestamp(bronze, source, "due_at"),
        "closed_at": _typed_timestamp(bronze, source, "closed_at"),
        "campaign": _text(bronze, source, "campaign"),
        "subject": _text(bronze, source, "subject"),
        "reference_id": _text(bronze, source, "reference_id"),
    }
    for flag in FLAG_FIELDS:
        spec = source.column_spec(flag)
        columns[flag] = (
            parse_flag(_source_column(bronze, source, spec.column, f"mapping.{flag}"))
            if spec
            else F.lit(None).cast(BooleanType())
        )
    latest = latest_versions(bronze)
    return latest.select(*[columns[f.name].cast(f.dataType).alias(f.name) for f in FACT_SCHEMA.fields])


def read_facts(lake, cfg: CdiConfig, source: SourceConfig) -> DataFrame:
    """Canonical facts of one configured fact source, from ``bronze/<source>``."""
    default_currency = cfg.customer_360.source_currencies.get(source.name, cfg.customer_360.currency)
    return canonical_facts(lake.read(f"bronze/{source.name}"), source, default_currency)


def read_all_facts(lake, cfg: CdiConfig) -> DataFrame:
    """Canonical facts of every fact source that has a bronze table (missing ones are logged)."""
    frames = []
    for source in cfg.fact_sources:
        if not lake.exists(f"bronze/{source.name}"):
            log.warning("fact source '%s' has no bronze table yet (bronze/%s): skipped", source.name, source.name)
            continue
        frames.append(read_facts(lake, cfg, source))
    if not frames:
        return lake.spark.createDataFrame([], FACT_SCHEMA)
    return reduce(DataFrame.unionByName, frames)


def to_reporting_currency(facts: DataFrame, settings: Customer360Config) -> DataFrame:
    """Add ``amount_reporting`` (amount x rate) and ``convertible`` (rate known, or no amount).

    A fact whose currency is not in ``rates`` keeps ``amount_reporting`` null and
    ``convertible = false``: it still counts as an order, but adds nothing to revenue, and the
    run reports it per source in ``gold/unmatched_facts.unconvertible``.
    """
    rates = {settings.currency: 1.0, **{k.upper(): float(v) for k, v in settings.rates.items()}}
    rate_map = F.create_map(*[x for code, rate in sorted(rates.items()) for x in (F.lit(code), F.lit(rate))])
    rate = F.when(F.col("currency").isin(*rates), F.element_at(rate_map, F.col("currency")))
    return facts.withColumn("amount_reporting", (F.col("amount") * rate).cast(DoubleType())).withColumn(
        "convertible", F.col("amount").isNull() | rate.isNotNull()
    )
