"""One place that builds the SparkSession, so jobs, tests and notebooks run Spark alike.

Local mode is the default; a master given by ``spark-submit`` is respected. Splink's similarity
jar is always added (Splink's Spark backend needs its UDFs on the executors).

Delta Lake means delta-spark: outside ``spark-submit`` the session asks for the jars matching
the installed pyspark and delta-spark through ``spark.jars.packages`` (what
``configure_spark_with_delta_pip`` does; Ivy resolves them from Maven Central into its cache,
which ``install.sh`` fills). Under ``spark-submit`` the jars come from ``--packages``/``--jars``.
Only when they cannot be had (``storage.engine: auto`` and no jars) does the lake fall back to
the ``deltalake`` package, and the log says so; ``storage.engine: deltalake`` asks for it.

    >>> spark = build_session(SparkSettings(master="local[2]"))  # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

from cdi.errors import ConfigError, InstallError
from cdi.sql import literal

log = logging.getLogger(__name__)

DELTA_EXTENSION = "io.delta.sql.DeltaSparkSessionExtension"
DELTA_CATALOG = "org.apache.spark.sql.delta.catalog.DeltaCatalog"
ENGINES = ("auto", "delta-spark", "deltalake")


class JavaMissingError(InstallError):
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
    # auto: delta-spark, falling back to deltalake when its jars cannot be resolved;
    # delta-spark: the jars or fail; deltalake: no Delta jars, the lake uses the deltalake package
    storage_engine: str = "auto"


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
    return "delta-spark" in packages or "delta-core" in packages


def delta_package() -> str:
    """Maven coordinates of the delta-spark jar for the installed pyspark and delta-spark wheels.

    The same rule as ``delta.configure_spark_with_delta_pip``: the artifact is named after
    Spark's major.minor and Scala 2.13, the version is the pip package's.
    """
    from importlib.metadata import version

    import pyspark

    spark_major_minor = ".".join(pyspark.__version__.split(".")[:2])
    return f"io.delta:delta-spark_{spark_major_minor}_2.13:{version('delta-spark')}"


# the JVM logging a local session starts with (see _new_session)
_LOG4J_CONFIG = Path(__file__).resolve().parent / "data" / "log4j2.properties"


def _cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "cdi"


def _jar_list_file() -> Path:
    return _cache_dir() / "spark-jars.json"


def cached_package_jars(package: str) -> list[str] | None:
    """The local jar files a previous session resolved ``package`` to (with its dependencies),
    when every one is still there: a session given them directly skips Ivy's resolution, which
    costs seconds and prints ~60 lines on every start."""
    try:
        jars = json.loads(_jar_list_file().read_text(encoding="utf-8")).get(package)
    except (OSError, ValueError):
        return None
    if not jars or not all(os.path.isfile(j) for j in jars):
        return None
    return list(jars)


def _remember_package_jars(spark, package: str) -> None:
    """Record which files of Ivy's cache the session's packages resolved to (best effort)."""
    path = _jar_list_file()
    try:
        # spark-submit lists the jars it resolved for the packages in spark.repl.local.jars
        listed = spark.sparkContext.getConf().get("spark.repl.local.jars", "")
        jars = [unquote(urlparse(u).path) for u in listed.split(",") if u.startswith("file:")]
        jars = [j for j in jars if os.path.isfile(j) and os.path.basename(os.path.dirname(j)) == "jars"]
        artifact = package.split(":")[1] if package.count(":") == 2 else package
        if not any(artifact in os.path.basename(j) for j in jars):
            return
        known = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        known[package] = jars
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(known, indent=1), encoding="utf-8")
        tmp.replace(path)
    except Exception:  # a cache: a failure only means the next start resolves again
        log.debug("could not record the resolved jars of %s", package, exc_info=True)


class DeltaJarsUnavailableError(InstallError):
    """delta-spark was asked for but Spark could not load its jars."""


def build_session(settings: SparkSettings | None = None):
    """Build (or reuse) the SparkSession for a run.

    When running under ``spark-submit`` an active SparkContext configuration already carries the
    master; we never override it.
    """
    from pyspark.sql import SparkSession

    settings = settings or SparkSettings()
    if settings.storage_engine not in ENGINES:
        raise ConfigError(f"unknown storage engine {settings.storage_engine!r}: use one of {', '.join(ENGINES)}")
    check_java()
    active = SparkSession.getActiveSession()
    if active is not None:
        _configure_runtime(active, settings)
        return active

    under_submit = "PYSPARK_GATEWAY_PORT" in os.environ or os.environ.get("SPARK_SUBMIT") == "1"
    want_delta = settings.storage_engine != "deltalake"
    try:
        spark = _new_session(settings, under_submit, with_delta=want_delta)
    except Exception as exc:
        if not want_delta or under_submit or not _is_gateway_failure(exc):
            raise
        if settings.storage_engine == "delta-spark":
            raise DeltaJarsUnavailableError(
                f"storage.engine is delta-spark but Spark could not load {delta_package()}: make Maven "
                "Central reachable once (install.sh fills Ivy's cache) or pass the jars with --jars"
            ) from exc
        log.warning(
            "delta-spark's jars (%s) could not be resolved: Spark started without them and the lake "
            "falls back to the deltalake package (run install.sh with Maven Central reachable to fix)",
            delta_package(),
        )
        spark = _new_session(settings, under_submit, with_delta=False)
    _configure_runtime(spark, settings)
    return spark


def _is_gateway_failure(exc: Exception) -> bool:
    """Spark's JVM died before answering: with ``spark.jars.packages`` that is Ivy failing to resolve."""
    return "JAVA_GATEWAY_EXITED" in str(exc) or "Java gateway process exited" in str(exc)


