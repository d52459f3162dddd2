"""One reader per source format; each returns a :class:`SourceBatch` of the rows not yet ingested.

Every reader gives the same shape: the source's own columns (text formats: strings exactly as
written; typed formats: their types) plus ``_source_file``, ``_source_line`` (null where there is
none), ``_raw`` (the decoded text line; null for typed formats), ``_raw_bytes`` (the bytes of a
line that did not decode) and ``_parse_error`` (``<code>: <detail>`` for a line that did not
parse). Validation, lineage and writing are the same for all formats (:mod:`cdi.bronze.ingest`).

A format is one entry of :data:`READERS`: a function of (spark, source, lake, ledger) that returns
the batch or None when nothing is new. File formats are registered through :func:`_files`, which
lists the files and leaves out the ones the ledger has already ingested.

    >>> batch = read_source(spark, source, lake, ledger)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable

from pyspark.sql import SparkSession

from cdi.config import SourceConfig
from cdi.errors import SourceReadError
from cdi.lake import Lake

from ..files import SourceFile, list_files
from ..ledger import IngestLedger
from .batch import SourceBatch, option, text_options
from .csv import read_csv
from .delta import read_delta
from .jdbc import read_jdbc
from .json_lines import read_json_lines
from .parquet import read_parquet

Reader = Callable[[SparkSession, SourceConfig, Lake, IngestLedger], SourceBatch | None]
FileReader = Callable[[SparkSession, SourceConfig, list[SourceFile]], SourceBatch]


def _files(read: FileReader) -> Reader:
    """A reader of a file format: the files not yet ingested, or None; no files at all is an error
    unless earlier batches found some (they may have been moved away since)."""

    def reader(spark: SparkSession, source: SourceConfig, lake: Lake, ledger: IngestLedger) -> SourceBatch | None:
        files = list_files(spark, source)
        if not files:
            if ledger.entries(source.name):
                return None
            raise SourceReadError(
                f"source '{source.name}': no files at {source.path}; check the path in {source.origin or 'the config'}"
            )
        new = [f for f in files if not ledger.is_ingested(source.name, f)]
        return read(spark, source, new) if new else None

    return reader


READERS: dict[str, Reader] = {
    "csv": _files(read_csv),
    "json": _files(read_json_lines),
    "parquet": _files(read_parquet),
    "delta": lambda spark, source, lake, ledger: read_delta(spark, source, lake, ledger.last_table_version(source.name)),
    "jdbc": lambda spark, source, lake, ledger: read_jdbc(spark, source, ledger.last_watermark(source.name)),
}
"""Source format (``format:`` in a source's config) -> its reader."""


def read_source(spark: SparkSession, source: SourceConfig, lake: Lake, ledger: IngestLedger) -> SourceBatch | None:
    """The source's new rows, or None when there is nothing new."""
    reader = READERS.get(source.format)
    if reader is None:
        raise SourceReadError(f"source '{source.name}': unknown format {source.format!r}; known: {', '.join(READERS)}")
    return reader(spark, source, lake, ledger)


__all__ = ["READERS", "Reader", "SourceBatch", "option", "read_source", "text_options"]
