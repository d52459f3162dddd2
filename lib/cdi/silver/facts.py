"""``silver/facts``: the bronze tables of fact sources (orders, POS transactions, invoices,
payments, tickets, marketing responses) read into one typed shape, with the same parsers as
``silver/records``, so gold never looks at a source's own column names or formats.

Bronze keeps every ingested version of a source row (one per batch). A fact is the *latest*
version of its ``_source_record_id`` (greatest ``_ingested_at``, then ``_batch_id``), so a ticket
that was open in Monday's file and closed in Tuesday's counts once, as closed; a fact whose
latest version is a tombstone (deleted from a ``load: snapshot`` source) is left out.

Parsing rules (the ones customer records use, see :mod:`cdi.silver.standardise`):

* timestamps: typed dates and timestamps are kept; text is read with the mapping's ``formats``
  (Spark datetime patterns), then ISO-8601, then epoch seconds or milliseconds; numbers are
  epoch seconds or milliseconds; anything else becomes null;
* amounts: :func:`~cdi.silver.standardise.parse_amount` ("1.234,56" and "1,234.56" are
  1234.56, "52.000" is 52000, "€1.234,56" is 1234.56 in EUR); an unreadable amount is null;
* consent flags: Y/YES/TRUE/T/1 are true, N/NO/FALSE/F/0 false, anything else null (unknown);
* currency: the ISO code of the currency column (a code or a symbol: "zł" is PLN), else the
  currency written in the amount, else ``customer_360.source_currencies[source]``, else the
  reporting currency. A currency column value that is no known code stays as written (upper
  case), so the 360 counts it as unconvertible instead of guessing.

    >>> facts = canonical_facts(lake.read("bronze/webshop"), cfg.source("webshop"), "EUR")  # doctest: +SKIP
    >>> write_facts(lake, cfg.fact_sources, cfg.customer_360)  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import reduce

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import BooleanType, DataType, DoubleType, NumericType, StringType, TimestampType

from cdi import schema
from cdi.config import Customer360Config, MappedSpec, SourceConfig
from cdi.errors import ConfigError, FactMappingError
from cdi.lake import Lake
from cdi.silver.columns import as_text, formats_of, is_tombstone, resolve_column, resolve_spec, typed_timestamp
from cdi.silver.standardise import clean_text, currency_of_amount, parse_amount, standardise_currency

log = logging.getLogger(__name__)

PURCHASE_KINDS = ("orders", "transactions")
FLAG_FIELDS = ("consent_email", "consent_sms", "consent_phone")
OPERATION = "STANDARDISE FACTS"

_TRUE = ("Y", "YES", "TRUE", "T", "1")
_FALSE = ("N", "NO", "FALSE", "F", "0")


def parse_flag(col: Column) -> Column:
    """Y/N-style consent answers to a boolean; anything else is unknown (null)."""
    text = F.upper(F.trim(col.cast("string")))
    return F.when(text.isin(*_TRUE), F.lit(True)).when(text.isin(*_FALSE), F.lit(False))


def default_currency(settings: Customer360Config, source: str) -> str:
    """The currency of a source's amounts when neither a column nor the amount says it."""
    return settings.source_currencies.get(source, settings.currency)


class _Mapped:
    """The mapped columns of one fact source's bronze table, resolved once with their types."""

    def __init__(self, bronze: DataFrame, source: SourceConfig):
        self.bronze, self.source = bronze, source
        self.table = schema.bronze(source.name)
        self._tops = {c.lower() for c in bronze.columns}

    def column(self, column: str, role: str):
        if column.lower() not in self._tops and column.split(".")[0].lower() not in self._tops:
            where = f" (config {self.source.origin})" if self.source.origin else ""
            raise FactMappingError(
                f"{self.table}: {role} maps to column '{column}', which the table lacks "
                f"(columns: {', '.join(c for c in self.bronze.columns if not c.startswith('_'))}){where}. "
                "Fix the source's mapping or re-ingest the source."
            )
        return resolve_column(self.bronze, column, f"{self.table} ({role})")

    def mapped(self, spec: MappedSpec, role: str) -> tuple[Column, DataType]:
        """A mapping's value: every column it reads must exist (named in the error), then it is resolved."""
        for column in spec.source_columns():
            self.column(column, role)
        return resolve_spec(self.bronze, spec, f"{self.table} ({role})")

    def text(self, field: str) -> Column:
        spec = self.source.column_spec(field)
        if spec is None:
            return F.lit(None).cast(StringType())
        return clean_text(as_text(*self.mapped(spec, f"mapping.{field}")))

    def timestamp(self, field: str) -> Column:
        spec = self.source.column_spec(field)
        if spec is None:
            return F.lit(None).cast(TimestampType())
        col, dtype = self.mapped(spec, f"mapping.{field}")
        return typed_timestamp(col, dtype, formats_of(self.source, spec))

    def amount(self) -> tuple[Column, Column]:
        """(amount, currency written inside the amount text)."""
        spec = self.source.column_spec("amount")
        if spec is None:
            return F.lit(None).cast(DoubleType()), F.lit(None).cast(StringType())
        col, dtype = self.mapped(spec, "mapping.amount")
        if isinstance(dtype, NumericType):
            return col.cast(DoubleType()), F.lit(None).cast(StringType())
        text = as_text(col, dtype)
        return parse_amount(text), currency_of_amount(text)

    def flag(self, field: str) -> Column:
        spec = self.source.column_spec(field)
        if spec is None:
            return F.lit(None).cast(BooleanType())
        return parse_flag(as_text(*self.mapped(spec, f"mapping.{field}")))


