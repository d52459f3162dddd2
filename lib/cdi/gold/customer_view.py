"""Federation: one view of a customer across every source, for ``cdi customer show`` and notebooks.

A key (customer id, record key ``source:id``, e-mail or phone) resolves to customer ids
(:func:`find_customer_ids`); :func:`customer_view` then gathers the golden record with its
provenance (the version valid at ``as_of`` when given), every source record behind it (from
``silver/records`` through ``silver/entity_map``, or the version's ``source_record_keys`` for a past
or retired customer), its version history, and the latest facts per fact source (orders, payments,
tickets, campaign responses...) from ``silver/facts``, the table the customer 360 aggregates, so
both show the same amounts in the same currencies. Everything read is filtered to one customer before it reaches the driver.

:func:`register_views` names the same tables as Spark SQL temporary views for notebooks:
``golden_records`` (every version), ``golden_current``, ``entity_map``, ``source_records``,
``facts_<source>`` per fact source and ``customer_facts`` (all facts with ``customer_id``).

    >>> print(customer_view(spark, cfg, lake, "ann@example.com").format())  # doctest: +SKIP
    >>> register_views(spark, cfg, lake); spark.sql("SELECT * FROM customer_facts LIMIT 5")  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import re
from dataclasses import asdict, dataclass, field
from datetime import datetime
from functools import reduce
from typing import Any

from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from cdi import schema
from cdi.config import CdiConfig, SourceConfig
from cdi.errors import AmbiguousCustomerError, CustomerNotFoundError
from cdi.lake import Lake, LakeError
from cdi.silver.facts import read_silver_facts
from cdi.silver.standardise import email_match_key, standardise_email

from .changes import CHANGES_TABLE
from .history import GOLDEN_TABLE, customer_as_of, utc, with_history_columns
from .survivorship import GOLDEN_ATTRIBUTES, prov_column

log = logging.getLogger(__name__)

RECORDS_TABLE = schema.RECORDS
ENTITY_MAP_TABLE = schema.ENTITY_MAP
DEFAULT_FACTS_PER_SOURCE = 5
_FACT_COLUMNS = ("source", "kind", "fact_id", "event_at", "amount", "currency", "channel", "status", "campaign", "subject")
_PHONE_KEY = re.compile(r"^\+?[0-9 ()./-]{6,}$")
_MIN_PHONE_DIGITS = 6


# ------------------------------------------------------------------ resolving a key


def _ids_of_records(lake: Lake, record_keys: DataFrame) -> list[str]:
    em = lake.read(ENTITY_MAP_TABLE).select("record_key", "customer_id")
    rows = em.join(record_keys.select("record_key").distinct(), "record_key").select("customer_id").distinct().collect()
    return sorted(r["customer_id"] for r in rows if r["customer_id"])


def _digits(col) -> Any:
    return F.regexp_replace(col.cast("string"), r"[^0-9]", "")


def _is_customer_id(lake: Lake, key: str) -> bool:
    """Known to the entity map (live) or to the golden history (also retired ids): one query."""
    ids = [lake.read(t).select("customer_id") for t in (ENTITY_MAP_TABLE, GOLDEN_TABLE) if lake.exists(t)]
    if not ids:
        return False
    return reduce(lambda a, b: a.unionByName(b), ids).where(F.col("customer_id") == key).limit(1).count() > 0


def find_customer_ids(spark: SparkSession, lake: Lake, key: str) -> list[str]:
    """Customer ids a key names, tried in this order: customer id (current or past), record key,
    e-mail (case-insensitive), phone (digits of the E.164 form; a national number without its
    country code matches by its trailing digits). Empty when nothing matches."""
    key = key.strip()
    if not key:
        return []
    if "@" not in key and _is_customer_id(lake, key):
        return [key]
    if not (lake.exists(RECORDS_TABLE) and lake.exists(ENTITY_MAP_TABLE)):
        return []
    records = lake.read(RECORDS_TABLE)
    if ":" in key and "@" not in key:
        found = _ids_of_records(lake, records.where(F.col("record_key") == key))
        if found:
            return found
    if "@" in key:
        match = F.lower(F.trim(F.col("email"))) == key.lower()
        if "email_std" in records.columns:
            # silver's match key: +tags and gmail dots do not hide a customer
            match = match | (F.col("email_std") == email_match_key(standardise_email(F.lit(key))))
        return _ids_of_records(lake, records.where(match))
    if _PHONE_KEY.match(key):
        digits = re.sub(r"\D", "", key)
        if key.startswith("00"):
            digits = digits[2:]
        if len(digits) < _MIN_PHONE_DIGITS:
            return []
        phone = F.coalesce(F.col("phone_std"), F.col("phone")) if "phone_std" in records.columns else F.col("phone")
        stored = _digits(phone)
        found = _ids_of_records(lake, records.where(stored == digits))
        if found or key.startswith(("+", "00")):
            return found
        national = digits.lstrip("0")
        if len(national) >= _MIN_PHONE_DIGITS:
            return _ids_of_records(lake, records.where(stored.endswith(national)))
    return []


# ------------------------------------------------------------------ facts


def fact_frame(lake: Lake, source: SourceConfig) -> DataFrame | None:
    """One fact source's rows of ``silver/facts`` (None before the link stage has written it)."""
    if not lake.exists(schema.FACTS):
        return None
    return lake.read(schema.FACTS).where(F.col("source") == source.name)


