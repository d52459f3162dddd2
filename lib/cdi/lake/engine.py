"""The narrow interface every storage engine implements, and the errors they share.

Two engines write the same standard Delta tables: :mod:`cdi.lake.native` (delta-spark, when the
Delta classes are on the classpath) and :mod:`cdi.lake.deltars` (Spark writes Parquet, the
``deltalake`` package commits). Nothing outside ``cdi.lake`` knows which one ran.
"""

from __future__ import annotations

import abc
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, DataType, MapType, StructField, StructType

from cdi.errors import LakeError  # the lake's branch of cdi's one error hierarchy
from cdi.sql import identifier


class TableNotFoundError(LakeError):
    pass


class SchemaMismatchError(LakeError):
    """The data's schema differs from the table's and the change was not requested."""


class ConcurrentWriteError(LakeError):
    """Another writer committed a conflicting change while this write ran."""


class ConstraintViolationError(LakeError):
    """A written row breaks one of the table's CHECK constraints; nothing was written."""


class ReplaceWhereMismatchError(LakeError):
    """A ``replace_where``/``replace_partitions`` write carried rows outside what it replaces.

    Committing them would duplicate rows the overwrite does not remove, so the write is refused
    (delta-spark does the same).
    """


@dataclass(frozen=True)
class CommitContext:
    """What every commit records in the table history: the operation, the job, the run and,
    inside :meth:`cdi.lake.Lake.transaction`, the transaction the commit belongs to."""

    job: str = "cdi"
    run_id: str | None = None
    txn_id: str | None = None

    def metadata(self, operation: str, extra: dict[str, Any] | None = None) -> dict[str, str]:
        meta = {"cdi.operation": operation, "cdi.job": self.job, "cdi.run_id": self.run_id or ""}
        if self.txn_id:
            meta["cdi.txn_id"] = self.txn_id
        for key, value in (extra or {}).items():
            meta[f"cdi.{key}"] = value if isinstance(value, str) else json.dumps(value, default=str)
        return meta


@dataclass(frozen=True)
class WriteResult:
    table: str
    version: int
    files_added: int = 0
    files_removed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MergeSpec:
    """One MERGE: how source rows (alias ``s``) meet target rows (alias ``t``) and what happens.

    ``keys`` pairs target and source columns that must be equal (a null source key never
    matches, the usual way to insert a new version of a matched row). ``target_condition``
    limits the target rows that can match (e.g. ``t.is_current``). Matched rows get ``update``
    (column -> SQL over ``t``/``s``) where ``update_condition`` holds; unmatched source rows are
    inserted (every target column by name) where ``insert_condition`` holds; with
    ``delete_unmatched`` the target rows (within ``target_condition``) no source row matches are
    deleted.
    """

    keys: tuple[tuple[str, str], ...]
    target_condition: str | None = None
    update: tuple[tuple[str, str], ...] = ()
    update_condition: str | None = None
    insert: bool = True
    insert_condition: str | None = None
    delete_unmatched: bool = False

    def on(self) -> str:
        cond = " AND ".join(f"t.{identifier(tk)} = s.{identifier(sk)}" for tk, sk in self.keys)
        return f"({cond}) AND ({self.target_condition})" if self.target_condition else cond


