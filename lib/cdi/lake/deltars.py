"""Delta tables without the Delta JVM jars: Spark writes, ``deltalake`` (delta-rs) commits.

Spark's executors write Parquet into a private staging folder inside the table; the driver moves
the files into the table's layout, reads their footers for statistics and commits them in one
Delta transaction. Reads ask ``deltalake`` for the snapshot's files and hand them to Spark's
Parquet reader. No row passes through the driver, and delta-rs's own scan is never used (it can
abort the Python process at exit).

A failed or interrupted write removes its files and leaves the table at its previous version.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import logging
import math
import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any
from urllib.parse import unquote, urlparse

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from deltalake import DeltaTable
from deltalake import Schema as DeltaSchema
from deltalake.exceptions import CommitFailedError
from deltalake.exceptions import TableNotFoundError as DeltaTableNotFound
from deltalake.transaction import AddAction, CommitProperties, RemoveAction, create_table_with_add_actions
from pyspark.errors import AnalysisException
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructField, StructType

from .engine import (
    CHANGE_FEED_PROPERTY,
    CONSTRAINT_MARKER,
    CONSTRAINT_PREFIX,
    CommitContext,
    ConcurrentWriteError,
    ConstraintViolationError,
    Engine,
    LakeError,
    MergeSpec,
    SchemaMismatchError,
    TableNotFoundError,
    WriteResult,
    conform,
    guard_replace,
    merged_rows,
    nullable,
    partition_predicate,
    reconcile_schema,
    relaxed,
    replace_mismatch,
)
from .files import commit_actions
from .job_group import write_job_group
from .statistics import bounded_columns
from .stats import file_stats

log = logging.getLogger(__name__)

# each write stages in its own "_cdi_staging_<id>" folder inside the table: same file system, so
# publishing is a rename; readers skip "_" folders; no folder is shared between racing writers
STAGING_PREFIX = "_cdi_staging_"
_HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"
_COMMIT_RETRIES = 10
_IO_THREADS = 8


def _local_path(path: str) -> str:
    parsed = urlparse(path)
    return unquote(parsed.path) if parsed.scheme == "file" else path


def _comparable(path: str) -> str:
    """A file location in one spelling (Spark says ``file:/x%20y``, delta-rs ``/x y``)."""
    if path.startswith("file:"):
        return unquote(urlparse(path).path)
    return path


def _filesystem(path: str) -> tuple[pafs.FileSystem, str]:
    if "://" in path and not path.startswith("file://"):
        return pafs.FileSystem.from_uri(path)
    return pafs.LocalFileSystem(), _local_path(path)


def _remove_empty_dir(path: str) -> None:
    """Remove a local folder only if it is empty (never a folder another writer is using)."""
    if "://" in path and not path.startswith("file://"):
        return  # object stores have no folders to leave behind
    with contextlib.suppress(OSError):
        os.rmdir(_local_path(path))


def _spark_schema(dt: DeltaTable) -> StructType:
    return StructType.fromJson(json.loads(dt.schema().to_json()))


def _delta_schema(schema: StructType) -> DeltaSchema:
    return DeltaSchema.from_json(nullable(schema).json())


def _partition_values(relative: str, partition_by: list[str]) -> dict[str, str | None]:
    """Partition values of a file Spark wrote, from its ``key=value`` folders."""
    values: dict[str, str | None] = {}
    for segment in relative.split("/")[:-1]:
        key, _, raw = segment.partition("=")
        if key in partition_by:
            value = unquote(raw)
            values[key] = None if value == _HIVE_NULL else value
    return values


def _partition_string(value: Any) -> str | None:
    """A partition value as Delta's log spells it (also used to compare requested values)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(_dt.UTC).replace(tzinfo=None)
        return value.strftime("%Y-%m-%d %H:%M:%S.%f" if value.microsecond else "%Y-%m-%d %H:%M:%S")
    if isinstance(value, _dt.date):
        return value.isoformat()
    return str(value)


