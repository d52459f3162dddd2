"""Realistic data-entry errors, applied at configured rates and logged per record.

Every corruption goes through :meth:`CorruptionLog.draw`, which takes the mask of records the
kind can apply to (its *eligible* records), draws Bernoulli(rate) over them and keeps
``eligible``/``applied`` counts, so tests can check applied/eligible against the configured rate.
Changes that turn out to be no-ops (e.g. a transposition of two equal letters) are skipped by
choosing positions where the change is visible.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd

from cdi_demo.pools import NICKNAMES, QWERTY_NEIGHBOURS

# Default error rates per source: probability per *eligible* record (see DEFAULT_RATES doc in
# cdi_demo.generator). "duplicate" is the probability that a person seen by the source gets a
# second record there.
DEFAULT_RATES: dict[str, dict[str, float]] = {
    "crm": {
        "duplicate": 0.02, "stale_address": 0.05, "maiden_name": 0.25, "nickname": 0.03,
        "name_swap": 0.005, "typo": 0.02, "transposition": 0.01, "diacritics_stripped": 0.10,
        "case_noise": 0.01, "whitespace_noise": 0.02, "email_case": 0.02, "gmail_dots": 0.03,
        "phone_format": 0.10, "date_format": 0.0, "missing_field": 0.05,
    },
    "webshop": {
        "duplicate": 0.06, "stale_address": 0.15, "maiden_name": 0.35, "nickname": 0.12,
        "name_swap": 0.02, "typo": 0.04, "transposition": 0.02, "diacritics_stripped": 0.25,
        "case_noise": 0.10, "whitespace_noise": 0.05, "email_case": 0.05, "gmail_dots": 0.15,
        "phone_format": 0.30, "date_format": 0.35, "missing_field": 0.08, "last_first_order": 0.15,
    },
    "pos": {
        "duplicate": 0.04, "stale_address": 0.25, "maiden_name": 0.40, "nickname": 0.08,
        "name_swap": 0.03, "typo": 0.06, "transposition": 0.03, "diacritics_stripped": 0.40,
        "case_noise": 0.05, "whitespace_noise": 0.04, "email_case": 0.03, "gmail_dots": 0.05,
        "phone_format": 0.15, "date_format": 0.05, "missing_field": 0.12,
    },
    "billing": {
        "duplicate": 0.01, "stale_address": 0.08, "maiden_name": 0.15, "nickname": 0.01,
        "name_swap": 0.01, "typo": 0.01, "transposition": 0.005, "diacritics_stripped": 0.30,
        "case_noise": 0.0, "whitespace_noise": 0.05, "email_case": 0.01, "gmail_dots": 0.02,
        "phone_format": 0.05, "missing_field": 0.04,
    },
    "support": {
        "duplicate": 0.10, "maiden_name": 0.30, "nickname": 0.15, "name_swap": 0.04,
        "typo": 0.08, "transposition": 0.04, "diacritics_stripped": 0.35, "case_noise": 0.08,
        "whitespace_noise": 0.06, "email_case": 0.06, "gmail_dots": 0.10, "phone_format": 0.25,
        "missing_field": 0.15,
    },
    "marketing": {
        "duplicate": 0.06, "stale_address": 0.10, "maiden_name": 0.30, "nickname": 0.08,
        "name_swap": 0.02, "typo": 0.04, "transposition": 0.02, "diacritics_stripped": 0.30,
        "case_noise": 0.12, "whitespace_noise": 0.05, "email_case": 0.08, "gmail_dots": 0.12,
        "phone_format": 0.20, "missing_field": 0.10,
    },
}

KINDS = tuple(sorted({k for r in DEFAULT_RATES.values() for k in r}))


class CorruptionLog:
    """Draws which eligible records get a corruption and remembers what was applied."""

    def __init__(self, source: str, rates: dict[str, float], rng: np.random.Generator):
        self.source = source
        self.rates = rates
        self.rng = rng
        self._idx: list[np.ndarray] = []
        self._kind: list[str] = []
        self._detail: list[np.ndarray] = []
        self.stats: dict[str, dict[str, int]] = {}

    def draw(self, kind: str, eligible: np.ndarray) -> np.ndarray:
        rate = float(self.rates.get(kind, 0.0))
        elig = np.flatnonzero(eligible)
        hit = elig[self.rng.random(len(elig)) < rate]
        st = self.stats.setdefault(kind, {"eligible": 0, "applied": 0})
        st["eligible"] += int(len(elig))
        return hit

    def record(self, kind: str, idx: np.ndarray, detail=None) -> None:
        idx = np.asarray(idx, dtype=np.int64)
        if detail is None:
            detail = np.full(len(idx), "", dtype=object)
        self._idx.append(idx)
        self._kind.append(kind)
        self._detail.append(np.asarray(detail, dtype=object))
        self.stats.setdefault(kind, {"eligible": 0, "applied": 0})["applied"] += int(len(idx))

    def remap(self, mapping: np.ndarray) -> None:
        """Re-index logged records after the record arrays were reordered/extended."""
        self._idx = [mapping[i] for i in self._idx]

    def frame(self, ids: np.ndarray) -> pd.DataFrame:
        if not self._idx:
            return pd.DataFrame(columns=["source", "source_record_id", "corruption", "detail"])
        idx = np.concatenate(self._idx)
        kinds = np.concatenate([np.full(len(i), k, dtype=object) for i, k in zip(self._idx, self._kind)])
        detail = np.concatenate(self._detail)
        df = pd.DataFrame({"source": self.source, "source_record_id": ids[idx],
                           "corruption": kinds, "detail": detail, "_i": idx})
        return df.sort_values(["_i", "corruption"], kind="stable").drop(columns="_i")


# ---------------------------------------------------------------- string-level primitives


@lru_cache(maxsize=65536)
def strip_diacritics(s: str) -> str:
    from unidecode import unidecode

    return unidecode(s)


def keyboard_typo(s: str, u: float, v: float) -> str:
    """Replace one letter by a QWERTY neighbour (case kept)."""
    pos = [i for i, ch in enumerate(s) if ch.lower() in QWERTY_NEIGHBOURS]
    if not pos:
        return s
    i = pos[int(u * len(pos))]
    ch = s[i]
    near = QWERTY_NEIGHBOURS[ch.lower()]
    r = near[int(v * len(near))]
    return s[:i] + (r.upper() if ch.isupper() else r) + s[i + 1:]


def transpose(s: str, u: float) -> str:
    """Swap two adjacent, different, non-space characters."""
    pos = [i for i in range(len(s) - 1) if s[i] != s[i + 1] and s[i] != " " and s[i + 1] != " "]
    if not pos:
        return s
    i = pos[int(u * len(pos))]
    return s[:i] + s[i + 1] + s[i] + s[i + 2:]


def whitespace_noise(s: str, k: int) -> str:
    if k == 0:
        return " " + s
    if k == 1:
        return s + "  "
    if " " in s:
        return s.replace(" ", "  ", 1)
    return s + " "


def email_case(e: str, k: int) -> str:
    if k == 0:
        return e.upper()
    local, _, dom = e.partition("@")
    parts = [p[:1].upper() + p[1:] for p in local.split(".")]
    if k == 1:
        return ".".join(parts) + "@" + dom
    return ".".join(parts) + "@" + dom.upper()


def gmail_dots(e: str, u: float) -> str:
    local, _, dom = e.partition("@")
    if "." in local:
        local = local.replace(".", "")
    elif len(local) > 1:
        i = 1 + int(u * (len(local) - 1))
        local = local[:i] + "." + local[i:]
    return local + "@" + dom


# ---------------------------------------------------------------- record-level application


def _isascii(arr) -> np.ndarray:
    return np.fromiter((s is None or s.isascii() for s in arr), dtype=bool, count=len(arr))


def corrupt_names(log: CorruptionLog, rng: np.random.Generator, rec: dict, text_fields=()) -> None:
    """Nicknames, first/last swap, typos, transpositions, stripped diacritics, case and
    whitespace noise on ``rec['first']``/``rec['last']`` (and the ``text_fields``)."""
    first, last = rec["first"], rec["last"]
    n = len(first)
    everyone = np.ones(n, dtype=bool)

    elig = pd.Series(first, dtype=object).isin(NICKNAMES.keys()).to_numpy()
    hit = log.draw("nickname", elig)
    u = rng.random(len(hit))
    det = np.empty(len(hit), dtype=object)
    for j, i in enumerate(hit):
        opts = NICKNAMES[first[i]]
        new = opts[int(u[j] * len(opts))]
        det[j] = f"{first[i]}->{new}"
        first[i] = new
    log.record("nickname", hit, det)

    hit = log.draw("name_swap", everyone)
    first[hit], last[hit] = last[hit], first[hit].copy()
    log.record("name_swap", hit)

    for kind, fn in (("typo", keyboard_typo), ("transposition", transpose)):
        hit = log.draw(kind, everyone)
        which = rng.random(len(hit)) < 0.5
        u = rng.random(len(hit))
        v = rng.random(len(hit))
        det = np.where(which, "first_name", "last_name").astype(object)
        for j, i in enumerate(hit):
            arr = first if which[j] else last
            arr[i] = fn(arr[i], u[j], v[j]) if kind == "typo" else fn(arr[i], u[j])
        log.record(kind, hit, det)

    fields = ["first", "last", *text_fields]
    non_ascii = np.zeros(n, dtype=bool)
    for f in fields:
        non_ascii |= ~_isascii(rec[f])
    hit = log.draw("diacritics_stripped", non_ascii)
    for f in fields:
        arr = rec[f]
        for i in hit:
            if arr[i] is not None:
                arr[i] = strip_diacritics(arr[i])
    log.record("diacritics_stripped", hit)

    hit = log.draw("case_noise", everyone)
    k = rng.integers(0, 3, size=len(hit))
    det = np.array(["upper", "lower", "first_upper"], dtype=object)[k]
    for j, i in enumerate(hit):
        if k[j] == 0:
            first[i], last[i] = first[i].upper(), last[i].upper()
        elif k[j] == 1:
            first[i], last[i] = first[i].lower(), last[i].lower()
        else:
            first[i] = first[i].upper()
    log.record("case_noise", hit, det)

    hit = log.draw("whitespace_noise", everyone)
    k = rng.integers(0, 3, size=len(hit))
    fsel = rng.integers(0, len(fields), size=len(hit))
    det = np.empty(len(hit), dtype=object)
    for j, i in enumerate(hit):
        f = fields[fsel[j]]
        if rec[f][i] is None:
            f = "last"
        rec[f][i] = whitespace_noise(rec[f][i], int(k[j]))
        det[j] = f
    log.record("whitespace_noise", hit, det)


def corrupt_emails(log: CorruptionLog, rng: np.random.Generator, email: np.ndarray) -> None:
    has = np.fromiter((e is not None for e in email), dtype=bool, count=len(email))
    hit = log.draw("email_case", has)
    k = rng.integers(0, 3, size=len(hit))
    for j, i in enumerate(hit):
        email[i] = email_case(email[i], int(k[j]))
    log.record("email_case", hit, np.array(["upper", "capitalised", "capitalised_domain_upper"], dtype=object)[k])

    gm = np.fromiter((e is not None and e.lower().endswith("@gmail.com") for e in email), dtype=bool,
                     count=len(email))
    hit = log.draw("gmail_dots", gm)
    u = rng.random(len(hit))
    for j, i in enumerate(hit):
        email[i] = gmail_dots(email[i], u[j])
    log.record("gmail_dots", hit)
