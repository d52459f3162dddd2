"""The six source systems: which persons each saw, when, and how it stored them.

Each builder returns a :class:`SourceResult`: the customer table(s), the ground-truth mapping of
its customer ids to persons, and the corruption log. Fact tables (orders, transactions,
invoices, payments) are built in :mod:`cdi_demo.facts` from the customer records returned here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from cdi_demo.corruption import CorruptionLog, corrupt_emails, corrupt_names
from cdi_demo.formatting import (
    format_phones,
    iso_days,
    iso_seconds,
    render_dates,
    ts_dotted,
    ts_space,
    ts_z,
)
from cdi_demo.persons import DAY, END, START, Persons
from cdi_demo.pools import (
    CAMPAIGNS,
    COUNTRIES,
    CURRENCY,
    TICKET_SUBJECTS,
    pools,
)
from cdi_demo.tables import Table

# share of persons a source has seen (before duplicates), scaled by a per-person activity level
COVERAGE = {"crm": 0.55, "webshop": 0.45, "pos": 0.35, "billing": 0.40, "support": 0.18,
            "marketing": 0.30}
SOURCE_START = {"crm": "2018-01-01", "webshop": "2019-03-01", "pos": "2018-01-01",
                "billing": "2019-01-01", "support": "2020-01-01", "marketing": "2021-01-01"}
PHONE_STYLE = {  # (usual style, variants produced by the "phone_format" corruption)
    "crm": ("intl", ("national", "e164", "idd")),
    "webshop": ("e164", ("national", "intl", "digits")),
    "pos": ("national", ("digits", "intl")),
    "billing": ("e164", ("idd", "digits")),
    "support": ("intl", ("national", "digits")),
    "marketing": ("e164", ("national", "idd")),
}
MISSING_FIELDS = {
    "crm": ("email", "phone", "date_of_birth", "street", "postcode", "marital_status",
            "annual_income", "gender"),
    "webshop": ("phone", "birth_date", "address"),
    "pos": ("email", "phone", "birth_date", "street"),
    "billing": ("email", "phone", "national_id"),
    "support": ("contact_email", "contact_phone"),
    "marketing": ("email", "phone", "postcode"),
}
LANDLINE_SHARE = 0.25  # a person with a landline gives it instead of the mobile this often


def _ts(s: str) -> int:
    return int(np.datetime64(s + "T00:00:00", "s").astype(np.int64))


@dataclass
class SourceResult:
    name: str
    tables: list[Table]
    record_ids: np.ndarray  # id per customer record (the truth key), in record order
    record_pid: np.ndarray  # person index per customer record
    log: CorruptionLog
    info: dict = field(default_factory=dict)
    records: dict = field(default_factory=dict)  # kept for the fact builders


def _draw(rng, P: Persons, source: str, log: CorruptionLog, activity: np.ndarray):
    """Persons seen by the source, plus duplicate records; shuffled record order."""
    p_in = np.clip(COVERAGE[source] * (0.5 + activity), 0.0, 0.97)
    pid = np.flatnonzero(rng.random(P.n) < p_in)
    dup = log.draw("duplicate", np.ones(len(pid), dtype=bool))
    pid_all = np.concatenate([pid, pid[dup]])
    dup_of = np.concatenate([np.full(len(pid), -1), np.arange(len(dup))])  # index into dup list
    order = rng.permutation(len(pid_all))
    inv = np.empty_like(order)
    inv[order] = np.arange(len(order))
    pid_all = pid_all[order]
    is_dup = dup_of[order] >= 0
    # position (after shuffling) of the original record of each duplicate
    orig_pos = np.full(len(pid_all), -1)
    orig_pos[is_dup] = inv[dup[dup_of[order][is_dup]]]
    return pid_all, is_dup, orig_pos


def _as_of(rng, P: Persons, pid, t, log: CorruptionLog, address=True) -> dict:
    """The person's data as the source saw it at time t (with maiden names / stale addresses)."""
    p = pools()
    n = len(pid)
    last, married = P.last_as_of(pid, t)
    last = last.astype(object)
    hit = log.draw("maiden_name", married)
    last[hit] = P.birth_last[pid[hit]]
    log.record("maiden_name", hit)
    suf = P.suffix[pid]
    show = (suf != "") & (rng.random(n) < 0.5)
    last[show] = last[show] + " " + suf[show]
    rec = {"first": P.first[pid].copy(), "last": last, "country": P.country[pid]}
    if address:
        v = P.address_version(pid, t)
        hit = log.draw("stale_address", v >= 1)
        v[hit] = v[hit] - 1
        log.record("stale_address", hit)
        city = P.addr_city[pid, v]
        rec["street"] = P.addr_street[pid, v].copy()
        rec["postcode"] = P.addr_postcode[pid, v].copy()
        rec["city"] = p.city_name[city].copy()
        rec["region"] = p.city_region[city].copy()
    ev = (P.email_t[pid] <= t).astype(np.int64)
    rec["email"] = P.email[pid, ev].copy()
    mv = (P.mobile_t[pid] <= t).astype(np.int64)
    use_land = (P.landline[pid] != None) & (rng.random(n) < LANDLINE_SHARE)  # noqa: E711
    rec["phone_nsn"] = np.where(use_land, P.landline[pid], P.mobile[pid, mv])
    rec["phone_split"] = np.where(use_land, P.landline_split[pid], P.extras["mobile_split"][pid])
    iv = (P.income_t[pid] <= t).astype(np.int64)
    rec["income"] = P.income[pid, iv]
    rec["marital"] = P.marital_as_of(pid, t)
    rec["dob_iso"] = iso_days(P.dob[pid])
    rec["gender"] = np.where(P.gender[pid] == 1, "F", "M").astype(object)
    return rec