def _commit_failed(exc: BaseException) -> bool:
    return isinstance(exc, CommitFailedError)


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
            dt = DeltaTable(path, version=self._version_at(path, dt, timestamp))
        features = set(dt.protocol().reader_features or [])
        if "deletionVectors" in features:
            raise LakeError(
                f"table {path} uses deletion vectors, which this engine cannot read through Spark's "
                "Parquet reader; run with delta-spark on the classpath (--packages io.delta:delta-spark_2.13:...)"
            )
        if dt.metadata().configuration.get("delta.columnMapping.mode", "none") not in ("none", None):
            raise LakeError(
                f"table {path} uses column mapping, whose physical column names this engine cannot read; "
                "run with delta-spark on the classpath (--packages io.delta:delta-spark_2.13:...)"
            )
        return dt

    @staticmethod
    def _version_at(path: str, dt: DeltaTable, timestamp: datetime) -> int:
        """The last version committed at or before ``timestamp`` (naive means UTC).

        Chosen from the commit history rather than delta-rs's ``load_as_version``, which falls
        back to the first version for a time before the table existed instead of failing.
        """
        if timestamp.tzinfo is None:
            timestamp = timestamp.replace(tzinfo=_dt.UTC)
        wanted_ms = timestamp.timestamp() * 1000
        candidates = [v for v, e in _commit_infos(path, dt.version(), None) if e.get("timestamp", 0) <= wanted_ms]
        if not candidates:
            raise LakeError(
                f"table {path} has no version as of {timestamp.isoformat()}: its history starts later "
                "(or the log entries before it were cleaned up)"
            )
        return max(candidates)

    def exists(self, path: str) -> bool:
        return DeltaTable.is_deltatable(path)

    def schema(self, path: str) -> StructType:
        return _spark_schema(self._table(path))

    def version(self, path: str) -> int:
        return self._table(path).version()

    def partition_columns(self, path: str) -> list[str]:
        return list(self._table(path).metadata().partition_columns)

    def file_paths(self, path: str, version: int | None = None) -> list[str]:
        # file_uris() are the files' real locations (the log's percent-encoding already undone)
        return [_local_path(u) for u in self._table(path, version).file_uris()]

    def read(self, path: str, version: int | None = None, timestamp: datetime | None = None) -> DataFrame:
        return self._read_snapshot(path, self._table(path, version, timestamp))

    def _read_snapshot(self, path: str, dt: DeltaTable) -> DataFrame:
        """Spark's Parquet reader over exactly the files of ``dt``'s snapshot."""
        schema = _spark_schema(dt)
        files = dt.file_uris()
        if not files:
            return self.spark.createDataFrame([], schema)
        reader = self.spark.read.schema(schema)
        if dt.metadata().partition_columns:
            # partition values live in the hive-style folders; basePath lets Spark restore them
            reader = reader.option("basePath", path)
        try:
            df = reader.parquet(*files)
        except AnalysisException as exc:
            if "PATH_NOT_FOUND" not in str(exc):
                raise
            raise LakeError(
                f"table {path} version {dt.version()} refers to data files that no longer exist "
                f"(removed by vacuum, or deleted by hand): {exc}"
            ) from exc
        return df.select(*[F.col(f"`{n}`") for n in schema.fieldNames()])

    def history(self, path: str, limit: int | None = None) -> list[dict[str, Any]]:
        out = []
        for version, entry in _commit_infos(path, self._table(path).version(), limit):
            out.append(
                {
                    "version": version,
                    "timestamp": datetime.fromtimestamp(entry.get("timestamp", 0) / 1000, tz=_dt.UTC),
                    "operation": entry.get("cdi.operation") or entry.get("operation"),
                    "job": entry.get("cdi.job"),
                    "run_id": entry.get("cdi.run_id") or None,
                    "engine_operation": entry.get("operation"),
                    "metadata": {k[4:]: v for k, v in entry.items() if k.startswith("cdi.")},
                }
            )
        return out

    def _committed_version(self, path: str, commit_id: str) -> int | None:
        """The version our commit landed at (another writer may have committed since), or None."""
        try:
            latest = DeltaTable(path).version()
        except Exception:  # no table (yet): nothing was committed
            return None
        for version, entry in _commit_infos(path, latest, _COMMIT_RETRIES + 5):
            if entry.get("cdi.commit_id") == commit_id:
                return version
        return None

    # ---------------------------------------------------------------- writing
    def _stage(self, df: DataFrame, staging: str, partition_by: list[str]) -> None:
        """Write the staged Parquet files; a failed write returns only once its tasks ended, so
        the caller's removal of the staging folder races no task."""
        with write_job_group(self.spark.sparkContext, staging):
            df.write.mode("errorifexists").partitionBy(*partition_by).parquet(staging)

    def _publish(
        self, path: str, staging: str, partition_by: list[str], moved: list[str], bounded: frozenset[str] | None = None
    ) -> list[AddAction]:
        """Move staged Parquet files into the table folder and describe them as Delta adds.

        Footer reads and moves run on a few threads: both are I/O and pyarrow releases the GIL.
        Files without rows (Spark writes one for an empty partition) are dropped.
        """
        fs, staging_fs = _filesystem(staging)
        _, table_fs = _filesystem(path)
        prefix = staging_fs.rstrip("/") + "/"
        staged = [
            info
            for info in fs.get_file_info(pafs.FileSelector(staging_fs, recursive=True))
            if info.type == pafs.FileType.File
            and info.base_name.endswith(".parquet")
            and not info.base_name.startswith((".", "_"))
            and "/_temporary/" not in info.path
        ]
        now_ms = int(time.time() * 1000)

        def publish_one(info: pafs.FileInfo) -> AddAction | None:
            relative = info.path[len(prefix) :]
            with fs.open_input_file(info.path) as handle:
                meta = pq.ParquetFile(handle).metadata
            if meta.num_rows == 0:
                return None
            dest = f"{table_fs.rstrip('/')}/{relative}"
            fs.create_dir(dest.rsplit("/", 1)[0], recursive=True)
            fs.move(info.path, dest)
            moved.append(dest)
            return AddAction(
                path=relative,  # the raw relative path: delta-rs percent-encodes it in the log
                size=info.size,
                partition_values=_partition_values(relative, partition_by),
                modification_time=now_ms,
                data_change=True,
                stats=file_stats(meta, bounded),
            )

        if len(staged) <= 1:
            results = [publish_one(info) for info in staged]
        else:
            with ThreadPoolExecutor(max_workers=min(_IO_THREADS, len(staged))) as pool:
                results = list(pool.map(publish_one, staged))
        fs.delete_dir(staging_fs)
        return [a for a in results if a is not None]

    def _cleanup(self, path: str, staging: str, moved: list[str], created_folder: bool) -> None:
        """Remove everything a failed write left: its staging folder and files already moved."""
        fs, staging_fs = _filesystem(staging)
        with contextlib.suppress(OSError):  # FileNotFoundError included
            fs.delete_dir(staging_fs)
        for dest in moved:
            dfs, dest_fs = _filesystem(dest)
            with contextlib.suppress(OSError):
                dfs.delete_file(dest_fs)
            _remove_partition_dirs(path, dest)
        if created_folder:
            _remove_empty_dir(path)

    def _files_matching(self, path: str, dt: DeltaTable, predicate: str) -> list[str]:
        """Relative paths of the snapshot's files holding at least one row matching ``predicate``.

        Collects file names only: their number is bounded by the table's file count.
        """
        if not dt.file_uris():
            return []
        # one global aggregate: a single small exchange, whatever spark.sql.shuffle.partitions is
        found = (
            self._read_snapshot(path, dt)
            .where(F.coalesce(F.expr(predicate), F.lit(False)))
            .agg(F.collect_set(F.col("_metadata.file_path")).alias("files"))
            .first()["files"]  # type: ignore[index]  # a global aggregate always has its row
        )
        root = _comparable(path).rstrip("/") + "/"
        out = []
        for file_path in found or []:
            full = _comparable(file_path)
            if not full.startswith(root):
                raise LakeError(f"file {full} is not under table {path}")
            out.append(full[len(root) :])
        return out

    def _add_actions(self, dt: DeltaTable) -> list[dict[str, Any]]:
        """The snapshot's files: raw relative path, size and typed partition values."""
        table = pa.table(dt.get_add_actions(flatten=False))
        paths = table.column("path").to_pylist()
        sizes = table.column("size_bytes").to_pylist()
        parts = table.column("partition").to_pylist() if "partition" in table.column_names else [{}] * len(paths)
        # get_add_actions spells paths as the log does (percent-encoded); file names are raw
        return [{"path": unquote(p), "size": s, "partition": pv or {}} for p, s, pv in zip(paths, sizes, parts)]

    def _files_in_partitions(self, dt: DeltaTable, values: dict[str, Any]) -> list[str]:
        wanted = {k: _partition_string(v) for k, v in values.items()}
        return [
            a["path"]
            for a in self._add_actions(dt)
            if all(_partition_string(a["partition"].get(k)) == v for k, v in wanted.items())
        ]

    def _removes(self, dt: DeltaTable, relative_paths: list[str]) -> list[RemoveAction]:
        wanted = set(relative_paths)
        now_ms = int(time.time() * 1000)
        removes = []
        for action in self._add_actions(dt):
            if action["path"] in wanted:
                removes.append(
                    RemoveAction(
                        path=action["path"],
                        data_change=True,
                        deletion_timestamp=now_ms,
                        size=action["size"],
                        partition_values={k: _partition_string(v) for k, v in action["partition"].items()},
                    )
                )
        missing = wanted - {r.path for r in removes}
        if missing:
            raise LakeError(f"table {dt.table_uri}: files {sorted(missing)[:3]} are not in the snapshot being rewritten")
        return removes

    def _kept_rows(self, path: str, target: StructType, relative_paths: list[str], drop: Column) -> DataFrame:
        """Rows of the given files that a rewrite keeps (those not matching ``drop``)."""
        return (
            self.spark.read.schema(target)
            .option("basePath", path)
            .parquet(*[f"{path.rstrip('/')}/{p}" for p in relative_paths])
            .where(~F.coalesce(drop, F.lit(False)))
        )

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
        properties: dict[str, str] | None = None,
    ) -> WriteResult:
        if mode not in ("append", "overwrite"):
            raise ValueError(f"mode must be 'append' or 'overwrite', got {mode!r}")
        dt = self._table(path) if self.exists(path) else None
        new_fields: list[StructField] = []
        if dt is not None:
            table_parts = list(dt.metadata().partition_columns)
            if partition_by and list(partition_by) != table_parts:
                raise SchemaMismatchError(
                    f"table {path} is partitioned by {table_parts}, the write asks for {list(partition_by)}"
                )
            partition_by = table_parts
            target, new_fields = reconcile_schema(path, _spark_schema(dt), df.schema, allow_new_columns)
            df = _guard_constraints(conform(df, target), path, _constraints(dt))
        else:
            partition_by = list(partition_by or [])
            missing = [c for c in partition_by if c not in df.columns]
            if missing:
                raise SchemaMismatchError(f"table {path}: partition column(s) {missing} are not in the data {df.columns}")
            target = nullable(df.schema)
        if replace_partitions:
            not_parts = [k for k in replace_partitions if k not in partition_by]
            if not_parts:
                raise SchemaMismatchError(
                    f"table {path}: replace_partitions names {not_parts}, which are not partition columns "
                    f"({partition_by}); use replace_where for data columns"
                )

        described = ""
        affected: list[str] = []
        if replace_where:
            described = f"replace_where {replace_where!r}"
            df = guard_replace(df, path, F.expr(replace_where), described)
            if dt is not None:
                affected = self._files_matching(path, dt, replace_where)
                if affected:
                    kept = self._kept_rows(path, target, affected, F.expr(replace_where))
                    df = df.unionByName(kept.select(*df.columns))
        elif replace_partitions:
            described = f"replace_partitions {replace_partitions!r}"
            df = guard_replace(df, path, partition_predicate(replace_partitions), described)
            if dt is not None:
                affected = self._files_in_partitions(dt, replace_partitions)

        if replace_where or replace_partitions:
            commit_mode = "append"  # explicit removes, so only the replaced files go
        else:
            commit_mode = mode
        extra = {**(extra or {}), "mode": mode}
        if replace_where:
            extra["predicate"] = replace_where
        if replace_partitions:
            extra["partitions"] = {k: _partition_string(v) for k, v in replace_partitions.items()}
        return self._commit_rewrite(
            path, dt, df, target, partition_by, affected, commit_mode, ctx, operation, extra, new_fields, described,
            properties=properties,
        )

    def delete(self, path: str, predicate: str, ctx: CommitContext) -> WriteResult:
        dt = self._table(path)
        affected = self._files_matching(path, dt, predicate)
        if not affected:
            return WriteResult(path, dt.version())
        schema = _spark_schema(dt)
        kept = self._kept_rows(path, schema, affected, F.expr(predicate))
        partition_by = list(dt.metadata().partition_columns)
        return self._commit_rewrite(
            path, dt, kept, schema, partition_by, affected, "append", ctx, "DELETE", {"predicate": predicate}, [], ""
        )

    def _commit_rewrite(
        self,
        path: str,
        dt: DeltaTable | None,
        df: DataFrame,
        target: StructType,
        partition_by: list[str],
        affected: list[str],
        commit_mode: str,
        ctx: CommitContext,
        operation: str,
        extra: dict[str, Any],
        new_fields: list[StructField],
        described: str,
        properties: dict[str, str] | None = None,
    ) -> WriteResult:
        """Stage ``df``, move its files in, and commit them (removing ``affected``) in one transaction.

        Anything that fails before the commit lands (a task, a move, the commit itself, an
        interrupt) removes this write's files; the table stays at the version it had.
        """
        commit_id = uuid.uuid4().hex
        meta = ctx.metadata(operation, {**extra, "commit_id": commit_id})
        props = CommitProperties(custom_metadata=meta, max_commit_retries=_COMMIT_RETRIES)
        staging = f"{path.rstrip('/')}/{STAGING_PREFIX}{commit_id}"
        table_fs, table_local = _filesystem(path)
        created_folder = dt is None and table_fs.get_file_info(table_local).type == pafs.FileType.NotFound
        moved: list[str] = []
        committing = False
        try:
            self._stage(df, staging, partition_by)
            config = dict(dt.metadata().configuration) if dt is not None else dict(properties or {})
            adds = self._publish(path, staging, partition_by, moved, bounded_columns(config))
            schema = _delta_schema(target)
            committing = True
            if dt is None:
                dt = self._create(path, schema, adds, partition_by, props, target, commit_mode, properties)
                if dt is None:
                    return self._result(path, commit_id, len(adds), 0)
            removes = self._removes(dt, affected) if affected else []
            if new_fields and commit_mode != "overwrite":
                # delta-rs keeps the old schema on an append commit, so the new columns get their
                # own commit, made only now that the data files are safely written
                self.add_columns(path, new_fields, ctx)
                dt = self._table(path)
            dt.create_write_transaction(adds + removes, commit_mode, schema, partition_by, commit_properties=props)
            return self._result(path, commit_id, len(adds), len(removes))
        except BaseException as exc:
            if committing and self._committed_version(path, commit_id) is not None:
                raise  # the commit landed (a later step failed): its files are the table's now
            self._cleanup(path, staging, moved, created_folder)
            if _commit_failed(exc):
                raise ConcurrentWriteError(
                    f"table {path}: another writer committed a conflicting change during this {operation}; "
                    f"nothing was written and the table is as the other writer left it. Re-run the stage. ({exc})"
                ) from exc
            mismatch = replace_mismatch(exc, path, described) if described else None
            if mismatch is not None:
                raise mismatch from exc
            if CONSTRAINT_MARKER in str(exc):
                broken = str(exc).split(CONSTRAINT_MARKER + ": ", 1)[1].splitlines()[0]
                raise ConstraintViolationError(
                    f"table {path}: a written row breaks CHECK constraint {broken}; nothing was written. "
                    "Fix the rows the stage writes."
                ) from exc
            raise

    def _create(
        self,
        path: str,
        schema: DeltaSchema,
        adds: list[AddAction],
        partition_by: list[str],
        props: CommitProperties,
        target: StructType,
        commit_mode: str,
        properties: dict[str, str] | None = None,
    ) -> DeltaTable | None:
        """Create the table with its first files; if another writer created it meanwhile, return
        it so the write lands on top when that is safe (same schema and partitioning)."""
        try:
            create_table_with_add_actions(
                path, schema, adds, mode="error", partition_by=partition_by or None, commit_properties=props,
                configuration=properties or None,
            )
            return None
        except Exception as exc:
            if "exist" not in str(exc).lower():
                raise
            dt = self._table(path)
            same = relaxed(_spark_schema(dt)) == relaxed(target) and list(dt.metadata().partition_columns) == partition_by
            if not same:
                raise ConcurrentWriteError(
                    f"table {path} was created by another writer with a different schema or partitioning "
                    "while this write ran; nothing was written. Re-run the stage."
                ) from exc
            log.info("table %s was created concurrently; committing this %s on top", path, commit_mode)
            return dt

    def _result(self, path: str, commit_id: str, added: int, removed: int) -> WriteResult:
        version = self._committed_version(path, commit_id)
        return WriteResult(
            path, version if version is not None else self.version(path), files_added=added, files_removed=removed
        )

    def create(
        self,
        path: str,
        schema: StructType,
        partition_by: list[str] | None,
        properties: dict[str, str],
        ctx: CommitContext,
        constraints: dict[str, str] | None = None,
    ) -> None:
        props = CommitProperties(custom_metadata=ctx.metadata("CREATE TABLE", {"properties": properties}))
        create_table_with_add_actions(
            path, _delta_schema(nullable(schema)), [], mode="error", partition_by=partition_by or None,
            configuration=properties, commit_properties=props,
        )
        for name, expression in (constraints or {}).items():  # delta-rs takes none in its create
            self.add_constraint(path, name, expression, ctx)

    def merge(
        self,
        path: str,
        source: DataFrame,
        spec: MergeSpec,
        ctx: CommitContext,
        operation: str,
        extra: dict[str, Any] | None = None,
    ) -> WriteResult:
        """MERGE as one overwrite commit of the merged rows (delta-rs's own merge would pull the
        source through the driver); the table is read at one pinned version."""
        dt = self._table(path)
        merged = merged_rows(self._read_snapshot(path, dt), source, spec)
        schema = _spark_schema(dt)
        merged = _guard_constraints(merged, path, _constraints(dt))
        partition_by = list(dt.metadata().partition_columns)
        affected = [a["path"] for a in self._add_actions(dt)]
        return self._commit_rewrite(
            path, dt, merged, schema, partition_by, affected, "append", ctx, operation,
            {**(extra or {}), "merge_on": spec.on(), "read_version": dt.version()}, [], "",
        )

    def changes(self, path: str, start_version: int, end_version: int | None = None) -> DataFrame:
        """The change feed inferred from each commit's added and removed files, as delta-spark
        infers it for commits without change-data files: rows only in removed files are
        ``delete``, rows only in added files ``insert`` (a rewritten unchanged row cancels out)."""
        dt = self._table(path)
        if CHANGE_FEED_PROPERTY not in dt.metadata().configuration:
            raise LakeError(f"table {path} has no Change Data Feed ({CHANGE_FEED_PROPERTY} is not set)")
        end = dt.version() if end_version is None else end_version
        schema = _spark_schema(dt)
        parts = []
        for version, at, adds, removes in _log_file_actions(path, start_version, end):
            for files, sign in ((adds, 1), (removes, -1)):
                if files:
                    rows = self._kept_rows(path, schema, files, F.lit(False))
                    parts.append(
                        rows.withColumn("_sign", F.lit(sign))
                        .withColumn("_commit_version", F.lit(version).cast("long"))
                        .withColumn("_commit_timestamp", F.lit(at).cast("timestamp"))
                    )
        if not parts:
            empty = StructType(list(schema.fields))
            return self.spark.createDataFrame([], empty).select(
                "*",
                F.lit(None).cast("string").alias("_change_type"),
                F.lit(None).cast("long").alias("_commit_version"),
                F.lit(None).cast("timestamp").alias("_commit_timestamp"),
            )
        union = parts[0]
        for part in parts[1:]:
            union = union.unionByName(part)
        keys = [*schema.fieldNames(), "_commit_version", "_commit_timestamp"]
        net = union.groupBy(*[F.col(f"`{k}`") for k in keys]).agg(F.sum("_sign").alias("_n")).where(F.col("_n") != 0)
        return net.select(
            *[F.col(f"`{n}`") for n in schema.fieldNames()],
            F.when(F.col("_n") > 0, F.lit("insert")).otherwise(F.lit("delete")).alias("_change_type"),
            "_commit_version",
            "_commit_timestamp",
        )

    def restore(self, path: str, version: int, ctx: CommitContext) -> WriteResult:
        commit_id = uuid.uuid4().hex
        meta = ctx.metadata("RESTORE", {"to_version": version, "commit_id": commit_id})
        self._table(path).restore(version, commit_properties=CommitProperties(custom_metadata=meta))
        return self._result(path, commit_id, 0, 0)

    def optimize(self, path: str, ctx: CommitContext) -> dict[str, Any]:
        metrics = self._table(path).optimize.compact(commit_properties=CommitProperties(custom_metadata=ctx.metadata("OPTIMIZE")))
        return {"files_added": int(metrics.get("numFilesAdded", 0)), "files_removed": int(metrics.get("numFilesRemoved", 0))}

    def properties(self, path: str) -> dict[str, str]:
        return dict(self._table(path).metadata().configuration)

    def set_properties(self, path: str, properties: dict[str, str], ctx: CommitContext) -> None:
        props = CommitProperties(custom_metadata=ctx.metadata("SET PROPERTIES", {"properties": properties}))
        self._table(path).alter.set_table_properties(properties, raise_if_not_exists=False, commit_properties=props)

    def add_constraint(self, path: str, name: str, expression: str, ctx: CommitContext) -> None:
        """Checked here on the current rows with Spark, then recorded as delta-rs records it;
        this engine's writes enforce it themselves (see ``_guard_constraints``)."""
        dt = self._table(path)
        bad = self._read_snapshot(path, dt).where(~F.coalesce(F.expr(expression), F.lit(False))).limit(1).count()
        if bad:
            raise ConstraintViolationError(f"table {path}: existing rows break the new constraint {name} ({expression})")
        self.set_properties(path, {f"{CONSTRAINT_PREFIX}{name}": expression}, ctx)

    def add_columns(self, path: str, fields: list[StructField], ctx: CommitContext) -> None:
        delta_fields = DeltaSchema.from_json(nullable(StructType(fields)).json()).fields
        props = CommitProperties(custom_metadata=ctx.metadata("ADD COLUMNS", {"columns": [f.name for f in fields]}))
        self._table(path).alter.add_columns(delta_fields, commit_properties=props)
        log.info("table %s: added column(s) %s", path, [f.name for f in fields])

    def vacuum(self, path: str, retention_hours: float, dry_run: bool, ctx: CommitContext) -> list[str]:
        """Remove unreferenced files: tombstoned ones, orphans of interrupted writes, stale staging."""
        dt = self._table(path)
        removed = dt.vacuum(
            retention_hours=math.ceil(retention_hours),  # never shorter than asked
            dry_run=dry_run,
            enforce_retention_duration=False,
            full=True,
            commit_properties=CommitProperties(custom_metadata=ctx.metadata("VACUUM")),
        )
        fs, table_fs = _filesystem(path)
        cutoff = time.time() - retention_hours * 3600
        for info in fs.get_file_info(pafs.FileSelector(table_fs)):
            stale = info.mtime is not None and info.mtime.timestamp() <= cutoff
            if info.type == pafs.FileType.Directory and info.base_name.startswith(STAGING_PREFIX) and stale:
                removed.append(info.base_name)  # left by a writer that died before cleaning up
                if not dry_run:
                    fs.delete_dir(info.path)
        return list(removed)


