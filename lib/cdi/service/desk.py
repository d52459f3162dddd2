"""What the service desk answers, from one :class:`~cdi.service.snapshot.LakeSnapshot`.

:func:`search` finds customers by customer id (current or past), source record key
(``crm:C001``), e-mail, phone, national id or name (fuzzy, rapidfuzz over the folded names of
the current customers); :func:`customer_page` gathers one customer: the golden record with the
provenance of each attribute, every source record behind it, the versions with what changed in
each, the change feed, the customer 360 figures, consent and the id events. The tables may lack
columns (a lake built from fewer sources or an older release): what is absent is left out.

:func:`masked` hides the configured sensitive attributes for readers whose role does not allow
them: everywhere the page shows them, old and new values in the history included.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from rapidfuzz import fuzz, process

from cdi.config import CANONICAL_ATTRIBUTES
from cdi.gold.history import TIMES, utc
from cdi.schema import MATCH_COLUMN_ATTRIBUTES
from cdi.silver.standardise.text import fold_text

from .snapshot import LakeSnapshot

PROVENANCE_SUFFIX = "_prov"
_INTERNAL_RECORD_COLUMNS = ("_batch_id", "_row_hash", "_ingested_at", "quality_flags")
_PHONE_KEY = re.compile(r"^\+?[0-9 ()./-]{6,}$")
_MIN_PHONE_DIGITS = 6
_MIN_NAME_SCORE = 75.0
_CLOSE_NAME_SCORE = 90.0  # below it the token index may have missed the name: all names are scored
_MIN_TOKEN_SCORE = 75.0  # a word of four letters with one changed (75), of eight with two
_NEAR_TOKENS = 40
_MAX_CANDIDATES = 20_000
_FACTS_PER_SOURCE = 5


def _rows(snapshot: LakeSnapshot, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
    cur = snapshot.cursor()
    result = cur.execute(sql, params or [])
    names = [d[0] for d in result.description]
    return [dict(zip(names, row, strict=True)) for row in result.fetchall()]


def _ids(snapshot: LakeSnapshot, sql: str, params: list[Any]) -> list[str]:
    return sorted({r["customer_id"] for r in _rows(snapshot, sql, params) if r["customer_id"]})


def _customers_of_lookup(snapshot: LakeSnapshot, kind: str, values: list[str]) -> list[str]:
    """Customers whose records hold one of ``values`` in the snapshot's lookup index: probes
    of the index, then of the entity map's (no scan of a million records)."""
    if not (snapshot.has("records") and snapshot.has("entity_map")):
        return []
    keys: set[str] = set()
    for value in values:
        keys.update(r["record_key"] for r in _rows(snapshot, "SELECT record_key FROM lookup WHERE key = ?", [f"{kind}:{value}"]))
    found: set[str] = set()
    for key in sorted(keys):
        found.update(r["customer_id"] for r in _rows(snapshot, "SELECT customer_id FROM entity_map WHERE record_key = ?", [key]))
    return sorted(c for c in found if c)


def email_search_keys(text: str) -> list[str]:
    """The forms a typed address is looked up by: as typed (lower-cased, no spaces or
    ``mailto:``) and silver's match key of it (no ``+tag``; gmail without dots)."""
    email = re.sub(r"^mailto:", "", re.sub(r"\s+", "", text.lower()))
    if "@" not in email:
        return [email]
    user, _, domain = email.rpartition("@")
    domain = "gmail.com" if domain == "googlemail.com" else domain
    user = user.split("+", 1)[0]
    if domain == "gmail.com":
        user = user.replace(".", "")
    return sorted({email, f"{user}@{domain}"})