def _share(pid: np.ndarray, salt: int, share: float) -> np.ndarray:
    """Whether each person is in a fixed share of persons: a hash of the person, not a draw from
    ``rng``, so adding a column leaves every other generated value as it was."""
    h = (pid.astype(np.int64) * 2_654_435_761 + salt * 40_503) % 10_007
    return h < share * 10_007


def _death_times(P: Persons, pid: np.ndarray) -> np.ndarray:
    """When each person died (UTC seconds; INF while alive): about 4% of those born before 1950,
    spread over the simulated window."""
    born_before_1950 = P.dob[pid] < int(np.datetime64("1950-01-01", "D").astype(np.int64))
    died = born_before_1950 & _share(pid, 1, 0.04)
    spread = (pid.astype(np.int64) * 7_919) % 1_000 / 1_000
    at = START + (spread * (END - START)).astype(np.int64)
    return np.where(died, at, np.iinfo(np.int64).max)


def _phones(rng, source: str, log: CorruptionLog, rec: dict) -> np.ndarray:
    usual, variants = PHONE_STYLE[source]
    n = len(rec["phone_nsn"])
    style = np.full(n, usual, dtype=object)
    hit = log.draw("phone_format", np.ones(n, dtype=bool))
    style[hit] = np.array(variants, dtype=object)[rng.integers(0, len(variants), size=len(hit))]
    log.record("phone_format", hit, style[hit])
    return format_phones(rec["country"], rec["phone_nsn"], rec["phone_split"], style)


def _missing(rng, source: str, log: CorruptionLog, cols: dict) -> None:
    fields = MISSING_FIELDS[source]
    n = len(next(iter(cols.values())))
    hit = log.draw("missing_field", np.ones(n, dtype=bool))
    which = np.array(fields, dtype=object)[rng.integers(0, len(fields), size=len(hit))]
    for f in fields:
        idx = hit[which == f]
        cols[f][idx] = None
    log.record("missing_field", hit, which)


def _snapshot_times(rng, source: str, n: int) -> np.ndarray:
    lo = _ts(SOURCE_START[source])
    # recent updates are more common than old ones
    u = rng.beta(1.3, 1.0, size=n)
    return (lo + u * (END - lo)).astype(np.int64)


def _seq_ids(prefix: str, n: int, width: int, start: int = 1) -> np.ndarray:
    return np.array([f"{prefix}{i:0{width}d}" for i in range(start, start + n)], dtype=object)