def _constraints(dt: DeltaTable) -> dict[str, str]:
    conf = dt.metadata().configuration
    return {k[len(CONSTRAINT_PREFIX):]: v for k, v in conf.items() if k.startswith(CONSTRAINT_PREFIX)}


def _guard_constraints(df: DataFrame, path: str, constraints: dict[str, str]) -> DataFrame:
    """Fail the write's own tasks on a row that breaks a CHECK constraint (delta-spark checks
    them itself; delta-rs's checks run only in its own writers, which this engine does not use)."""
    for name, expression in constraints.items():
        message = F.lit(f"{CONSTRAINT_MARKER}: {name} ({expression}) in {path}")
        df = df.where(F.when(F.coalesce(F.expr(expression), F.lit(False)), F.lit(True)).otherwise(F.raise_error(message)))
    return df


def _commit_infos(path: str, newest: int, limit: int | None):
    """(version, commitInfo) of up to ``limit`` commits from ``newest`` down, read from the
    commit files themselves. delta-rs's ``history()`` numbers its entries by counting down from
    the latest version, which a commit landing meanwhile shifts (delta-io/delta-rs#4488); the
    file name is the version. Stops where log retention removed the older files."""
    fs, base = _filesystem(path)
    oldest = 0 if limit is None else max(0, newest - limit + 1)
    for version in range(newest, oldest - 1, -1):
        actions = commit_actions(fs, base, version)
        if actions is None:
            return
        info = next((a["commitInfo"] for a in actions if "commitInfo" in a), None)
        if info is not None:
            yield version, info


