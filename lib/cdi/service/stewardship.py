"""Recording steward decisions (the service's steward role and ``cdi steward``), without Spark.

Each call appends its rows to ``steward/decisions`` (who, when, why, and the customers the
records belonged to then: the table is its own audit trail) and changes nothing else: the next
link stage applies every decision in force (:mod:`cdi.silver.steward`), and the golden records,
change feed and propagation follow from there like any other change.

Keys name either a source record (``crm:C001``) or a customer id (all its records):

- :func:`link` ``a`` ``b``: one customer (every record of one side linked to every record of the
  other, so the link overrides any earlier separation between them);
- :func:`separate` ``a`` ``b``: two customers (every record of one side from every record of the other);
- :func:`unlink` ``record``: the record is not the customer it is with (separated from each of
  that customer's other records);
- :func:`decide_review` accepts (link) or rejects (separate) a pair of the review queue;
- :func:`revoke` undoes an earlier decision.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from itertools import product
from typing import Any

from cdi import schema
from cdi.errors import ConfigError, NotFoundError
from cdi.lake.appends import append_rows

from .snapshot import LakeSnapshot

PAIR_COLUMNS = ("record_key_l", "record_key_r", "match_probability", "match_weight")


class StewardError(ConfigError):
    """A steward request that cannot be applied as asked (the same record on both sides, a record
    alone in its customer): nothing is written."""


def _rows(snapshot: LakeSnapshot, sql: str, params: list[Any]) -> list[dict[str, Any]]:
    result = snapshot.cursor().execute(sql, params)
    names = [d[0] for d in result.description]
    return [dict(zip(names, row, strict=True)) for row in result.fetchall()]


def customer_of(snapshot: LakeSnapshot, record_key: str) -> str | None:
    if not snapshot.has("entity_map"):
        return None
    rows = _rows(snapshot, "SELECT customer_id FROM entity_map WHERE record_key = ?", [record_key])
    return rows[0]["customer_id"] if rows else None


def records_of(snapshot: LakeSnapshot, key: str) -> list[str]:
    """The record keys a key names: itself when it is a record of the entity map, else the
    records of the customer id; a key naming neither is an error."""
    if snapshot.has("entity_map"):
        if _rows(snapshot, "SELECT 1 FROM entity_map WHERE record_key = ?", [key]):
            return [key]
        found = _rows(snapshot, "SELECT record_key FROM entity_map WHERE customer_id = ? ORDER BY record_key", [key])
        if found:
            return [r["record_key"] for r in found]
    raise NotFoundError(f"{key!r} is neither a source record key (source:id) nor a current customer id in {snapshot.lake_root}")


def _pair(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a <= b else (b, a)


def _write(
    snapshot: LakeSnapshot,
    action: str,
    pairs: list[tuple[str, str]],
    *,
    steward: str,
    reason: str,
    origin: str,
    review: str | None = None,
    revokes: str | None = None,
) -> dict[str, Any]:
    if not reason.strip():
        raise StewardError('a steward decision needs a reason (--reason / "reason"): it is kept with the decision')
    decision_id = uuid.uuid4().hex[:16]
    now = datetime.now(UTC)
    scores = _scores(snapshot, pairs)
    rows = []
    for left, right in pairs or [(None, None)]:  # type: ignore[list-item]
        customers = sorted({c for c in (customer_of(snapshot, left), customer_of(snapshot, right)) if c}) if left else []
        rows.append(
            {
                "decision_id": decision_id, "action": action, "record_key_l": left, "record_key_r": right,
                "revokes": revokes, "review": review, "match_probability": scores.get((left, right)),
                "customer_ids": customers, "steward": steward, "reason": reason.strip(), "origin": origin,
                "decided_at": now,
            }
        )  # fmt: skip
    version = append_rows(
        snapshot.lake_root, schema.STEWARD_DECISIONS, rows, schema.STEWARD_DECISIONS_SCHEMA,
        operation=f"STEWARD {action.upper()}", job="steward",
    )  # fmt: skip
    return {"decision_id": decision_id, "action": action, "pairs": len(pairs), "table_version": version,
            "decided_at": now, "applies": "at the next link stage (cdi run / cdi link)"}  # fmt: skip


def _scores(snapshot: LakeSnapshot, pairs: list[tuple[str, str]]) -> dict[tuple[str, str], float]:
    if not pairs or not snapshot.has("pairs"):
        return {}
    found = {}
    for left, right in pairs[:500]:
        rows = _rows(snapshot, "SELECT match_probability FROM pairs WHERE record_key_l = ? AND record_key_r = ?", [left, right])
        if rows:
            found[(left, right)] = rows[0]["match_probability"]
    return found


def link(snapshot: LakeSnapshot, a: str, b: str, *, steward: str, reason: str, origin: str = "api") -> dict[str, Any]:
    left, right = records_of(snapshot, a), records_of(snapshot, b)
    if set(left) & set(right):
        raise StewardError(f"{a!r} and {b!r} share records: they are one customer already")
    # every cross pair: a link is then newer than any separation between the two sides, which it overrides
    pairs = sorted({_pair(x, y) for x, y in product(left, right)})
    return _write(snapshot, "link", pairs, steward=steward, reason=reason, origin=origin)


def separate(snapshot: LakeSnapshot, a: str, b: str, *, steward: str, reason: str, origin: str = "api") -> dict[str, Any]:
    left, right = records_of(snapshot, a), records_of(snapshot, b)
    if set(left) & set(right):
        raise StewardError(f"{a!r} and {b!r} name the same record(s): a record cannot be separated from itself")
    pairs = sorted({_pair(x, y) for x, y in product(left, right)})
    return _write(snapshot, "separate", pairs, steward=steward, reason=reason, origin=origin)


def unlink(snapshot: LakeSnapshot, record_key: str, *, steward: str, reason: str, origin: str = "api") -> dict[str, Any]:
    customer = customer_of(snapshot, record_key)
    if customer is None:
        raise NotFoundError(f"{record_key!r} is not a source record key of the entity map in {snapshot.lake_root}")
    others = [k for k in records_of(snapshot, customer) if k != record_key]
    if not others:
        raise StewardError(f"{record_key!r} is the only record of customer {customer}: there is nothing to unlink it from")
    pairs = sorted(_pair(record_key, k) for k in others)
    return _write(snapshot, "separate", pairs, steward=steward, reason=reason, origin=origin)


def decide_review(
    snapshot: LakeSnapshot, record_key_l: str, record_key_r: str, accept: bool, *, steward: str, reason: str, origin: str = "api"
) -> dict[str, Any]:
    for key in (record_key_l, record_key_r):
        records_of(snapshot, key)
    return _write(snapshot, "link" if accept else "separate", [_pair(record_key_l, record_key_r)], steward=steward,
                  reason=reason, origin=origin, review="accepted" if accept else "rejected")  # fmt: skip


def revoke(snapshot: LakeSnapshot, decision_id: str, *, steward: str, reason: str, origin: str = "api") -> dict[str, Any]:
    if not snapshot.has("decisions") or not _rows(
        snapshot, "SELECT 1 FROM decisions WHERE decision_id = ? AND action <> 'revoke'", [decision_id]
    ):
        raise NotFoundError(
            f"no steward decision {decision_id!r} in {snapshot.lake_root} (list them with `cdi steward decisions`)"
        )
    return _write(snapshot, "revoke", [], steward=steward, reason=reason, origin=origin, revokes=decision_id)


def decisions(snapshot: LakeSnapshot, limit: int = 200) -> list[dict[str, Any]]:
    """The latest decisions, newest first, with the pairs of each counted."""
    if not snapshot.has("decisions"):
        return []
    return _rows(
        snapshot,
        "SELECT decision_id, any_value(action) AS action, any_value(review) AS review, any_value(revokes) AS revokes, "
        "count(record_key_l) AS pairs, min(record_key_l) AS record_key_l, min(record_key_r) AS record_key_r, "
        "any_value(customer_ids) AS customer_ids, any_value(steward) AS steward, any_value(reason) AS reason, "
        "any_value(origin) AS origin, max(decided_at) AS decided_at "
        "FROM decisions GROUP BY decision_id ORDER BY decided_at DESC, decision_id LIMIT ?",
        [limit],
    )


def review_queue(snapshot: LakeSnapshot, lower: float, upper: float, limit: int = 50) -> list[dict[str, Any]]:
    """Scored pairs with ``lower <= probability < upper`` that no decision in force settles,
    most probable first, with each side's customer and the per-comparison match weights
    (Splink's waterfall for the pair: ``mw_<comparison>``)."""
    if not (snapshot.has("pairs") and snapshot.has("entity_map")):
        return []
    columns = snapshot.columns("pairs")
    weights = [c for c in columns if c.startswith("mw_")]
    decided = ""
    if snapshot.has("decisions"):
        decided = (
            "AND NOT EXISTS (SELECT 1 FROM decisions d WHERE d.record_key_l = p.record_key_l AND d.record_key_r = p.record_key_r "
            "AND d.action IN ('link', 'separate') AND d.decision_id NOT IN "
            "(SELECT revokes FROM decisions WHERE action = 'revoke' AND revokes IS NOT NULL))"
        )
    shown = ", ".join(f"p.{c}" for c in (*PAIR_COLUMNS, *weights))
    rows = _rows(
        snapshot,
        f"SELECT {shown}, ml.customer_id AS customer_l, mr.customer_id AS customer_r FROM pairs p "
        "JOIN entity_map ml ON ml.record_key = p.record_key_l JOIN entity_map mr ON mr.record_key = p.record_key_r "
        f"WHERE p.match_probability >= ? AND p.match_probability < ? {decided} "
        "ORDER BY p.match_probability DESC, p.record_key_l, p.record_key_r LIMIT ?",
        [lower, upper, limit],
    )
    for row in rows:
        row["same_customer"] = row["customer_l"] == row["customer_r"]
        row["weights"] = {c[3:]: row.pop(c) for c in weights}
    return rows