def customer_facts(lake: Lake) -> DataFrame | None:
    """Every fact with the ``customer_id`` of the record it references."""
    if not lake.exists(schema.FACTS) or not lake.exists(ENTITY_MAP_TABLE):
        return None
    em = lake.read(ENTITY_MAP_TABLE).select("record_key", "customer_id")
    return read_silver_facts(lake).join(em, "record_key", "left")


# ------------------------------------------------------------------ the view


@dataclass
class CustomerView:
    """Everything known about one customer; ``format()`` renders it for the terminal."""

    key: str
    customer_id: str
    as_of: datetime | None
    status: str  # current | retired | not yet known | not known then | superseded later; <current|retired> now
    golden: dict[str, Any] | None
    provenance: dict[str, dict[str, Any]]
    records: list[dict[str, Any]]
    facts: dict[str, list[dict[str, Any]]]
    versions: list[dict[str, Any]] = field(default_factory=list)
    successor_ids: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The view as plain data (``cdi customer show --json``); dates and times stay Python
        objects, for the caller's JSON encoder (:func:`cdi.cli.json_text` writes ISO 8601)."""
        return asdict(self)

    def format(self) -> str:
        when = f" as of {self.as_of.isoformat()}" if self.as_of else ""
        lines = [f"customer {self.customer_id}{when} ({self.status})"]
        if self.key != self.customer_id:
            lines[0] += f"  [found by {self.key!r}]"
        if self.successor_ids:
            lines.append(f"  records now belong to: {', '.join(self.successor_ids)}")
        lines.append("")
        lines.append("golden record")
        if self.golden is None:
            lines.append("  (no golden version)")
        else:
            width = max(len(a) for a in GOLDEN_ATTRIBUTES)
            for attr in GOLDEN_ATTRIBUTES:
                value = self.golden.get(attr)
                if value is None:
                    continue
                prov = self.provenance.get(attr) or {}
                origin = f"{prov.get('record_key')} by {prov.get('rule')}, updated {_text(prov.get('updated_at'))}"
                lines.append(f"  {attr:<{width}}  {_text(value):<32}  <- {origin}")
            lines.append(
                f"  version valid from {_text(self.golden.get('valid_from'))} to {_text(self.golden.get('valid_to')) or 'now'}"
                f" (run {self.golden.get('run_id')}); true at the sources from {_text(self.golden.get('effective_from'))}"
            )
        lines.append("")
        lines.append(f"source records ({len(self.records)})")
        shown = ("first_name", "last_name", "date_of_birth", "email", "phone", "postcode", "city", "country", "updated_at")
        for rec in self.records:
            values = ", ".join(f"{k}={_text(rec.get(k))}" for k in shown if rec.get(k) is not None)
            lines.append(f"  {rec.get('record_key')}: {values}")
        if self.versions:
            lines.append("")
            lines.append(f"history ({len(self.versions)} versions)")
            for v in self.versions:
                lines.append(
                    f"  {_text(v['valid_from'])} .. {_text(v['valid_to']) or 'now':<19}  run {v['run_id']}  "
                    f"hash {str(v['record_hash'])[:12]}  effective {_text(v.get('effective_from'))}"
                )
        for source, facts in self.facts.items():
            lines.append("")
            lines.append(f"recent {source} ({len(facts)})")
            for fact in facts:
                parts = [_text(fact.get("event_at")), str(fact.get("fact_id"))]
                if fact.get("amount") is not None:
                    parts.append(f"{fact['amount']:.2f} {fact.get('currency') or ''}".strip())
                for k in ("status", "channel", "campaign", "subject"):
                    if fact.get(k):
                        parts.append(f"{k}={fact[k]}")
                lines.append("  " + "  ".join(p for p in parts if p))
        return "\n".join(lines)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return str(value)


