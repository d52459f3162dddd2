"""The two Splink engines behind one narrow interface: DuckDB (single machine) and Spark (cluster).

The link stage speaks SQL that both engines run (see :mod:`.blocking`) and hands Splink a
``db_api``; results come back as Spark DataFrames so that only :mod:`cdi.lake` writes tables.
Nothing outside this module knows which engine ran.

* :class:`DuckDBBackend` reads the standardised records straight from the Delta table's current
  Parquet files (``lake.file_paths``), and returns results through Parquet files in a private
  temporary folder that Spark reads (no driver round trip of large data).
* :class:`SparkBackend` reads the table through the lake, caches the prepared input once, and
  lets Splink break lineage between its iterative steps by writing Parquet checkpoints.

Measured on this project's 2-core machine Splink on Spark local mode takes 7-9x as long as DuckDB
for the same model and data (100k and 1M records, ``bench/results/linkage.json``), hence
:func:`choose_backend`.

    >>> name, why = choose_backend(cfg.linkage, spark.sparkContext.master, records=120_000)  # doctest: +SKIP
"""

from __future__ import annotations

import abc
import logging
import os
import shutil
import tempfile
import uuid
from typing import Any

from pyspark.sql import DataFrame, SparkSession

from cdi.config import LinkageConfig
from cdi.errors import ConfigError, InstallError, LinkageError
from cdi.sql import literal, literals, plain_identifier

log = logging.getLogger(__name__)

SIMILARITY_FUNCTIONS = ("jaro_winkler",)


def choose_backend(cfg: LinkageConfig, master: str, records: int) -> tuple[str, str]:
    """The backend to run and why: DuckDB when Spark is local and the records fit, Spark otherwise."""
    if cfg.backend != "auto":
        return cfg.backend, f"linkage.backend is '{cfg.backend}'"
    if not (master or "").startswith("local"):
        return "spark", f"Spark master is {master} (a cluster), so Splink runs on Spark"
    if records > cfg.max_local_records:
        return "spark", (
            f"{records:,} records exceed linkage.max_local_records ({cfg.max_local_records:,}), so Splink runs on Spark"
        )
    return "duckdb", (
        f"Spark master is {master} and {records:,} records fit linkage.max_local_records "
        f"({cfg.max_local_records:,}), so Splink runs on DuckDB (much faster on one machine)"
    )


class LinkageBackend(abc.ABC):
    """What the link stage needs from an engine."""

    name: str

    def __init__(self, spark: SparkSession):
        self.spark = spark
        self.token = uuid.uuid4().hex[:8]

    @property
    @abc.abstractmethod
    def db_api(self): ...

    @property
    def dialect(self) -> str:
        return self.db_api.sql_dialect.sql_dialect_str

    @abc.abstractmethod
    def load_records(self, lake, table: str, columns: list[str]) -> str:
        """Expose ``columns`` of a lake table as a SQL view; return the view's name."""

    @abc.abstractmethod
    def query(self, sql: str) -> list[dict[str, Any]]:
        """Run SQL with a small result (a report, a count) and return its rows."""

    @abc.abstractmethod
    def create_table(self, sql: str, name: str) -> str:
        """Store the (small) result of ``sql`` once; return the name SQL can refer to it by."""

    @abc.abstractmethod
    def materialise(self, sql: str, name: str):
        """Store the result of ``sql`` once and register it with Splink (a SplinkDataFrame)."""

    @abc.abstractmethod
    def to_spark(self, splink_df, select: list[str]) -> DataFrame:
        """A Splink result as a Spark DataFrame with the ``select`` expressions (SQL, both dialects)."""

    @abc.abstractmethod
    def from_spark(self, df: DataFrame, name: str) -> str:
        """Store a Spark DataFrame in the engine once; return the name SQL can refer to it by."""

    def close(self) -> None:  # noqa: B027 - a default: a backend without caches has nothing to release
        """Release caches and temporary files; call only after results have been committed."""


