"""Delta tables through delta-spark, used when its classes are on the Spark classpath
(clusters started with ``--packages io.delta:delta-spark_2.13:<version>``)."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from typing import Any
from urllib.parse import unquote, urlparse

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructField, StructType

from .engine import (
    CommitContext,
    ConcurrentWriteError,
    Engine,
    LakeError,
    ReplaceWhereMismatchError,
    SchemaMismatchError,
    TableNotFoundError,
    WriteResult,
    guard_replace,
    partition_predicate,
    reconcile_schema,
    replace_mismatch,
)

_META_CONF = "spark.databricks.delta.commitInfo.userMetadata"


def _sql_literal(value: Any) -> str:
    """A Spark SQL string literal (quotes and backslashes escaped)."""
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def _local(path: str) -> str:
    parsed = urlparse(path)
    return unquote(parsed.path) if parsed.scheme == "file" else path


class NativeDeltaEngine(Engine):
    """delta-spark does the transactions; this class maps the lake's calls and errors onto it."""

    name = "delta-spark"

    def __init__(self, spark: SparkSession):
        self.spark = spark
        from delta.tables import DeltaTable  # imported lazily: only valid with the jars present

        self._DeltaTable = DeltaTable

    def _dt(self, path: str):
        if not self.exists(path):
            raise TableNotFoundError(f"no Delta table at {path}")
        return self._DeltaTable.forPath(self.spark, path)

    def exists(self, path: str) -> bool:
        return self._DeltaTable.isDeltaTable(self.spark, path)

    def read(self, path: str, version: int | None = None, timestamp: datetime | None = None) -> DataFrame:
        if not self.exists(path):
            raise TableNotFoundError(f"no Delta table at {path}")
        reader = self.spark.read.format("delta")
        if version is not None:
            reader = reader.option("versionAsOf", version)
        if timestamp is not None:
            ts = timestamp if timestamp.tzinfo else timestamp.replace(tzinfo=timezone.utc)
            reader = reader.option("timestampAsOf", ts.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f"))
        try:
            return reader.load(path)
        except Exception as exc:  # time travel outside the table's history
            if version is not None or timestamp is not None:
                raise LakeError(f"table {path} has no version {version if version is not None else timestamp}: {exc}") from exc
            raise

    def schema(self, path: str) -> StructType:
        return self.read(path).schema

    def version(self, path: str) -> int:
        return int(self._dt(path).history(1).select("version").first()[0])

    def partition_columns(self, path: str) -> list[str]:
        row = self.spark.sql(f"DESCRIBE DETAIL delta.`{path}`").select("partitionColumns").first()
        return list(row[0])

    def file_paths(self, path: str, version: int | None = None) -> list[str]:
        # inputFiles() lists the snapshot's files from the Delta log without scanning the data
        return sorted(_local(p) for p in self.read(path, version).inputFiles())

    def history(self, path: str, limit: int | None = None) -> list[dict[str, Any]]:
        rows = self._dt(path).history(limit).select("version", "timestamp", "operation", "userMetadata").collect()
        out = []
        for r in rows:
            meta = json.loads(r["userMetadata"]) if r["userMetadata"] else {}
            out.append(
                {
                    "version": r["version"],
                    "timestamp": r["timestamp"].replace(tzinfo=timezone.utc),
                    "operation": meta.get("cdi.operation") or r["operation"],
                    "job": meta.get("cdi.job"),
                    "run_id": meta.get("cdi.run_id") or None,
                    "engine_operation": r["operation"],
                    "metadata": {k[4:]: v for k, v in meta.items() if k.startswith("cdi.")},
                }
            )
        return out

    def _with_metadata(self, path: str, meta: dict[str, str] | None, action):
        """Run a Delta command, its commit carrying ``meta``; map delta-spark's conflict errors.

        Commands without a writer option take the metadata from a session setting, so two of
        them racing in one session could swap metadata; DataFrame writes pass ``meta=None`` and
        carry theirs in the ``userMetadata`` option instead.
        """
        previous = self.spark.conf.get(_META_CONF, None)
        if meta is not None:
            self.spark.conf.set(_META_CONF, json.dumps(meta))
        try:
            return action()
        except Exception as exc:
            if "Concurrent" in type(exc).__name__ or "concurrent" in str(exc).lower():
                raise ConcurrentWriteError(
                    f"table {path}: another writer committed a conflicting change; nothing was written and "
                    f"the table is as the other writer left it. Re-run the stage. ({exc})"
                ) from exc
            raise
        finally:
            if meta is not None:
                if previous is None:
                    self.spark.conf.unset(_META_CONF)
                else:
                    self.spark.conf.set(_META_CONF, previous)

    def _committed_version(self, path: str, commit_id: str) -> int:
        """The version our commit landed at (another writer may have committed since)."""
        for row in self._dt(path).history(20).select("version", "userMetadata").collect():
            if row["userMetadata"] and commit_id in row["userMetadata"]:
                return int(row["version"])
        return self.version(path)

    def write(
        self,
        path: str,
        df: DataFrame,
        mode: str,
        ctx: CommitContext,
        operation: str,
        partition_by: list[str] | None = None,
        replace_where: str | None = None,
        replace_partitions: dict[str, Any] | None = None,
        allow_new_columns: bool = False,
        extra: dict[str, Any] | None = None,
    ) -> WriteResult:
        exists = self.exists(path)
        if exists:
            reconcile_schema(path, self.schema(path), df.schema, allow_new_columns)
            table_parts = self.partition_columns(path)
            if partition_by and list(partition_by) != table_parts:
                raise SchemaMismatchError(
                    f"table {path} is partitioned by {table_parts}, the write asks for {list(partition_by)}"
                )
        described = ""
        if replace_partitions:
            described = f"replace_partitions {replace_partitions!r}"
            df = guard_replace(df, path, partition_predicate(replace_partitions), described)
            replace_where = " AND ".join(
                f"`{k}` IS NULL" if v is None else f"`{k}` = {_sql_literal(v)}" for k, v in replace_partitions.items()
            )
        elif replace_where:
            described = f"replace_where {replace_where!r}"
            df = guard_replace(df, path, F.expr(replace_where), described)
        commit_id = uuid.uuid4().hex
        meta = ctx.metadata(
            operation,
            {**(extra or {}), "mode": mode, "commit_id": commit_id, **({"predicate": replace_where} if replace_where else {})},
        )
        writer = df.write.format("delta").mode(mode).option("userMetadata", json.dumps(meta))
        if partition_by and not exists:
            writer = writer.partitionBy(*partition_by)
        if allow_new_columns:
            writer = writer.option("mergeSchema", "true")
        if replace_where:
            if mode != "overwrite":
                raise LakeError("replace_where needs mode='overwrite'")
            if not exists:
                writer = writer.mode("append")
            else:
                # delta-spark's replaceWhere on data columns rewrites only matching rows' files
                writer = writer.option("replaceWhere", replace_where)
        try:
            self._with_metadata(path, None, lambda: writer.save(path))
        except Exception as exc:
            mismatch = replace_mismatch(exc, path, described) if described else None
            if mismatch is not None:
                raise mismatch from exc
            if described and "replaceWhere" in str(exc):
                raise ReplaceWhereMismatchError(f"table {path}: the data holds rows outside {described}: {exc}") from exc
            if "schema" in str(exc).lower() and "mismatch" in str(exc).lower():
                raise SchemaMismatchError(f"table {path}: {exc}") from exc
            raise
        return WriteResult(path, self._committed_version(path, commit_id))

    def delete(self, path: str, predicate: str, ctx: CommitContext) -> WriteResult:
        dt = self._dt(path)
        commit_id = uuid.uuid4().hex
        meta = ctx.metadata("DELETE", {"predicate": predicate, "commit_id": commit_id})
        self._with_metadata(path, meta, lambda: dt.delete(predicate))
        return WriteResult(path, self._committed_version(path, commit_id))

    def add_columns(self, path: str, fields: list[StructField], ctx: CommitContext) -> None:
        cols = ", ".join(f"`{f.name}` {f.dataType.simpleString()}" for f in fields)
        meta = ctx.metadata("ADD COLUMNS", {"columns": [f.name for f in fields]})
        self._with_metadata(path, meta, lambda: self.spark.sql(f"ALTER TABLE delta.`{path}` ADD COLUMNS ({cols})"))

    def vacuum(self, path: str, retention_hours: float, dry_run: bool, ctx: CommitContext) -> list[str]:
        self._dt(path)
        self.spark.conf.set("spark.databricks.delta.retentionDurationCheck.enabled", "false")
        rows = self.spark.sql(f"VACUUM delta.`{path}` RETAIN {retention_hours} HOURS DRY RUN").collect()
        if not dry_run:
            self._with_metadata(path, ctx.metadata("VACUUM"), lambda: self._dt(path).vacuum(retention_hours))
        return [r[0] for r in rows]
