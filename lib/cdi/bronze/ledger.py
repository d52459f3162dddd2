"""The ingest ledger ``bronze/_ingested_files``: what each committed batch consumed.

One row per unit a batch consumed: a file (keyed by URI + size + modification time, so a file
rewritten in place counts as a new delivery), a version of a Delta source table, or one read of a
JDBC source (with the high watermark it reached). Rows are written last, in one commit, after the
batch's rows are in ``bronze/<source>`` and ``bronze/_quarantine``: a batch exists iff the
ledger has it. Rows of a batch that never reached the ledger (a crash, a failed check) are
deleted by :meth:`IngestLedger.discard_unfinished` before the source is read again, so a re-run
after a crash ends with every row exactly once.

The ledger is small (one row per file ever ingested) and is read once per run.

    >>> ledger = IngestLedger(lake)  # doctest: +SKIP
    >>> ledger.is_ingested("crm", source_file)  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from cdi import schema
from cdi.lake import Lake
from cdi.sql import literal, literals

from . import lineage as L
from .files import SourceFile

log = logging.getLogger(__name__)

LEDGER_TABLE = schema.INGESTED_FILES
QUARANTINE_TABLE = schema.QUARANTINE
LEDGER_SCHEMA = schema.INGESTED_FILES_SCHEMA




def _millis(value: datetime | None) -> int | None:
    return None if value is None else round(value.timestamp() * 1000)


def _aware(value):
    """Spark hands timestamps back as naive local datetimes; compare them as UTC instants."""
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.astimezone(UTC)
    return value


@dataclass(frozen=True)
class Unit:
    """What one batch consumes; a row of the ledger once the batch commits."""

    unit: str
    size: int | None = None
    modified_at: datetime | None = None
    table_version: int | None = None
    watermark: str | None = None


def file_unit(f: SourceFile) -> Unit:
    return Unit(f.uri, f.size, f.modified_at)


class IngestLedger:
    def __init__(self, lake: Lake):
        self.lake = lake
        self._entries: list[dict] | None = None
        self._file_keys: dict[str, set[tuple]] = {}
        self._histories: dict[str, list[dict]] = {}

    def entries(self, source: str) -> list[dict]:
        if self._entries is None:
            if self.lake.exists(LEDGER_TABLE):
                # bounded by the number of units ever ingested (files, table versions, JDBC reads)
                rows = self.lake.read(LEDGER_TABLE).collect()
                self._entries = [{k: _aware(v) for k, v in r.asDict().items()} for r in rows]
            else:
                self._entries = []
        return [e for e in self._entries if e["source"] == source]

    def committed_batches(self, source: str) -> set[str]:
        return {e["batch_id"] for e in self.entries(source)}

    def is_ingested(self, source: str, f: SourceFile) -> bool:
        """Same URI, size and modification time as a file a committed batch consumed."""
        keys = self._file_keys.get(source)
        if keys is None:
            keys = {(e["unit"], e["size"], _millis(e["modified_at"])) for e in self.entries(source)}
            self._file_keys[source] = keys
        return (f.uri, f.size, _millis(f.modified_at)) in keys

    def _latest(self, source: str, field: str):
        found = [e for e in self.entries(source) if e[field] is not None]
        if not found:
            return None
        return max(found, key=lambda e: (e["ingested_at"], e["batch_id"]))[field]

    def last_watermark(self, source: str) -> str | None:
        """The high watermark of the source's latest committed batch that had one."""
        return self._latest(source, "watermark")

    def last_table_version(self, source: str) -> int | None:
        return self._latest(source, "table_version")

    def discard_unfinished(self, source: str) -> list[str]:
        """Delete rows of batches that wrote to bronze or quarantine but never reached the ledger.

        Candidates come from the tables' commit history (every bronze and quarantine write
        records its source and batch id), so a clean run reads no data here; a batch already
        removed by an earlier DELETE is not removed again.
        """
        committed = self.committed_batches(source)
        removed: list[str] = []
        for table in (schema.bronze(source), QUARANTINE_TABLE):
            if not self.lake.exists(table):
                continue
            history = self._history(table)
            written = {
                h["metadata"].get("batch_id")
                for h in history
                if h["metadata"].get("source") == source and h["metadata"].get("batch_id")
            }
            deletes = " ".join(str(h["metadata"].get("predicate", "")) for h in history if h["operation"] == "DELETE")
            pending = sorted(b for b in written - committed if literal(b) not in deletes)
            if not pending:
                continue
            listed = literals(pending)
            predicate = f"{L.BATCH_ID} IN ({listed})"
            if table == QUARANTINE_TABLE:
                predicate = f"{L.SOURCE} = {literal(source)} AND {predicate}"
            self.lake.delete(table, predicate)
            removed.extend(pending)
            log.warning(
                "source %s: removed rows of unfinished batch(es) %s from %s (written by a run that did not "
                "commit them); the source's data is ingested again now",
                source,
                pending,
                table,
            )
        return sorted(set(removed))

    def _history(self, table: str) -> list[dict]:
        """A table's commit history, read once per ledger: quarantine is shared by every source.
        Reading it before this run's own writes is enough: what a dead run left was committed
        earlier, each source is checked once, before it writes, and only its own batches count."""
        if table not in self._histories:
            self._histories[table] = self.lake.history(table)
        return self._histories[table]

    def commit(self, source: str, batch_id: str, run_id: str, ingested_at: datetime, rows: list[tuple[Unit, dict]]) -> None:
        """Record the batch: one ledger row per unit with its row counts (the commit point)."""
        records = [
            (
                source,
                u.unit,
                u.size,
                u.modified_at,
                u.table_version,
                u.watermark,
                batch_id,
                run_id,
                int(c.get("read", 0)),
                int(c.get("bronze", 0)),
                int(c.get("quarantine", 0)),
                int(c.get("unchanged", 0)),
                ingested_at,
            )
            for u, c in rows
        ]
        df = self.lake.spark.createDataFrame(records, LEDGER_SCHEMA)
        self.lake.write(LEDGER_TABLE, df, mode="append", operation="INGEST LEDGER", metadata={"source": source, "batch_id": batch_id})
        self._file_keys.pop(source, None)
        if self._entries is not None:
            self._entries.extend({k: _aware(v) for k, v in zip(LEDGER_SCHEMA.fieldNames(), r)} for r in records)
