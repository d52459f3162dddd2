"""The true persons and their life history, sampled vectorised with numpy.

Every attribute that changes over time is held as a small fixed number of versions plus the
times the changes happened (``INF`` = never). A source that looked at a person at time ``t`` sees
version ``(change_times <= t).sum()``.

Hard negatives are built on purpose: spouses (one household: same address, same landline and,
outside Spain, usually the same surname), twins (same birth date, surname and address, different
first name), fathers and sons with the same name at one address (Sr./Jr.) and namesakes (same
first and last name, same birth year, different person).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from cdi_demo.pools import (
    COUNTRIES,
    COUNTRY_WEIGHTS,
    EMAIL_DOMAINS,
    INCOME_MEDIAN,
    LANDLINE_NSN_LENGTH,
    MOBILE_PREFIXES,
    SURNAME_CHANGE_AT_MARRIAGE,
    pools,
)

DAY = 86_400
# the simulated history window (UTC seconds)
START = int(np.datetime64("2018-01-01T00:00:00", "s").astype(np.int64))
END = int(np.datetime64("2025-06-30T23:59:59", "s").astype(np.int64))
INF = np.iinfo(np.int64).max
NEG = START - 1  # "happened before the window"
END_DAY = END // DAY
N_ADDR = 3  # address versions (up to two moves)

# share of persons that are derived from another person (hard negatives)
DERIVED_SHARE = {"spouse": 0.08, "twin": 0.01, "junior": 0.012, "namesake": 0.012}

MARITAL = np.array(["single", "married", "divorced", "widowed"], dtype=object)


@dataclass
class Persons:
    n: int
    person_id: np.ndarray
    country: np.ndarray  # country index into COUNTRIES
    locale: np.ndarray  # locale index into LOCALES
    gender: np.ndarray  # 0 = M, 1 = F
    dob: np.ndarray  # days since 1970-01-01
    first: np.ndarray  # object
    birth_last: np.ndarray  # object, full surname string (two surnames in Spain)
    married_last: np.ndarray  # object or None
    t_marriage: np.ndarray  # int64 seconds; NEG before window, INF never
    marital: np.ndarray  # object, status at END (before t_marriage it is "single")
    suffix: np.ndarray  # "", "Jr.", "Sr."
    addr_t: np.ndarray  # (n, N_ADDR - 1) move times
    addr_street: np.ndarray  # (n, N_ADDR) object
    addr_city: np.ndarray  # (n, N_ADDR) city index
    addr_postcode: np.ndarray  # (n, N_ADDR) object
    email: np.ndarray  # (n, 2) object
    email_t: np.ndarray
    mobile: np.ndarray  # (n, 2) object (national significant number)
    mobile_t: np.ndarray
    landline: np.ndarray  # object or None
    landline_split: np.ndarray  # area code length of the landline
    income: np.ndarray  # (n, 2) int64
    income_t: np.ndarray
    household: np.ndarray
    relation: np.ndarray  # "self", "spouse", "twin", "junior", "namesake"
    related: np.ndarray  # index of the anchor person, -1 if none
    extras: dict = field(default_factory=dict)

    def last_as_of(self, pid: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Surname seen at time t, and a mask of records where a maiden name was replaced."""
        married = (self.married_last[pid] != None) & (self.t_marriage[pid] <= t)  # noqa: E711
        last = np.where(married, self.married_last[pid], self.birth_last[pid])
        return last, married

    def address_version(self, pid: np.ndarray, t: np.ndarray) -> np.ndarray:
        return (self.addr_t[pid] <= t[:, None]).sum(axis=1)

    def marital_as_of(self, pid: np.ndarray, t: np.ndarray) -> np.ndarray:
        return np.where(self.t_marriage[pid] <= t, self.marital[pid], "single")


def _sample_names(rng, locale, gender, slices) -> np.ndarray:
    out = np.empty(len(locale), dtype=np.int64)
    for (li, gi), (idx, w) in slices.items():
        m = (locale == li) & (gender == gi)
        k = int(m.sum())
        if k:
            out[m] = rng.choice(idx, size=k, p=w)
    return out


def _sample_surnames(rng, locale, slices) -> np.ndarray:
    out = np.empty(len(locale), dtype=np.int64)
    for li, (idx, w) in slices.items():
        m = locale == li
        k = int(m.sum())
        if k:
            out[m] = rng.choice(idx, size=k, p=w)
    return out