def merged_rows(target: DataFrame, source: DataFrame, spec: MergeSpec) -> DataFrame:
    """The table's rows after ``spec`` is applied: MERGE's result computed with joins.

    Engines without a MERGE command commit this as an overwrite (one transaction). Every target
    column comes back in the table's order; a source column the table lacks is only usable in
    conditions and update expressions.
    """
    cols = target.columns
    t_in = F.coalesce(F.expr(spec.target_condition), F.lit(False)) if spec.target_condition else F.lit(True)
    t_all = target.alias("t")
    t_side = t_all.where(t_in).withColumn("__t", F.lit(True)).alias("t")
    rest = t_all.where(~t_in)
    s_side = source.withColumn("__s", F.lit(True)).alias("s")
    on = None
    for tk, sk in spec.keys:
        cond = F.col(f"t.`{tk}`") == F.col(f"s.`{sk}`")
        on = cond if on is None else on & cond
    joined = t_side.join(s_side, on, "full_outer")
    matched = F.col("t.__t").isNotNull() & F.col("s.__s").isNotNull()
    target_only = F.col("t.__t").isNotNull() & F.col("s.__s").isNull()
    source_only = F.col("t.__t").isNull()
    updates = dict(spec.update)
    do_update = matched & (F.expr(spec.update_condition) if spec.update_condition else F.lit(True))
    src_cols = set(source.columns)

    def value(c: str) -> Column:
        from_s = F.col(f"s.`{c}`") if c in src_cols else F.lit(None)
        kept = F.col(f"t.`{c}`")
        updated = F.expr(updates[c]) if c in updates else kept
        return (
            F.when(source_only, from_s)
            .when(do_update, updated)
            .otherwise(kept)
            .cast(target.schema[c].dataType)
            .alias(c)
        )

    keep = matched | (target_only & F.lit(not spec.delete_unmatched))
    if spec.insert:
        insert_ok = F.expr(spec.insert_condition) if spec.insert_condition else F.lit(True)
        keep = keep | (source_only & F.coalesce(insert_ok, F.lit(False)))
    return joined.where(keep).select(*[value(c) for c in cols]).unionByName(rest)


def relaxed(dtype: DataType) -> DataType:
    """``dtype`` with every field, array element and map value nullable, at any depth."""
    if isinstance(dtype, StructType):
        return StructType([StructField(f.name, relaxed(f.dataType), True) for f in dtype.fields])
    if isinstance(dtype, ArrayType):
        return ArrayType(relaxed(dtype.elementType), True)
    if isinstance(dtype, MapType):
        return MapType(relaxed(dtype.keyType), relaxed(dtype.valueType), True)
    return dtype


def nullable(schema: StructType) -> StructType:
    """Delta enforces non-null columns; written tables keep every column nullable.

    Spark marks literals and ``array(...)`` results non-null; were that kept, the next write of
    ordinary nullable data would look like a type change.
    """
    return relaxed(schema)  # type: ignore[return-value]


REPLACE_MISMATCH_MARKER = "cdi-replace-mismatch"
CONSTRAINT_MARKER = "cdi-constraint-violated"
CONSTRAINT_PREFIX = "delta.constraints."
CHANGE_FEED_PROPERTY = "delta.enableChangeDataFeed"


def partition_predicate(values: dict[str, Any]) -> Column:
    """Rows of the given partitions; ``None`` selects the null partition."""
    cond = F.lit(True)
    for name, value in values.items():
        cond = cond & F.col(f"`{name}`").eqNullSafe(F.lit(value))
    return cond


def guard_replace(df: DataFrame, table: str, condition: Column, described: str) -> DataFrame:
    """Fail the write's own tasks on a row outside ``condition`` (no extra pass over the data)."""
    message = f"{REPLACE_MISMATCH_MARKER}: table {table}: a written row is outside {described}"
    return df.where(F.when(F.coalesce(condition, F.lit(False)), F.lit(True)).otherwise(F.raise_error(F.lit(message))))


def replace_mismatch(exc: BaseException, table: str, described: str) -> ReplaceWhereMismatchError | None:
    """The clear error for a write stopped by :func:`guard_replace`, else ``None``."""
    if REPLACE_MISMATCH_MARKER not in str(exc):
        return None
    return ReplaceWhereMismatchError(
        f"table {table}: the data holds rows outside {described}; an overwrite of matching rows may "
        "only write matching rows. Filter the data, or widen the condition."
    )


def conform(df: DataFrame, target: StructType) -> DataFrame:
    """``df``'s columns in the table's order and spelling; columns it lacks become typed nulls.

    Column names match case-insensitively, as Spark and Delta resolve them.
    """
    by_lower = {c.lower(): c for c in df.columns}
    cols = []
    for f in target.fields:
        source = by_lower.get(f.name.lower())
        if source is None:
            cols.append(F.lit(None).cast(f.dataType).alias(f.name))
        elif source != f.name:
            cols.append(F.col(f"`{source}`").alias(f.name))
        else:
            cols.append(F.col(f"`{source}`"))
    return df.select(*cols)


