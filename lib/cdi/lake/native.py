"""Delta tables through delta-spark: the engine wherever its jars are on the Spark classpath
(every cdi session asks for them, see :mod:`cdi.spark`; clusters pass ``--packages``).

delta-spark does the transactions; this class maps the lake's calls onto its commands (writes
with ``replaceWhere``, ``MERGE``, Change Data Feed, ``RESTORE``, ``OPTIMIZE``, ``VACUUM``, CHECK
constraints) and its typed errors (``delta.exceptions``) onto the lake's.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime
from typing import Any

from pyspark.errors import PySparkException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructField, StructType

from cdi.sql import identifier, literal

from .engine import (
    CHANGE_FEED_PROPERTY,
    CONSTRAINT_PREFIX,
    CommitContext,
    ConcurrentWriteError,
    ConstraintViolationError,
    Engine,
    LakeError,
    MergeSpec,
    ReplaceWhereMismatchError,
    SchemaMismatchError,
    TableNotFoundError,
    WriteResult,
    conform,
    guard_replace,
    partition_predicate,
    reconcile_schema,
    replace_mismatch,
)
from .files import filesystem, local_path, remove_uncommitted_folder
from .job_group import write_job_group

_META_CONF = "spark.databricks.delta.commitInfo.userMetadata"
# Delta commands without a writer option take commit metadata from this session setting; one
# lock keeps two threads of one session from swapping each other's metadata
_META_LOCK = threading.RLock()


def _table_ref(path: str) -> str:
    return "delta." + identifier(path)


def _delta_conflict_types() -> tuple[type[BaseException], ...]:
    """Every concurrency exception delta-spark raises (``delta.exceptions`` lists just those)."""
    import delta.exceptions as conflicts

    return tuple(getattr(conflicts, name) for name in conflicts.__all__)


def _condition(exc: BaseException | None) -> str:
    """Spark's error condition (``DELTA_VIOLATE_CONSTRAINT_WITH_VALUES``, ...), or ''.

    Errors PySpark converts carry it; a raw ``Py4JJavaError`` carries the JVM exception, whose
    ``getCondition`` (Spark's ``SparkThrowable``) says the same.
    """
    from py4j.protocol import Py4JJavaError

    while exc is not None:
        if isinstance(exc, PySparkException):
            return exc.getCondition() or ""
        if isinstance(exc, Py4JJavaError):
            java = exc.java_exception
            while java is not None:
                try:
                    condition = java.getCondition()
                except Exception:  # not a SparkThrowable
                    condition = None
                if condition:
                    return str(condition)
                java = java.getCause()
            return ""
        exc = exc.__cause__
    return ""


class NativeDeltaEngine(Engine):
    """The lake's operations as delta-spark commands."""

    name = "delta-spark"

    def __init__(self, spark: SparkSession):
        self.spark = spark
        from delta.tables import DeltaTable  # imported lazily: only valid with the jars present

        self._DeltaTable = DeltaTable
        self._conflicts = _delta_conflict_types()
        # a table's partitioning never changes once created; asking Delta costs a Spark job
        self._partitions: dict[str, list[str]] = {}

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
        if timestamp is not None:
            version = self._version_at(path, timestamp)
        if version is not None:
            reader = reader.option("versionAsOf", version)
        try:
            return reader.load(path)
        except Exception as exc:  # time travel outside the table's (vacuumed) history
            if version is not None:
                raise LakeError(f"table {path} has no readable version {version}: {exc}") from exc
            raise

    def _version_at(self, path: str, timestamp: datetime) -> int:
        """The newest version committed at or before ``timestamp`` (delta-spark itself refuses
        a timestamp after the last commit, which for "as of" means the current version)."""
        ts = timestamp if timestamp.tzinfo else timestamp.replace(tzinfo=UTC)
        for h in self.history(path):  # newest first; one row per commit
            if h["timestamp"] <= ts:
                return int(h["version"])
        raise LakeError(f"table {path} did not exist at {ts.isoformat()}: its first commit is later")

    def schema(self, path: str) -> StructType:
        return self.read(path).schema

    def version(self, path: str) -> int:
        """The table's latest version: from Delta's log object in the driver (no Spark job),
        or from its history where that interface differs."""
        self._dt(path)
        try:
            jvm: Any = self.spark.sparkContext._jvm
            none = jvm.scala.Option.empty()
            delta_log = jvm.org.apache.spark.sql.delta.DeltaLog.forTable(self.spark._jsparkSession, path)
            return int(delta_log.update(False, none, none).version())
        except Exception:
            row = self._dt(path).history(1).select("version").first()
            return int(row[0])  # a table has at least one commit

    def _detail(self, path: str):
        return self._dt(path).detail().select("partitionColumns", "properties").first()

    def partition_columns(self, path: str) -> list[str]:
        if path not in self._partitions:
            self._partitions[path] = list(self._detail(path)["partitionColumns"])
        return list(self._partitions[path])

    def properties(self, path: str) -> dict[str, str]:
        return dict(self._detail(path)["properties"] or {})

    def file_paths(self, path: str, version: int | None = None) -> list[str]:
        # inputFiles() lists the snapshot's files from the Delta log without scanning the data
        return sorted(local_path(p) for p in self.read(path, version).inputFiles())

    def history(self, path: str, limit: int | None = None) -> list[dict[str, Any]]:
        rows = self._dt(path).history(limit).select("version", "timestamp", "operation", "userMetadata").collect()
        out = []
        for r in rows:
            meta = json.loads(r["userMetadata"]) if r["userMetadata"] else {}
            out.append(
                {
                    "version": r["version"],
                    "timestamp": r["timestamp"].replace(tzinfo=UTC),
                    "operation": meta.get("cdi.operation") or r["operation"],
                    "job": meta.get("cdi.job"),
                    "run_id": meta.get("cdi.run_id") or None,
                    "engine_operation": r["operation"],
                    "metadata": {k[4:]: v for k, v in meta.items() if k.startswith("cdi.")},
                }
            )
        return out

    @contextmanager
    def _committing(self, path: str, meta: dict[str, str] | None) -> Iterator[None]:
        """Run a Delta command whose commit carries ``meta``; map delta-spark's typed errors.

        DataFrame writes pass ``meta=None`` and carry theirs in the ``userMetadata`` option, so
        they run concurrently; commands that take metadata from the session setting hold a lock.
        """
        with _META_LOCK if meta is not None else nullcontext():
            previous = self.spark.conf.get(_META_CONF, None) if meta is not None else None
            if meta is not None:
                self.spark.conf.set(_META_CONF, json.dumps(meta))
            try:
                yield
            except self._conflicts as exc:
                raise ConcurrentWriteError(
                    f"table {path}: another writer committed a conflicting change ({type(exc).__name__}); "
                    "nothing was written and the table is as the other writer left it. Re-run the stage."
                ) from exc
            except Exception as exc:
                if _condition(exc).startswith("DELTA_VIOLATE_CONSTRAINT"):
                    raise ConstraintViolationError(
                        f"table {path}: a written row breaks a CHECK constraint; nothing was written. "
                        f"Fix the rows the stage writes. ({str(exc).splitlines()[0]})"
                    ) from exc
                raise
            finally:
                if meta is not None:
                    if previous is None:
                        self.spark.conf.unset(_META_CONF)
                    else:
                        self.spark.conf.set(_META_CONF, previous)

    def _committed_version(self, path: str, commit_id: str) -> int:
        """The version our commit landed at (another writer may have committed since): the
        latest one when its commit file names our commit id, else found in the history."""
        latest = self.version(path)
        try:
            fs, base = filesystem(local_path(path))
            with fs.open_input_stream(f"{base.rstrip('/')}/_delta_log/{latest:020d}.json") as commit:
                if commit_id.encode() in commit.read():
                    return latest
        except Exception:  # a store pyarrow cannot open: ask Delta's history
            pass
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
        properties: dict[str, str] | None = None,
    ) -> WriteResult:
        if mode not in ("append", "overwrite"):
            raise ValueError(f"mode must be 'append' or 'overwrite', got {mode!r}")
        exists = self.exists(path)
        if exists:
            target, _ = reconcile_schema(path, self.schema(path), df.schema, allow_new_columns)
            df = conform(df, target)
            table_parts = self.partition_columns(path)
            if partition_by and list(partition_by) != table_parts:
                raise SchemaMismatchError(
                    f"table {path} is partitioned by {table_parts}, the write asks for {list(partition_by)}"
                )
        described = ""
        if replace_partitions:
            parts = self.partition_columns(path) if exists else list(partition_by or [])
            not_parts = [k for k in replace_partitions if k not in parts]
            if not_parts:
                raise SchemaMismatchError(
                    f"table {path}: replace_partitions names {not_parts}, which are not partition columns "
                    f"({parts}); use replace_where for data columns"
                )
            described = f"replace_partitions {replace_partitions!r}"
            df = guard_replace(df, path, partition_predicate(replace_partitions), described)
            replace_where = " AND ".join(
                f"{identifier(k)} IS NULL" if v is None else f"{identifier(k)} = {literal(v)}" for k, v in replace_partitions.items()
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
        if not exists:  # table properties, set by the commit that creates the table
            for key, value in (properties or {}).items():
                writer = writer.option(key, value)
        if allow_new_columns:
            writer = writer.option("mergeSchema", "true")
        if replace_where:
            if not exists:
                writer = writer.mode("append")
            else:
                # delta-spark's replaceWhere on data columns rewrites only matching rows' files
                writer = writer.option("replaceWhere", replace_where)
        try:
            with write_job_group(self.spark.sparkContext, path), self._committing(path, None):
                writer.save(path)
        except BaseException as exc:
            if not exists:
                self._remove_uncommitted_table(path)
            if isinstance(exc, (ConcurrentWriteError, ConstraintViolationError)) or not isinstance(exc, Exception):
                raise
            mismatch = replace_mismatch(exc, path, described) if described else None
            if mismatch is not None:
                raise mismatch from exc
            if described and _condition(exc).startswith("DELTA_REPLACE_WHERE"):
                raise ReplaceWhereMismatchError(f"table {path}: the data holds rows outside {described}: {exc}") from exc
            if "SCHEMA" in _condition(exc) or "MERGE_INCOMPATIBLE" in _condition(exc):
                raise SchemaMismatchError(f"table {path}: {exc}") from exc
            raise
        return WriteResult(path, self._committed_version(path, commit_id))

    def create(
        self,
        path: str,
        schema: StructType,
        partition_by: list[str] | None,
        properties: dict[str, str],
        ctx: CommitContext,
        constraints: dict[str, str] | None = None,
    ) -> None:
        # constraints in the first commit: an empty table has no row to check, and each ALTER
        # TABLE ADD CONSTRAINT would be a commit and a scan of its own (~4 s here)
        properties = {**properties, **{f"{CONSTRAINT_PREFIX}{n}": e for n, e in (constraints or {}).items()}}
        builder = self._DeltaTable.create(self.spark).location(path).addColumns(schema)
        if partition_by:
            builder = builder.partitionedBy(*partition_by)
        for key, value in properties.items():
            builder = builder.property(key, value)
        try:
            with self._committing(path, ctx.metadata("CREATE TABLE", {"properties": properties})):
                builder.execute()
        except BaseException:
            self._remove_uncommitted_table(path)
            raise
        self._partitions[path] = list(partition_by or [])

    def _remove_uncommitted_table(self, path: str) -> None:
        """A first write that failed leaves a folder of part files and no log: remove it (an
        existing table's leftovers are unreferenced files that VACUUM removes)."""
        if not self.exists(path):
            remove_uncommitted_folder(path)

    def merge(
        self,
        path: str,
        source: DataFrame,
        spec: MergeSpec,
        ctx: CommitContext,
        operation: str,
        extra: dict[str, Any] | None = None,
    ) -> WriteResult:
        dt = self._dt(path)
        target = self.schema(path)
        commit_id = uuid.uuid4().hex
        meta = ctx.metadata(operation, {**(extra or {}), "commit_id": commit_id, "merge_on": spec.on()})
        builder = dt.alias("t").merge(source.alias("s"), spec.on())
        if spec.update:
            builder = builder.whenMatchedUpdate(condition=spec.update_condition, set=dict(spec.update))
        if spec.insert:
            present = {c.lower() for c in source.columns}
            values = {f.name: f"s.`{f.name}`" if f.name.lower() in present else "NULL" for f in target.fields}
            builder = builder.whenNotMatchedInsert(condition=spec.insert_condition, values=values)
        if spec.delete_unmatched:
            builder = builder.whenNotMatchedBySourceDelete(condition=spec.target_condition)
        with self._committing(path, meta):
            builder.execute()
        return WriteResult(path, self._committed_version(path, commit_id))

    def changes(self, path: str, start_version: int, end_version: int | None = None) -> DataFrame:
        if CHANGE_FEED_PROPERTY not in self.properties(path):
            raise LakeError(f"table {path} has no Change Data Feed ({CHANGE_FEED_PROPERTY} is not set)")
        reader = (
            self.spark.read.format("delta").option("readChangeFeed", "true").option("startingVersion", start_version)
        )
        if end_version is not None:
            reader = reader.option("endingVersion", end_version)
        return reader.load(path)

    def delete(self, path: str, predicate: str, ctx: CommitContext) -> WriteResult:
        dt = self._dt(path)
        commit_id = uuid.uuid4().hex
        meta = ctx.metadata("DELETE", {"predicate": predicate, "commit_id": commit_id})
        with self._committing(path, meta):
            dt.delete(predicate)
        return WriteResult(path, self._committed_version(path, commit_id))

    def restore(self, path: str, version: int, ctx: CommitContext) -> WriteResult:
        dt = self._dt(path)
        commit_id = uuid.uuid4().hex
        with self._committing(path, ctx.metadata("RESTORE", {"to_version": version, "commit_id": commit_id})):
            dt.restoreToVersion(version)
        return WriteResult(path, self._committed_version(path, commit_id))

    def optimize(self, path: str, ctx: CommitContext) -> dict[str, Any]:
        dt = self._dt(path)
        with self._committing(path, ctx.metadata("OPTIMIZE")):
            metrics = dt.optimize().executeCompaction().select("metrics.numFilesAdded", "metrics.numFilesRemoved").first()
        return {"files_added": int(metrics[0] or 0), "files_removed": int(metrics[1] or 0)}

    def set_properties(self, path: str, properties: dict[str, str], ctx: CommitContext) -> None:
        self._dt(path)
        assignments = ", ".join(f"{literal(k)} = {literal(v)}" for k, v in properties.items())
        with self._committing(path, ctx.metadata("SET PROPERTIES", {"properties": properties})):
            self.spark.sql(f"ALTER TABLE {_table_ref(path)} SET TBLPROPERTIES ({assignments})")

    def add_constraint(self, path: str, name: str, expression: str, ctx: CommitContext) -> None:
        self._dt(path)
        with self._committing(path, ctx.metadata("ADD CONSTRAINT", {"constraint": name, "check": expression})):
            self.spark.sql(f"ALTER TABLE {_table_ref(path)} ADD CONSTRAINT {identifier(name)} CHECK ({expression})")

    def add_columns(self, path: str, fields: list[StructField], ctx: CommitContext) -> None:
        cols = ", ".join(f"{identifier(f.name)} {f.dataType.simpleString()}" for f in fields)
        with self._committing(path, ctx.metadata("ADD COLUMNS", {"columns": [f.name for f in fields]})):
            self.spark.sql(f"ALTER TABLE {_table_ref(path)} ADD COLUMNS ({cols})")

    def vacuum(self, path: str, retention_hours: float, dry_run: bool, ctx: CommitContext) -> list[str]:
        self._dt(path)
        # the lake asks for the retention it means; delta-spark's 7-day floor is a guard for
        # interactive users, and time travel beyond retention is documented as gone
        self.spark.conf.set("spark.databricks.delta.retentionDurationCheck.enabled", "false")
        rows = self.spark.sql(f"VACUUM {_table_ref(path)} RETAIN {literal(float(retention_hours))} HOURS DRY RUN").collect()
        if not dry_run:
            with self._committing(path, ctx.metadata("VACUUM")):
                self._dt(path).vacuum(retention_hours)
        return [r[0] for r in rows]