def _unique_ints(rng, low: int, high: int, n: int, avoid: np.ndarray | None = None) -> np.ndarray:
    out = rng.integers(low, high, size=n, dtype=np.int64)
    for _ in range(50):
        _, first = np.unique(out, return_index=True)
        bad = np.ones(n, dtype=bool)
        bad[first] = False
        if avoid is not None:
            bad |= np.isin(out, avoid)
        if not bad.any():
            return out
        out[bad] = rng.integers(low, high, size=int(bad.sum()), dtype=np.int64)
    raise RuntimeError("could not draw unique ids")


def _dup_detail(is_dup, orig_pos, ids) -> tuple[np.ndarray, np.ndarray]:
    idx = np.flatnonzero(is_dup)
    return idx, np.array([f"of {ids[j]}" for j in orig_pos[idx]], dtype=object)


# ---------------------------------------------------------------------------------------- CRM


def build_crm(rng, P: Persons, rates: dict, activity) -> SourceResult:
    log = CorruptionLog("crm", rates, rng)
    pid, is_dup, orig = _draw(rng, P, "crm", log, activity)
    n = len(pid)
    ids = np.array([f"C{i:06d}" for i in rng.permutation(n) + 1000], dtype=object)
    log.record("duplicate", *_dup_detail(is_dup, orig, ids))
    t = _snapshot_times(rng, "crm", n)
    rec = _as_of(rng, P, pid, t, log)
    corrupt_names(log, rng, rec, text_fields=("street", "city"))
    corrupt_emails(log, rng, rec["email"])
    phone = _phones(rng, "crm", log, rec)
    hit = log.draw("date_format", np.ones(n, dtype=bool))
    log.record("date_format", hit, np.full(len(hit), "yyyy-MM-dd", dtype=object))
    gender = rec["gender"]
    married = np.isin(rec["marital"], ["married", "widowed"])
    sal_u = rng.random(n)
    salutation = np.where(gender == "M", "Mr", np.where(married, "Mrs", "Ms")).astype(object)
    salutation[sal_u < 0.03] = "Dr"
    salutation[(sal_u >= 0.03) & (sal_u < 0.06)] = ""
    country = np.array(COUNTRIES, dtype=object)[rec["country"]]
    cols = {
        "contact_id": ids,
        "salutation": salutation,
        "first_name": rec["first"],
        "last_name": rec["last"],
        "date_of_birth": rec["dob_iso"].copy(),
        "gender": gender.copy(),
        "email": rec["email"],
        "phone": phone,
        "street": rec["street"],
        "city": rec["city"],
        "postcode": rec["postcode"],
        "region": rec["region"],
        "country": country,
        "marital_status": rec["marital"].astype(object),
        "annual_income": rec["income"].astype(str).astype(object),
        "income_currency": np.array([CURRENCY[c] for c in COUNTRIES], dtype=object)[rec["country"]],
        "last_modified": ts_space(iso_seconds(t)),
    }
    _missing(rng, "crm", log, cols)
    # a death the CRM was told of before its snapshot: the flag, and the date for most
    death = _death_times(P, pid)
    dead = death <= t
    cols["deceased"] = np.where(dead, "Y", "N").astype(object)
    dated = dead & _share(pid, 2, 0.8)
    cols["date_of_death"] = np.where(dated, iso_days(np.where(dated, death, 0) // DAY), None).astype(object)
    table = Table(
        path="crm/contacts.csv", fmt="csv", columns=list(cols), data=cols, id_column="contact_id",
        customer_key="contact_id", delimiter=",", last_updated="last_modified",
        last_updated_format="space", name_column="last_name", text_column="street",
        malformed=(("broken_quoting", 2), ("impossible_date", 2), ("invalid_utf8", 1),
                   ("overlong_field", 1), ("missing_id", 1)),
        fresh_ids=lambda k: {"contact_id": f"C{900000 + n + k:06d}"},
    )
    return SourceResult("crm", [table], ids, pid, log, records={"t": t, "country": rec["country"]})


# ------------------------------------------------------------------------------------ webshop

_WEB_DOB_VARIANTS = {0: ("MM/dd/yyyy", "yyyy/MM/dd"), 1: ("dd/MM/yyyy", "yyyy/MM/dd"),
                     2: ("dd.MM.yyyy", "yyyy/MM/dd"), 3: ("dd/MM/yyyy", "yyyy/MM/dd"),
                     4: ("dd.MM.yyyy", "yyyy/MM/dd")}


def _webshop_json(row: dict) -> dict:
    addr = None
    if row.get("address_line1") is not None:
        addr = {"line1": row["address_line1"], "city": row["address_city"], "state": row["address_state"],
                "zip": row["address_zip"], "country": row["address_country"]}
    return {
        "account_id": row["account_id"], "full_name": row["full_name"], "email": row["email"],
        "phone": row["phone"], "birth_date": row["birth_date"], "gender": row["gender"], "address": addr,
        "created_at": row["created_at"], "updated_at": row["updated_at"],
        "newsletter": row["newsletter"],
    }


def build_webshop(rng, P: Persons, rates: dict, activity) -> SourceResult:
    log = CorruptionLog("webshop", rates, rng)
    pid, is_dup, orig = _draw(rng, P, "webshop", log, activity)
    n = len(pid)
    hexes = _unique_ints(rng, 0, 0xe000000000, n)  # e*: orphans, f*: malformed rows
    ids = np.array([f"WS-{h:010x}" for h in hexes], dtype=object)
    log.record("duplicate", *_dup_detail(is_dup, orig, ids))
    t = _snapshot_times(rng, "webshop", n)
    created = np.maximum(t - (rng.random(n) * 3 * 365 * DAY).astype(np.int64), _ts("2016-05-01"))
    rec = _as_of(rng, P, pid, t, log)
    corrupt_names(log, rng, rec, text_fields=("street", "city"))
    corrupt_emails(log, rng, rec["email"])
    phone = _phones(rng, "webshop", log, rec)
    hit = log.draw("date_format", np.ones(n, dtype=bool))
    pat = np.full(n, "yyyy-MM-dd", dtype=object)
    pick = rng.integers(0, 2, size=len(hit))
    pat[hit] = [_WEB_DOB_VARIANTS[int(c)][k] for c, k in zip(rec["country"][hit], pick)]
    log.record("date_format", hit, pat[hit])
    dob = render_dates(rec["dob_iso"], list(pat))
    hit = log.draw("last_first_order", np.ones(n, dtype=bool))
    lf = np.zeros(n, dtype=bool)
    lf[hit] = True
    log.record("last_first_order", hit)
    full = np.array([f"{last}, {f}" if o else f"{f} {last}" for f, last, o in zip(rec["first"], rec["last"], lf)],
                    dtype=object)
    cols = {
        "account_id": ids, "full_name": full, "email": rec["email"], "phone": phone,
        "birth_date": dob, "address": np.ones(n, dtype=object),
        "address_line1": rec["street"], "address_city": rec["city"], "address_zip": rec["postcode"],
        "address_state": rec["region"], "address_country": np.array(COUNTRIES, dtype=object)[rec["country"]],
        # an optional profile field most account holders fill in
        "gender": np.where(_share(pid, 3, 0.75), np.where(rec["gender"] == "F", "female", "male"), None).astype(object),
        "created_at": ts_z(iso_seconds(created)), "updated_at": ts_z(iso_seconds(t)),
        "newsletter": rng.random(n) < 0.4,
    }
    _missing(rng, "webshop", log, cols)
    gone = np.array([a is None for a in cols["address"]])
    cols["address_line1"][gone] = None
    del cols["address"]
    table = Table(
        path="webshop/accounts.jsonl", fmt="jsonl", columns=list(cols), data=cols,
        id_column="account_id", customer_key="account_id", last_updated="updated_at",
        last_updated_format="isoz", name_column="full_name", text_column="address_line1",
        malformed=(("invalid_json", 2), ("impossible_date", 1), ("invalid_utf8", 1),
                   ("overlong_field", 1), ("missing_id", 1)),
        to_json=_webshop_json,
        fresh_ids=lambda k: {"account_id": f"WS-{0xf000000000 + k:010x}"},
    )
    return SourceResult("webshop", [table], ids, pid, log,
                        records={"t": t, "created": created, "country": rec["country"]})


# ---------------------------------------------------------------------------------------- POS

N_STORES = 25


def store_ids(country_idx: np.ndarray, k: np.ndarray) -> np.ndarray:
    return np.array([f"{COUNTRIES[c]}{s:03d}" for c, s in zip(country_idx, k)], dtype=object)


def build_pos(rng, P: Persons, rates: dict, activity) -> SourceResult:
    log = CorruptionLog("pos", rates, rng)
    pid, is_dup, orig = _draw(rng, P, "pos", log, activity)
    n = len(pid)
    card = _unique_ints(rng, 4_000_000_000, 4_999_999_999, n)
    ids = card.astype(str).astype(object)
    log.record("duplicate", *_dup_detail(is_dup, orig, ids))
    t = _snapshot_times(rng, "pos", n)
    issued = np.maximum(t - (rng.random(n) * 4 * 365 * DAY).astype(np.int64), _ts("2015-01-01"))
    rec = _as_of(rng, P, pid, t, log)
    corrupt_names(log, rng, rec, text_fields=("street", "city"))
    corrupt_emails(log, rng, rec["email"])
    phone = _phones(rng, "pos", log, rec)
    dotted = np.isin(rec["country"], [2, 4])  # PL, DE write dd.MM.yyyy; others dd/MM/yyyy
    pat = np.where(dotted, "dd.MM.yyyy", "dd/MM/yyyy").astype(object)
    hit = log.draw("date_format", np.ones(n, dtype=bool))
    pat[hit] = np.where(dotted[hit], "dd/MM/yyyy", "dd.MM.yyyy")
    log.record("date_format", hit, pat[hit])
    home = rng.integers(1, N_STORES + 1, size=n)
    cols = {
        "card_no": ids, "first_name": rec["first"], "last_name": rec["last"],
        "birth_date": render_dates(rec["dob_iso"], list(pat)), "phone": phone,
        "email": rec["email"], "street": rec["street"], "postcode": rec["postcode"],
        "city": rec["city"], "store_country": np.array(COUNTRIES, dtype=object)[rec["country"]],
        "home_store": store_ids(rec["country"], home),
        "issued": np.array([s[:10] for s in ts_dotted(iso_seconds(issued))], dtype=object),
        "modified": ts_dotted(iso_seconds(t)),
    }
    _missing(rng, "pos", log, cols)
    table = Table(
        path="pos/loyalty_cards.csv", fmt="csv", columns=list(cols), data=cols, id_column="card_no",
        customer_key="card_no", delimiter=";", last_updated="modified", last_updated_format="dotted",
        name_column="last_name", text_column="street",
        malformed=(("broken_quoting", 2), ("impossible_date", 1), ("invalid_utf8", 1),
                   ("overlong_field", 1), ("missing_id", 1)),
        fresh_ids=lambda k: {"card_no": str(3_900_000_000 + k)},
    )
    return SourceResult("pos", [table], ids, pid, log,
                        records={"t": t, "issued": issued, "country": rec["country"], "home": home,
                                 "card": card})


# ------------------------------------------------------------------------------------ billing

_NID_TYPE = np.array(["SSN", "NINO", "PESEL", "DNI", "STEUER_ID"], dtype=object)
_NINO_L1 = np.array(list("ABCEGHJKLMNOPRSTWXYZ"), dtype=object)
_NINO_L2 = np.array(list("ABCEGHJKLMNPRSTWXYZ"), dtype=object)
_DNI_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE"


def national_ids(rng, P: Persons) -> np.ndarray:
    """One synthetic national id per person, in the country's format (PESEL with a valid check
    digit and the birth date/gender encoded; DNI with its check letter; SSN/NINO/Steuer-ID
    format-only). None of them is a real person's id."""
    n = P.n
    out = np.empty(n, dtype=object)
    dob = P.dob.astype("datetime64[D]")
    y = dob.astype("datetime64[Y]").astype(int) + 1970
    m = (dob.astype("datetime64[M]").astype(int) % 12) + 1
    d = (dob - dob.astype("datetime64[M]")).astype(int) + 1
    serial = rng.integers(0, 1000, size=n)
    sex = rng.integers(0, 5, size=n) * 2 + (P.gender == 0)  # odd = male
    mm = m + np.where(y >= 2000, 20, 0)
    digits = np.stack([(y % 100) // 10, y % 10, mm // 10, mm % 10, d // 10, d % 10,
                       serial // 100, (serial // 10) % 10, serial % 10, sex], axis=1)
    w = np.array([1, 3, 7, 9, 1, 3, 7, 9, 1, 3])
    check = (10 - (digits * w).sum(axis=1) % 10) % 10
    pesel = np.concatenate([digits, check[:, None]], axis=1)
    a = rng.integers(1, 900, size=n)
    a = np.where(a == 666, 667, a)
    g = rng.integers(1, 100, size=n)
    s = rng.integers(1, 10000, size=n)
    dni = rng.integers(10_000_000, 99_999_999, size=n)
    nino_n = rng.integers(0, 1_000_000, size=n)
    l1 = rng.integers(0, len(_NINO_L1), size=n)
    l2 = rng.integers(0, len(_NINO_L2), size=n)
    suf = rng.integers(0, 4, size=n)
    steuer = rng.integers(10_000_000_000, 99_999_999_999, size=n)
    for i in range(n):
        c = P.country[i]
        if c == 0:
            out[i] = f"{a[i]:03d}-{g[i]:02d}-{s[i]:04d}"
        elif c == 1:
            out[i] = f"{_NINO_L1[l1[i]]}{_NINO_L2[l2[i]]}{nino_n[i]:06d}{'ABCD'[suf[i]]}"
        elif c == 2:
            out[i] = "".join(map(str, pesel[i]))
        elif c == 3:
            out[i] = f"{dni[i]}{_DNI_LETTERS[dni[i] % 23]}"
        else:
            out[i] = str(steuer[i])
    return out


def build_billing(rng, P: Persons, rates: dict, activity, nid: np.ndarray) -> SourceResult:
    import pyarrow as pa

    log = CorruptionLog("billing", rates, rng)
    pid, is_dup, orig = _draw(rng, P, "billing", log, activity)
    n = len(pid)
    bid = rng.permutation(n).astype(np.int64) + 100_001
    ids = bid.astype(str).astype(object)
    log.record("duplicate", *_dup_detail(is_dup, orig, ids))
    t = _snapshot_times(rng, "billing", n)
    rec = _as_of(rng, P, pid, t, log)
    corrupt_names(log, rng, rec, text_fields=("street", "city"))
    corrupt_emails(log, rng, rec["email"])
    phone = _phones(rng, "billing", log, rec)
    cols = {
        "billing_id": bid,
        "first_name": np.array([s.upper() for s in rec["first"]], dtype=object),
        "last_name": np.array([s.upper() for s in rec["last"]], dtype=object),
        "email": rec["email"], "phone": phone, "street": rec["street"],
        "postcode": rec["postcode"], "city": rec["city"], "region": rec["region"],
        "country": np.array(COUNTRIES, dtype=object)[rec["country"]],
        "national_id": nid[pid].copy(), "national_id_type": _NID_TYPE[rec["country"]],
        # single-letter codes, as billing systems keep them for tax and joint accounts
        "marital_status": np.array([m[0].upper() for m in rec["marital"]], dtype=object),
        "updated_at": t * 1_000_000,
    }
    _missing(rng, "billing", log, cols)
    cols["national_id_type"] = np.where(np.array([v is None for v in cols["national_id"]]), None,
                                        cols["national_id_type"])
    schema = pa.schema([
        ("billing_id", pa.int64()), ("first_name", pa.string()), ("last_name", pa.string()),
        ("email", pa.string()), ("phone", pa.string()), ("street", pa.string()),
        ("postcode", pa.string()), ("city", pa.string()), ("region", pa.string()), ("country", pa.string()),
        ("national_id", pa.string()), ("national_id_type", pa.string()), ("marital_status", pa.string()),
        ("updated_at", pa.timestamp("us", tz="UTC")),
    ])
    table = Table(path="billing/customers.parquet", fmt="parquet", columns=list(cols), data=cols,
                  id_column="billing_id", customer_key="billing_id", last_updated="updated_at",
                  arrow_schema=schema)
    return SourceResult("billing", [table], ids, pid, log,
                        records={"t": t, "country": rec["country"], "bid": bid})


# ------------------------------------------------------------------------------------ support


def build_support(rng, P: Persons, rates: dict, activity) -> SourceResult:
    log = CorruptionLog("support", rates, rng)
    pid, is_dup, orig = _draw(rng, P, "support", log, activity)
    n = len(pid)
    ids = np.array([f"SUP-{i}" for i in rng.permutation(n) + 1], dtype=object)
    log.record("duplicate", *_dup_detail(is_dup, orig, ids))
    t = _snapshot_times(rng, "support", n)  # the contact's creation = first ticket
    rec = _as_of(rng, P, pid, t, log, address=False)
    corrupt_names(log, rng, rec)
    corrupt_emails(log, rng, rec["email"])
    phone = _phones(rng, "support", log, rec)
    cols = {"contact_name": np.array([f"{f} {last}" for f, last in zip(rec["first"], rec["last"])], dtype=object),
            "contact_email": rec["email"], "contact_phone": phone}
    _missing(rng, "support", log, cols)
    # tickets: 1 + Poisson(0.6) per contact
    k = 1 + rng.poisson(0.6, size=n)
    owner = np.repeat(np.arange(n), k)
    first = np.concatenate([[0], np.cumsum(k)[:-1]])
    is_first = np.zeros(len(owner), dtype=bool)
    is_first[first] = True
    opened = np.where(is_first, t[owner],
                      np.minimum(t[owner] + (rng.random(len(owner)) * 700 * DAY).astype(np.int64), END - 3600))
    dur = (rng.exponential(3.0, size=len(owner)) * DAY).astype(np.int64) + 600
    closed = opened + dur
    is_open = (closed > END) | (rng.random(len(owner)) < 0.04)
    status = np.where(is_open, np.where(rng.random(len(owner)) < 0.6, "open", "pending"),
                      np.where(rng.random(len(owner)) < 0.7, "closed", "resolved")).astype(object)
    updated = np.where(is_open, np.minimum(opened + dur // 3, END), closed)
    order = np.lexsort((owner, opened))
    owner, opened, closed, is_open, status, updated = (a[order] for a in
                                                      (owner, opened, closed, is_open, status, updated))
    m = len(owner)
    closed_s = ts_z(iso_seconds(closed)).astype(object)
    closed_s[is_open] = None
    channel = np.array(["email", "phone", "chat", "web_form"], dtype=object)[
        rng.choice(4, size=m, p=[0.4, 0.3, 0.2, 0.1])]
    subject = np.array(TICKET_SUBJECTS, dtype=object)[rng.integers(0, len(TICKET_SUBJECTS), size=m)]
    rows = {
        "ticket_id": _seq_ids("TCK-", m, 7), "contact_id": ids[owner],
        "opened_at": ts_z(iso_seconds(opened)), "closed_at": closed_s, "status": status,
        "channel": channel, "subject": subject,
        "contact_name": cols["contact_name"][owner], "contact_email": cols["contact_email"][owner],
        "contact_phone": cols["contact_phone"][owner], "updated_at": ts_z(iso_seconds(updated)),
    }
    table = Table(
        path="support/tickets.jsonl", fmt="jsonl", columns=list(rows), data=rows, id_column="ticket_id",
        customer_key="contact_id", last_updated="updated_at", last_updated_format="isoz",
        name_column="contact_name", text_column="subject",
        malformed=(("invalid_json", 2), ("impossible_date", 1), ("invalid_utf8", 1),
                   ("overlong_field", 1), ("missing_id", 1)),
        fresh_ids=lambda k: {"ticket_id": f"TCK-{9_000_000 + k}", "contact_id": f"SUP-{9_000_000 + k}"},
    )
    return SourceResult("support", [table], ids, pid, log, info={"tickets": m, "contacts": n})


# ---------------------------------------------------------------------------------- marketing


INCOME_BANDS = ((20_000, "under 20k"), (40_000, "20k-40k"), (60_000, "40k-60k"), (100_000, "60k-100k"))


def _income_bands(income: np.ndarray) -> np.ndarray:
    labels = np.array([label for _, label in INCOME_BANDS] + ["over 100k"], dtype=object)
    return labels[np.searchsorted([upper for upper, _ in INCOME_BANDS], income, side="right")]


def build_marketing(rng, P: Persons, rates: dict, activity) -> SourceResult:
    log = CorruptionLog("marketing", rates, rng)
    pid, is_dup, orig = _draw(rng, P, "marketing", log, activity)
    n = len(pid)
    ids = np.array([f"L{i:07d}" for i in rng.permutation(n) + 1], dtype=object)
    log.record("duplicate", *_dup_detail(is_dup, orig, ids))
    win = np.array([(_ts(a), _ts(b) + DAY - 1) for _, a, b in CAMPAIGNS])
    names = np.array([c for c, _, _ in CAMPAIGNS], dtype=object)
    c0 = rng.integers(0, len(CAMPAIGNS), size=n)
    t = win[c0, 0] + (rng.random(n) * (win[c0, 1] - win[c0, 0])).astype(np.int64)
    rec = _as_of(rng, P, pid, t, log)
    corrupt_names(log, rng, rec)
    corrupt_emails(log, rng, rec["email"])
    phone = _phones(rng, "marketing", log, rec)
    cols = {"first_name": rec["first"], "last_name": rec["last"], "email": rec["email"],
            "phone": phone, "postcode": rec["postcode"],
            "country": np.array(COUNTRIES, dtype=object)[rec["country"]]}
    _missing(rng, "marketing", log, cols)
    # the lead form's optional household-income question, answered in bands of the local currency
    cols["income_band"] = np.where(_share(pid, 4, 0.6), _income_bands(rec["income"]), None).astype(object)
    k = 1 + rng.poisson(0.4, size=n)
    owner = np.repeat(np.arange(n), k)
    is_first = np.zeros(len(owner), dtype=bool)
    is_first[np.concatenate([[0], np.cumsum(k)[:-1]])] = True
    later = c0[owner] + 1 + (rng.random(len(owner)) * (len(CAMPAIGNS) - 1 - c0[owner])).astype(np.int64)
    camp = np.where(is_first | (c0[owner] == len(CAMPAIGNS) - 1), c0[owner], np.minimum(later, len(CAMPAIGNS) - 1))
    ts = np.where(is_first, t[owner],
                  win[camp, 0] + (rng.random(len(owner)) * (win[camp, 1] - win[camp, 0])).astype(np.int64))
    ts = np.maximum(ts, t[owner])
    order = np.lexsort((owner, ts))
    owner, camp, ts = owner[order], camp[order], ts[order]
    m = len(owner)
    yn = np.array(["N", "Y"], dtype=object)
    rows = {
        "response_id": _seq_ids("R", m, 8), "lead_id": ids[owner], "campaign": names[camp],
        "responded_at": ts_space(iso_seconds(ts)),
        **{c: v[owner] for c, v in cols.items()},
        "consent_email": yn[(rng.random(m) < 0.7).astype(int)],
        "consent_sms": yn[(rng.random(m) < 0.4).astype(int)],
        "consent_phone": yn[(rng.random(m) < 0.2).astype(int)],
    }
    table = Table(
        path="marketing/responses.csv", fmt="csv", columns=list(rows), data=rows, id_column="response_id",
        customer_key="lead_id", delimiter=",", last_updated="responded_at", last_updated_format="space",
        name_column="last_name", text_column="campaign",
        malformed=(("broken_quoting", 2), ("impossible_date", 1), ("invalid_utf8", 1),
                   ("overlong_field", 1), ("missing_id", 1)),
        fresh_ids=lambda k: {"response_id": f"R{90_000_000 + k}", "lead_id": f"L{9_000_000 + k}"},
    )
    return SourceResult("marketing", [table], ids, pid, log, info={"responses": m, "leads": n})
