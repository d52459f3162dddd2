"""Delta tables without the Delta JVM jars: Spark writes, ``deltalake`` (delta-rs) commits.

Spark's executors write Parquet into a private staging folder inside the table; the driver moves
the files into the table's layout, reads their footers for statistics and commits them in one
Delta transaction. Reads ask ``deltalake`` for the snapshot's files and hand them to Spark's
Parquet reader. No row passes through the driver, and delta-rs's own scan is never used (it can
abort the Python process at exit).

A failed write removes its files and leaves the table at its previous version.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote, unquote, urlparse

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from deltalake import DeltaTable
from deltalake import Schema as DeltaSchema
from deltalake.exceptions import CommitFailedError
from deltalake.exceptions import TableNotFoundError as DeltaTableNotFound
from deltalake.transaction import AddAction, CommitProperties, RemoveAction, create_table_with_add_actions
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructField, StructType

from .engine import (
    CommitContext,
    ConcurrentWriteError,
    Engine,
    LakeError,
    SchemaMismatchError,
    TableNotFoundError,
    WriteResult,
    nullable,
    reconcile_schema,
)
from .stats import file_stats

log = logging.getLogger(__name__)

STAGING_DIR = "_cdi_staging"
_HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"
_COMMIT_RETRIES = 10


def _local_path(path: str) -> str:
    parsed = urlparse(path)
    return unquote(parsed.path) if parsed.scheme == "file" else path


def _comparable(path: str) -> str:
    """A file location in one spelling (Spark says ``file:/x``, delta-rs ``/x`` or ``file:///x``)."""
    if path.startswith("file:"):
        return unquote(urlparse(path).path)
    return path


def _filesystem(path: str) -> tuple[pafs.FileSystem, str]:
    if "://" in path and not path.startswith("file://"):
        return pafs.FileSystem.from_uri(path)
    return pafs.LocalFileSystem(), _local_path(path)


def _spark_schema(dt: DeltaTable) -> StructType:
    return StructType.fromJson(json.loads(dt.schema().to_json()))


def _delta_schema(schema: StructType) -> DeltaSchema:
    return DeltaSchema.from_json(nullable(schema).json())


def _partition_values(relative: str, partition_by: list[str]) -> dict[str, str | None]:
    values: dict[str, str | None] = {}
    for segment in relative.split("/")[:-1]:
        key, _, raw = segment.partition("=")
        if key in partition_by:
            value = unquote(raw)
            values[key] = None if value == _HIVE_NULL else value
    return values


class DeltaRsEngine(Engine):
    """Storage engine for machines without delta-spark's jars."""

    name = "deltalake"

    def __init__(self, spark: SparkSession):
        self.spark = spark

    # ---------------------------------------------------------------- reading
    def _table(self, path: str, version: int | None = None, timestamp: datetime | None = None) -> DeltaTable:
        try:
            dt = DeltaTable(path, version=version) if version is not None else DeltaTable(path)
        except DeltaTableNotFound as exc:
            raise TableNotFoundError(f"no Delta table at {path}") from exc
        except Exception as exc:  # delta-rs raises a generic error for a version that does not exist
            if version is not None and "version" in str(exc).lower():
                raise LakeError(f"table {path} has no version {version}: {exc}") from exc
            raise
        if timestamp is not None:
            if timestamp.tzinfo is None:
                timestamp = timestamp.replace(tzinfo=timezone.utc)
            try:
                dt.load_as_version(timestamp)
            except Exception as exc:
                raise LakeError(f"table {path} has no version as of {timestamp.isoformat()}: {exc}") from exc
        features = set(dt.protocol().reader_features or [])
        if "deletionVectors" in features:
            raise LakeError(
                f"table {path} uses deletion vectors, which this engine cannot read through Spark's "
                "Parquet reader; run with delta-spark on the classpath (--packages io.delta:delta-spark_2.13:...)"
            )
        return dt

    def exists(self, path: str) -> bool:
        return DeltaTable.is_deltatable(path)

    def schema(self, path: str) -> StructType:
        return _spark_schema(self._table(path))

    def version(self, path: str) -> int:
        return self._table(path).version()

    def partition_columns(self, path: str) -> list[str]:
        return list(self._table(path).metadata().partition_columns)

    def file_paths(self, path: str, version: int | None = None) -> list[str]:
        return [_local_path(u) for u in self._table(path, version).file_uris()]

    def read(self, path: str, version: int | None = None, timestamp: datetime | None = None) -> DataFrame:
        dt = self._table(path, version, timestamp)
        schema = _spark_schema(dt)
        files = dt.file_uris()
        if not files:
            return self.spark.createDataFrame([], schema)
        reader = self.spark.read.schema(schema)
        if dt.metadata().partition_columns:
            reader = reader.option("basePath", path)
        return reader.parquet(*files).select(*[F.col(f"`{n}`") for n in schema.fieldNames()])

    def history(self, path: str, limit: int | None = None) -> list[dict[str, Any]]:
        out = []
        for entry in self._table(path).history(limit):
            out.append(
                {
                    "version": entry.get("version"),
                    "timestamp": datetime.fromtimestamp(entry.get("timestamp", 0) / 1000, tz=timezone.utc),
                    "operation": entry.get("cdi.operation") or entry.get("operation"),
                    "job": entry.get("cdi.job"),
                    "run_id": entry.get("cdi.run_id") or None,
                    "engine_operation": entry.get("operation"),
                    "metadata": {k[4:]: v for k, v in entry.items() if k.startswith("cdi.")},
                }
            )
        return out

    # ---------------------------------------------------------------- writing
    def _stage(self, df: DataFrame, path: str, partition_by: list[str]) -> str:
        staging = f"{path.rstrip('/')}/{STAGING_DIR}/{uuid.uuid4().hex}"
        df.write.mode("errorifexists").partitionBy(*partition_by).parquet(staging)
        return staging

    def _publish(self, path: str, staging: str, partition_by: list[str], moved: list[str]) -> list[AddAction]:
        """Move staged Parquet files into the table folder and describe them as Delta adds."""
        fs, staging_fs = _filesystem(staging)
        _, table_fs = _filesystem(path)
        infos = fs.get_file_info(pafs.FileSelector(staging_fs, recursive=True))
        adds = []
        now_ms = int(time.time() * 1000)
        for info in infos:
            if info.type != pafs.FileType.File:
                continue
            relative = info.path[len(staging_fs.rstrip("/")) + 1 :]
            leaf = relative.rsplit("/", 1)[-1]
            if not leaf.endswith(".parquet") or leaf.startswith((".", "_")):
                continue
            dest = f"{table_fs.rstrip('/')}/{relative}"
            parent = dest.rsplit("/", 1)[0]
            fs.create_dir(parent, recursive=True)
            fs.move(info.path, dest)
            moved.append(dest)
            with fs.open_input_file(dest) as handle:
                meta = pq.ParquetFile(handle).metadata
            adds.append(
                AddAction(
                    path=quote(relative, safe="/="),
                    size=info.size,
                    partition_values=_partition_values(relative, partition_by),
                    modification_time=now_ms,
                    data_change=True,
                    stats=file_stats(meta),
                )
            )
        fs.delete_dir(staging_fs)
        return adds

    def _cleanup(self, staging: str | None, moved: list[str]) -> None:
        if staging:
            fs, staging_fs = _filesystem(staging)
            try:
                fs.delete_dir(staging_fs)
            except (FileNotFoundError, OSError):
                pass
        for dest in moved:
            fs, dest_fs = _filesystem(dest)
            try:
                fs.delete_file(dest_fs)
            except (FileNotFoundError, OSError):
                pass

    def _files_matching(self, path: str, predicate: str) -> list[str]:
        """Relative paths of the current files holding at least one row matching ``predicate``.

        Collects file names only: their number is bounded by the table's file count.
        """
        df = self.read(path)
        rows = (
            df.where(F.coalesce(F.expr(predicate), F.lit(False)))
            .select(F.col("_metadata.file_path").alias("f"))
            .distinct()
            .collect()
        )
        root = _comparable(path).rstrip("/") + "/"
        out = []
        for row in rows:
            full = _comparable(row["f"])
            if not full.startswith(root):
                raise LakeError(f"file {full} is not under table {path}")
            out.append(full[len(root) :])
        return out

    def _removes(self, dt: DeltaTable, relative_paths: list[str]) -> list[RemoveAction]:
        wanted = {unquote(p) for p in relative_paths}
        now_ms = int(time.time() * 1000)
        actions = pa.table(dt.get_add_actions(flatten=False)).to_pydict() if wanted else {"path": []}
        removes = []
        for i, p in enumerate(actions["path"]):
            if unquote(p) in wanted:
                removes.append(
                    RemoveAction(
                        path=p,
                        data_change=True,
                        deletion_timestamp=now_ms,
                        size=actions["size_bytes"][i],
                        partition_values=actions["partition_values"][i] if "partition_values" in actions else None,
                    )
                )
        return removes

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
        if mode not in ("append", "overwrite"):
            raise ValueError(f"mode must be 'append' or 'overwrite', got {mode!r}")
        exists = self.exists(path)
        dt = self._table(path) if exists else None
        if dt is not None:
            table_parts = list(dt.metadata().partition_columns)
            if partition_by and list(partition_by) != table_parts:
                raise SchemaMismatchError(
                    f"table {path} is partitioned by {table_parts}, the write asks for {list(partition_by)}"
                )
            partition_by = table_parts
            target, new_fields = reconcile_schema(path, _spark_schema(dt), df.schema, allow_new_columns)
            if new_fields:
                self.add_columns(path, new_fields, ctx)
                dt = self._table(path)
            df = df.select(
                *[
                    F.col(f"`{f.name}`") if f.name in df.columns else F.lit(None).cast(f.dataType).alias(f.name)
                    for f in target.fields
                ]
            )
        else:
            partition_by = list(partition_by or [])
            target = nullable(df.schema)

        affected: list[str] = []
        if dt is not None and replace_where:
            affected = self._files_matching(path, replace_where)
            if affected:
                kept = (
                    self.spark.read.schema(target)
                    .option("basePath", path)
                    .parquet(*[f"{path.rstrip('/')}/{unquote(p)}" for p in affected])
                    .where(~F.coalesce(F.expr(replace_where), F.lit(False)))
                )
                df = df.unionByName(kept.select(*df.columns))

        meta = ctx.metadata(operation, {**(extra or {}), "mode": mode, **({"predicate": replace_where} if replace_where else {})})
        staging = None
        moved: list[str] = []
        try:
            staging = self._stage(df, path, partition_by)
            adds = self._publish(path, staging, partition_by, moved)
            staging = None
            props = CommitProperties(custom_metadata=meta, max_commit_retries=_COMMIT_RETRIES)
            schema = _delta_schema(target)
            if dt is None:
                try:
                    create_table_with_add_actions(
                        path, schema, adds, mode="error", partition_by=partition_by or None, commit_properties=props
                    )
                    return WriteResult(path, self.version(path), files_added=len(adds))
                except Exception as exc:
                    if "exist" not in str(exc).lower() or mode != "append":
                        raise
                    dt = self._table(path)  # another writer created it first: append to it
            removes = self._removes(dt, affected) if affected else []
            if replace_where:
                dt.create_write_transaction(adds + removes, "append", schema, partition_by, commit_properties=props)
            elif mode == "overwrite" and replace_partitions:
                filters = [(k, "=", None if v is None else str(v)) for k, v in replace_partitions.items()]
                missing = [k for k in replace_partitions if k not in partition_by]
                if missing:
                    raise SchemaMismatchError(f"table {path}: {missing} are not partition columns ({partition_by})")
                dt.create_write_transaction(adds, "overwrite", schema, partition_by, filters, commit_properties=props)
            else:
                dt.create_write_transaction(adds, mode, schema, partition_by, commit_properties=props)
            return WriteResult(path, self.version(path), files_added=len(adds), files_removed=len(removes))
        except CommitFailedError as exc:
            self._cleanup(staging, moved)
            raise ConcurrentWriteError(
                f"table {path}: another writer committed a conflicting change during this {operation}; "
                f"nothing was written. Re-run the stage. ({exc})"
            ) from exc
        except BaseException:
            self._cleanup(staging, moved)
            raise

    def delete(self, path: str, predicate: str, ctx: CommitContext) -> WriteResult:
        dt = self._table(path)
        affected = self._files_matching(path, predicate)
        if not affected:
            return WriteResult(path, dt.version())
        schema = _spark_schema(dt)
        kept = (
            self.spark.read.schema(schema)
            .option("basePath", path)
            .parquet(*[f"{path.rstrip('/')}/{unquote(p)}" for p in affected])
            .where(~F.coalesce(F.expr(predicate), F.lit(False)))
        )
        partition_by = list(dt.metadata().partition_columns)
        staging = None
        moved: list[str] = []
        try:
            staging = self._stage(kept, path, partition_by)
            adds = self._publish(path, staging, partition_by, moved)
            staging = None
            removes = self._removes(dt, affected)
            props = CommitProperties(
                custom_metadata=ctx.metadata("DELETE", {"predicate": predicate}), max_commit_retries=_COMMIT_RETRIES
            )
            dt.create_write_transaction(adds + removes, "append", _delta_schema(schema), partition_by, commit_properties=props)
            return WriteResult(path, self.version(path), files_added=len(adds), files_removed=len(removes))
        except CommitFailedError as exc:
            self._cleanup(staging, moved)
            raise ConcurrentWriteError(f"table {path}: a concurrent change conflicts with this delete; re-run. ({exc})") from exc
        except BaseException:
            self._cleanup(staging, moved)
            raise

    def add_columns(self, path: str, fields: list[StructField], ctx: CommitContext) -> None:
        delta_fields = DeltaSchema.from_json(nullable(StructType(fields)).json()).fields
        props = CommitProperties(custom_metadata=ctx.metadata("ADD COLUMNS", {"columns": [f.name for f in fields]}))
        self._table(path).alter.add_columns(delta_fields, commit_properties=props)
        log.info("table %s: added column(s) %s", path, [f.name for f in fields])

    def vacuum(self, path: str, retention_hours: float, dry_run: bool) -> list[str]:
        """Remove unreferenced files: tombstoned ones, orphans of interrupted writes, stale staging."""
        dt = self._table(path)
        removed = dt.vacuum(
            retention_hours=int(retention_hours), dry_run=dry_run, enforce_retention_duration=False, full=True
        )
        fs, table_fs = _filesystem(path)
        staging_root = f"{table_fs.rstrip('/')}/{STAGING_DIR}"
        cutoff = time.time() - retention_hours * 3600
        for info in fs.get_file_info(pafs.FileSelector(staging_root, allow_not_found=True)):
            if info.type == pafs.FileType.Directory and info.mtime is not None and info.mtime.timestamp() <= cutoff:
                removed.append(f"{STAGING_DIR}/{info.base_name}")
                if not dry_run:
                    fs.delete_dir(info.path)
        return list(removed)
