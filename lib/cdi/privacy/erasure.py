"""Erasure (``cdi erase``): one person removed from every layer, for good.

The person is found from a customer id, a source record key, an e-mail or a national id: their
customer(s), every source record of those customers and every fact of those records. Then:

1. the **register** gets salted hashes of their record and fact keys, e-mails and national ids
   (:mod:`.register`), first, so that a crash half-way never lets a re-ingest bring them back;
2. every **table** of every layer loses the rows that are theirs: bronze rows of their records and
   facts, quarantine rows of those records or whose raw text holds their e-mail, phone or national
   id, silver records, facts, pairs, entity map, steward decisions, golden versions (also versions
   of other customers that once held one of their records), changes (also other customers' change
   rows naming their values), life events, customer 360 and segments. Rows are chosen by keys
   only, so no personal value reaches a DELETE predicate in the Delta log;
3. the **outbox** loses their lines, other lines their values, and gets an erasure message
   (``erasure_id=<id>.jsonl``, ``change_type: erased``) for consumers downstream; the
   **PostgreSQL** target loses their rows and logs the erasure in ``<table>_erasures``;
4. **artefacts** under the lake root (model reports, evaluation reports) have their values
   replaced by ``[erased]``;
5. the changed tables are **vacuumed** with zero retention, so no old Parquet file or Change Data
   Feed file keeps the values (time travel of those tables to before the erasure ends here), and
   the Delta logs never held them: the lake keeps statistics only on key columns
   (:mod:`cdi.lake.statistics`);
6. an **audit** row records who, when, why and the counts, without a personal value.

An erasure is never rolled back: it marks the lease ``lake_committed`` before its first write,
and writes ``privacy/erasure_pending`` (the keys and values it still has to remove) before its
first DELETE. A process that dies half-way leaves that row; the next ``cdi erase``, ``cdi run`` or
``cdi maintain`` finishes the erasure and only then deletes the row (and vacuums it away).

A selector that names more than one customer (a shared e-mail) is refused unless
``all_matches`` is given; ``dry_run`` reports what would be removed and writes nothing. Erasing the
same person again finds nothing and raises :class:`~cdi.errors.CustomerNotFoundError`.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from cdi import schema
from cdi.config import CdiConfig
from cdi.errors import ConfigError, CustomerNotFoundError, NotFoundError
from cdi.lake import Lake
from cdi.lake.lease import LAKE_COMMITTED, Lease
from cdi.lake.statistics import NUM_INDEXED_PROPERTY, STATS_COLUMNS_PROPERTY
from cdi.sql import identifier, literal, literals

from .register import EMAIL, NATIONAL_ID, RECORD, digest, require_key, salt

log = logging.getLogger(__name__)

SELECTORS = ("customer", "record", "email", "national_id")
ERASED = "[erased]"
_SKIPPED = ("_cdi/", "privacy/")  # bookkeeping without personal values, and the register itself
_VALUE_ATTRIBUTES = ("email", "phone", "national_id", "full_name")
_TEXT_SUFFIXES = {".json", ".jsonl", ".html", ".md", ".txt", ".csv"}
_MIN_VALUE_LENGTH = 4
_PENDING_SETS = ("customer_ids", "record_keys", "fact_keys", "values", "emails", "national_ids", "phone_digits", "phones")  # shorter values ("Li", "12") would scrub other people's text too


@dataclass(frozen=True)
class Selector:
    """Who to erase: ``kind`` is one of :data:`SELECTORS`."""

    kind: str
    value: str

    def __post_init__(self) -> None:
        if self.kind not in SELECTORS:
            raise ConfigError(f"erase: unknown selector {self.kind!r}; use one of {', '.join(SELECTORS)}")
        if not self.value or not self.value.strip():
            raise ConfigError(f"erase: --{self.kind.replace('_', '-')} is empty")
        if self.kind == "record" and ":" not in self.value:
            raise ConfigError(f"erase: --record {self.value!r} is not a record key; give SOURCE:ID (e.g. crm:C001611)")


@dataclass
class Person:
    """What the lake holds of one person: keys to delete by, values to scrub from text."""

    customer_ids: set[str] = field(default_factory=set)
    record_keys: set[str] = field(default_factory=set)
    fact_keys: set[str] = field(default_factory=set)
    values: set[str] = field(default_factory=set)  # distinctive identifiers and the full name: scrubbed from text artefacts
    emails: set[str] = field(default_factory=set)
    national_ids: set[str] = field(default_factory=set)
    phone_digits: set[str] = field(default_factory=set)
    phones: set[str] = field(default_factory=set)

    @property
    def empty(self) -> bool:
        return not (self.customer_ids or self.record_keys)

    @property
    def identifiers(self) -> set[str]:
        """Values only this person holds (e-mail, phone, national id), lower-cased: other customers'
        rows and lines are cleared of these, never of a name or an address a household shares."""
        return {v.lower() for v in self.emails | self.national_ids | self.phones}

    def pending_row(self, erasure_id: str, erased_at: datetime, by: str, reason: str, selector: str) -> tuple:
        return (erasure_id, erased_at, by, reason, selector, *[sorted(getattr(self, f)) for f in _PENDING_SETS])

    @classmethod
    def from_pending(cls, row: Any) -> Person:
        return cls(**{f: set(row[f] or ()) for f in _PENDING_SETS})

    def keys_of(self, source: str) -> list[str]:
        """Source record ids (records and facts) of ``source``."""
        prefix = f"{source}:"
        return sorted(k[len(prefix) :] for k in self.record_keys | self.fact_keys if k.startswith(prefix))


@dataclass
class ErasureReport:
    erasure_id: str
    selector: str
    customers: int = 0
    records: int = 0
    facts: int = 0
    rows_removed: dict[str, int] = field(default_factory=dict)
    files_vacuumed: int = 0
    outbox_lines_removed: int = 0
    outbox_values_cleared: int = 0
    postgres_rows_removed: int | None = None
    artefacts_cleaned: list[str] = field(default_factory=list)
    seconds: float = 0.0
    customer_ids: list[str] = field(default_factory=list)
    dry_run: bool = False
    finished_pending: list[str] = field(default_factory=list)  # erasures a dead process left, finished first

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def format(self) -> str:
        lines = [f"finished erasure {e}, which a dead process had left unfinished" for e in self.finished_pending]
        lines.append(
            f"{'dry run: would erase' if self.dry_run else 'erasure ' + self.erasure_id + ':'} {self.customers} customer(s) "
            f"({', '.join(self.customer_ids)}), {self.records} record(s), {self.facts} fact(s)"
            + ("" if self.dry_run else f" in {self.seconds:.1f}s")
        )
        for table, rows in sorted(self.rows_removed.items()):
            lines.append(f"  {table:<28} {rows:>8,} row(s) {'to remove' if self.dry_run else 'removed'}")
        if self.dry_run:
            return "\n".join(lines)
        lines.append(f"  {'vacuumed':<28} {self.files_vacuumed:>8,} file(s) deleted")
        lines.append(
            f"  {'outbox':<28} {self.outbox_lines_removed:>8,} line(s) removed, {self.outbox_values_cleared:,} value(s) cleared"
        )
        if self.postgres_rows_removed is not None:
            lines.append(f"  {'postgres':<28} {self.postgres_rows_removed:>8,} row(s) removed")
        for path in self.artefacts_cleaned:
            lines.append(f"  artefact cleaned: {path}")
        return "\n".join(lines)


# ------------------------------------------------------------------ finding the person


def _strings(df: DataFrame, column: str) -> set[str]:
    """Distinct non-null values of one column; bounded by one person's records."""
    return {r[0] for r in df.select(column).where(F.col(column).isNotNull()).distinct().collect()}