def _by_key(snapshot: LakeSnapshot, q: str, hidden: frozenset[str]) -> tuple[list[str], str]:
    """Exact lookups, in order; the customers found and what matched. Attributes the reader
    sees masked are not looked up (a hit would confirm whose they are)."""
    for table in ("entity_map", "golden"):
        if snapshot.has(table) and "@" not in q:
            found = _ids(snapshot, f"SELECT customer_id FROM {table} WHERE customer_id = ? LIMIT 1", [q])
            if found:
                return found, "customer id"
    if ":" in q and "@" not in q and snapshot.has("entity_map"):
        found = _ids(snapshot, "SELECT customer_id FROM entity_map WHERE record_key = ?", [q])
        if found:
            return found, "record key"
    columns = snapshot.columns("records")
    if "@" in q and "email" in columns and "email" not in hidden:
        return _customers_of_lookup(snapshot, "email", email_search_keys(q)), "e-mail"
    if _PHONE_KEY.match(q) and "phone" in columns and "phone" not in hidden:
        digits = re.sub(r"\D", "", q)
        if q.startswith("00"):
            digits = digits[2:]
        if len(digits) >= _MIN_PHONE_DIGITS:
            found = _customers_of_lookup(snapshot, "phone", [digits])
            national = digits.lstrip("0")
            if not found and not q.startswith(("+", "00")) and len(national) >= _MIN_PHONE_DIGITS:
                # a national number without its country code: the trailing digits (a scan)
                found = _ids(
                    snapshot,
                    "SELECT DISTINCT m.customer_id FROM lookup l JOIN entity_map m USING (record_key) "
                    "WHERE starts_with(l.key, 'phone:') AND ends_with(l.key, ?)",
                    [national],
                )
            if found:
                return found, "phone"
    if "national_id" in columns and "national_id" not in hidden and re.search(r"\d", q):
        compact = re.sub(r"[^0-9A-Za-z]", "", q).upper()
        if len(compact) >= 4:
            found = _customers_of_lookup(snapshot, "national_id", [compact])
            if found:
                return found, "national id"
    return [], ""


def _name_candidates(snapshot: LakeSnapshot, tokens: list[str]) -> list[int]:
    """Names holding, for every query token of two or more letters, a token within one or two
    edits of it (all of them when none does for some token); at most ``_MAX_CANDIDATES``."""
    per_token: list[set[int]] = []
    for token in tokens:
        if len(token) < 2:
            continue  # an initial: scored below, not looked up
        near = process.extract(token, snapshot.vocabulary, scorer=fuzz.ratio, limit=_NEAR_TOKENS, score_cutoff=_MIN_TOKEN_SCORE)
        found: set[int] = set()
        for word, _, _ in near:
            found.update(snapshot.holders[word])
        per_token.append(found)
    if not per_token:
        return []
    both = set.intersection(*per_token)
    chosen = both if both else set.union(*per_token)
    return sorted(chosen)[:_MAX_CANDIDATES]


def _by_name(snapshot: LakeSnapshot, q: str, limit: int) -> list[tuple[str, float]]:
    """Fuzzy name search: candidates from the token index (a typo per word, words in any
    order, a part of the name), then ranked by rapidfuzz's WRatio of the whole names."""
    folded = fold_text(q)
    if not folded or not snapshot.names:
        return []
    candidates = _name_candidates(snapshot, folded.split())
    choices = {i: snapshot.names[i] for i in candidates}
    hits = process.extract(folded, choices, scorer=fuzz.WRatio, limit=limit * 3, score_cutoff=_MIN_NAME_SCORE)
    if not hits or hits[0][1] < _CLOSE_NAME_SCORE:
        # no close name through the words (a typo that joined or split words): every whole name,
        # by the quicker ratio, then the same ranking
        more = process.extract(folded, snapshot.names, scorer=fuzz.QRatio, limit=limit * 3, score_cutoff=_MIN_NAME_SCORE)
        choices.update({i: snapshot.names[i] for _, _, i in more})
        hits = process.extract(folded, choices, scorer=fuzz.WRatio, limit=limit * 3, score_cutoff=_MIN_NAME_SCORE)
    best: dict[str, float] = {}
    for _, score, index in hits:
        customer_id = snapshot.name_ids[index]
        best[customer_id] = max(best.get(customer_id, 0.0), float(score))
    return sorted(best.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]