def _surname_strings(p, sur1, sur2, gender) -> np.ndarray:
    s = np.where(gender == 1, p.surnames_f[sur1], p.surnames_m[sur1])
    has2 = sur2 >= 0
    if has2.any():
        s = s.copy()
        s[has2] = s[has2] + " " + p.surnames_m[sur2[has2]]
    return s


def _sample_cities(rng, country, p) -> np.ndarray:
    out = np.empty(len(country), dtype=np.int64)
    for ci, (idx, w) in p.city_slices.items():
        m = country == ci
        k = int(m.sum())
        if k:
            out[m] = rng.choice(idx, size=k, p=w)
    return out


_GB_LETTERS = np.array(list("ABDEFGHJLNPQRSTUWXYZ"), dtype=object)
_ES_LETTERS = np.array(list("ABCDEFGHIJ"), dtype=object)


def _streets(rng, country, p) -> tuple[np.ndarray, np.ndarray]:
    """Street lines and postcodes for addresses in the given countries (flat arrays)."""
    n = len(country)
    street_idx = np.empty(n, dtype=np.int64)
    for ci, idx in p.street_slices.items():
        m = country == ci
        k = int(m.sum())
        if k:
            street_idx[m] = rng.choice(idx, size=k)
    num = rng.integers(1, 120, size=n)
    apt = rng.integers(1, 60, size=n)
    has_apt = rng.random(n)
    letter = rng.integers(0, 10, size=n)
    names = p.streets[street_idx]
    out = np.empty(n, dtype=object)
    for i in range(n):
        c = country[i]
        s = names[i]
        if c == 0:  # US
            out[i] = f"{num[i]} {s} Apt {apt[i]}" if has_apt[i] < 0.2 else f"{num[i]} {s}"
        elif c == 1:  # GB
            out[i] = f"Flat {apt[i] % 20 + 1}, {num[i]} {s}" if has_apt[i] < 0.15 else f"{num[i]} {s}"
        elif c == 2:  # PL
            out[i] = f"{s} {num[i]}/{apt[i]}" if has_apt[i] < 0.5 else f"{s} {num[i]}"
        elif c == 3:  # ES
            out[i] = (f"{s}, {num[i]}, {apt[i] % 8 + 1}º {_ES_LETTERS[letter[i] % 4]}"
                      if has_apt[i] < 0.5 else f"{s}, {num[i]}")
        else:  # DE
            out[i] = f"{s} {num[i]}{'abc'[letter[i] % 3]}" if has_apt[i] < 0.1 else f"{s} {num[i]}"
    return out


def _postcodes(rng, country, city, p) -> np.ndarray:
    n = len(country)
    r = rng.integers(0, 1 << 30, size=n)
    d3 = rng.integers(0, 1000, size=n)
    out = np.empty(n, dtype=object)
    for i in range(n):
        prefixes = p.city_postcode_prefixes[city[i]]
        pre = prefixes[r[i] % len(prefixes)]
        c = country[i]
        d = d3[i]
        if c == 0:
            out[i] = f"{pre}{d % 100:02d}"
        elif c == 1:
            out[i] = f"{pre} {d % 10}{_GB_LETTERS[d % 20]}{_GB_LETTERS[(d // 20) % 20]}"
        elif c == 2:
            out[i] = f"{pre}-{d:03d}"
        elif c == 3:
            out[i] = f"{pre}0{d % 99 + 1:02d}"
        else:
            out[i] = f"{pre}{d:03d}"
    return out


def _digits(rng, n: int, k: int) -> np.ndarray:
    """n random digit strings of length k (k <= 18)."""
    if k <= 0 or n == 0:
        return np.full(n, "", dtype=object)
    v = rng.integers(0, 10**k, size=n, dtype=np.int64)
    return np.char.zfill(v.astype(str), k).astype(object)


def _mobiles(rng, country, city, p) -> tuple[np.ndarray, np.ndarray]:
    """Mobile numbers (NSN) and the length of their leading group."""
    n = len(country)
    out = np.empty(n, dtype=object)
    split = np.empty(n, dtype=np.int64)
    for ci, c in enumerate(COUNTRIES):
        m = np.flatnonzero(country == ci)
        if not len(m):
            continue
        if c == "US":  # geographic numbers
            nums, sp = _landlines(rng, city[m], p, c)
        else:
            prefixes = p.mobile_prefixes[ci]
            length = MOBILE_PREFIXES[c][1]
            pre = prefixes[rng.integers(0, len(prefixes), size=len(m))]
            if c == "DE":  # 15x numbers have 11 digits, 16x/17x 10 or 11
                lens = np.where((np.char.startswith(pre.astype(str), "15")) | (rng.random(len(m)) < 0.5),
                                11, 10)
                nums = np.empty(len(m), dtype=object)
                for L in (10, 11):
                    mm = lens == L
                    nums[mm] = pre[mm] + _digits(rng, int(mm.sum()), L - 3)
            else:
                nums = pre + _digits(rng, len(m), length - len(prefixes[0]))
            sp = np.full(len(m), 4 if c == "GB" else 3)
        out[m] = nums
        split[m] = sp
    return out, split