def _read(lake: Lake, table: str) -> DataFrame | None:
    return lake.read(table) if lake.exists(table) else None


def find_person(lake: Lake, selector: Selector) -> Person:
    """The customers, records and facts of the person ``selector`` names, and their values."""
    from cdi.silver.standardise import standardise_email, standardise_national_id

    records, emap, golden = (_read(lake, t) for t in (schema.RECORDS, schema.ENTITY_MAP, schema.GOLDEN_RECORDS))
    seed_customers: set[str] = set()
    seed_records: set[str] = set()
    if selector.kind == "customer":
        wanted = selector.value.strip()
        if golden is not None:  # a retired id: its versions name the records, now under another id
            held = golden.where(F.col("customer_id") == wanted)
            seed_records = _strings(held.select(F.explode("source_record_keys").alias("k")), "k")
        if seed_records or (emap is not None and emap.where(F.col("customer_id") == wanted).limit(1).count()):
            seed_customers = {wanted}
    elif selector.kind == "record":
        key = selector.value.strip()
        source, _, rid = key.partition(":")
        in_map = emap is not None and emap.where(F.col("record_key") == key).limit(1).count() > 0
        bronze = _read(lake, schema.bronze(source))
        in_bronze = bronze is not None and bronze.where(F.col(schema.RECORD_ID) == rid).limit(1).count() > 0
        seed_records = {key} if in_map or in_bronze else set()  # a mistyped key is never registered
    elif records is not None:
        std = (standardise_email if selector.kind == "email" else standardise_national_id)(F.lit(selector.value))
        seed_records = _strings(records.where(F.col(selector.kind) == std), "record_key")
    person = Person()
    person.customer_ids = set(seed_customers)
    if emap is not None and seed_records:
        person.customer_ids |= _strings(emap.where(F.col("record_key").isin(sorted(seed_records))), "customer_id")
    person.record_keys = set(seed_records)
    if emap is not None and person.customer_ids:
        person.record_keys |= _strings(emap.where(F.col("customer_id").isin(sorted(person.customer_ids))), "record_key")
    facts = _read(lake, schema.FACTS)
    if facts is not None and person.record_keys:
        person.fact_keys = _strings(facts.where(F.col("record_key").isin(sorted(person.record_keys))), "fact_key")
    _collect_values(person, records, golden, selector)
    return person


