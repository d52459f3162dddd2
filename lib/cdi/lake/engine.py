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

from pyspark.sql import DataFrame
from pyspark.sql.types import DataType, StructField, StructType


class LakeError(RuntimeError):
    """Base class of storage errors."""


class TableNotFoundError(LakeError):
    pass


class SchemaMismatchError(LakeError):
    """The data's schema differs from the table's and the change was not requested."""


class ConcurrentWriteError(LakeError):
    """Another writer committed a conflicting change while this write ran."""


@dataclass(frozen=True)
class CommitContext:
    """What every commit records in the table history: the operation, the job and the run."""

    job: str = "cdi"
    run_id: str | None = None

    def metadata(self, operation: str, extra: dict[str, Any] | None = None) -> dict[str, str]:
        meta = {"cdi.operation": operation, "cdi.job": self.job, "cdi.run_id": self.run_id or ""}
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


def nullable(schema: StructType) -> StructType:
    """Delta enforces non-null columns; written tables keep every column nullable."""

    def relax(dtype: DataType) -> DataType:
        if isinstance(dtype, StructType):
            return StructType([StructField(f.name, relax(f.dataType), True) for f in dtype.fields])
        return dtype

    return relax(schema)  # type: ignore[return-value]


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
        elif current.dataType != f.dataType:
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
    ) -> WriteResult: ...

    @abc.abstractmethod
    def delete(self, path: str, predicate: str, ctx: CommitContext) -> WriteResult: ...

    @abc.abstractmethod
    def history(self, path: str, limit: int | None = None) -> list[dict[str, Any]]: ...

    @abc.abstractmethod
    def vacuum(self, path: str, retention_hours: float, dry_run: bool) -> list[str]: ...

    @abc.abstractmethod
    def add_columns(self, path: str, fields: list[StructField], ctx: CommitContext) -> None: ...

    @abc.abstractmethod
    def file_paths(self, path: str, version: int | None = None) -> list[str]:
        """Data files of a snapshot (for readers outside Spark, such as DuckDB)."""
