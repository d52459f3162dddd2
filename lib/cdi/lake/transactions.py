"""Commits to several Delta tables that land together: a marker table and ``RESTORE``.

Delta commits one table at a time. A stage that must change two tables together (the id events
in ``silver/id_history`` and the ``silver/entity_map`` they describe) first appends an ``open``
marker to ``_cdi/transactions`` naming each table's version, then writes the tables (every
commit tagged with the transaction id), then appends ``committed``. If the process dies in
between, the marker stays open; the next transaction (or :meth:`cdi.lake.Lake.recover`) finds
it, restores each table to its recorded version (a new commit; history is kept) and appends
``rolled_back``. A marker counts as dead when its process is gone on this host, or after
``stale_after`` on another host.

    >>> with Transactions(lake).open("stable ids", ["silver/id_history", "silver/entity_map"]) as txn:  # doctest: +SKIP
    ...     ...
"""

from __future__ import annotations

import logging
import socket
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from pyspark.sql import functions as F

from cdi import schema

from .engine import LakeError
from .lease import holder_name, process_gone

if TYPE_CHECKING:
    from . import Lake

log = logging.getLogger(__name__)

TRANSACTIONS_TABLE = schema.TRANSACTIONS
OPEN, COMMITTED, ROLLED_BACK = "open", "committed", "rolled_back"
# version recorded for a table that did not exist when the transaction opened
ABSENT = -1

MARKER_SCHEMA = schema.TRANSACTIONS_SCHEMA


def _holder_dead(holder: str, since: datetime, stale_after: timedelta) -> bool:
    host, _, _pid = holder.rpartition(":")
    if host == socket.gethostname():
        return process_gone(holder)
    return datetime.now(UTC) - since > stale_after


def restore_or_empty(lake: Lake, table: str, version: int) -> None:
    """Make ``version`` of ``table`` current again (``RESTORE``); ``ABSENT`` empties the table."""
    if version == ABSENT:
        lake.delete(table, "true")
    else:
        lake.restore(table, version)


class Transactions:
    """The markers of one lake (see the module docstring)."""

    def __init__(self, lake: Lake, stale_after: timedelta = timedelta(hours=6)):
        self.lake = lake.with_context(job="transactions")
        self.stale_after = stale_after

    def _mark(self, txn_id: str, name: str, state: str, tables: dict[str, int], run_id: str | None = None) -> None:
        """Append one marker row; ``run_id`` is the transaction's run (default: this lake's)."""
        row = (txn_id, name, state, run_id or self.lake.ctx.run_id, holder_name(), tables, datetime.now(UTC))
        marker = self.lake.spark.createDataFrame([row], MARKER_SCHEMA)
        self.lake.write(TRANSACTIONS_TABLE, marker, mode="append", operation=f"TXN {state.upper()}")

    def _version(self, table: str) -> int:
        return self.lake.version(table) if self.lake.exists(table) else ABSENT

    @contextmanager
    def open(self, name: str, tables: Sequence[str]) -> Iterator[str]:
        self.recover()
        txn_id = uuid.uuid4().hex
        versions = {t: self._version(t) for t in tables}
        self._mark(txn_id, name, OPEN, versions)
        try:
            yield txn_id
        except BaseException:
            log.warning("transaction %s (%s) failed: rolling back %s", name, txn_id, sorted(versions))
            self._roll_back(txn_id, versions)
            self._mark(txn_id, name, ROLLED_BACK, versions)
            raise
        self._mark(txn_id, name, COMMITTED, versions)

    def pending(self) -> list[dict]:
        """Open markers without an outcome (at most a few rows: one per unfinished transaction)."""
        if not self.lake.exists(TRANSACTIONS_TABLE):
            return []
        markers = self.lake.read(TRANSACTIONS_TABLE)
        ended = markers.where(F.col("state") != OPEN).select("txn_id")
        return [r.asDict() for r in markers.where(F.col("state") == OPEN).join(ended, "txn_id", "left_anti").collect()]

    def recover(self) -> list[str]:
        recovered = []
        for marker in self.pending():
            at = marker["at"].replace(tzinfo=UTC) if marker["at"].tzinfo is None else marker["at"]
            if not _holder_dead(marker["holder"], at, self.stale_after):
                raise LakeError(
                    f"transaction {marker['name']!r} of run {marker['run_id']} is still running on "
                    f"{marker['holder']} (since {at.isoformat()}): one writer at a time; wait for it to finish"
                )
            log.warning(
                "transaction %r of run %s (%s) never finished: rolling back %s",
                marker["name"], marker["run_id"], marker["txn_id"], sorted(marker["tables"]),
            )
            self._roll_back(marker["txn_id"], marker["tables"])
            self._mark(marker["txn_id"], marker["name"], ROLLED_BACK, marker["tables"], marker["run_id"])
            recovered.append(marker["name"])
        return recovered

    def abandon(self, run_id: str) -> None:
        """Close the open transactions of a dead run whose tables the run's own roll back restored."""
        for marker in self.pending():
            if marker["run_id"] == run_id:
                self._mark(marker["txn_id"], marker["name"], ROLLED_BACK, marker["tables"], run_id)

    def _roll_back(self, txn_id: str, versions: dict[str, int]) -> None:
        """Undo this transaction's commits on each table; refuse if someone else wrote after it."""
        lake = self.lake.with_context(job="rollback")
        lake.ctx = replace(lake.ctx, txn_id=txn_id)
        for table, before in versions.items():
            if not lake.exists(table):
                continue
            later = [h for h in lake.history(table) if h["version"] > before]
            if not later:
                continue
            foreign = [h for h in later if h["metadata"].get("txn_id") != txn_id]
            if foreign:
                raise LakeError(
                    f"cannot roll back transaction {txn_id} on {table}: version {foreign[0]['version']} was "
                    f"written after it by run {foreign[0]['run_id']}; restore the table by hand "
                    f"(RESTORE TABLE ... TO VERSION AS OF {before})"
                )
            restore_or_empty(lake, table, before)
            log.info("rolled %s back to version %s", table, before)