def _collect_values(person: Person, records: DataFrame | None, golden: DataFrame | None, selector: Selector) -> None:
    import phonenumbers

    rows: list[Any] = []
    if records is not None and person.record_keys:
        rows += records.where(F.col("record_key").isin(sorted(person.record_keys))).select(*_VALUE_ATTRIBUTES).collect()
    if golden is not None and person.customer_ids:
        rows += golden.where(F.col("customer_id").isin(sorted(person.customer_ids))).select(*_VALUE_ATTRIBUTES).collect()
    for row in rows:
        for attribute in _VALUE_ATTRIBUTES:
            value = row[attribute]
            if value is None or len(str(value).strip()) < _MIN_VALUE_LENGTH:
                continue
            person.values.add(str(value).strip())
            if attribute == "email":
                person.emails.add(str(value).strip().lower())
            elif attribute == "national_id":
                person.national_ids.add(str(value).strip())
            elif attribute == "phone":
                person.phones.add(str(value).strip())
                try:
                    number = phonenumbers.parse(str(value), None)
                    person.phone_digits.add(str(number.national_number))
                except phonenumbers.NumberParseException:
                    digits = "".join(c for c in str(value) if c.isdigit())
                    if len(digits) >= 7:
                        person.phone_digits.add(digits)
    if selector.kind in ("email", "national_id"):
        person.values.add(selector.value.strip())
        (person.emails if selector.kind == "email" else person.national_ids).add(
            selector.value.strip().lower() if selector.kind == "email" else selector.value.strip()
        )


# ------------------------------------------------------------------ which rows are theirs


def _in(column: str, values: Iterable[str]) -> str | None:
    values = sorted(set(values))
    return f"{identifier(column)} IN ({literals(values)})" if values else None


def _pairs(columns: tuple[str, str], keys: Iterable[tuple[str, str]]) -> str | None:
    """``(a = x AND b = y) OR ...`` for rows named by two key columns."""
    a, b = (identifier(c) for c in columns)
    terms = [f"({a} = {literal(x)} AND {b} = {literal(y)})" for x, y in sorted(set(keys))]
    return " OR ".join(terms) if terms else None