def _log_file_actions(path: str, start: int, end: int):
    """(version, commit time, added files, removed files) of each commit in [start, end], from
    the commit files of ``_delta_log`` (kept for the log retention, 30 days by default)."""
    fs, base = _filesystem(path)
    for version in range(start, end + 1):
        actions = commit_actions(fs, base, version)
        if actions is None:
            raise LakeError(f"table {path}: the log of version {version} is gone (log retention); no change feed")
        adds, removes, at = [], [], None
        for action in actions:
            if "add" in action and action["add"].get("dataChange", True):
                adds.append(unquote(action["add"]["path"]))
            elif "remove" in action and action["remove"].get("dataChange", True):
                removes.append(unquote(action["remove"]["path"]))
            elif "commitInfo" in action:
                at = datetime.fromtimestamp(action["commitInfo"].get("timestamp", 0) / 1000, tz=_dt.UTC)
        yield version, at, adds, removes


def _remove_partition_dirs(path: str, dest: str) -> None:
    """After removing a file, remove the partition folders it leaves empty (up to the table)."""
    if "://" in path and not path.startswith("file://"):
        return
    table = _local_path(path).rstrip("/")
    folder = dest.rsplit("/", 1)[0]
    while folder.startswith(table + "/") and folder != table:
        before = folder
        _remove_empty_dir(folder)
        if os.path.isdir(_local_path(before)):
            return
        folder = folder.rsplit("/", 1)[0]
