"""The gold stage: survivorship -> history -> change feed -> publication.

The change feed of a run is written before the golden history, so a run that fails between the
two leaves its changes to be rewritten (same run id) or superseded (next run) rather than lost;
publication then sends every run not yet published (see :mod:`cdi.gold.propagation`).

    >>> run_gold(lake, cfg.survivorship, trust_ranks(cfg), run_id="20261124T060000Z-ab12cd")  # doctest: +SKIP
    {'golden_records': 2715, 'versions_written': 2715, 'closed': 0, 'changes': {'new': 2715, ...}, ...}
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pyspark.sql import DataFrame

from cdi import schema
from cdi.config import PropagationConfig, SurvivorshipConfig
from cdi.errors import MissingTableError
from cdi.lake import Lake
from cdi.progress import RunSummary

from .changes import build_changes, count_by_type, write_changes
from .history import diff_golden, write_history
from .propagation import publish
from .survivorship import survive

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class GoldResult:
    """What one gold stage run did."""

    golden_records: int  # current customers
    versions_written: int
    closed: int  # versions closed by this run
    changes: dict[str, int]  # rows per change type (empty when nothing changed)
    table_version: int | None  # of gold/golden_records; None when nothing changed
    published: dict[str, Any]  # per target: runs and rows sent


def _require(lake: Lake, table: str) -> DataFrame:
    if not lake.exists(table):
        raise MissingTableError(
            f"table {table} does not exist under {lake.root}: run the link stage first (`cdi link --conf ...`)"
        )
    return lake.read(table)


def build_golden(lake: Lake, survivorship: SurvivorshipConfig, ranks: Mapping[str, int]) -> DataFrame:
    """This run's golden set (one row per customer of the entity map), not yet versioned."""
    records = _require(lake, schema.RECORDS)
    entity_map = _require(lake, schema.ENTITY_MAP)
    return survive(records, entity_map, survivorship, ranks)


def publish_step(lake: Lake, prop: PropagationConfig, summary: RunSummary) -> dict[str, Any]:
    """Send every run not yet published to the targets of ``prop``, as one step of the summary."""
    with summary.step("gold", "publish") as step:
        published = publish(lake, prop)
        step.rows = sum((v or {}).get("rows", 0) for v in published.values())
    return published


def run_gold(
    lake: Lake,
    survivorship: SurvivorshipConfig,
    ranks: Mapping[str, int],
    run_id: str,
    summary: RunSummary | None = None,
    *,
    run_at: datetime | None = None,
    publish_to: PropagationConfig | None = None,
) -> GoldResult:
    """Build, version, diff and publish the golden records of one run (see :class:`GoldResult`).

    ``ranks`` is each customer source's trust rank (:func:`trust_ranks`). Changes are published
    to ``publish_to`` when given; the pipeline publishes later itself, once the customer 360 is
    written too, so outside systems never hear of a run the lake does not fully hold.
    """
    summary = summary or RunSummary(run_id=run_id)
    run_at = (run_at or datetime.now(UTC)).astimezone(UTC)
    lake = lake.with_context(job="gold", run_id=run_id)

    with summary.step("gold", "survivorship") as step:
        golden = build_golden(lake, survivorship, ranks).persist()
        customers = step.rows = golden.count()  # materialises the cache the diff reads
    try:
        with summary.step("gold", "history diff") as step:
            diff = diff_golden(lake, golden)
            step.rows = sum(diff.counts.values())
            step.details.update(diff.counts)
        try:
            # the change rows and the versions they describe land together or not at all
            with lake.transaction("golden history", [schema.CHANGES, schema.GOLDEN_RECORDS]) as tx:
                with summary.step("gold", "change feed") as step:
                    counts = {}
                    if not diff.empty:
                        id_history = tx.read(schema.ID_HISTORY) if tx.exists(schema.ID_HISTORY) else None
                        changes = build_changes(diff, id_history, run_id, run_at).persist()
                        counts = count_by_type(changes)
                        write_changes(tx, changes, run_id)
                        changes.unpersist()
                    step.rows = sum(counts.values())
                    step.details.update({k: v for k, v in counts.items() if v})
                with summary.step("gold", "golden history") as step:
                    version = write_history(tx, diff, run_id, run_at)
                    step.rows = diff.counts["new"] + diff.counts["changed"]
                    step.details["table_version"] = version
        finally:
            diff.unpersist()
    finally:
        golden.unpersist()

    published = publish_step(lake, publish_to, summary) if publish_to is not None else {}

    return GoldResult(
        golden_records=customers,
        versions_written=diff.counts["new"] + diff.counts["changed"],
        closed=diff.counts["changed"] + diff.counts["retired"],
        changes=counts,
        table_version=version,
        published=published,
    )