def row_condition(lake: Lake, table: str, person: Person) -> str | None:
    """The SQL condition naming the person's rows in ``table`` by keys only (ids, run ids,
    hashes), never by a personal value; None when the table cannot hold any."""
    columns = set(lake.schema(table).fieldNames())
    parts: list[str | None] = []
    if table == schema.QUARANTINE:
        by_source: dict[str, set[str]] = {}
        for key in person.record_keys | person.fact_keys:
            source, _, rid = key.partition(":")
            by_source.setdefault(source, set()).add(rid)
        parts += [
            f"({identifier(schema.SOURCE)} = {literal(s)} AND {_in(schema.RECORD_ID, ids)})"
            for s, ids in sorted(by_source.items())
        ]
        parts.append(_in(schema.ROW_HASH, _quarantined_with_values(lake, table, person)))
    elif table.startswith("bronze/"):
        if schema.RECORD_ID in columns:
            parts.append(_in(schema.RECORD_ID, person.keys_of(table.split("/", 1)[1])))
    else:
        if "customer_id" in columns:
            parts.append(_in("customer_id", person.customer_ids))
        for column in ("record_key", "record_key_l", "record_key_r"):
            if column in columns:
                parts.append(_in(column, person.record_keys))
        if "fact_key" in columns:
            parts.append(_in("fact_key", person.fact_keys))
        if {"source_record_keys", "run_id", "customer_id"} <= columns and person.record_keys:
            # versions of other customers that once held one of the person's records (a merge later undone)
            held = lake.read(table).where(
                F.arrays_overlap("source_record_keys", F.array(*[F.lit(k) for k in sorted(person.record_keys)]))
                & ~F.col("customer_id").isin(sorted(person.customer_ids))
            )
            parts.append(_pairs(("customer_id", "run_id"), ((r[0], r[1]) for r in held.select("customer_id", "run_id").collect())))
        if {"changed_attributes", "customer_id", "run_id"} <= columns and person.identifiers:
            wanted = F.array(*[F.lit(v) for v in sorted(person.identifiers)])
            named = lake.read(table).where(
                F.exists(
                    "changed_attributes",
                    lambda a: F.array_contains(wanted, F.lower(a["old_value"])) | F.array_contains(wanted, F.lower(a["new_value"])),
                )
            )
            parts.append(_pairs(("customer_id", "run_id"), ((r[0], r[1]) for r in named.select("customer_id", "run_id").collect())))
    given = [p for p in parts if p]
    return " OR ".join(f"({p})" for p in given) if given else None


def _flexible(value: str, gap: str) -> str:
    """A Java regex for ``value`` written with up to two ``gap`` characters between its characters
    (``AB 12 34 56 C`` for ``AB123456C``)."""
    return f"{gap}{{0,2}}".join(re.escape(c) for c in value)


def raw_patterns(person: Person) -> list[str]:
    """Regexes finding the person's e-mail, national id or phone in a raw source line, as whole
    tokens: ``ann@x.com`` never matches inside ``joann@x.com``."""
    patterns = [f"(?i)(?<![A-Za-z0-9._%+-]){re.escape(e)}(?![A-Za-z0-9.-])" for e in person.emails if len(e) >= _MIN_VALUE_LENGTH]
    patterns += [
        f"(?i)(?<![A-Za-z0-9]){_flexible(n, '[ ./-]')}(?![A-Za-z0-9])" for n in person.national_ids if len(n) >= _MIN_VALUE_LENGTH
    ]
    # a phone ends with its national number, whatever is written before it (+48, 0, 0048)
    patterns += [f"{_flexible(d, '[^0-9A-Za-z]')}(?![0-9])" for d in person.phone_digits if len(d) >= 7]
    return patterns


def _quarantined_with_values(lake: Lake, table: str, person: Person) -> set[str]:
    """Row hashes of rejected rows whose raw text holds the person's e-mail, national id or phone
    (a rejected row may lack its id, or carry it mangled)."""
    patterns = raw_patterns(person)
    if not patterns:
        return set()
    condition = F.lit(False)
    for pattern in patterns:
        condition = condition | F.col("_raw").rlike(pattern)
    return _strings(lake.read(table).where(F.col("_raw").isNotNull() & condition), schema.ROW_HASH)