def latest_versions(bronze: DataFrame) -> DataFrame:
    """One row per live ``_source_record_id``: the most recently ingested version, unless that is
    a tombstone (the fact left its snapshot source)."""
    order = Window.partitionBy(schema.RECORD_ID).orderBy(
        F.col(schema.INGESTED_AT).desc_nulls_last(), F.col(schema.BATCH_ID).desc_nulls_last()
    )
    latest = bronze.withColumn("__v", F.row_number().over(order)).where("__v = 1").drop("__v")
    return latest.where(~is_tombstone(latest))


def customer_ref(rows: DataFrame, source: SourceConfig) -> Column:
    """The customer reference of a fact source's rows, cleaned: ``<customer source>:`` + this is the
    ``record_key`` of the customer record a fact belongs to (bronze and ingest read it alike)."""
    if source.customer_ref is None:
        raise ConfigError(f"source '{source.name}' is not a fact source (it has no customer_ref)")
    return clean_text(as_text(*_Mapped(rows, source).column(source.customer_ref.column, "customer_ref.column")))


def canonical_facts(bronze: DataFrame, source: SourceConfig, currency: str) -> DataFrame:
    """The latest bronze rows of one fact source as canonical facts (:data:`cdi.schema.FACTS_SCHEMA`);
    ``currency`` is the source's default currency (:func:`default_currency`). No action."""
    if source.customer_ref is None:
        raise ConfigError(f"source '{source.name}' is not a fact source (it has no customer_ref)")
    m = _Mapped(bronze, source)
    ref = customer_ref(bronze, source)
    amount, amount_currency = m.amount()
    written = m.text("currency")
    currency_col = F.when(written.isNotNull(), F.coalesce(standardise_currency(written), F.upper(written)))
    channel = m.text("channel")
    if source.kind in PURCHASE_KINDS:
        channel = F.coalesce(F.lower(channel), F.lit(source.name))
    fact_id = m.text("fact_id") if source.column_spec("fact_id") else F.col(schema.RECORD_ID).cast(StringType())
    columns = {
        "fact_key": F.concat(F.lit(f"{source.name}:"), F.col(schema.RECORD_ID).cast(StringType())),
        "source": F.lit(source.name),
        "kind": F.lit(source.kind),
        "record_key": F.concat(F.lit(f"{source.customer_ref.source}:"), ref),
        "fact_id": fact_id,
        "customer_ref": ref,
        "event_at": m.timestamp("event_at"),
        "amount": amount,
        "currency": F.coalesce(currency_col, amount_currency, F.lit(currency)),
        "channel": channel,
        "status": F.lower(m.text("status")),
        "due_at": m.timestamp("due_at"),
        "closed_at": m.timestamp("closed_at"),
        "campaign": m.text("campaign"),
        "subject": m.text("subject"),
        "reference_id": m.text("reference_id"),
        **{flag: m.flag(flag) for flag in FLAG_FIELDS},
        schema.BATCH_ID: F.col(schema.BATCH_ID),
        schema.INGESTED_AT: F.col(schema.INGESTED_AT),
    }
    latest = latest_versions(bronze)
    return latest.select(*[columns[f.name].cast(f.dataType).alias(f.name) for f in schema.FACTS_SCHEMA.fields])


def read_facts(lake: Lake, source: SourceConfig, settings: Customer360Config) -> DataFrame:
    """Canonical facts of one configured fact source, from ``bronze/<source>``."""
    return canonical_facts(lake.read(schema.bronze(source.name)), source, default_currency(settings, source.name))


def build_facts(lake: Lake, sources: Sequence[SourceConfig], settings: Customer360Config) -> DataFrame:
    """``silver/facts`` as a DataFrame (no action): every fact source with a bronze table, unioned.
    A fact source not ingested yet is logged and left out."""
    frames = []
    for source in sources:
        if not lake.exists(schema.bronze(source.name)):
            log.warning("fact source '%s' has no bronze table yet (%s): skipped", source.name, schema.bronze(source.name))
            continue
        frames.append(read_facts(lake, source, settings))
    if not frames:
        return lake.spark.createDataFrame([], schema.FACTS_SCHEMA)
    return reduce(DataFrame.unionByName, frames)


def write_facts(lake: Lake, sources: Sequence[SourceConfig], settings: Customer360Config) -> int:
    """Rebuild ``silver/facts`` (overwrite); returns the rows written."""
    names = [s.name for s in sources]
    lake.write(schema.FACTS, build_facts(lake, sources, settings), mode="overwrite", operation=OPERATION,
               allow_new_columns=True, metadata={"sources": names})
    rows = lake.read(schema.FACTS).count()  # stage boundary: Parquet footers answer the count
    log.info("%s: %d facts from %d source(s) %s", schema.FACTS, rows, len(names), names)
    return rows


def read_silver_facts(lake: Lake) -> DataFrame:
    """``silver/facts``, or no facts when the link stage has not written it yet."""
    return lake.read_or_empty(schema.FACTS, schema.FACTS_SCHEMA)
