"""A Delta table as a source (another team's table, an export): read through :class:`Lake`.

When the table's version moved since the last committed batch, the whole table is read; only
rows that differ from their record's current version in ``bronze/<source>`` are added (new and
changed rows). With ``load: snapshot`` the records it no longer has are deleted
(:mod:`cdi.bronze.snapshots`). The ledger keeps the version read.

    >>> batch = read_delta(spark, source, lake, last_version=3)  # doctest: +SKIP
"""

from __future__ import annotations

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from cdi.config import SourceConfig
from cdi.errors import SourceReadError, SourceSchemaError
from cdi.lake import Lake
from cdi.sql import identifier

from .. import lineage as L
from ..files import file_uri
from ..ledger import Unit
from .batch import SourceBatch


def read_delta(spark: SparkSession, source: SourceConfig, lake: Lake, last_version: int | None) -> SourceBatch | None:
    location = (source.path or "").rstrip("/")  # the config requires a path for delta sources
    parent, _, name = location.rpartition("/")
    table_lake = Lake(spark, parent or "/", job=lake.ctx.job, run_id=lake.ctx.run_id, engine=lake.engine)
    if not table_lake.exists(name):
        raise SourceReadError(
            f"source '{source.name}': no Delta table at {source.path}; check the path in {source.origin or 'the config'}"
        )
    version = table_lake.version(name)
    if last_version is not None and version == last_version:
        return None
    data = table_lake.read(name, version=version)
    names = data.columns
    clash = sorted(set(names) & L.RESERVED)
    if clash:
        raise SourceSchemaError(f"source '{source.name}': table {source.path} has column(s) {clash}, names reserved for lineage")
    uri = file_uri(spark, location)
    df = data.select(
        *[F.col(identifier(n)) for n in names],
        F.lit(uri).alias(L.SOURCE_FILE),
        F.lit(None).cast("long").alias(L.SOURCE_LINE),
        F.lit(None).cast("string").alias(L.RAW),
        F.lit(None).cast("binary").alias(L.RAW_BYTES),
        F.lit(None).cast("string").alias(L.PARSE_ERROR),
    )
    return SourceBatch(
        df=df,
        columns=names,
        units=[Unit(uri, table_version=version)],
        columns_per_unit={uri: names},
        raw=F.to_json(F.struct(*[F.col(identifier(n)) for n in names])),
        dedupe=True,
        notes={"version": str(version)},
    )
