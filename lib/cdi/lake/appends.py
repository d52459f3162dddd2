"""Appending a few rows to a Delta table without Spark: what the service and ``cdi steward``
write (steward decisions), from processes that never start a JVM.

Each append is one ``deltalake`` commit carrying the same ``cdi.*`` commit metadata as the
lake's other writes, so ``Lake.history`` shows who wrote it. An append only adds files, so it
never conflicts with a run that reads the table meanwhile, and needs no lease: Delta's
optimistic concurrency orders two appends racing each other.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
from deltalake import CommitProperties, write_deltalake
from pyspark.sql.pandas.types import to_arrow_schema
from pyspark.sql.types import StructType

from cdi.config import join_path

from .files import local_path


def append_rows(lake_root: str, table: str, rows: list[dict[str, Any]], schema: StructType, *, operation: str, job: str) -> int:
    """Append ``rows`` (dicts of ``schema``'s columns) to ``table`` under ``lake_root``, creating
    it on the first append; the table's new version."""
    from deltalake import DeltaTable

    arrow = pa.Table.from_pylist(rows, schema=to_arrow_schema(schema, timezone="UTC"))
    path = local_path(join_path(lake_root, table))
    meta = {"cdi.operation": operation, "cdi.job": job, "cdi.run_id": ""}
    write_deltalake(path, arrow, mode="append", commit_properties=CommitProperties(custom_metadata=meta))
    return DeltaTable(path).version()