def customer_summaries(snapshot: LakeSnapshot, ids: list[str]) -> dict[str, dict[str, Any]]:
    """Per customer id, its latest golden version's name, contact points, city and country."""
    if not ids or not snapshot.has("golden"):
        return {}
    columns = snapshot.columns("golden")
    shown = [c for c in ("full_name", "first_name", "last_name", "email", "phone", "city", "country") if c in columns]
    marks = ", ".join("?" for _ in ids)
    rows = _rows(
        snapshot,
        f"SELECT customer_id, is_current, {', '.join(shown)} FROM golden WHERE customer_id IN ({marks}) "
        "QUALIFY row_number() OVER (PARTITION BY customer_id ORDER BY is_current DESC, valid_from DESC) = 1",
        ids,
    )
    return {r["customer_id"]: r for r in rows}


def summary_name(summary: dict[str, Any]) -> str | None:
    """A customer summary's full name, else its first and last name, else None."""
    name = summary.get("full_name") or " ".join(p for p in (summary.get("first_name"), summary.get("last_name")) if p)
    return name or None


def search(snapshot: LakeSnapshot, query: str, limit: int = 20, hidden: frozenset[str] = frozenset()) -> list[dict[str, Any]]:
    """Customers a query names: exact key matches first, then names by fuzzy score (0-100);
    ``hidden``: the attributes the reader sees masked, which are not searched."""
    q = query.strip()
    if not q:
        return []
    found, how = _by_key(snapshot, q, hidden)
    ranked: list[tuple[str, str, float]] = [(c, how, 100.0) for c in found]
    names_hidden = bool({"full_name", "first_name", "last_name"} & hidden)
    if not found and re.search(r"[^\W\d_]", q) and "@" not in q and not names_hidden:
        seen = set(found)
        ranked += [(c, "name", s) for c, s in _by_name(snapshot, q, limit) if c not in seen]
    ranked = ranked[:limit]
    summaries = customer_summaries(snapshot, [c for c, _, _ in ranked])
    out = []
    for customer_id, how, score in ranked:
        summary = summaries.get(customer_id, {})
        status = "current" if summary.get("is_current") else ("retired" if summary else "no golden record yet")
        out.append(
            {
                "customer_id": customer_id,
                "name": summary_name(summary),
                "email": summary.get("email"),
                "phone": summary.get("phone"),
                "city": summary.get("city"),
                "country": summary.get("country"),
                "status": status,
                "matched_by": how,
                "score": round(score, 1),
            }
        )
    return out


# ------------------------------------------------------------------ the customer's page


def _attributes(columns: list[str]) -> list[str]:
    return [a for a in CANONICAL_ATTRIBUTES if a in columns]


def _changed(previous: dict[str, Any] | None, current: dict[str, Any], attributes: list[str]) -> list[dict[str, Any]]:
    if previous is None:
        return [{"attribute": a, "old_value": None, "new_value": current[a]} for a in attributes if current.get(a) is not None]
    return [
        {"attribute": a, "old_value": previous.get(a), "new_value": current.get(a)}
        for a in attributes
        if previous.get(a) != current.get(a)
    ]


def _versions(snapshot: LakeSnapshot, customer_id: str, attributes: list[str]) -> list[dict[str, Any]]:
    rows = _rows(snapshot, "SELECT * FROM golden WHERE customer_id = ? ORDER BY valid_from, valid_to NULLS LAST", [customer_id])
    out, previous = [], None
    for row in rows:
        out.append(
            {
                "valid_from": row.get("valid_from"),
                "valid_to": row.get("valid_to"),
                "effective_from": row.get("effective_from"),
                "effective_to": row.get("effective_to"),
                "is_current": row.get("is_current"),
                "run_id": row.get("run_id"),
                "changed": _changed(previous, row, attributes),
                "_row": row,
            }
        )
        previous = row
    return out


def _records(snapshot: LakeSnapshot, customer_id: str, fallback_keys: list[str]) -> list[dict[str, Any]]:
    if not snapshot.has("records"):
        return []
    keys: list[str] = []
    if snapshot.has("entity_map"):
        keys = [
            r["record_key"] for r in _rows(snapshot, "SELECT record_key FROM entity_map WHERE customer_id = ?", [customer_id])
        ]
    keys = keys or list(fallback_keys)
    if not keys:
        return []
    keep = [c for c in snapshot.columns("records") if not c.endswith("_std") and c not in _INTERNAL_RECORD_COLUMNS]
    marks = ", ".join("?" for _ in keys)
    return _rows(snapshot, f"SELECT {', '.join(keep)} FROM records WHERE record_key IN ({marks}) ORDER BY record_key", keys)


