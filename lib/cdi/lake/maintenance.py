"""Housekeeping of a whole lake (``cdi maintain``): finish or roll back what a dead run left,
switch on each contract table's Change Data Feed and constraints where an older version of cdi
created it without them, compact small files (``OPTIMIZE``) and remove unreferenced ones
(``VACUUM``: files of versions older than the retention, orphans of killed writers).

    >>> report = maintain(lake, retention_hours=168)  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from . import Lake

log = logging.getLogger(__name__)


@dataclass
class TableMaintenance:
    table: str
    contract_added: list[str] = field(default_factory=list)
    files_compacted: int = 0
    files_added: int = 0
    files_vacuumed: int = 0
    seconds: float = 0.0


@dataclass
class MaintenanceReport:
    rolled_back: list[str]
    tables: list[TableMaintenance]
    orphans_removed: list[str] = field(default_factory=list)
    expired: dict[str, int] = field(default_factory=dict)  # retention: rows cleared or removed per table

    def format(self) -> str:
        lines = [f"{'table':<28} {'compacted':>9} {'vacuumed':>9} {'seconds':>8}  contract"]
        for t in self.tables:
            added = ", ".join(t.contract_added) or "-"
            lines.append(f"{t.table:<28} {t.files_compacted:>9} {t.files_vacuumed:>9} {t.seconds:>8.1f}  {added}")
        if self.rolled_back:
            lines.append(f"rolled back or completed what dead runs left: {'; '.join(self.rolled_back)}")
        for table, rows in sorted(self.expired.items()):
            lines.append(f"retention: {table}: {rows:,} row(s) {'cleared of raw text' if table == 'bronze/_quarantine' else 'removed'}")
        if self.orphans_removed:
            lines.append(f"removed what killed writers left outside the tables: {', '.join(self.orphans_removed)}")
        return "\n".join(lines)


def maintain(lake: Lake, retention_hours: float, optimize: bool = True, dry_run: bool = False) -> MaintenanceReport:
    """Maintain every table under the lake's root; with ``dry_run`` only list what VACUUM would remove."""
    lake = lake.with_context(job="maintain")
    rolled_back = [] if dry_run else lake.recover()
    done = []
    for table in lake.tables():
        started = time.monotonic()
        entry = TableMaintenance(table)
        if not dry_run:
            entry.contract_added = lake.ensure_contract(table)
            if optimize:
                result = lake.optimize(table)
                entry.files_compacted, entry.files_added = result["files_removed"], result["files_added"]
        entry.files_vacuumed = len(lake.vacuum(table, retention_hours=retention_hours, dry_run=dry_run))
        entry.seconds = round(time.monotonic() - started, 2)
        log.info("maintained %s: %s", table, entry)
        done.append(entry)
    return MaintenanceReport(rolled_back=rolled_back, tables=done)