def _golden_now(lake: Lake, customer_id: str) -> tuple[dict | None, str]:
    """The current version, or the last one of a retired id."""
    versions = lake.read(GOLDEN_TABLE).where(F.col("customer_id") == customer_id)
    row = versions.orderBy(F.col("is_current").desc(), F.col("valid_from").desc()).first()
    if row is None:
        return None, "not yet known"
    return row.asDict(recursive=True), "current" if row["is_current"] else "retired"


def _record_keys(lake: Lake, customer_id: str, golden: dict | None, as_of: datetime | None) -> list[str]:
    if as_of is None and lake.exists(ENTITY_MAP_TABLE):
        rows = lake.read(ENTITY_MAP_TABLE).where(F.col("customer_id") == customer_id).select("record_key").collect()
        if rows:
            return sorted(r[0] for r in rows)
    return list((golden or {}).get("source_record_keys") or [])


def _records(lake: Lake, keys: list[str], as_of: datetime | None) -> list[dict[str, Any]]:
    if not keys or not lake.exists(RECORDS_TABLE):
        return []
    records = None
    if as_of is not None:
        try:
            records = lake.read(RECORDS_TABLE, timestamp=utc(as_of))
        except (LakeError, AnalysisException):  # the table is younger than as_of
            log.info("no version of %s as of %s: showing its current records", RECORDS_TABLE, as_of)
    if records is None:
        records = lake.read(RECORDS_TABLE)
    keep = [c for c in records.columns if not c.endswith("_std")]
    rows = records.where(F.col("record_key").isin(keys)).select(*keep).orderBy("record_key").collect()
    return [r.asDict(recursive=True) for r in rows]


def _recent_facts(
    cfg: CdiConfig, lake: Lake, keys: list[str], as_of: datetime | None, per_source: int
) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    if not keys:
        return out
    if not lake.exists(schema.FACTS):
        return out
    facts = lake.read(schema.FACTS).where(F.col("record_key").isin(keys))
    for source in cfg.fact_sources:
        mine = facts.where(F.col("source") == source.name)
        if as_of is not None:
            mine = mine.where(F.col("event_at") <= F.lit(utc(as_of)).cast("timestamp"))
        rows = mine.orderBy(F.col("event_at").desc_nulls_last(), "fact_id").limit(per_source).collect()
        out[source.name] = [{c: r[c] for c in _FACT_COLUMNS} | {"record_key": r["record_key"]} for r in rows]
    return out


