"""The lake: the only code that reads or writes tables.

Tables are named relative to the lake root (``bronze/crm``, ``silver/records``). The engine is
picked once per session: delta-spark when its classes are on the classpath, the ``deltalake``
package otherwise; both produce standard Delta tables with the same history metadata.

    >>> lake = Lake(spark, "/data/lake", job="ingest", run_id="20261124T0600Z")  # doctest: +SKIP
    >>> lake.write("bronze/crm", df, mode="append")  # doctest: +SKIP
    >>> lake.read("bronze/crm", version=3)  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
from datetime import datetime
from typing import Any
from urllib.parse import unquote, urlparse

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import StructField

from .engine import (
    CommitContext,
    ConcurrentWriteError,
    Engine,
    LakeError,
    ReplaceWhereMismatchError,
    SchemaMismatchError,
    TableNotFoundError,
    WriteResult,
)

__all__ = [
    "Lake",
    "LakeError",
    "SchemaMismatchError",
    "TableNotFoundError",
    "ConcurrentWriteError",
    "ReplaceWhereMismatchError",
    "WriteResult",
    "select_engine",
]

log = logging.getLogger(__name__)


def select_engine(spark: SparkSession, prefer: str = "auto") -> Engine:
    """delta-spark when its classes are loaded (or when asked for), delta-rs otherwise."""
    from cdi.spark import delta_classes_available

    if prefer not in ("auto", "native", "deltalake"):
        raise ValueError(f"unknown storage engine {prefer!r}: use auto, native or deltalake")
    if prefer == "native" or (prefer == "auto" and delta_classes_available(spark)):
        if not delta_classes_available(spark):
            raise LakeError(
                "the native Delta engine was requested but delta-spark's classes are not on the Spark "
                "classpath; start Spark with --packages io.delta:delta-spark_2.13:<version>"
            )
        from .native import NativeDeltaEngine

        return NativeDeltaEngine(spark)
    from .deltars import DeltaRsEngine

    return DeltaRsEngine(spark)


def _normalise_root(root: str) -> str:
    """One spelling of the root for every engine: local roots absolute, object stores as given.

    Spark resolves relative paths against its own working folder and reports files as
    ``file:`` URIs; an absolute local path lets file lists from both sides be compared.
    """
    if root.startswith("file:"):
        return unquote(urlparse(root).path).rstrip("/") or "/"
    if "://" in root:
        return root.rstrip("/")
    return os.path.abspath(root).rstrip("/") or "/"


class Lake:
    """Delta tables under one root, written with the run's lineage in every commit."""

    def __init__(
        self,
        spark: SparkSession,
        root: str,
        job: str = "cdi",
        run_id: str | None = None,
        engine: str | Engine = "auto",
    ):
        self.spark = spark
        self.root = _normalise_root(str(root))
        self.engine = engine if isinstance(engine, Engine) else select_engine(spark, engine)
        self.ctx = CommitContext(job=job, run_id=run_id)

    def with_context(self, job: str | None = None, run_id: str | None = None) -> "Lake":
        """The same lake, committing under another job name or run id."""
        return Lake(self.spark, self.root, job or self.ctx.job, run_id or self.ctx.run_id, self.engine)

    def path(self, table: str) -> str:
        if not table or table.startswith("/") or ".." in table.split("/"):
            raise LakeError(f"invalid table name {table!r}: use a relative name such as 'silver/records'")
        return f"{self.root}/{table}"

    def exists(self, table: str) -> bool:
        return self.engine.exists(self.path(table))

    def read(self, table: str, version: int | None = None, timestamp: datetime | None = None) -> DataFrame:
        """The current snapshot, or the one at ``version`` or as of ``timestamp``."""
        if version is not None and timestamp is not None:
            raise ValueError("give a version or a timestamp, not both")
        return self.engine.read(self.path(table), version, timestamp)

    def read_or_empty(self, table: str, schema) -> DataFrame:
        """The table if it exists, else an empty frame with ``schema`` (first runs)."""
        if self.exists(table):
            return self.read(table)
        return self.spark.createDataFrame([], schema)

    def schema(self, table: str):
        return self.engine.schema(self.path(table))

    def version(self, table: str) -> int:
        return self.engine.version(self.path(table))

    def partition_columns(self, table: str) -> list[str]:
        return self.engine.partition_columns(self.path(table))

    def file_paths(self, table: str, version: int | None = None) -> list[str]:
        return self.engine.file_paths(self.path(table), version)

    def write(
        self,
        table: str,
        df: DataFrame,
        mode: str = "append",
        *,
        operation: str | None = None,
        partition_by: list[str] | None = None,
        replace_where: str | None = None,
        replace_partitions: dict[str, Any] | None = None,
        allow_new_columns: bool = False,
        metadata: dict[str, Any] | None = None,
    ) -> WriteResult:
        """Append or overwrite; ``replace_where``/``replace_partitions`` overwrite only matching rows.

        A schema change must be asked for (``allow_new_columns``); otherwise it is an error. With
        ``replace_where``/``replace_partitions`` every written row must match the condition
        (:class:`ReplaceWhereMismatchError` otherwise), so no row is silently duplicated.
        Concurrent appends are retried; a conflicting concurrent rewrite raises
        :class:`ConcurrentWriteError` and leaves the table as the other writer left it.
        """
        if (replace_where or replace_partitions) and mode != "overwrite":
            raise ValueError("replace_where / replace_partitions need mode='overwrite'")
        if replace_where and replace_partitions:
            raise ValueError("give replace_where or replace_partitions, not both")
        op = operation or ("APPEND" if mode == "append" else "OVERWRITE")
        result = self.engine.write(
            self.path(table),
            df,
            mode,
            self.ctx,
            op,
            partition_by=partition_by,
            replace_where=replace_where,
            replace_partitions=replace_partitions,
            allow_new_columns=allow_new_columns,
            extra=metadata,
        )
        log.debug("wrote %s at version %s (%s)", table, result.version, op)
        return result

    def delete(self, table: str, predicate: str) -> WriteResult:
        """Remove the rows matching ``predicate`` (a Spark SQL condition); other rows stay."""
        return self.engine.delete(self.path(table), predicate, self.ctx)

    def history(self, table: str, limit: int | None = None) -> list[dict[str, Any]]:
        """Newest first: version, timestamp, operation, job, run_id and the commit's cdi metadata."""
        return self.engine.history(self.path(table), limit)

    def vacuum(self, table: str, retention_hours: float = 168, dry_run: bool = False) -> list[str]:
        """Delete files no current or retained version needs, older than ``retention_hours``."""
        if retention_hours < 0:
            raise ValueError("retention_hours must be >= 0")
        return self.engine.vacuum(self.path(table), retention_hours, dry_run, self.ctx)

    def add_columns(self, table: str, fields: list[StructField]) -> None:
        self.engine.add_columns(self.path(table), fields, self.ctx)