def _landlines(rng, city, p, c: str) -> tuple[np.ndarray, np.ndarray]:
    n = len(city)
    length = LANDLINE_NSN_LENGTH[c]
    r = rng.integers(0, 1 << 30, size=n)
    pre = np.array([p.city_landline_prefixes[ci][r[i] % len(p.city_landline_prefixes[ci])]
                    for i, ci in enumerate(city)], dtype=object)
    out = np.empty(n, dtype=object)
    split = np.empty(n, dtype=np.int64)
    for L in np.unique([len(x) for x in pre]) if n else []:
        m = np.array([len(x) == L for x in pre])
        out[m] = pre[m] + _digits(rng, int(m.sum()), length - int(L))
        split[m] = int(L) - 1  # area code without the first subscriber digit
    return out, split


def _ascii_token(s: str, cache: dict) -> str:
    v = cache.get(s)
    if v is None:
        from unidecode import unidecode

        v = "".join(ch for ch in unidecode(s).lower() if ch.isalnum())
        cache[s] = v
    return v


def _emails(rng, first, last, dob, country) -> np.ndarray:
    n = len(first)
    cache: dict = {}
    pattern = rng.integers(0, 8, size=n)
    num = rng.integers(1, 100, size=n)
    dom = np.empty(n, dtype=object)
    for ci, c in enumerate(COUNTRIES):
        m = country == ci
        names = [d for d, _ in EMAIL_DOMAINS[c]]
        w = np.array([x for _, x in EMAIL_DOMAINS[c]])
        dom[m] = np.array(names, dtype=object)[rng.choice(len(names), size=int(m.sum()), p=w / w.sum())]
    year = (dob.astype("datetime64[D]").astype("datetime64[Y]").astype(int) + 1970) % 100
    out = np.empty(n, dtype=object)
    for i in range(n):
        f = _ascii_token(first[i], cache)
        last_i = last[i].split(" ")[0]
        l_ = _ascii_token(last_i, cache)
        k = pattern[i]
        if k == 0:
            local = f"{f}.{l_}"
        elif k == 1:
            local = f"{f}{l_}"
        elif k == 2:
            local = f"{f[0]}{l_}"
        elif k == 3:
            local = f"{f}_{l_}"
        elif k == 4:
            local = f"{f}.{l_}{num[i]}"
        elif k == 5:
            local = f"{l_}.{f}"
        elif k == 6:
            local = f"{f}{year[i]:02d}"
        else:
            local = f"{f[0]}.{l_}{year[i]:02d}"
        out[i] = f"{local}@{dom[i]}"
    return out


def _make_unique(rng, emails: np.ndarray) -> np.ndarray:
    """Append digits to repeated e-mail addresses until all are unique (providers enforce it)."""
    import pandas as pd

    emails = emails.copy()
    for _ in range(20):
        dup = pd.Series(emails).duplicated().to_numpy()
        if not dup.any():
            return emails
        idx = np.flatnonzero(dup)
        suffix = rng.integers(1, 1000, size=len(idx))
        for j, i in enumerate(idx):
            local, dom = emails[i].split("@", 1)
            emails[i] = f"{local}{suffix[j]}@{dom}"
    return emails


def _marital(rng, age_years: np.ndarray) -> np.ndarray:
    u = rng.random(len(age_years))
    # cumulative probabilities single, married, divorced (rest widowed) by age band
    bands = [(25, (0.90, 1.00, 1.00)), (35, (0.50, 0.95, 1.00)), (55, (0.25, 0.85, 0.98)),
             (200, (0.12, 0.72, 0.85))]
    out = np.empty(len(age_years), dtype=np.int64)
    lo = -1
    for hi, (a, b, c) in bands:
        m = (age_years > lo) & (age_years <= hi) if lo >= 0 else age_years <= hi
        uu = u[m]
        out[m] = np.where(uu < a, 0, np.where(uu < b, 1, np.where(uu < c, 2, 3)))
        lo = hi
    return out