class DuckDBBackend(LinkageBackend):
    """Splink on an in-process DuckDB; reads Parquet directly, spills to a private temp folder."""

    name = "duckdb"

    def __init__(self, spark: SparkSession, workdir: str | None = None, threads: int | None = None):
        import duckdb
        from splink import DuckDBAPI

        super().__init__(spark)
        self.workdir = workdir or tempfile.mkdtemp(prefix="cdi-link-duckdb-")
        os.makedirs(self.workdir, exist_ok=True)
        self.con = duckdb.connect()
        self.con.execute(f"set temp_directory = {literal(os.path.join(self.workdir, 'spill'), 'duckdb')}")
        self.con.execute("set preserve_insertion_order = false")
        if threads:
            self.con.execute(f"set threads = {int(threads)}")
        self._db_api = DuckDBAPI(connection=self.con)

    @property
    def db_api(self):
        return self._db_api

    def load_records(self, lake, table: str, columns: list[str]) -> str:
        files = lake.file_paths(table)
        if not files:
            raise LinkageError(f"table {table} has no data files; nothing to link")
        hive = "true" if lake.partition_columns(table) else "false"
        listing = literals(files, "duckdb")
        view = f"__cdi_records_{self.token}"
        source = f"read_parquet([{listing}], union_by_name = true, hive_partitioning = {hive})"
        present = {r[0] for r in self.con.execute(f"describe select * from {source}").fetchall()}
        _check_columns(table, columns, present)
        self.con.execute(f"create or replace view {view} as select {', '.join(map(plain_identifier, columns))} from {source}")
        return view

    def query(self, sql: str) -> list[dict[str, Any]]:
        rel = self.con.execute(sql)
        names = [d[0] for d in rel.description]
        return [dict(zip(names, row)) for row in rel.fetchall()]

    def create_table(self, sql: str, name: str) -> str:
        physical = f"{name}_{self.token}"
        self.con.execute(f"create or replace table {physical} as {sql}")
        return physical

    def materialise(self, sql: str, name: str):
        physical = f"{name}_{self.token}"
        self.con.execute(f"create or replace table {physical} as {sql}")
        return self.db_api.register(physical, table_name=name)

    def to_spark(self, splink_df, select: list[str]) -> DataFrame:
        # Spark takes a folder whose name starts with "_" for a hidden one and warns about it
        path = os.path.join(self.workdir, f"df{splink_df.templated_name}_{uuid.uuid4().hex[:6]}")
        self.con.execute(
            f"copy (select {', '.join(select)} from {splink_df.physical_name}) "
            f"to {literal(path, 'duckdb')} (format parquet, per_thread_output true)"
        )
        return self.spark.read.parquet(path)

    def from_spark(self, df: DataFrame, name: str) -> str:
        # through Parquet in the private folder: Spark writes it, DuckDB reads it (no driver round trip)
        path = os.path.join(self.workdir, f"in_{name}_{uuid.uuid4().hex[:6]}")
        df.write.parquet(path)
        return self.create_table(f"select * from read_parquet({literal(os.path.join(path, '*.parquet'), 'duckdb')})", name)

    def close(self) -> None:
        try:
            self.con.close()
        finally:
            shutil.rmtree(self.workdir, ignore_errors=True)


