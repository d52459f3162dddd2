"""A run as one unit from outside: rolled back when it fails or dies, recorded in ``_cdi/runs``.

Delta commits one table at a time, and a run commits to many. Every commit names its run
(``cdi.run_id`` in the commit's metadata), and the lease (:mod:`cdi.lake.lease`) says which run
holds the lake and how far it got: ``running``, then ``lake_committed`` once every table is
written and only publishing to outside targets is left, then ``done``. So:

- a run that **fails** rolls its own commits back before it gives the lease back;
- a run that **dies** (killed, machine gone) is rolled back by the next run, which finds the
  dead holder's row ``running`` when it takes the lease over. A dead run that was
  ``lake_committed`` is complete instead: publication sends every unpublished run in order, so
  the next gold stage finishes it under its own run id; nothing is written twice.

Rolling back restores each silver and gold table the run wrote to the version before its first
commit there (``RESTORE``, a new commit; history is kept; a table it created is emptied) and
closes the multi-table transactions it left open. Bronze is kept: ingest is exactly-once per
file through its ledger, so the rerun reads what is there and never ingests a file twice, and
a source that failed does not undo the sources that worked. A table written by anyone else
after the run stops the roll back with what to do by hand.

``_cdi/runs`` gets one row per finished run: outcome, who ran it, and the versions each stage
committed (to read all tables as of one run with time travel).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from cdi import schema
from cdi.errors import RecoveryError

from .lease import LAKE_COMMITTED, holder_name
from .transactions import Transactions, restore_or_empty

if TYPE_CHECKING:
    from . import Lake

log = logging.getLogger(__name__)

RUNS_TABLE = schema.RUNS
COMMITTED, FAILED_ROLLED_BACK, DIED_ROLLED_BACK, COMPLETED = "committed", "failed_rolled_back", "died_rolled_back", "completed"

RUNS_SCHEMA = schema.RUNS_SCHEMA


def rollback_scope(table: str) -> bool:
    """Whether a run's commits to ``table`` are undone with the run (silver and gold; see above)."""
    return not table.startswith(("bronze/", "_cdi/"))


@dataclass(frozen=True)
class Recovered:
    """What the next run did about a run that died holding the lease."""

    run_id: str
    outcome: str  # died_rolled_back | completed
    tables: tuple[str, ...]  # the tables restored

    def __str__(self) -> str:
        if self.outcome == COMPLETED:
            return f"run {self.run_id} had written every table; its publishing finishes with the next gold stage"
        return f"run {self.run_id} rolled back on {len(self.tables)} table(s): {', '.join(self.tables) or 'none written'}"


class RunJournal:
    """Finishing, failing and recovering runs on one lake (see the module docstring)."""

    def __init__(self, lake: Lake):
        self.lake = lake.with_context(job="runs")

    def record(
        self,
        run_id: str,
        outcome: str,
        *,
        command: str | None = None,
        stages: list[str] | None = None,
        reason: str | None = None,
        tables: dict[str, int] | None = None,
        holder: str | None = None,
        inputs: str | None = None,
    ) -> None:
        """Append the run's row to ``_cdi/runs`` (a table from an older release gains ``inputs``)."""
        row = (run_id, outcome, command, stages, holder or holder_name(), reason, tables or {},
               datetime.now(UTC).replace(tzinfo=None), inputs)
        lake = self.lake.with_context(run_id=run_id)
        lake.write(RUNS_TABLE, lake.spark.createDataFrame([row], RUNS_SCHEMA), operation=f"RUN {outcome.upper()}",
                   allow_new_columns=True)

    def recover(self, dead: dict[str, Any]) -> Recovered:
        """Deal with the run of a dead lease holder (its lease row): complete or roll back."""
        run_id = dead["run_id"]
        if dead.get("state") == LAKE_COMMITTED:
            self.record(run_id, COMPLETED, command=dead.get("command"), holder=dead.get("holder"),
                        reason="its process died after every table was written")
            return Recovered(run_id, COMPLETED, ())
        log.warning(
            "run %s (%s on %s, since %s UTC) died before it finished: rolling back what it wrote",
            run_id, dead.get("command"), dead.get("holder"), dead.get("acquired_at"),
        )
        restored = self.roll_back(run_id)
        self.record(run_id, DIED_ROLLED_BACK, command=dead.get("command"), holder=dead.get("holder"),
                    reason="its process died before it finished", tables=restored)
        return Recovered(run_id, DIED_ROLLED_BACK, tuple(restored))

    def roll_back(self, run_id: str) -> dict[str, int]:
        """Undo ``run_id``'s commits on every silver and gold table; table -> version restored."""
        lake = self.lake.with_context(job="rollback", run_id=run_id)
        restored = {}
        for table in lake.tables():
            if not rollback_scope(table):
                continue
            history = lake.history(table)
            own = [h["version"] for h in history if h["run_id"] == run_id]
            if not own:
                continue
            start = min(own) - 1  # ABSENT when the run created the table
            foreign = [h for h in history if h["version"] > start and h["run_id"] != run_id]
            if foreign:
                raise RecoveryError(
                    f"cannot roll back run {run_id} on {table}: version {foreign[0]['version']} was written after it "
                    f"by {foreign[0]['run_id'] or 'a writer outside cdi'}; restore the tables it wrote by hand "
                    f"(e.g. RESTORE TABLE delta.`{lake.path(table)}` TO VERSION AS OF {start})"
                )
            restore_or_empty(lake, table, start)
            log.info("rolled %s back to version %s (before run %s)", table, start, run_id)
            restored[table] = start
        Transactions(lake).abandon(run_id)
        return restored
