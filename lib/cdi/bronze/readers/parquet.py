"""Parquet files, read with their own types (``mergeSchema`` across the batch's files).

``_source_line`` is the row's 1-based position in its file (``_metadata.row_index``), and a
quarantined row's ``_raw`` is the row as JSON. A file's columns (for the drift check) come from
its footer.

    >>> batch = read_parquet(spark, source, files)  # doctest: +SKIP
"""

from __future__ import annotations

import pyarrow.fs as pafs
import pyarrow.parquet as pq
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from cdi.config import SourceConfig
from cdi.errors import SourceSchemaError
from cdi.sql import identifier

from .. import lineage as L
from ..files import SourceFile, local_path
from ..ledger import file_unit
from .batch import SourceBatch


def footer_columns(uri: str) -> list[str]:
    """Column names in a Parquet file's footer (reads the footer only)."""
    path = local_path(uri)
    if path is not None:
        return list(pq.read_schema(path).names)
    fs, inner = pafs.FileSystem.from_uri(uri)
    with fs.open_input_file(inner) as handle:
        return list(pq.read_schema(handle).names)


def read_parquet(spark: SparkSession, source: SourceConfig, files: list[SourceFile]) -> SourceBatch:
    data = spark.read.option("mergeSchema", "true").parquet(*[f.path for f in files])
    names = data.columns
    clash = sorted(set(names) & L.RESERVED)
    if clash:
        raise SourceSchemaError(
            f"source '{source.name}': the files have column(s) {clash}, names reserved for lineage; rename them"
        )
    df = data.select(
        *[F.col(identifier(n)) for n in names],
        F.col("_metadata.file_path").alias(L.SOURCE_FILE),
        (F.col("_metadata.row_index") + 1).alias(L.SOURCE_LINE),
        F.lit(None).cast("string").alias(L.RAW),
        F.lit(None).cast("binary").alias(L.RAW_BYTES),
        F.lit(None).cast("string").alias(L.PARSE_ERROR),
    )
    return SourceBatch(
        df=df,
        columns=names,
        units=[file_unit(f) for f in files],
        columns_per_unit={f.uri: footer_columns(f.uri) for f in files},
        raw=F.to_json(F.struct(*[F.col(identifier(n)) for n in names])),
    )
