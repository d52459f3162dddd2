"""One reader per source format; each returns a :class:`SourceBatch` of the rows not yet ingested.

Every reader gives the same shape: the source's own columns (text formats: strings exactly as
written; typed formats: their types) plus ``_source_file``, ``_source_line`` (null where there is
none), ``_raw`` (the decoded text line; null for typed formats), ``_raw_bytes`` (the bytes of a
line that did not decode) and ``_parse_error`` (``<code>: <detail>`` for a line that did not
parse). Validation, lineage and writing are the same for all formats (:mod:`cdi.bronze.ingest`).

    >>> batch = read_source(spark, source, lake, ledger)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from pyspark.sql import Column, DataFrame, SparkSession

from cdi.config import SourceConfig
from cdi.lake import Lake

from cdi.errors import SourceReadError
from ..files import list_files
from ..ledger import IngestLedger, Unit

ColumnsPerUnit = dict[str, list[str]] | Callable[[DataFrame], dict[str, list[str]]]


@dataclass
class SourceBatch:
    """The rows of one batch of a source, before validation."""

    df: DataFrame
    columns: list[str]  # the source's own columns, in source order
    units: list[Unit]  # what the batch consumes (ledger rows once committed)
    columns_per_unit: ColumnsPerUnit  # for the drift check; a function of the (cached) checked frame
    raw: Column  # the quarantine's _raw: the text line, or the row as JSON
    dedupe: bool = False  # snapshot sources: rows whose _row_hash is already in bronze are skipped
    watermark: Column | None = None  # aggregate: the batch's new high watermark (JDBC)
    notes: dict[str, str] = field(default_factory=dict)

    def unit_columns(self, checked: DataFrame) -> dict[str, list[str]]:
        return self.columns_per_unit(checked) if callable(self.columns_per_unit) else self.columns_per_unit


FILE_FORMATS = ("csv", "json", "parquet")


def read_source(spark: SparkSession, source: SourceConfig, lake: Lake, ledger: IngestLedger) -> SourceBatch | None:
    """The source's new rows, or None when there is nothing new."""
    if source.format in FILE_FORMATS:
        files = list_files(spark, source)
        if not files:
            if ledger.entries(source.name):
                return None
            raise SourceReadError(
                f"source '{source.name}': no files at {source.path}; check the path in {source.origin or 'the config'}"
            )
        new = [f for f in files if not ledger.is_ingested(source.name, f)]
        if not new:
            return None
        if source.format == "csv":
            from .csv import read_csv

            return read_csv(spark, source, new)
        if source.format == "json":
            from .json_lines import read_json_lines

            return read_json_lines(spark, source, new)
        from .parquet import read_parquet

        return read_parquet(spark, source, new)
    if source.format == "delta":
        from .delta import read_delta

        return read_delta(spark, source, lake, ledger.last_table_version(source.name))
    if source.format == "jdbc":
        from .jdbc import read_jdbc

        return read_jdbc(spark, source, ledger.last_watermark(source.name))
    raise SourceReadError(f"source '{source.name}': unknown format {source.format!r}")


def text_options(source: SourceConfig, handled: tuple[str, ...]) -> dict[str, str]:
    """The source's options as Spark option strings, without the ones a reader handles itself."""
    from ..files import LISTING_OPTIONS

    out = {}
    for key, value in source.options.items():
        if key in handled or key in LISTING_OPTIONS:
            continue
        out[key] = str(value).lower() if isinstance(value, bool) else str(value)
    return out


def option(source: SourceConfig, *names: str, default=None):
    for name in names:
        if name in source.options:
            return source.options[name]
    return default