# ------------------------------------------------------------------ outside the tables


def _clear_values(node: Any, wanted: set[str]) -> tuple[Any, int]:
    """``node`` (parsed JSON) with every string equal to one of ``wanted`` (case-insensitive) nulled."""
    if isinstance(node, str):
        return (None, 1) if node.strip().lower() in wanted else (node, 0)
    if isinstance(node, list):
        out, n = [], 0
        for item in node:
            item, k = _clear_values(item, wanted)
            out.append(item)
            n += k
        return out, n
    if isinstance(node, dict):
        cleared, n = {}, 0
        for key, item in node.items():
            cleared[key], k = _clear_values(item, wanted)
            n += k
        return cleared, n
    return node, 0


def _replace_file(path: Path, text: str) -> None:
    temp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    temp.write_text(text, encoding="utf-8")
    os.replace(temp, path)


def scrub_outbox(outbox_dir: str, person: Person, erasure_id: str, erased_at: datetime) -> tuple[int, int]:
    """Drop the person's outbox lines, null their values in other lines, and add the erasure
    message; (lines removed, values cleared)."""
    folder = Path(outbox_dir)
    if not folder.is_dir():
        return 0, 0
    wanted = person.identifiers
    removed = cleared = 0
    for path in sorted(folder.glob("*.jsonl")):
        kept, changed = [], False
        for line in path.read_text(encoding="utf-8").splitlines():
            message = json.loads(line)
            golden = message.get("golden") or {}
            if (
                message.get("customer_id") in person.customer_ids
                or set(golden.get("source_record_keys") or ()) & person.record_keys
            ):
                removed += 1
                changed = True
                continue
            message, n = _clear_values(message, wanted)
            if n:
                cleared += n
                changed = True
                line = json.dumps(message, ensure_ascii=False, separators=(",", ":"))
            kept.append(line)
        if changed:
            _replace_file(path, "".join(f"{line}\n" for line in kept))
    notice = [
        json.dumps(
            {"erasure_id": erasure_id, "customer_id": c, "change_type": "erased", "changed_at": erased_at.isoformat(),
             "source_record_keys": sorted(person.record_keys)},
            ensure_ascii=False, separators=(",", ":"),
        )
        for c in sorted(person.customer_ids)
    ]  # fmt: skip
    _replace_file(folder / f"erasure_id={erasure_id}.jsonl", "".join(f"{line}\n" for line in notice))
    return removed, cleared


def erase_postgres(cfg: CdiConfig, person: Person, erasure_id: str) -> int | None:
    """Delete the person's rows from the PostgreSQL target and log the erasure there."""
    target = cfg.propagation.postgres
    if target is None or not target.enabled:
        return None
    from psycopg import sql

    from cdi.gold.propagation import _identifier, connect

    table = target.table
    log_table = f"{table}_erasures"
    with connect(target) as conn:
        if conn.execute("SELECT to_regclass(%s)", (table,)).fetchone()[0] is None:
            return 0
        with conn.transaction():
            deleted = conn.execute(
                sql.SQL("DELETE FROM {} WHERE customer_id = ANY(%s) OR source_record_keys && %s::text[]").format(
                    _identifier(table)
                ),
                (sorted(person.customer_ids), sorted(person.record_keys)),
            ).rowcount
            conn.execute(
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {} (erasure_id text PRIMARY KEY, customer_ids text[] NOT NULL, "
                    "erased_at timestamptz NOT NULL DEFAULT now())"
                ).format(_identifier(log_table))
            )
            conn.execute(
                sql.SQL("INSERT INTO {} (erasure_id, customer_ids) VALUES (%s, %s) ON CONFLICT DO NOTHING").format(
                    _identifier(log_table)
                ),
                (erasure_id, sorted(person.customer_ids)),
            )
    return int(deleted or 0)


