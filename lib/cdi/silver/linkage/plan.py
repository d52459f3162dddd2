"""The sizing plan: how many pairs each blocking rule makes on this lake, and at 10M and 100M records.

Linkage costs what the pairs cost: Splink scores every pair some prediction rule makes (once,
whichever rules make it). The plan counts them exactly with Splink's own blocking analysis
(``count_comparisons_from_blocking_rules``) on the model input a run would block: the last
saved model's linkage configuration over ``silver/records``, block key values over the cap
nulled. It counts them again on a smaller universe: a fixed share of the *customers*
(``silver/entity_map``, chosen by a hash of the customer id, so the same ones every time) with
all their records. Sampling records instead would thin out the pairs of one customer's own
records quadratically, while a smaller customer base only has fewer of them. Two counts show
how each rule grows with the data:

* a rule on a key whose values grow with the data (an e-mail, a national id) grows about
  linearly (exponent ~1);
* a rule on a key with a bounded set of values (a birth year, a city) grows about
  quadratically (exponent ~2), until its values reach the cap and are nulled.

Each rule's exponent ``k = log(pairs_full / pairs_sample) / log(records_full / records_sample)``
(held between 1 and 2) extrapolates its pairs to a target size: ``pairs(N) = pairs_full * (N / records_full) ** k``.
The sample's pairs are counted with the full data's capped values, so a key close to the cap
now is counted as if it stayed uncapped at the target: the figures err on the high side.

A rule without pairs in the sample is taken to grow quadratically (the worst case).

    >>> plan = comparison_plan(lake, cfg.lake_root, sample_share=0.1)  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from cdi import schema
from cdi.errors import ConfigError
from cdi.lake import Lake
from cdi.sql import literals, rule_columns

from . import blocking, model
from .backends import DuckDBBackend
from .stage import prepared_input

log = logging.getLogger(__name__)

DEFAULT_TARGETS = (10_000_000, 100_000_000)


@dataclass(frozen=True)
class RulePlan:
    """One prediction rule: the pairs it adds to the rules before it (Splink's marginal count)."""

    rule: str  # its columns joined by " & ", or its SQL
    pairs: int
    pairs_in_sample: int
    growth_exponent: float | None  # None: the sample had no pairs to compare with
    pairs_at: dict[int, int]  # target records -> extrapolated pairs


@dataclass(frozen=True)
class ComparisonPlan:
    records: int
    records_in_sample: int
    sample_share: float
    blocking_key_cap: int
    capped_values: int
    model_version: int
    rules: list[RulePlan]

    @property
    def pairs(self) -> int:
        return sum(r.pairs for r in self.rules)

    def pairs_at(self, target: int) -> int:
        return sum(r.pairs_at.get(target, 0) for r in self.rules)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["pairs"] = self.pairs
        targets = sorted({t for r in self.rules for t in r.pairs_at})
        out["pairs_at"] = {t: self.pairs_at(t) for t in targets}
        return out


def growth_exponent(pairs: int, pairs_in_sample: int, records: int, records_in_sample: int) -> float | None:
    """How the pairs of a rule grow with the records (``pairs ~ records ** k``), from two counts,
    held between 1 (only each customer's own records pair: more customers, proportionally more
    pairs) and 2 (every record pairs with every other): outside that range a count is noise."""
    if pairs <= 0 or pairs_in_sample <= 0 or records_in_sample <= 0 or records <= records_in_sample:
        return None
    return min(2.0, max(1.0, math.log(pairs / pairs_in_sample) / math.log(records / records_in_sample)))


def extrapolate(pairs: int, records: int, exponent: float | None, target: int) -> int:
    """Pairs at ``target`` records; a rule without an exponent is taken to grow quadratically
    (the worst case of a blocking rule)."""
    k = 2.0 if exponent is None else exponent
    return round(pairs * (target / records) ** k) if records else 0


def _count(sdf, rules: list[str]) -> list[int]:
    from splink.blocking_analysis import count_comparisons_from_blocking_rules

    counted = count_comparisons_from_blocking_rules(
        sdf, blocking_rules=rules, link_type="dedupe_only", unique_id_column_name=model.UNIQUE_ID, record_sample_proportion=1.0
    )
    return [int(r["marginal_comparison_count"]) for r in counted]


def check_arguments(sample_share: float, targets: Sequence[int]) -> None:
    """ConfigError unless the sample share is in (0, 1) and there are positive targets (no Spark needed)."""
    if not 0 < sample_share < 1:
        raise ConfigError(f"sample share (--sample-share) must be between 0 and 1 (exclusive), got {sample_share}")
    if not targets or any(t <= 0 for t in targets):
        raise ConfigError(f"target record counts (--targets) must be positive, got {list(targets)}")


def comparison_plan(
    lake: Lake, lake_root: str, *, sample_share: float = 0.1, targets: Sequence[int] = DEFAULT_TARGETS
) -> ComparisonPlan:
    """Count each prediction rule's pairs on the lake and on a sample, and extrapolate (see the module)."""
    check_arguments(sample_share, targets)
    saved = model.ModelStore(lake_root).latest()
    if saved is None:
        raise ConfigError(f"no trained linkage model under {lake_root}/models: run `cdi run` first (the plan counts its rules)")
    cfg = saved.linkage_config()
    backend = DuckDBBackend(lake.spark)
    try:
        prepared = prepared_input(backend, lake, cfg, warn_capped=False)
        full = prepared.table.physical_name
        owners = lake.file_paths(schema.ENTITY_MAP)
        if not owners:
            raise ConfigError(f"{schema.ENTITY_MAP} has no data under {lake_root}: run `cdi run` first (the plan samples its customers)")
        per_mille = max(1, round(sample_share * 1000))
        chosen = (
            f"select record_key from read_parquet([{literals(owners, 'duckdb')}], union_by_name = true) "
            f"where hash(customer_id) % 1000 < {per_mille}"
        )
        sample = backend.materialise(f"select * from {full} where {model.UNIQUE_ID} in ({chosen})", "cdi_plan_sample")
        records = int(backend.query(f"select count(*) as n from {full}")[0]["n"])
        in_sample = int(backend.query(f"select count(*) as n from {sample.physical_name}")[0]["n"])
        rules = [blocking.rule_sql(r) for r in cfg.blocking_rules]
        log.info("plan: counting the pairs of %d rules over %d records and a sample of %d", len(rules), records, in_sample)
        pairs, sampled = _count(prepared.table, rules), _count(sample, rules)
        plans = []
        for configured, n_full, n_sample in zip(cfg.blocking_rules, pairs, sampled, strict=True):
            k = growth_exponent(n_full, n_sample, records, in_sample)
            k = None if k is None else round(k, 3)  # the figure shown is the figure used
            at = {int(t): extrapolate(n_full, records, k, int(t)) for t in targets}
            columns = rule_columns(configured)
            name = " & ".join(columns) if columns else str(configured)
            plans.append(RulePlan(name, n_full, n_sample, k, at))
        return ComparisonPlan(
            records=records, records_in_sample=in_sample, sample_share=per_mille / 1000, blocking_key_cap=cfg.blocking_key_cap,
            capped_values=len(prepared.capped), model_version=saved.version, rules=plans,
        )  # fmt: skip
    finally:
        backend.close()


def plan_table(plan: ComparisonPlan) -> str:
    """The plan as a plain-text table (one line per rule, then the totals)."""
    targets = sorted({t for r in plan.rules for t in r.pairs_at})
    head = ["rule", f"pairs at {plan.records:,}", f"in sample ({plan.records_in_sample:,})", "growth k"]
    head += [f"pairs at {t:,}" for t in targets]
    rows = [
        [r.rule, f"{r.pairs:,}", f"{r.pairs_in_sample:,}", "-" if r.growth_exponent is None else f"{r.growth_exponent:.2f}"]
        + [f"{r.pairs_at[t]:,}" for t in targets]
        for r in plan.rules
    ]
    rows.append(["total", f"{plan.pairs:,}", f"{sum(r.pairs_in_sample for r in plan.rules):,}", ""] + [f"{plan.pairs_at(t):,}" for t in targets])
    widths = [max(len(str(row[i])) for row in [head, *rows]) for i in range(len(head))]
    lines = ["  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(row, widths))) for row in [head, *rows]]
    note = (
        f"model v{plan.model_version:04d}; block key values over the cap ({plan.blocking_key_cap:,} records) are nulled: "
        f"{plan.capped_values} now"
    )
    return "\n".join([*lines, note])