def generate_persons(rng: np.random.Generator, n: int) -> Persons:
    p = pools()
    counts = {k: int(round(v * n)) for k, v in DERIVED_SHARE.items()}
    n_base = n - sum(counts.values())
    if n_base < n * 0.5:
        raise ValueError("too few persons")

    # ---- independent attributes for everybody (derived persons are overridden below) ----
    country = rng.choice(len(COUNTRIES), size=n, p=np.asarray(COUNTRY_WEIGHTS))
    locale = country.copy()
    immigrant = rng.random(n) < 0.05
    locale[immigrant] = rng.integers(0, len(COUNTRIES), size=int(immigrant.sum()))
    gender = rng.integers(0, 2, size=n)
    dob_lo = int(np.datetime64("1935-01-01", "D").astype(np.int64))
    dob_hi = int(np.datetime64("2006-12-31", "D").astype(np.int64))
    # more adults of working age than very old ones
    age_u = rng.beta(1.6, 2.2, size=n)
    dob = (dob_hi - age_u * (dob_hi - dob_lo)).astype(np.int64)
    first_idx = _sample_names(rng, locale, gender, p.first_slices)
    sur1 = _sample_surnames(rng, locale, p.surname_slices)
    sur2 = np.where(locale == 3, _sample_surnames(rng, locale, p.surname_slices), -1)
    age = (END_DAY - dob) / 365.25
    marital = _marital(rng, age)
    t_mar = np.full(n, INF, dtype=np.int64)
    wed = marital > 0
    in_window = rng.random(n) < 0.2
    t_in = rng.integers(START, END - 30 * DAY, size=n)
    t_mar[wed] = np.where(in_window[wed], t_in[wed], NEG)
    # married women take a new surname (by country custom)
    change_p = np.array([SURNAME_CHANGE_AT_MARRIAGE[c] for c in COUNTRIES])[country]
    takes = wed & (gender == 1) & (rng.random(n) < change_p)
    msur1 = np.where(takes, _sample_surnames(rng, locale, p.surname_slices), -1)
    msur2 = np.full(n, -1)

    # addresses: up to two moves, mostly within the same city
    n_moves = rng.choice(3, size=n, p=[0.6, 0.3, 0.1])
    mt = np.sort(rng.integers(START, END, size=(n, N_ADDR - 1)), axis=1)
    addr_t = np.where(np.arange(N_ADDR - 1)[None, :] < n_moves[:, None], mt, INF)
    city = np.empty((n, N_ADDR), dtype=np.int64)
    city[:, 0] = _sample_cities(rng, country, p)
    for v in range(1, N_ADDR):
        other = _sample_cities(rng, country, p)
        stay = rng.random(n) < 0.6
        city[:, v] = np.where(stay, city[:, v - 1], other)
    flat_country = np.repeat(country, N_ADDR)
    street = _streets(rng, flat_country, p).reshape(n, N_ADDR)
    postcode = _postcodes(rng, flat_country, city.reshape(-1), p).reshape(n, N_ADDR)

    mobile = np.empty((n, 2), dtype=object)
    mobile_split = np.empty(n, dtype=np.int64)
    mobile[:, 0], mobile_split = _mobiles(rng, country, city[:, 0], p)
    mobile[:, 1], _ = _mobiles(rng, country, city[:, -1], p)
    mobile_t = np.where(rng.random(n) < 0.2, rng.integers(START, END, size=n), INF)
    has_landline = rng.random(n) < 0.25
    landline = np.full(n, None, dtype=object)
    landline_split = np.zeros(n, dtype=np.int64)
    for ci, c in enumerate(COUNTRIES):
        m = np.flatnonzero(has_landline & (country == ci))
        if len(m):
            landline[m], landline_split[m] = _landlines(rng, city[m, 0], p, c)

    med_of = np.array([INCOME_MEDIAN[c] for c in COUNTRIES])
    med = med_of[country]
    age_factor = np.clip(0.55 + 0.025 * np.minimum(age, 55) - 0.012 * np.maximum(age - 65, 0), 0.4, 2.0)
    inc0 = med * age_factor * rng.lognormal(0.0, 0.45, size=n)
    inc1 = inc0 * (1 + rng.normal(0.08, 0.10, size=n))
    income = (np.round(np.stack([inc0, inc1], axis=1) / 100) * 100).astype(np.int64)
    income_t = np.where(rng.random(n) < 0.4, rng.integers(START, END, size=n), INF)

    household = np.arange(n, dtype=np.int64)
    relation = np.full(n, "self", dtype=object)
    related = np.full(n, -1, dtype=np.int64)
    suffix = np.full(n, "", dtype=object)

    # ---- derived persons (hard negatives) ----
    base = np.arange(n_base)
    pos = n_base
    base_age = age[:n_base]

    def share_household(d, a):
        old_country = country[d].copy()
        household[d] = household[a]
        addr_t[d] = addr_t[a]
        city[d] = city[a]
        street[d] = street[a]
        postcode[d] = postcode[a]
        country[d] = country[a]
        locale[d] = locale[a]
        need = landline[a] == None  # noqa: E711
        # a shared household mostly has a landline everybody gives
        give = need & (rng.random(len(a)) < 0.6)
        for ci, c in enumerate(COUNTRIES):
            mm = give & (country[a] == ci)
            if mm.any():
                landline[a[mm]], landline_split[a[mm]] = _landlines(rng, city[a[mm], 0], p, c)
        landline[d] = landline[a]
        landline_split[d] = landline_split[a]
        # the derived person now lives in the anchor's country: own phones and income there
        mobile[d, 0], mobile_split[d] = _mobiles(rng, country[d], city[d, 0], p)
        mobile[d, 1], _ = _mobiles(rng, country[d], city[d, -1], p)
        income[d] = (income[d] * (med_of[country[d]] / med_of[old_country])[:, None] / 100).round().astype(np.int64) * 100

    # twins: anchors are single, unmarried persons aged 18-45
    cand = base[(marital[:n_base] == 0) & (base_age <= 45)]
    twin_a = rng.choice(cand, size=min(counts["twin"], len(cand)), replace=False)
    twin_d = np.arange(pos, pos + len(twin_a))
    pos += len(twin_a)
    # spouses: anchors are men aged 22+ (not twin anchors)
    cand = np.setdiff1d(base[(gender[:n_base] == 0) & (base_age >= 22)], twin_a)
    sp_a = rng.choice(cand, size=min(counts["spouse"], len(cand)), replace=False)
    sp_d = np.arange(pos, pos + len(sp_a))
    pos += len(sp_a)
    # juniors: anchors are men aged 45+
    cand = base[(gender[:n_base] == 0) & (base_age >= 45)]
    jr_a = rng.choice(cand, size=min(counts["junior"], len(cand)), replace=False)
    jr_d = np.arange(pos, pos + len(jr_a))
    pos += len(jr_a)
    ns_a = rng.choice(base, size=n - pos, replace=False)
    ns_d = np.arange(pos, n)

    # twins
    d, a = twin_d, twin_a
    share_household(d, a)
    dob[d] = dob[a]
    sur1[d], sur2[d] = sur1[a], sur2[a]
    marital[d] = 0
    t_mar[d] = INF
    msur1[d] = -1
    first_idx[d] = _sample_names(rng, locale[d], gender[d], p.first_slices)
    same = first_idx[d] == first_idx[a]
    for j in np.flatnonzero(same):  # a twin never has the sibling's first name
        idx, _ = p.first_slices[(int(locale[d[j]]), int(gender[d[j]]))]
        k = int(np.searchsorted(idx, first_idx[a[j]]))
        first_idx[d[j]] = idx[(k + 1) % len(idx)]
    relation[d] = "twin"
    related[d] = a

    # spouses: wife of the anchor, married at the same time
    d, a = sp_d, sp_a
    share_household(d, a)
    gender[d] = 1
    first_idx[d] = _sample_names(rng, locale[d], gender[d], p.first_slices)
    dob[d] = np.clip(dob[a] + rng.normal(-700, 1100, size=len(a)).astype(np.int64), dob_lo, dob_hi)
    sur1[d] = _sample_surnames(rng, locale[d], p.surname_slices)
    sur2[d] = np.where(locale[d] == 3, _sample_surnames(rng, locale[d], p.surname_slices), -1)
    t = np.where(rng.random(len(a)) < 0.2, rng.integers(START, END - 30 * DAY, size=len(a)), NEG)
    keep_anchor_date = marital[a] == 1
    t = np.where(keep_anchor_date & (t_mar[a] != INF), t_mar[a], t)
    marital[a] = 1
    marital[d] = 1
    t_mar[a] = t
    t_mar[d] = t
    takes = (rng.random(len(a)) < np.array([SURNAME_CHANGE_AT_MARRIAGE[c] for c in COUNTRIES])[country[d]])
    msur1[d] = np.where(takes, sur1[a], -1)
    msur2[d] = np.where(takes, sur2[a], -1)
    relation[d] = "spouse"
    related[d] = a

    # juniors: son with the father's first name and surname, same address
    d, a = jr_d, jr_a
    share_household(d, a)
    gender[d] = 0
    first_idx[d] = first_idx[a]
    sur1[d], sur2[d] = sur1[a], sur2[a]
    dob[d] = np.minimum(dob[a] + rng.integers(22 * 365, 36 * 365, size=len(a)), dob_hi - rng.integers(0, 2000, size=len(a)))
    marital[d] = 0
    t_mar[d] = INF
    msur1[d] = -1
    english = np.isin(country[a], [0, 1])
    suffix[a[english]] = "Sr."
    suffix[d[english]] = "Jr."
    relation[d] = "junior"
    related[d] = a

    # namesakes: same first name, surname, gender and birth year, otherwise unrelated
    d, a = ns_d, ns_a
    gender[d] = gender[a]
    locale[d] = locale[a]
    country[d] = country[a]
    first_idx[d] = first_idx[a]
    # the namesake has the anchor's current surname (a married name where there is one)
    sur1[d] = np.where(msur1[a] >= 0, msur1[a], sur1[a])
    sur2[d] = np.where(msur1[a] >= 0, msur2[a], sur2[a])
    year_start = dob[a].astype("datetime64[D]").astype("datetime64[Y]").astype("datetime64[D]").astype(np.int64)
    dob[d] = year_start + rng.integers(0, 365, size=len(a))
    msur1[d] = -1
    relation[d] = "namesake"
    related[d] = a
    # namesakes live elsewhere in the same country: re-sample their cities and phones
    city[d, 0] = _sample_cities(rng, country[d], p)
    city[d, 1:] = city[d, :1]
    flat_country = np.repeat(country[d], N_ADDR)
    street[d] = _streets(rng, flat_country, p).reshape(len(d), N_ADDR)
    postcode[d] = _postcodes(rng, flat_country, city[d].reshape(-1), p).reshape(len(d), N_ADDR)
    landline[d] = None
    mobile[d, 0], mobile_split[d] = _mobiles(rng, country[d], city[d, 0], p)
    mobile[d, 1], _ = _mobiles(rng, country[d], city[d, 0], p)

    # an anchor can head two derived persons (husband and father): the household's landline is
    # the head's, whichever step gave it one
    member = np.isin(relation, ["spouse", "twin", "junior"])
    landline[member] = landline[household[member]]
    landline_split[member] = landline_split[household[member]]

    # ---- strings ----
    first = p.first_names[first_idx]
    birth_last = _surname_strings(p, sur1, sur2, gender)
    has_m = msur1 >= 0
    married_last = np.full(n, None, dtype=object)
    married_last[has_m] = _surname_strings(p, msur1[has_m], msur2[has_m], gender[has_m])
    # a woman marrying a man with her own surname has no visible change
    married_last[has_m & (married_last == birth_last)] = None
    t_mar_name = t_mar

    current_last = np.where(married_last != None, married_last, birth_last)  # noqa: E711
    email = np.empty((n, 2), dtype=object)
    email[:, 0] = _emails(rng, first, np.where(t_mar_name <= START, current_last, birth_last), dob, country)
    email[:, 1] = _emails(rng, first, current_last, dob, country)
    flat = _make_unique(rng, email.reshape(-1))
    email = flat.reshape(n, 2)
    email_t = np.where(rng.random(n) < 0.3, rng.integers(START, END, size=n), INF)
    # a new surname usually brings a new e-mail address
    renamed = (married_last != None) & (t_mar > START) & (t_mar < END)  # noqa: E711
    email_t = np.where(renamed & (rng.random(n) < 0.7), np.minimum(t_mar + 30 * DAY, END - DAY), email_t)

    perm = rng.permutation(n)
    person_id = np.array([f"P{x + 1:07d}" for x in perm], dtype=object)
    return Persons(
        n=n, person_id=person_id, country=country, locale=locale, gender=gender, dob=dob,
        first=first, birth_last=birth_last, married_last=married_last, t_marriage=t_mar,
        marital=MARITAL[marital], suffix=suffix, addr_t=addr_t, addr_street=street,
        addr_city=city, addr_postcode=postcode, email=email, email_t=email_t, mobile=mobile,
        mobile_t=mobile_t, landline=landline, landline_split=landline_split, income=income,
        income_t=income_t, household=household, relation=relation, related=related,
        extras={"mobile_split": mobile_split},
    )