def scrub_artefacts(lake_root: str, values: set[str]) -> list[str]:
    """Replace the values in text files under the lake root that are not Delta tables (model
    charts and parameters, evaluation reports); the paths changed. Local roots only."""
    if "://" in lake_root and not lake_root.startswith("file:"):
        log.warning("erase: artefacts under %s are not scanned (not a local folder); check them by hand", lake_root)
        return []
    needles = sorted({v for v in values if len(v) >= _MIN_VALUE_LENGTH}, key=len, reverse=True)
    changed = []
    for folder, dirs, files in os.walk(lake_root.removeprefix("file:")):
        if "_delta_log" in dirs:  # a Delta table: erased through the lake
            dirs[:] = []
            continue
        for name in files:
            path = Path(folder) / name
            if path.suffix.lower() not in _TEXT_SUFFIXES:
                continue
            text = original = path.read_text(encoding="utf-8", errors="replace")
            for needle in needles:
                text = text.replace(needle, ERASED).replace(needle.lower(), ERASED)
            if text != original:
                _replace_file(path, text)
                changed.append(str(path))
    return changed


# ------------------------------------------------------------------ the erasure


def _register_rows(lake: Lake, hash_key: str, person: Person, erasure_id: str, erased_at: datetime) -> DataFrame:
    s = salt(hash_key)
    rows = [(erasure_id, RECORD, digest(s, RECORD, k), erased_at) for k in sorted(person.record_keys | person.fact_keys)]
    rows += [(erasure_id, EMAIL, digest(s, EMAIL, e), erased_at) for e in sorted(person.emails)]
    rows += [(erasure_id, NATIONAL_ID, digest(s, NATIONAL_ID, n), erased_at) for n in sorted(person.national_ids)]
    return lake.spark.createDataFrame(rows, schema.ERASURE_REGISTER_SCHEMA)


def _person_rows(lake: Lake, person: Person) -> Iterator[tuple[str, str, int]]:
    """(table, condition, rows) for each table holding rows of the person (one count per table)."""
    for table in lake.tables():
        if table.startswith(_SKIPPED):
            continue
        condition = row_condition(lake, table, person)
        rows = lake.read(table).where(condition).count() if condition else 0
        if condition and rows:
            yield table, condition, rows


def _warn_old_statistics(lake: Lake) -> None:
    old = [t for t in lake.tables() if not t.startswith(_SKIPPED) and not ({STATS_COLUMNS_PROPERTY, NUM_INDEXED_PROPERTY} & set(lake.properties(t)))]
    if old:
        log.warning(
            "erase: %d table(s) were created before the lake kept statistics on key columns only (%s%s); their "
            "Delta log may still hold a customer's values as file statistics until Delta expires those log files. "
            "Run `cdi maintain` once to switch them over",
            len(old), ", ".join(old[:5]), ", ..." if len(old) > 5 else "",
        )  # fmt: skip


def erase_person(
    cfg: CdiConfig,
    lake: Lake,
    lease: Lease,
    selector: Selector,
    reason: str,
    by: str,
    *,
    dry_run: bool = False,
    all_matches: bool = False,
) -> ErasureReport:
    """Erase the person ``selector`` names (see the module doc). ``lake`` must hold the lease."""
    hash_key = require_key(cfg.privacy.hash_key)
    started = time.monotonic()
    if not dry_run:
        lease.mark(LAKE_COMMITTED)  # never rolled back: a dead erasure is finished, not undone
    finished = [] if dry_run else finish_pending(cfg, lake)
    person = find_person(lake, selector)
    if person.empty:
        raise CustomerNotFoundError(
            f"erase: no customer or record matches --{selector.kind.replace('_', '-')}; nothing was erased "
            "(look the person up with `cdi customer show`)"
        )
    if len(person.customer_ids) > 1 and not all_matches:
        raise NotFoundError(
            f"erase: --{selector.kind.replace('_', '-')} names {len(person.customer_ids)} customers "
            f"({', '.join(sorted(person.customer_ids)[:10])}); nothing was erased. Erase one with --customer, or all of "
            "them with --all-matches (check with --dry-run first)"
        )
    erased_at = datetime.now(UTC)
    erasure_id = f"E{erased_at:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"
    report = ErasureReport(erasure_id, selector.kind, len(person.customer_ids), len(person.record_keys), len(person.fact_keys))
    report.customer_ids, report.finished_pending = sorted(person.customer_ids), finished
    if dry_run:
        report.dry_run, report.rows_removed = True, {t: n for t, _, n in _person_rows(lake, person)}
        return report
    log.info("erase %s: %d customer(s), %d record(s), %d fact(s)", erasure_id, report.customers, report.records, report.facts)
    _warn_old_statistics(lake)
    elake = lake.with_context(job="erase", run_id=erasure_id)  # a run's roll back never touches these commits
    pending = person.pending_row(erasure_id, erased_at.replace(tzinfo=None), by, reason, selector.kind)
    elake.write(schema.ERASURE_PENDING, elake.spark.createDataFrame([pending], schema.ERASURE_PENDING_SCHEMA), operation="ERASURE BEGIN")
    elake.write(
        schema.ERASURE_REGISTER, _register_rows(elake, hash_key, person, erasure_id, erased_at), operation="ERASURE REGISTER"
    )
    _finish(cfg, elake, person, report, erased_at, by, reason)
    report.seconds = round(time.monotonic() - started, 2)
    return report


