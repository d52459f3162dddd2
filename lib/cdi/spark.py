"""One place that builds the SparkSession, so jobs, tests and notebooks run Spark alike.

Local mode is the default; a master given by ``spark-submit`` is respected. Splink's similarity
jar is always added (Splink's Spark backend needs its UDFs on the executors). Delta's session
extension is switched on only when the Delta classes are on the classpath; otherwise the lake
falls back to the ``deltalake`` engine (see :mod:`cdi.lake`).

    >>> spark = build_session(SparkSettings(master="local[2]"))  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from typing import Mapping

log = logging.getLogger(__name__)

DELTA_EXTENSION = "io.delta.sql.DeltaSparkSessionExtension"
DELTA_CATALOG = "org.apache.spark.sql.delta.catalog.DeltaCatalog"


class JavaMissingError(RuntimeError):
    """Raised before Spark starts when no Java runtime can be found."""


@dataclass(frozen=True)
class SparkSettings:
    """The Spark knobs the product cares about; everything else goes through ``conf``."""

    master: str | None = "local[2]"
    app_name: str = "cdi"
    shuffle_partitions: int = 8
    driver_memory: str | None = None
    checkpoint_dir: str | None = None
    conf: Mapping[str, str] = field(default_factory=dict)


def check_java() -> str:
    """Return the java executable, or say plainly that Java is missing (Spark's own error is cryptic)."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        candidate = os.path.join(java_home, "bin", "java")
        if os.path.exists(candidate):
            return candidate
    found = shutil.which("java")
    if not found:
        raise JavaMissingError(
            "Java was not found: Spark needs a Java 17 or 21 runtime. Install one "
            "(for example `apt-get install openjdk-17-jre-headless`) or set JAVA_HOME."
        )
    return found


def similarity_jar() -> str | None:
    """Path of Splink's Spark similarity jar shipped inside the splink wheel."""
    try:
        from splink.backends.spark import similarity_jar_location
    except ImportError:  # pragma: no cover - splink is a hard dependency
        return None
    return similarity_jar_location()


def delta_classes_available(spark) -> bool:
    """True when delta-spark's JVM classes are on the driver classpath (cheap: one class lookup)."""
    try:
        jvm = spark.sparkContext._jvm
        jvm.java.lang.Class.forName(DELTA_EXTENSION, True, jvm.Thread.currentThread().getContextClassLoader())
        return True
    except Exception:
        return False


def _submitted_master() -> str | None:
    """The master set by spark-submit (it exports it as a Spark conf system property)."""
    return os.environ.get("CDI_SPARK_MASTER") or None


def _jars_conf_has_delta(conf: Mapping[str, str]) -> bool:
    packages = conf.get("spark.jars.packages", "") + "," + conf.get("spark.jars", "")
    return "delta" in packages


def build_session(settings: SparkSettings | None = None):
    """Build (or reuse) the SparkSession for a run.

    When running under ``spark-submit`` an active SparkContext configuration already carries the
    master; we never override it.
    """
    from pyspark.sql import SparkSession

    settings = settings or SparkSettings()
    check_java()
    active = SparkSession.getActiveSession()
    if active is not None:
        _configure_runtime(active, settings)
        return active

    under_submit = "PYSPARK_GATEWAY_PORT" in os.environ or os.environ.get("SPARK_SUBMIT") == "1"
    builder = SparkSession.builder.appName(settings.app_name)
    if not under_submit and settings.master:
        builder = builder.master(_submitted_master() or settings.master)
    if settings.driver_memory and not under_submit:
        builder = builder.config("spark.driver.memory", settings.driver_memory)

    jars = [j for j in [similarity_jar()] if j]
    extra = dict(settings.conf)
    if extra.get("spark.jars"):
        jars.append(extra.pop("spark.jars"))
    submitted = _submitted_conf() if under_submit else {}
    if jars and not under_submit:
        builder = builder.config("spark.jars", ",".join(jars))
    base = {
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.adaptive.enabled": "true",
        "spark.sql.adaptive.coalescePartitions.enabled": "true",
        "spark.sql.shuffle.partitions": str(settings.shuffle_partitions),
        "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
        "spark.sql.parquet.datetimeRebaseModeInWrite": "CORRECTED",
        "spark.sql.parquet.int96RebaseModeInWrite": "CORRECTED",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.legacy.timeParserPolicy": "CORRECTED",
    }
    if _jars_conf_has_delta({**submitted, **extra}):
        base["spark.sql.extensions"] = DELTA_EXTENSION
        base["spark.sql.catalog.spark_catalog"] = DELTA_CATALOG
    base.update(extra)
    for key, value in base.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    if under_submit:
        _add_jars_to_running_driver(spark, jars, submitted.get("spark.jars", ""))
    _configure_runtime(spark, settings)
    return spark


def _submitted_conf() -> dict[str, str]:
    """The conf spark-submit gave the already running driver JVM (--jars, --packages, --conf)."""
    from pyspark import SparkConf, SparkContext

    SparkContext._ensure_initialized()  # attach to spark-submit's JVM so SparkConf sees its properties
    return dict(SparkConf().getAll())


def _add_jars_to_running_driver(spark, jars: list[str], submitted_jars: str) -> None:
    """Under spark-submit the driver JVM started before this code: setting ``spark.jars`` now would
    replace the jars of ``--jars``/``--packages`` on the executors and still miss the driver's class
    loader. ``ADD JAR`` reaches both, for jars spark-submit was not already given."""
    given = {os.path.basename(j) for j in submitted_jars.split(",") if j}
    for entry in jars:
        for jar in (j.strip() for j in entry.split(",")):
            if jar and os.path.basename(jar) not in given:
                spark.sql(f"ADD JAR '{jar}'")
                log.debug("added %s to the running driver and its executors", jar)


def _configure_runtime(spark, settings: SparkSettings) -> None:
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    spark.conf.set("spark.sql.shuffle.partitions", str(settings.shuffle_partitions))
    checkpoint_dir = settings.checkpoint_dir or os.path.join(tempfile.gettempdir(), "cdi-checkpoints")
    spark.sparkContext.setCheckpointDir(checkpoint_dir)
    engine = "delta-spark (native)" if delta_classes_available(spark) else "deltalake (delta-rs)"
    log.info(
        "spark session: master=%s, version=%s, storage engine=%s",
        spark.sparkContext.master,
        spark.version,
        engine,
    )