class SparkBackend(LinkageBackend):
    """Splink on the run's SparkSession: input cached once, lineage broken with Parquet checkpoints."""

    name = "spark"

    def __init__(self, spark: SparkSession, num_partitions: int | None = None):
        from splink import SparkAPI

        super().__init__(spark)
        shuffle = int(spark.conf.get("spark.sql.shuffle.partitions") or "8")
        # Splink repartitions some tables to a sixth or a tenth of this (blocked pairs, the input
        # with term frequencies): at least six tasks per core keeps every core busy on those too.
        partitions = num_partitions or max(shuffle, 6 * spark.sparkContext.defaultParallelism)
        self._ensure_checkpoint_dir()
        # Splink repartitions its big intermediate tables to this many partitions and writes them
        # to Parquet under the checkpoint dir, so EM iterations do not recompute the blocking.
        self._db_api = SparkAPI(
            spark_session=spark,
            break_lineage_method="parquet",
            num_partitions_on_repartition=max(2, partitions),
            register_udfs_automatically=True,
        )
        missing = [f for f in SIMILARITY_FUNCTIONS if not spark.catalog.functionExists(f)]
        if missing:
            raise InstallError(
                f"Splink's Spark similarity functions {missing} are not registered: start Spark through "
                "cdi.spark.build_session (it puts splink's similarity jar on spark.jars) or add "
                "splink.backends.spark.similarity_jar_location() to spark.jars"
            )
        self._cached: list[DataFrame] = []
        self._raw: list[DataFrame] = []

    @property
    def db_api(self):
        return self._db_api

    def _ensure_checkpoint_dir(self) -> None:
        if self.spark.sparkContext._jsc.sc().getCheckpointDir().isEmpty():
            self.spark.sparkContext.setCheckpointDir(os.path.join(tempfile.gettempdir(), "cdi-checkpoints"))

    def load_records(self, lake, table: str, columns: list[str]) -> str:
        df = lake.read(table)
        _check_columns(table, columns, set(df.columns))
        view = f"__cdi_records_{self.token}"
        # Cached once: the block-key aggregate and the prepared input both scan it (once per key).
        raw = df.select(*columns).persist()
        self._raw.append(raw)
        raw.createOrReplaceTempView(view)
        return view

    def query(self, sql: str) -> list[dict[str, Any]]:
        return [r.asDict() for r in self.spark.sql(sql).collect()]

    def create_table(self, sql: str, name: str) -> str:
        physical = f"{name}_{self.token}"
        df = self.spark.sql(sql).persist()
        df.count()  # small and read several times: computed once, and its true size lets joins broadcast it
        self._cached.append(df)
        df.createOrReplaceTempView(physical)
        return physical

    def materialise(self, sql: str, name: str):
        df = self.spark.sql(sql).persist()
        df.count()  # the one action that caches the prepared input for every Splink step
        self._cached.append(df)
        for raw in self._raw:  # the prepared input supersedes the raw records
            raw.unpersist()
        self._raw.clear()
        return self.db_api.register(df, table_name=f"{name}_{self.token}")

    def to_spark(self, splink_df, select: list[str]) -> DataFrame:
        return splink_df.as_spark_dataframe().selectExpr(*select)

    def from_spark(self, df: DataFrame, name: str) -> str:
        physical = f"{name}_{self.token}"
        cached = df.persist()
        self._cached.append(cached)
        cached.createOrReplaceTempView(physical)
        return physical

    def close(self) -> None:
        for df in self._cached + self._raw:
            df.unpersist()
        self._remove_checkpoints()

    def _remove_checkpoints(self) -> None:
        """Delete the Parquet tables Splink wrote under the checkpoint dir (any Hadoop filesystem)."""
        opt = self.spark.sparkContext._jsc.sc().getCheckpointDir()
        if opt.isEmpty():
            return
        jvm: Any = self.spark.sparkContext._jvm
        root = jvm.org.apache.hadoop.fs.Path(opt.get())
        fs = root.getFileSystem(self.spark.sparkContext._jsc.hadoopConfiguration())
        if not fs.exists(root):
            return
        for status in fs.listStatus(root):
            if status.getPath().getName().startswith("__splink__"):
                fs.delete(status.getPath(), True)


def make_backend(name: str, spark: SparkSession) -> LinkageBackend:
    if name == "duckdb":
        return DuckDBBackend(spark)
    if name == "spark":
        return SparkBackend(spark)
    raise ConfigError(f"unknown linkage backend {name!r}: use auto, spark or duckdb")


def _check_columns(table: str, needed: list[str], present: set[str]) -> None:
    missing = [c for c in needed if c not in present]
    if missing:
        raise LinkageError(
            f"table {table} lacks column(s) {missing} that linkage.comparisons / blocking rules use; "
            "run the standardise stage (it produces the *_std match columns) or fix conf linkage settings"
        )