def pending_erasures(lake: Lake) -> bool:
    return lake.exists(schema.ERASURE_PENDING) and lake.read(schema.ERASURE_PENDING).limit(1).count() > 0


def finish_pending(cfg: CdiConfig, lake: Lake) -> list[str]:
    """Finish the erasures a dead process left (their ids). Call with the lease held and marked
    ``lake_committed``, so that dying here again is finished by the next one, never rolled back."""
    if not pending_erasures(lake):
        return []
    done = []
    for row in lake.read(schema.ERASURE_PENDING).collect():  # one row per unfinished erasure
        erasure_id = row["erasure_id"]
        log.warning("erase %s was left unfinished by a dead process: finishing it", erasure_id)
        person = Person.from_pending(row)
        report = ErasureReport(erasure_id, row["selector"], len(person.customer_ids), len(person.record_keys), len(person.fact_keys))
        erased_at = row["erased_at"].replace(tzinfo=UTC)
        _finish(cfg, lake.with_context(job="erase", run_id=erasure_id), person, report, erased_at, row["by"], row["reason"])
        done.append(erasure_id)
    return done


def _finish(cfg: CdiConfig, lake: Lake, person: Person, report: ErasureReport, erased_at: datetime, by: str, reason: str) -> None:
    """Everything after the register: tables, VACUUM, outbox, PostgreSQL, artefacts, audit; then
    the pending row goes. Each step can run again (an erasure finished after a crash)."""
    started = time.monotonic()
    erasure_id = report.erasure_id
    for table, condition, rows in _person_rows(lake, person):
        lake.delete(table, condition)
        report.rows_removed[table] = rows
        log.info("erase %s: %s: %d row(s) removed", erasure_id, table, rows)
    if cfg.privacy.vacuum_after_erasure:  # every table: older versions of any of them may hold the person
        for table in lake.tables():
            if not table.startswith("_cdi/"):
                report.files_vacuumed += len(lake.vacuum(table, retention_hours=0))
    if cfg.propagation.outbox_dir:
        report.outbox_lines_removed, report.outbox_values_cleared = scrub_outbox(
            cfg.propagation.outbox_dir, person, erasure_id, erased_at
        )
    report.postgres_rows_removed = erase_postgres(cfg, person, erasure_id)
    report.artefacts_cleaned = scrub_artefacts(lake.root, person.values)
    report.seconds = round(time.monotonic() - started, 2)
    audit = lake.spark.createDataFrame(
        [(erasure_id, erased_at, by, reason, report.selector, report.customers, report.records, report.facts,
          report.rows_removed, report.files_vacuumed, report.outbox_lines_removed, report.outbox_values_cleared,
          report.postgres_rows_removed, len(report.artefacts_cleaned), report.seconds)],
        schema.ERASURE_AUDIT_SCHEMA,
    )  # fmt: skip
    lake.write(schema.ERASURE_AUDIT, audit, operation="ERASURE AUDIT")
    lake.delete(schema.ERASURE_PENDING, f"erasure_id = {literal(erasure_id)}")
    lake.vacuum(schema.ERASURE_PENDING, retention_hours=0)
