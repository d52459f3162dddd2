"""Survivorship: one golden value per customer and attribute, chosen by the configured rules, with
the provenance of every value.

Every attribute (or attribute group) is a *unit*. For each unit the customer's candidate records
(those with a value) are ordered by the unit's rule, then its tie-breakers, then the implicit
``first_non_null`` order (trust rank, ``updated_at`` newest first) and finally ``record_key``, so
the choice is deterministic. A group (an address, say) is one unit: all its members come from the
same record, never mixed. The ordering is a Spark window per unit over ``customer_id``; the
runner-up (the best candidate holding a *different* value) is found with a struct ``min`` in the
same aggregation that collapses the rows to one per customer. No Python UDFs, nothing collected.

Rules (``conf/survivorship.yaml``), each an ascending sort key:

- ``source_priority``: the source's ``trust_rank`` (lower is more trusted);
- ``most_recent``: the record's ``updated_at``, newest first (missing last);
- ``most_frequent``: how many of the customer's records hold the same value (same member values
  for a group), most first;
- ``most_complete``: the longest value; for a group the most non-null members, then the longest;
- ``first_non_null``: trust rank, then ``updated_at`` newest first, then ``record_key``.

Provenance: every attribute ``a`` has a struct column ``a_prov`` {source, record_key, rule,
updated_at}: the record the value came from, that record's ``updated_at`` as its source said it
(null for a source that keeps no update time: silver's stand-in, the ingestion time, orders
candidates but is no statement of when a value became true) and the rule that
decided, i.e. the first rule in the chain on which the chosen value beat the best candidate with a
different value. It is the unit's own rule when no other value was on offer, and ``record_key``
when every rule tied. Query it as ``SELECT email, email_prov.source FROM golden``.

    >>> golden = survive(records, entity_map, cfg.survivorship, trust_ranks(cfg))  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, DataType, StringType, StructField, StructType, TimestampType

from cdi.config import CANONICAL_ATTRIBUTES, CdiConfig, SurvivorshipConfig
from cdi.errors import ConfigError
from cdi.schema import ATTRIBUTE_TYPES

log = logging.getLogger(__name__)

GOLDEN_ATTRIBUTES: tuple[str, ...] = CANONICAL_ATTRIBUTES
PROVENANCE_SUFFIX = "_prov"
PROVENANCE_TYPE = StructType(
    [
        StructField("source", StringType()),
        StructField("record_key", StringType()),
        StructField("rule", StringType()),
        StructField("updated_at", TimestampType()),
    ]
)
UNKNOWN_TRUST_RANK = 1_000_000  # a source missing from the config is trusted least
_LONG_MAX = 2**63 - 1
_FALLBACK_RULE = "first_non_null"


def attribute_type(attribute: str) -> DataType:
    return ATTRIBUTE_TYPES.get(attribute, StringType())


def prov_column(attribute: str) -> str:
    return attribute + PROVENANCE_SUFFIX


def golden_columns() -> list[str]:
    """Column order of a golden record: id, attributes, provenance, lineage."""
    return ["customer_id", *GOLDEN_ATTRIBUTES, *[prov_column(a) for a in GOLDEN_ATTRIBUTES], "source_record_keys"]


def golden_schema() -> StructType:
    fields = [StructField("customer_id", StringType())]
    fields += [StructField(a, attribute_type(a)) for a in GOLDEN_ATTRIBUTES]
    fields += [StructField(prov_column(a), PROVENANCE_TYPE) for a in GOLDEN_ATTRIBUTES]
    fields.append(StructField("source_record_keys", ArrayType(StringType())))
    return StructType(fields)


@dataclass(frozen=True)
class Unit:
    """Attributes chosen together from one record, with their rule chain."""

    name: str
    attributes: tuple[str, ...]
    chain: tuple[str, ...]
    required: tuple[str, ...] = ()
    from_group: bool = False

    @property
    def is_group(self) -> bool:
        return len(self.attributes) > 1

    @property
    def rule(self) -> str:
        return self.chain[0]

    @property
    def key(self) -> str:
        """Name used in internal columns: groups and attributes may share a name, and a group's
        name from YAML may hold characters a column name should not."""
        if not self.from_group:
            return f"a_{self.name}"
        safe = re.sub(r"[^0-9A-Za-z_]", "_", self.name)
        return f"g_{safe}_{hashlib.sha1(self.name.encode()).hexdigest()[:8]}"


def plan_units(rules: SurvivorshipConfig, attributes: Sequence[str] = GOLDEN_ATTRIBUTES) -> list[Unit]:
    """Groups first (in config order), then every other attribute with its own or the default rule."""
    units: list[Unit] = []
    grouped: set[str] = set()
    for name, group in rules.groups.items():
        members = tuple(a for a in group.attributes if a in attributes)
        if not members:
            continue
        overridden = sorted(set(members) & set(rules.attributes))
        if overridden:
            log.warning("survivorship: %s are in group '%s'; the group's rule applies, not their own", overridden, name)
        grouped.update(members)
        units.append(Unit(name, members, _chain(group.rule, group.tie_breakers), tuple(group.required), from_group=True))
    for attr in attributes:
        if attr in grouped:
            continue
        rule = rules.attributes.get(attr, rules.default)
        units.append(Unit(attr, (attr,), _chain(rule.rule, rule.tie_breakers)))
    return units


def _chain(rule: str, tie_breakers: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys([rule, *tie_breakers, _FALLBACK_RULE]))


def trust_ranks(cfg: CdiConfig) -> dict[str, int]:
    return {s.name: s.trust_rank for s in cfg.customer_sources}


def candidate_records(records: DataFrame, entity_map: DataFrame, ranks: Mapping[str, int]) -> DataFrame:
    """Records with their customer id and trust rank, every golden attribute present and typed.

    Blank strings count as missing, so they never win over a real value.
    """
    em = entity_map.where(F.col("customer_id").isNotNull()).select("record_key", "customer_id")
    rank_map = F.create_map(*[x for name, rank in sorted(ranks.items()) for x in (F.lit(name), F.lit(rank))]) if ranks else None
    rank = F.coalesce(rank_map[F.col("source")], F.lit(UNKNOWN_TRUST_RANK)) if rank_map is not None else F.lit(UNKNOWN_TRUST_RANK)
    updated_at = F.col("updated_at").cast("timestamp")
    # silver fills a missing source time with the ingestion time (for ordering); provenance keeps
    # only what a source said, so no one reads a load time as when a value became true
    said = F.when(~updated_at.eqNullSafe(F.col("_ingested_at").cast("timestamp")), updated_at)
    source_time = said if "_ingested_at" in records.columns else updated_at
    cols = [F.col("customer_id"), F.col("record_key"), F.col("source"), updated_at.alias("updated_at")]
    cols.append(source_time.alias("_source_updated_at"))
    cols.append(rank.cast("long").alias("_rank"))
    for attr in GOLDEN_ATTRIBUTES:
        dtype = attribute_type(attr)
        value = F.col(attr).cast(dtype) if attr in records.columns else F.lit(None).cast(dtype)
        if isinstance(dtype, StringType):
            value = F.when(F.trim(value) != "", value)
        cols.append(value.alias(attr))
    return records.join(em, "record_key", "inner").select(*cols)


def _is_candidate(unit: Unit) -> Column:
    if unit.required:
        return _all_non_null(unit.required)
    return _any_non_null(unit.attributes)


def _any_non_null(attrs: Sequence[str]) -> Column:
    cond = F.lit(False)
    for a in attrs:
        cond = cond | F.col(a).isNotNull()
    return cond


def _all_non_null(attrs: Sequence[str]) -> Column:
    cond = F.lit(True)
    for a in attrs:
        cond = cond & F.col(a).isNotNull()
    return cond


def _freq_column(unit: Unit) -> str:
    return f"_freq_{unit.key}"


def _keys(unit: Unit) -> list[tuple[str, str]]:
    """(rule, sort-key column) pairs of the unit's chain, ascending, each column once.

    Units with the same chain share key columns, hence one window (one sort) between them.
    """
    keys: list[tuple[str, str]] = []
    for rule in unit.chain:
        if rule == "source_priority":
            cols = ["_rank"]
        elif rule == "most_recent":
            cols = ["_recency"]
        elif rule == "most_frequent":
            cols = [_freq_column(unit)]
        elif rule == "most_complete":
            cols = ([f"_filled_{unit.key}"] if unit.is_group else []) + [f"_length_{unit.key}"]
        elif rule == "first_non_null":
            cols = ["_rank", "_recency"]
        else:  # the config model only admits the names above
            raise ConfigError(f"unknown survivorship rule {rule!r} for {unit.name}")
        keys += [(rule, c) for c in cols if c not in {k for _, k in keys}]
    return keys


def _key_columns(units: Sequence[Unit]) -> dict[str, Column]:
    """The per-unit sort keys (frequency, completeness); every key is a non-null long."""
    cols: dict[str, Column] = {}
    for unit in units:
        if "most_frequent" in unit.chain:
            by_value = Window.partitionBy("customer_id", *unit.attributes)
            cols[_freq_column(unit)] = -F.count(F.lit(1)).over(by_value).cast("long")
        if "most_complete" in unit.chain:
            lengths = [F.coalesce(F.length(F.col(a).cast("string")), F.lit(0)) for a in unit.attributes]
            cols[f"_length_{unit.key}"] = -sum(lengths, F.lit(0)).cast("long")
            if unit.is_group:
                cols[f"_filled_{unit.key}"] = -sum((F.col(a).isNotNull().cast("long") for a in unit.attributes), F.lit(0).cast("long"))
    return cols


def survive(
    records: DataFrame, entity_map: DataFrame, rules: SurvivorshipConfig, ranks: Mapping[str, int]
) -> DataFrame:
    """One golden record per customer: attributes, ``<attr>_prov`` structs, ``source_record_keys``."""
    units = plan_units(rules)
    base = (
        candidate_records(records, entity_map, ranks)
        .repartition("customer_id")  # the one shuffle: every window and the aggregation below reuse it
        .withColumn("_recency", F.coalesce(-F.unix_micros(F.col("updated_at")), F.lit(_LONG_MAX)))
    )
    base = base.withColumns(_key_columns(units))

    winners: dict[str, Column] = {}
    aggregations: list[Column] = []
    for unit in units:
        keys = _keys(unit)
        key_struct = F.struct(*[F.col(c).alias(f"k{i}") for i, (_, c) in enumerate(keys)], F.col("record_key").alias("rk"))
        ordered = Window.partitionBy("customer_id").orderBy(*[F.col(c).asc() for _, c in keys], F.col("record_key").asc())
        whole = ordered.rowsBetween(Window.unboundedPreceding, Window.unboundedFollowing)
        value = F.struct(*[F.col(a) for a in unit.attributes])
        pick = F.struct(
            value.alias("value"),
            F.col("source").alias("source"),
            F.col("record_key").alias("record_key"),
            F.col("_source_updated_at").alias("updated_at"),
            key_struct.alias("keys"),
        )
        candidate = _is_candidate(unit)
        winners[f"_win_{unit.key}"] = F.first(F.when(candidate, pick), ignorenulls=True).over(whole)
        other_value = candidate & ~value.eqNullSafe(F.col(f"_win_{unit.key}.value"))
        aggregations.append(F.first(f"_win_{unit.key}", ignorenulls=True).alias(f"_win_{unit.key}"))
        aggregations.append(F.min(F.when(other_value, key_struct)).alias(f"_run_{unit.key}"))
    aggregations.append(F.array_sort(F.collect_set("record_key")).alias("source_record_keys"))
    # one withColumns: units with the same ordering are evaluated by one window operator
    chosen = base.withColumns(winners).groupBy("customer_id").agg(*aggregations)

    values: dict[str, Column] = {}
    provenance: dict[str, Column] = {}
    for unit in units:
        win, runner = F.col(f"_win_{unit.key}"), F.col(f"_run_{unit.key}")
        rule = _decisive_rule(unit, win, runner)
        prov = F.when(
            win.isNotNull(),
            F.struct(
                win["source"].alias("source"),
                win["record_key"].alias("record_key"),
                rule.alias("rule"),
                win["updated_at"].alias("updated_at"),
            ),
        )
        for attr in unit.attributes:
            values[attr] = win["value"][attr].alias(attr)
            provenance[attr] = prov.alias(prov_column(attr))
    return chosen.select(
        "customer_id",
        *[values[a] for a in GOLDEN_ATTRIBUTES],
        *[provenance[a] for a in GOLDEN_ATTRIBUTES],
        "source_record_keys",
    )


def _decisive_rule(unit: Unit, win: Column, runner: Column) -> Column:
    """The first rule on which the winner beat the best candidate with another value."""
    names = [name for name, _ in _keys(unit)]
    decided = F.when(runner.isNull(), F.lit(unit.rule))
    for i, name in enumerate(names):
        decided = decided.when(win["keys"][f"k{i}"] != runner[f"k{i}"], F.lit(name))
    return decided.otherwise(F.lit("record_key"))