def _successors(lake: Lake, customer_id: str) -> list[str]:
    if not lake.exists(CHANGES_TABLE):
        return []
    row = (
        lake.read(CHANGES_TABLE)
        .where((F.col("customer_id") == customer_id) & (F.col("change_type") == "retired"))
        .orderBy(F.col("changed_at").desc())
        .select("related_ids")
        .first()
    )
    return list(row[0] or []) if row else []


def customer_view(
    spark: SparkSession,
    cfg: CdiConfig,
    lake: Lake,
    key: str,
    as_of: datetime | None = None,
    facts_per_source: int = DEFAULT_FACTS_PER_SOURCE,
    time: str = "recorded",
) -> CustomerView:
    """The one view of the customer ``key`` names, now or at ``as_of``: as the lake knew it then
    (``time`` "recorded") or as it was true at the sources then ("effective")."""
    ids = find_customer_ids(spark, lake, key)
    if not ids:
        raise CustomerNotFoundError(
            f"no customer matches {key!r} (tried it as customer id, record key, e-mail and phone) under {lake.root}"
        )
    if len(ids) > 1:
        raise AmbiguousCustomerError(key, ids)
    customer_id = ids[0]
    golden: dict | None = None
    status = "not yet known"
    versions: list[dict[str, Any]] = []
    if lake.exists(GOLDEN_TABLE):
        latest, now = _golden_now(lake, customer_id)
        if as_of is None:
            golden, status = latest, now
        else:
            golden = customer_as_of(spark, lake, customer_id, as_of, time)
            if golden is None:
                status = "not known then"
            elif golden["is_current"]:
                status = "current"
            else:
                status = f"superseded later; {now} now"
        history = with_history_columns(lake.read(GOLDEN_TABLE)).where(F.col("customer_id") == customer_id)
        if as_of is not None:
            start = "valid_from" if time == "recorded" else "effective_from"
            history = history.where(F.coalesce(F.col(start), F.col("valid_from")) <= F.lit(utc(as_of)).cast("timestamp"))
        columns = ("valid_from", "valid_to", "effective_from", "effective_to", "run_id", "record_hash")
        versions = [r.asDict() for r in history.select(*columns).orderBy("valid_from").collect()]
    provenance = {a: golden[prov_column(a)] for a in GOLDEN_ATTRIBUTES if golden and golden.get(prov_column(a))}
    keys = _record_keys(lake, customer_id, golden, as_of)
    return CustomerView(
        key=key,
        customer_id=customer_id,
        as_of=as_of,
        status=status,
        golden=golden,
        provenance=provenance,
        records=_records(lake, keys, as_of),
        facts=_recent_facts(cfg, lake, keys, as_of, facts_per_source),
        versions=versions,
        successor_ids=_successors(lake, customer_id) if status.endswith("retired") or status.endswith("retired now") else [],
    )


# ------------------------------------------------------------------ notebooks


def register_views(spark: SparkSession, cfg: CdiConfig, lake: Lake) -> list[str]:
    """Register the lake's customer tables as temporary views; the names registered."""
    names: list[str] = []

    def register(name: str, df: DataFrame | None) -> None:
        if df is not None:
            df.createOrReplaceTempView(name)
            names.append(name)

    if lake.exists(GOLDEN_TABLE):
        golden = lake.read(GOLDEN_TABLE)
        register("golden_records", golden)
        register("golden_current", golden.where(F.col("is_current")))
    if lake.exists(ENTITY_MAP_TABLE):
        register("entity_map", lake.read(ENTITY_MAP_TABLE))
    if lake.exists(RECORDS_TABLE):
        register("source_records", lake.read(RECORDS_TABLE))
    for source in cfg.fact_sources:
        register(f"facts_{source.name}", fact_frame(lake, source))
    register("customer_facts", customer_facts(lake))
    log.info("registered views: %s", ", ".join(names))
    return names
