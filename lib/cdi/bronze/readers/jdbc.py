"""A database table or query read with Spark's JDBC reader.

Typed columns keep the database's types (add ``options.customSchema`` to read some as text).

*Incremental* (``jdbc.watermark_column`` set): each read asks for rows whose watermark is at
or after the last committed high watermark (``>=``, not ``>``, so rows committed late with the
same value as the last one are not missed); the boundary rows read twice equal their record's
current version in bronze and are counted unchanged. The new high watermark is the database's own text of the
largest value read (``CAST(col AS VARCHAR)``, picked with ``max_by`` on the typed value), so it
round-trips exactly into the next ``WHERE`` whatever the time zones of Spark and the database.

*Full* (no watermark column): every read returns the whole table; rows equal to their record's
current version in bronze are skipped, so a re-read adds only new and changed rows and never
duplicates. With ``load: snapshot`` the rows the table no longer has are deleted
(:mod:`cdi.bronze.snapshots`).

The driver jar (``jdbc.jar``, Debian's ``/usr/share/java/postgresql.jar`` by default) is added
to the running session with ``ADD JAR`` unless the session already has it (e.g. ``spark.jars``).

    >>> batch = read_jdbc(spark, source, last_watermark="2024-01-05 10:00:00")  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os

from pyspark.errors import PySparkException
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from cdi.config import JdbcConfig, SourceConfig
from cdi.errors import SourceReadError, SourceSchemaError
from cdi.sql import identifier, literal, plain_identifier

from .. import lineage as L
from ..ledger import Unit
from .batch import SourceBatch, text_options

log = logging.getLogger(__name__)

WATERMARK_TEXT = "cdi_watermark_text"


def location(jdbc: JdbcConfig) -> str:
    """Where rows came from, without credentials (URL parameters are dropped)."""
    return f"{jdbc.url.split('?', 1)[0]}#{jdbc.table or 'query'}"


def ensure_driver(spark: SparkSession, jdbc: JdbcConfig) -> None:
    """Put the driver jar on the session's classpath (driver and executors) once."""
    jar_name = os.path.basename(jdbc.jar)
    loaded = spark.sparkContext._jsc.sc().listJars().mkString("\n")
    if jar_name and jar_name in loaded:
        return
    if "://" not in jdbc.jar and not os.path.exists(jdbc.jar):
        raise SourceReadError(
            f"JDBC driver jar {jdbc.jar} not found: install it (Debian: apt-get install libpostgresql-jdbc-java) "
            "or point jdbc.jar at the driver's jar"
        )
    spark.sql(f"ADD JAR {literal(jdbc.jar)}")
    log.info("added JDBC driver jar %s to the Spark session", jdbc.jar)


def relation(jdbc: JdbcConfig, last_watermark: str | None) -> str:
    """The ``dbtable`` Spark reads: the table, or a subquery selecting the rows to read."""
    if not jdbc.watermark_column:
        return jdbc.table if jdbc.table else f"({jdbc.query}) cdi_src"
    base = jdbc.table if jdbc.table else f"({jdbc.query})"
    wm = plain_identifier(jdbc.watermark_column)
    sql = f"SELECT s.*, CAST(s.{wm} AS VARCHAR(64)) AS {WATERMARK_TEXT} FROM {base} s"
    if last_watermark is not None:
        sql += f" WHERE s.{wm} >= {literal(last_watermark, 'ansi')}"
    return f"({sql}) cdi_src"


def read_jdbc(spark: SparkSession, source: SourceConfig, last_watermark: str | None) -> SourceBatch:
    jdbc = source.jdbc
    assert jdbc is not None  # guaranteed by SourceConfig validation
    ensure_driver(spark, jdbc)
    reader = (
        spark.read.format("jdbc")
        .option("url", jdbc.url)
        .option("dbtable", relation(jdbc, last_watermark))
        .option("driver", jdbc.driver)
        .option("fetchsize", str(jdbc.fetch_size))
    )
    if jdbc.user is not None:
        reader = reader.option("user", jdbc.user)
    if jdbc.password is not None:  # a connection property, never part of the URL
        reader = reader.option("password", jdbc.password)
    for key, value in text_options(source, ()).items():
        reader = reader.option(key, value)
    where = location(jdbc)
    try:
        data = reader.load()  # asks the database for the result's columns
    except PySparkException as exc:
        raise SourceReadError(f"source '{source.name}': cannot read {where}: {exc}") from exc
    names = [c for c in data.columns if c != WATERMARK_TEXT]
    clash = sorted(set(names) & L.RESERVED)
    if clash:
        raise SourceSchemaError(f"source '{source.name}': {where} has column(s) {clash}, names reserved for lineage")
    watermark = None
    if jdbc.watermark_column:
        wm_col = next((c for c in names if c.lower() == jdbc.watermark_column.lower()), None)
        if wm_col is None:
            raise SourceSchemaError(
                f"source '{source.name}': {where} has no column '{jdbc.watermark_column}' (jdbc.watermark_column)"
            )
        watermark = F.max_by(F.col(WATERMARK_TEXT), F.col(identifier(wm_col)))
    df = data.select(
        *[F.col(identifier(n)) for n in names],
        *([F.col(WATERMARK_TEXT)] if watermark is not None else []),
        F.lit(where).alias(L.SOURCE_FILE),
        F.lit(None).cast("long").alias(L.SOURCE_LINE),
        F.lit(None).cast("string").alias(L.RAW),
        F.lit(None).cast("binary").alias(L.RAW_BYTES),
        F.lit(None).cast("string").alias(L.PARSE_ERROR),
    )
    return SourceBatch(
        df=df,
        columns=names,
        units=[Unit(where)],
        columns_per_unit={where: names},
        raw=F.to_json(F.struct(*[F.col(identifier(n)) for n in names])),
        dedupe=True,
        watermark=watermark,
        notes={"since": last_watermark} if last_watermark else {},
    )