def _consent(figures: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per channel the latest answer (``consent``: yes, no or null when never asked), the fact
    that gave it (``from``: ``source:id``) and when (``at``), from the customer 360's row."""
    channels = [k[len("consent_") :] for k in figures if k.startswith("consent_") and k.count("_") == 1]
    return {
        ch: {"consent": figures[f"consent_{ch}"], "from": figures.get(f"consent_{ch}_from"), "at": figures.get(f"consent_{ch}_at")}
        for ch in channels
    }


def _facts(snapshot: LakeSnapshot, keys: list[str]) -> dict[str, list[dict[str, Any]]]:
    if not keys or not snapshot.has("facts"):
        return {}
    present = snapshot.columns("facts")
    shown = [c for c in ("source", "kind", "fact_id", "record_key", "event_at", "amount", "currency", "channel", "status",
                         "campaign", "subject") if c in present]  # fmt: skip
    marks = ", ".join("?" for _ in keys)
    rows = _rows(
        snapshot,
        f"SELECT {', '.join(shown)} FROM facts WHERE record_key IN ({marks}) "
        f"QUALIFY row_number() OVER (PARTITION BY source ORDER BY event_at DESC NULLS LAST, fact_id) <= {_FACTS_PER_SOURCE} "
        "ORDER BY source, event_at DESC NULLS LAST, fact_id",
        keys,
    )
    out: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        out.setdefault(row["source"], []).append(row)
    return out


def version_as_of(versions: list[dict[str, Any]], as_of: datetime, time: str = "recorded") -> dict[str, Any] | None:
    """The version valid at ``as_of`` by ``time`` (see :data:`cdi.gold.history.TIMES`; start
    inclusive, end exclusive, effective times falling back to recorded ones), or None."""
    if time not in TIMES:
        raise ValueError(f"time must be one of {TIMES}, got {time!r}")
    at = utc(as_of)
    for version in versions:
        start, end = version["valid_from"], version["valid_to"]
        if time == "effective":
            start, end = version.get("effective_from") or start, version.get("effective_to") or end
        if start is not None and utc(start) <= at and (end is None or utc(end) > at):
            return version
    return None


def customer_page(
    snapshot: LakeSnapshot, customer_id: str, as_of: datetime | None = None, time: str = "recorded"
) -> dict[str, Any] | None:
    """Everything the desk shows of one customer id, or None when the lake does not know it.
    With ``as_of`` the golden record and its provenance are the version valid then (by
    ``time``, see :func:`version_as_of`; none when the customer was not known then); the records,
    figures and history stay today's."""
    known = snapshot.has("golden") and _rows(snapshot, "SELECT 1 FROM golden WHERE customer_id = ? LIMIT 1", [customer_id])
    mapped = snapshot.has("entity_map") and _rows(
        snapshot, "SELECT 1 FROM entity_map WHERE customer_id = ? LIMIT 1", [customer_id]
    )
    if not known and not mapped:
        return None
    attributes = _attributes(snapshot.columns("golden"))
    versions = _versions(snapshot, customer_id, attributes) if known else []
    latest = max(versions, key=lambda v: (bool(v["is_current"]), v["valid_from"] or 0))["_row"] if versions else None
    status = "no golden record yet" if latest is None else ("current" if latest.get("is_current") else "retired")
    records = _records(snapshot, customer_id, (latest or {}).get("source_record_keys") or [])
    if as_of is not None:
        then = version_as_of(versions, as_of, time)
        latest = then["_row"] if then else None
    golden = {a: latest.get(a) for a in attributes} if latest else None
    provenance = {a: latest.get(a + PROVENANCE_SUFFIX) for a in attributes if latest and latest.get(a + PROVENANCE_SUFFIX)}
    changes = []
    successors: list[str] = []
    if snapshot.has("changes"):
        changes = _rows(snapshot, "SELECT * FROM changes WHERE customer_id = ? ORDER BY changed_at DESC", [customer_id])
        retired = [c for c in changes if c.get("change_type") == "retired"]
        successors = list(retired[0].get("related_ids") or []) if retired and status == "retired" else []
    figures = None
    if snapshot.has("customer_360"):
        rows = _rows(snapshot, "SELECT * FROM customer_360 WHERE customer_id = ?", [customer_id])
        figures = rows[0] if rows else None
    consent = _consent(figures or {})
    id_events = []
    if snapshot.has("id_history"):
        id_events = _rows(
            snapshot,
            'SELECT * FROM id_history WHERE customer_id = ? OR list_contains(related_ids, ?) ORDER BY "at"',
            [customer_id, customer_id],
        )
    for version in versions:
        del version["_row"]
    return {
        "customer_id": customer_id,
        "status": status,
        "golden": golden,
        "provenance": provenance,
        "version": {k: latest.get(k) for k in ("valid_from", "valid_to", "effective_from", "effective_to", "run_id")}
        if latest
        else None,
        "as_of": {"at": utc(as_of), "time": time} if as_of is not None else None,
        "records": records,
        "versions": versions,
        "changes": changes,
        "customer_360": figures,
        "consent": consent,
        "id_events": id_events,
        "successor_ids": successors,
        "facts": _facts(snapshot, [r["record_key"] for r in records]),
        "lake_versions": snapshot.versions,
    }


# ------------------------------------------------------------------ masking


def mask_value(attribute: str, value: Any) -> Any:
    """A shown but hidden value: a birth date keeps its year, other values their last two
    characters (enough to confirm with the customer, not to reuse)."""
    if value is None:
        return None
    if attribute == "date_of_birth":
        return f"{str(value)[:4]}-**-**"
    text = str(value)
    return "•" * max(0, len(text) - 2) + text[-2:] if len(text) > 4 else "•" * len(text)


def hidden_columns(attributes: list[str]) -> set[str]:
    """The attributes and every silver column derived from one of them (``dob_year`` from the
    birth date, ``email_user`` from the e-mail)."""
    hidden = set(attributes)
    return hidden | {c for c, sources in MATCH_COLUMN_ATTRIBUTES.items() if hidden & set(sources)}


def masked_row(row: dict[str, Any] | None, hidden: set[str]) -> dict[str, Any] | None:
    """``row`` with the values of the ``hidden`` columns (see :func:`hidden_columns`) masked."""
    if row is None:
        return None
    return {k: mask_value(k, v) if k in hidden else v for k, v in row.items()}


def masked(page: dict[str, Any], attributes: list[str]) -> dict[str, Any]:
    """The page with ``attributes`` (and the columns derived from them) masked wherever they appear."""
    hidden = hidden_columns(attributes)

    def mask_row(row: dict[str, Any] | None) -> dict[str, Any] | None:
        return masked_row(row, hidden)

    def mask_changes(items: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
        out = []
        for item in items or []:
            if item.get("attribute") in hidden:
                item = {**item, "old_value": mask_value(item["attribute"], item.get("old_value")),
                        "new_value": mask_value(item["attribute"], item.get("new_value"))}  # fmt: skip
            out.append(item)
        return out

    out = dict(page)
    out["golden"] = mask_row(page.get("golden"))
    out["records"] = [mask_row(r) for r in page.get("records") or []]
    out["customer_360"] = mask_row(page.get("customer_360"))
    out["versions"] = [{**v, "changed": mask_changes(v.get("changed"))} for v in page.get("versions") or []]
    out["changes"] = [{**c, "changed_attributes": mask_changes(c.get("changed_attributes"))} for c in page.get("changes") or []]
    out["masked"] = sorted(attributes)
    return out


def masked_hits(hits: list[dict[str, Any]], attributes: list[str]) -> list[dict[str, Any]]:
    hidden = set(attributes)
    if {"full_name", "first_name", "last_name"} & hidden:
        hidden.add("name")
    return [{k: mask_value(k, v) if k in hidden else v for k, v in hit.items()} for hit in hits]