def reconcile_schema(
    table: str, table_schema: StructType, data_schema: StructType, allow_new_columns: bool
) -> tuple[StructType, list[StructField]]:
    """Check ``data_schema`` against the table's; return the target schema and the added columns.

    Columns missing from the data are filled with nulls; new columns are added only when asked
    for; a changed type is always an error.
    """
    existing = {f.name.lower(): f for f in table_schema.fields}
    changed = []
    new_fields = []
    for f in data_schema.fields:
        current = existing.get(f.name.lower())
        if current is None:
            new_fields.append(StructField(f.name, f.dataType, True))
        elif relaxed(current.dataType) != relaxed(f.dataType):
            changed.append(f"{f.name}: table has {current.dataType.simpleString()}, data has {f.dataType.simpleString()}")
    if changed:
        raise SchemaMismatchError(
            f"table {table}: column type change is not supported: {'; '.join(changed)}. "
            "Cast the column in the writing stage, or write to a new table."
        )
    if new_fields and not allow_new_columns:
        raise SchemaMismatchError(
            f"table {table}: the data has column(s) {[f.name for f in new_fields]} that the table "
            "lacks. Pass allow_new_columns=True to evolve the schema explicitly."
        )
    target = StructType(list(table_schema.fields) + new_fields)
    return target, new_fields


class Engine(abc.ABC):
    """What the lake needs from a storage engine; paths are absolute table locations."""

    name: str

    @abc.abstractmethod
    def exists(self, path: str) -> bool: ...

    @abc.abstractmethod
    def read(self, path: str, version: int | None = None, timestamp: datetime | None = None) -> DataFrame: ...

    @abc.abstractmethod
    def schema(self, path: str) -> StructType: ...

    @abc.abstractmethod
    def version(self, path: str) -> int: ...

    @abc.abstractmethod
    def partition_columns(self, path: str) -> list[str]: ...

    @abc.abstractmethod
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
    ) -> WriteResult: ...

    @abc.abstractmethod
    def delete(self, path: str, predicate: str, ctx: CommitContext) -> WriteResult: ...

    @abc.abstractmethod
    def history(self, path: str, limit: int | None = None) -> list[dict[str, Any]]: ...

    @abc.abstractmethod
    def vacuum(self, path: str, retention_hours: float, dry_run: bool, ctx: CommitContext) -> list[str]: ...

    @abc.abstractmethod
    def add_columns(self, path: str, fields: list[StructField], ctx: CommitContext) -> None: ...

    @abc.abstractmethod
    def file_paths(self, path: str, version: int | None = None) -> list[str]:
        """Data files of a snapshot (for readers outside Spark, such as DuckDB)."""

    @abc.abstractmethod
    def create(
        self,
        path: str,
        schema: StructType,
        partition_by: list[str] | None,
        properties: dict[str, str],
        ctx: CommitContext,
        constraints: dict[str, str] | None = None,
    ) -> None:
        """Create an empty table whose first commit already carries ``properties``, with the
        CHECK ``constraints`` (name -> expression) on before any row is written."""

    @abc.abstractmethod
    def merge(
        self,
        path: str,
        source: DataFrame,
        spec: MergeSpec,
        ctx: CommitContext,
        operation: str,
        extra: dict[str, Any] | None = None,
    ) -> WriteResult: ...

    @abc.abstractmethod
    def changes(self, path: str, start_version: int, end_version: int | None = None) -> DataFrame:
        """Rows changed between two versions (inclusive) with ``_change_type``, ``_commit_version``
        and ``_commit_timestamp``, as Delta's Change Data Feed gives them."""

    @abc.abstractmethod
    def optimize(self, path: str, ctx: CommitContext) -> dict[str, Any]:
        """Compact small files; returns what it did (files added/removed)."""

    @abc.abstractmethod
    def restore(self, path: str, version: int, ctx: CommitContext) -> WriteResult:
        """Make ``version`` the current state again, in a new commit (history is kept)."""

    @abc.abstractmethod
    def properties(self, path: str) -> dict[str, str]:
        """The table's properties (``delta.*`` settings, ``delta.constraints.*``)."""

    @abc.abstractmethod
    def set_properties(self, path: str, properties: dict[str, str], ctx: CommitContext) -> None: ...

    @abc.abstractmethod
    def add_constraint(self, path: str, name: str, expression: str, ctx: CommitContext) -> None:
        """Add a CHECK constraint that every later write must satisfy."""
