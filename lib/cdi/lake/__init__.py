"""The lake: the only code that reads or writes tables.

Tables are named relative to the lake root (``bronze/crm``, ``silver/records``). The engine is
picked once per session: delta-spark when its classes are on the classpath, the ``deltalake``
package otherwise; both produce standard Delta tables with the same history metadata.

    >>> lake = Lake(spark, "/data/lake", job="ingest", run_id="20261124T0600Z")  # doctest: +SKIP
    >>> lake.write("bronze/crm", df, mode="append")  # doctest: +SKIP
    >>> lake.read("bronze/crm", version=3)  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any
from urllib.parse import unquote, urlparse

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import StructField

from cdi.errors import ConfigError

from .contracts import constraint_name, contract_for
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
    nullable,
)
from .files import remove_uncommitted_folder, rows_added_in_commit
from .statistics import NUM_INDEXED_PROPERTY, STATS_COLUMNS_PROPERTY, statistics_properties

__all__ = [
    "ConcurrentWriteError",
    "ConstraintViolationError",
    "Lake",
    "LakeError",
    "MergeSpec",
    "ReplaceWhereMismatchError",
    "SchemaMismatchError",
    "TableNotFoundError",
    "WriteResult",
    "select_engine",
]

log = logging.getLogger(__name__)


ENGINE_NAMES = {"auto": "auto", "delta-spark": "native", "native": "native", "deltalake": "deltalake"}


def select_engine(spark: SparkSession, prefer: str = "auto") -> Engine:
    """delta-spark when its classes are loaded (or when asked for), the deltalake package otherwise.

    ``prefer`` is ``auto``, ``delta-spark`` (alias ``native``) or ``deltalake``; the fallback is
    logged as such, so a run that meant to use delta-spark never silently writes another way.
    """
    from cdi.spark import delta_classes_available

    choice = ENGINE_NAMES.get(prefer)
    if choice is None:
        raise ConfigError(f"unknown storage engine {prefer!r}: use auto, delta-spark or deltalake")
    if choice == "native" or (choice == "auto" and delta_classes_available(spark)):
        if not delta_classes_available(spark):
            raise LakeError(
                "the delta-spark engine was requested but delta-spark's classes are not on the Spark "
                "classpath; start Spark with --packages io.delta:delta-spark_<spark>_2.13:<version> "
                "(cdi's own sessions add it) or set storage.engine: deltalake"
            )
        from .native import NativeDeltaEngine

        return NativeDeltaEngine(spark)
    if choice == "auto":
        log.warning("storage: delta-spark's classes are not loaded; falling back to the deltalake package")
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
        # table -> version of the last commit through this lake or any with_context() of it:
        # what a stage committed, for the run journal
        self.committed: dict[str, int] = {}
        # a reader's view (for_readers): the unfinished run whose silver and gold commits are hidden
        self._for_readers = False
        self._hidden_run: str | None = None
        self._reader_versions: dict[str, int] = {}

    def with_context(self, job: str | None = None, run_id: str | None = None) -> Lake:
        """The same lake, committing under another job name or run id."""
        lake = Lake(self.spark, self.root, job or self.ctx.job, run_id or self.ctx.run_id, self.engine)
        lake.ctx = dataclasses.replace(lake.ctx, txn_id=self.ctx.txn_id)
        lake.committed = self.committed
        lake._for_readers, lake._hidden_run, lake._reader_versions = self._for_readers, self._hidden_run, self._reader_versions
        return lake

    def for_readers(self) -> Lake:
        """This lake as a reader (notebook, ``cdi customer show``, the service) should see it:
        every silver and gold table as the last finished run left it.

        Delta makes each commit atomic, but a run commits to many tables one after another. While
        a run is unfinished (it holds the lease in state ``running``, or died so and nobody healed
        it yet), a reader of the latest versions could see its golden records beside the previous
        run's customer 360. This view reads each table the run wrote at the version just before
        its first commit there, and a table the run created does not exist yet; once the run has
        written every table, or was rolled back, the latest versions are read. Bronze is not
        hidden: its batches are exactly-once and kept even when the run is rolled back. Each read
        looks at the lease row first (one small read), and while a run is unfinished reads each
        table's history once.
        """
        lake = self.with_context()
        lake._for_readers, lake._hidden_run, lake._reader_versions = True, None, {}
        return lake

    def _reader_version(self, table: str) -> int | None:
        """The version a reader sees (None: the latest; -1: none yet), see :meth:`for_readers`."""
        from .lease import unfinished_run
        from .runs import rollback_scope

        if not self._for_readers or not rollback_scope(table):
            return None
        hidden = unfinished_run(self)
        if hidden != self._hidden_run:
            if hidden is not None:
                log.info("run %s has not finished: reading silver and gold as the run before it left them", hidden)
            self._hidden_run, self._reader_versions = hidden, {}
        if hidden is None:
            return None
        if table not in self._reader_versions:  # kept once found: the run's later commits change nothing
            if not self.engine.exists(self.path(table)):
                return None
            own = [h["version"] for h in self.engine.history(self.path(table)) if h["run_id"] == hidden]
            if not own:
                return None  # not written by the run (yet): asked again next time
            self._reader_versions[table] = min(own) - 1
        return self._reader_versions[table]

    def _committed(self, table: str, result: WriteResult) -> WriteResult:
        self.committed[table] = result.version
        return result

    @property
    def engine_name(self) -> str:
        """``delta-spark`` or ``deltalake``: what writes this lake's tables in this session."""
        return self.engine.name

    def path(self, table: str) -> str:
        if not table or table.startswith("/") or ".." in table.split("/"):
            raise LakeError(f"invalid table name {table!r}: use a relative name such as 'silver/records'")
        return f"{self.root}/{table}"

    def exists(self, table: str) -> bool:
        return self.engine.exists(self.path(table)) and self._reader_version(table) != -1

    def read(self, table: str, version: int | None = None, timestamp: datetime | None = None) -> DataFrame:
        """The current snapshot (for a reader's view, see :meth:`for_readers`), or the one at
        ``version`` or as of ``timestamp``."""
        if version is not None and timestamp is not None:
            raise ValueError("give a version or a timestamp, not both")
        if version is None and timestamp is None:
            version = self._reader_version(table)
            if version == -1:
                raise TableNotFoundError(f"{table} is being created by run {self._hidden_run}, which has not finished")
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

    def rows_added(self, table: str, version: int) -> int | None:
        """How many rows the commit at ``version`` added, from its files' statistics (no scan);
        None where the log no longer has it or a file carries no row count."""
        return rows_added_in_commit(self.path(table), version)

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
        properties = None
        if not self.exists(table):
            remove_uncommitted_folder(self.path(table))
            self._create(table, df, partition_by)
            properties = statistics_properties(df.schema, table, partition_by or ())
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
            properties=properties,
        )
        log.debug("wrote %s at version %s (%s)", table, result.version, op)
        return self._committed(table, result)

    def _create(self, table: str, df: DataFrame, partition_by: list[str] | None) -> None:
        """A contract table starts empty with its Change Data Feed and CHECK constraint on, so
        the feed covers its first rows and no row ever lands without its keys. Any other table
        is created by its first write; either way with statistics on key columns only
        (:mod:`.statistics`)."""
        contract = contract_for(table)
        if contract is None or (not contract.change_feed and contract.check() is None):
            return
        properties = statistics_properties(df.schema, table, partition_by or ())
        if contract.change_feed:
            properties[CHANGE_FEED_PROPERTY] = "true"
        check = contract.check()
        constraints = {constraint_name(table): check} if check is not None else {}
        self.engine.create(self.path(table), nullable(df.schema), partition_by, properties, self.ctx, constraints)

    def ensure_contract(self, table: str) -> list[str]:
        """Switch on what the table's contract asks for and it lacks; returns what was added.

        Tables created before a contract existed get it here (``cdi maintain`` calls this).
        """
        if not self.exists(table):
            return []
        path = self.path(table)
        props = self.engine.properties(path)
        added = []
        if STATS_COLUMNS_PROPERTY not in props and NUM_INDEXED_PROPERTY not in props:
            self.engine.set_properties(
                path, statistics_properties(self.schema(table), table, self.partition_columns(table)), self.ctx
            )
            added.append("statistics on key columns only")
        contract = contract_for(table)
        if contract is None:
            return added
        if contract.change_feed and props.get(CHANGE_FEED_PROPERTY) != "true":
            self.engine.set_properties(path, {CHANGE_FEED_PROPERTY: "true"}, self.ctx)
            added.append("change data feed")
        check = contract.check()
        name = constraint_name(table)
        if check is not None and f"{CONSTRAINT_PREFIX}{name}" not in props:
            self.engine.add_constraint(path, name, check, self.ctx)
            added.append(f"constraint {name}")
        return added

    def properties(self, table: str) -> dict[str, str]:
        return self.engine.properties(self.path(table))

    def merge(
        self,
        table: str,
        source: DataFrame,
        spec: MergeSpec,
        *,
        operation: str = "MERGE",
        metadata: dict[str, Any] | None = None,
    ) -> WriteResult:
        """Apply ``spec`` (see :class:`MergeSpec`) to ``table`` in one commit.

        delta-spark runs ``MERGE INTO``; the deltalake fallback commits the merged rows as one
        overwrite. Example: close the current version of changed customers and add new ones::

            MergeSpec(keys=(("customer_id", "merge_key"),), target_condition="t.is_current",
                      update=(("is_current", "false"), ("valid_to", "s.valid_from")),
                      insert_condition="s.merge_key IS NULL")
        """
        result = self.engine.merge(self.path(table), source, spec, self.ctx, operation, metadata)
        log.debug("merged into %s at version %s (%s)", table, result.version, operation)
        return self._committed(table, result)

    def changes(self, table: str, start_version: int, end_version: int | None = None) -> DataFrame:
        """The table's Change Data Feed from ``start_version`` to ``end_version`` (inclusive)."""
        return self.engine.changes(self.path(table), start_version, end_version)

    def restore(self, table: str, version: int) -> WriteResult:
        """Make ``version`` current again in a new commit (``RESTORE``); history is kept."""
        return self._committed(table, self.engine.restore(self.path(table), version, self.ctx))

    def optimize(self, table: str) -> dict[str, Any]:
        """Compact the table's small files (``OPTIMIZE``); readers see the same rows."""
        return self.engine.optimize(self.path(table), self.ctx)

    def tables(self) -> list[str]:
        """Every Delta table under the root (``bronze/crm``, ``silver/records``, ...), sorted."""
        from .files import delta_tables_under

        return delta_tables_under(self.root)

    @contextmanager
    def transaction(self, name: str, tables: Sequence[str]) -> Iterator[Lake]:
        """Commits to several tables that land together or not at all.

        Inside the block, write through the lake it yields; each commit carries the transaction
        id. A Python error rolls the tables back at once (``RESTORE`` to their versions before
        the block); a killed process leaves an open marker that the next transaction or
        :meth:`recover` rolls back. Only one writer may hold a lake at a time.

            >>> with lake.transaction("stable ids", ["silver/id_history", "silver/entity_map"]) as tx:  # doctest: +SKIP
            ...     tx.write("silver/id_history", events)
            ...     tx.write("silver/entity_map", entity_map, mode="overwrite")
        """
        from .transactions import Transactions

        with Transactions(self).open(name, tables) as txn_id:
            tx = self.with_context()
            tx.ctx = dataclasses.replace(self.ctx, txn_id=txn_id)
            yield tx

    def recover(self) -> list[str]:
        """Roll back transactions whose process died before they finished; their names."""
        from .transactions import Transactions

        return Transactions(self).recover()

    def delete(self, table: str, predicate: str) -> WriteResult:
        """Remove the rows matching ``predicate`` (a Spark SQL condition); other rows stay."""
        return self._committed(table, self.engine.delete(self.path(table), predicate, self.ctx))

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