def _new_session(settings: SparkSettings, under_submit: bool, with_delta: bool):
    from pyspark.sql import SparkSession

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
    has_delta = _jars_conf_has_delta({**submitted, **extra})
    resolving = None
    if with_delta and not under_submit and not has_delta:
        cached = cached_package_jars(delta_package())
        if cached is not None:
            jars.extend(cached)
        else:
            packages = [p for p in extra.pop("spark.jars.packages", "").split(",") if p]
            extra["spark.jars.packages"] = ",".join([delta_package(), *packages])
            resolving = delta_package()
        has_delta = True
    if with_delta and has_delta:
        base["spark.sql.extensions"] = DELTA_EXTENSION
        base["spark.sql.catalog.spark_catalog"] = DELTA_CATALOG
        # Delta rebuilds a table's snapshot from its log in this many tasks (default 50); the
        # lake's logs are small, and 50 tasks per table read dominate a local run's time
        base["spark.databricks.delta.snapshotPartitions"] = str(settings.shuffle_partitions)
        # VACUUM lists a table's files in this many tasks (Spark's default: 10,000)
        base["spark.sql.sources.parallelPartitionDiscovery.parallelism"] = str(max(8, settings.shuffle_partitions))
    if not under_submit:
        # the JVM starts with cdi's quiet logging unless the caller configures log4j itself
        options = extra.get("spark.driver.extraJavaOptions", "")
        if "log4j2.configurationFile" not in options and "log4j.configurationFile" not in options:
            extra["spark.driver.extraJavaOptions"] = f"{options} -Dlog4j2.configurationFile={_LOG4J_CONFIG}".strip()
        # Spark's default is ./spark-warehouse, a folder in whatever directory the command ran in;
        # the lake's tables are paths and never use it
        base["spark.sql.warehouse.dir"] = str(_cache_dir() / "spark-warehouse")
    base.update(extra)
    if jars and not under_submit:
        base["spark.jars"] = ",".join(jars)
    for key, value in base.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    if resolving is not None:
        _remember_package_jars(spark, resolving)
    if under_submit:
        _add_jars_to_running_driver(spark, jars, submitted.get("spark.jars", ""))
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
                spark.sql(f"ADD JAR {literal(jar)}")
                log.debug("added %s to the running driver and its executors", jar)


def _configure_runtime(spark, settings: SparkSettings) -> None:
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    spark.conf.set("spark.sql.shuffle.partitions", str(settings.shuffle_partitions))
    checkpoint_dir = settings.checkpoint_dir or os.path.join(tempfile.gettempdir(), "cdi-checkpoints")
    spark.sparkContext.setCheckpointDir(checkpoint_dir)
    if settings.storage_engine == "deltalake":
        engine = "deltalake (chosen by storage.engine)"
    elif delta_classes_available(spark):
        engine = "delta-spark"
    else:
        engine = "deltalake (fallback: delta-spark's classes are not on the classpath)"
    log.info(
        "spark session: master=%s, version=%s, storage engine=%s",
        spark.sparkContext.master,
        spark.version,
        engine,
    )
