"""Hand-rolled, deterministic messy customer records for the linkage tests.

The rows look like ``silver/records`` after standardisation (canonical attributes plus the
``*_std`` match columns), with the usual trouble of multi-source data: typos, nicknames,
first/last swaps, day/month transpositions, missing values, a shared placeholder e-mail, and
the hard negatives that must never merge (twins, father and son).

    >>> rows, truth = messy_records(persons=40, seed=1)
    >>> df = records_frame(spark, rows)  # doctest: +SKIP
"""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta

from pyspark.sql.types import (
    ArrayType,
    DateType,
    DoubleType,
    IntegerType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

RECORD_FIELDS = [
    ("record_key", StringType()),
    ("source", StringType()),
    ("source_record_id", StringType()),
    ("first_name", StringType()),
    ("middle_name", StringType()),
    ("last_name", StringType()),
    ("full_name", StringType()),
    ("date_of_birth", DateType()),
    ("gender", StringType()),
    ("email", StringType()),
    ("phone", StringType()),
    ("address_line1", StringType()),
    ("address_line2", StringType()),
    ("city", StringType()),
    ("postcode", StringType()),
    ("region", StringType()),
    ("country", StringType()),
    ("national_id", StringType()),
    ("marital_status", StringType()),
    ("income", DoubleType()),
    ("updated_at", TimestampType()),
    ("first_name_std", StringType()),
    ("last_name_std", StringType()),
    ("full_name_std", StringType()),
    ("given_name_canonical", StringType()),
    ("dob_year", IntegerType()),
    ("email_std", StringType()),
    ("email_user", StringType()),
    ("phone_std", StringType()),
    ("postcode_std", StringType()),
    ("city_std", StringType()),
    ("address_std", StringType()),
    ("quality_flags", StringType()),
    ("reference_keys", ArrayType(StringType())),
]
RECORDS_SCHEMA = StructType([StructField(n, t, True) for n, t in RECORD_FIELDS])

NICKNAMES = {
    "robert": ["bob", "rob", "bobby"],
    "william": ["bill", "will", "billy"],
    "elizabeth": ["liz", "beth", "betty"],
    "margaret": ["maggie", "peggy"],
    "james": ["jim", "jimmy"],
    "katherine": ["kate", "kathy"],
    "michael": ["mike", "mick"],
    "jennifer": ["jen", "jenny"],
    "thomas": ["tom", "tommy"],
    "richard": ["rick", "dick"],
    "anthony": ["tony"],
    "susan": ["sue", "susie"],
}
FIRST_NAMES = list(NICKNAMES) + [
    "john", "mary", "david", "sarah", "paul", "laura", "peter", "helen", "mark", "emma",
    "andrew", "claire", "steven", "rachel", "daniel", "julia", "george", "alice", "oliver",
    "sophie", "henry", "lucy", "edward", "grace", "samuel", "chloe", "joseph", "hannah",
]
LAST_NAMES = [
    "smith", "jones", "taylor", "brown", "williams", "wilson", "johnson", "davies", "robinson",
    "wright", "thompson", "evans", "walker", "white", "roberts", "green", "hall", "wood",
    "jackson", "clarke", "patel", "harris", "lewis", "martin", "cooper", "king", "baker",
    "turner", "hill", "ward", "morris", "moore", "clark", "lee", "scott", "young", "allen",
    "kowalski", "nowak", "garcia", "fernandez", "muller", "schmidt", "fischer", "weber",
]
CITIES = [
    ("london", "SW1"), ("leeds", "LS1"), ("bristol", "BS1"), ("manchester", "M1"),
    ("york", "YO1"), ("oxford", "OX1"), ("cardiff", "CF1"), ("bath", "BA1"),
]
STREETS = ["high street", "station road", "church lane", "park avenue", "mill road", "queens road"]
DOMAINS = ["example.org", "mail.test", "post.test", "inbox.test"]
SOURCES = ["crm", "shop", "web"]
PLACEHOLDER_EMAIL = "noemail@example.com"
_CANONICAL = {nick: name for name, nicks in NICKNAMES.items() for nick in nicks}


def canonical_given_name(name: str | None) -> str | None:
    return None if name is None else _CANONICAL.get(name, name)


def _typo(rng: random.Random, text: str) -> str:
    if len(text) < 4:
        return text
    i = rng.randrange(1, len(text) - 1)
    op = rng.choice(["swap", "drop", "replace"])
    if op == "swap":
        return text[:i] + text[i + 1] + text[i] + text[i + 2 :]
    if op == "drop":
        return text[:i] + text[i + 1 :]
    return text[:i] + rng.choice("aeioulnrst") + text[i + 1 :]


def _person(rng: random.Random, pid: int) -> dict:
    first = rng.choice(FIRST_NAMES)
    last = rng.choice(LAST_NAMES)
    city, prefix = rng.choice(CITIES)
    dob = date(1940, 1, 1) + timedelta(days=rng.randrange(0, 60 * 365))
    return {
        "pid": pid,
        "first": first,
        "last": last,
        "gender": rng.choice(["F", "M"]),
        "dob": dob,
        "email": f"{first}.{last}{rng.randrange(1, 999)}@{rng.choice(DOMAINS)}",
        "phone": f"+4477{rng.randrange(10_000_000, 99_999_999)}",
        "address": f"{rng.randrange(1, 200)} {rng.choice(STREETS)}",
        "city": city,
        "postcode": f"{prefix}{rng.randrange(1, 9)}{rng.choice('ABDEFGH')}{rng.choice('JLNPQRS')}",
    }


def _hard_negative(rng: random.Random, base: dict, pid: int, kind: str) -> dict:
    other = dict(base, pid=pid)
    if kind == "twin":
        other["first"] = rng.choice([f for f in FIRST_NAMES if f != base["first"]])
        other["email"] = f"{other['first']}.{base['last']}{rng.randrange(1, 999)}@{rng.choice(DOMAINS)}"
        other["phone"] = f"+4477{rng.randrange(10_000_000, 99_999_999)}"
    else:  # father and son: same name and address, a generation apart
        other["dob"] = base["dob"] + timedelta(days=rng.randrange(22 * 365, 35 * 365))
        other["email"] = f"{base['first']}{rng.randrange(1, 99)}@{rng.choice(DOMAINS)}"
        other["phone"] = f"+4477{rng.randrange(10_000_000, 99_999_999)}"
    return other


def _record(rng: random.Random, p: dict, source: str, rid: str, clean: bool) -> dict:
    first, last = p["first"], p["last"]
    dob: date | None = p["dob"]
    email: str | None = p["email"]
    phone: str | None = p["phone"]
    address, city, postcode = p["address"], p["city"], p["postcode"]
    if not clean:
        if rng.random() < 0.08:  # moved house since this source last heard of them
            moved = _person(rng, -1)
            address, city, postcode = moved["address"], moved["city"], moved["postcode"]
        r = rng.random()
        if r < 0.12 and first in NICKNAMES:
            first = rng.choice(NICKNAMES[first])
        elif r < 0.24:
            first = _typo(rng, first)
        if rng.random() < 0.12:
            last = _typo(rng, last)
        if rng.random() < 0.03:
            first, last = last, first
        r = rng.random()
        if r < 0.05:
            dob = None
        elif r < 0.09 and dob.day <= 12 and dob.day != dob.month:
            dob = date(dob.year, dob.day, dob.month)
        elif r < 0.13:
            dob = dob + timedelta(days=rng.choice([-1, 1]))
        r = rng.random()
        if r < 0.25:
            email = None
        elif r < 0.30:
            email = PLACEHOLDER_EMAIL
        elif r < 0.38:
            email = f"{first}{rng.randrange(1, 99)}@{rng.choice(DOMAINS)}"
        if rng.random() < 0.3:
            phone = None
        r = rng.random()
        if r < 0.15:
            address = address.replace("road", "rd").replace("street", "st").replace("avenue", "ave")
        elif r < 0.22:
            address = _typo(rng, address)
    return {
        "record_key": f"{source}:{rid}",
        "source": source,
        "source_record_id": rid,
        "first_name": first.title(),
        "middle_name": None,
        "last_name": last.title(),
        "full_name": f"{first.title()} {last.title()}",
        "date_of_birth": dob,
        "gender": p["gender"],
        "email": email,
        "phone": phone,
        "address_line1": address.title(),
        "address_line2": None,
        "city": city.title(),
        "postcode": postcode,
        "region": None,
        "country": "GB",
        "national_id": None,
        "marital_status": None,
        "income": None,
        "updated_at": datetime(2024, 1, 1),
        "first_name_std": first,
        "last_name_std": last,
        "full_name_std": f"{first} {last}",
        "given_name_canonical": canonical_given_name(first),
        "dob_year": dob.year if dob else None,
        "email_std": email,
        "email_user": email.split("@")[0] if email else None,
        "phone_std": phone,
        "postcode_std": postcode,
        "city_std": city,
        "address_std": address,
        "quality_flags": None,
    }


def messy_records(persons: int = 200, seed: int = 7, hard_negative_share: float = 0.06) -> tuple[list[dict], dict]:
    """Records of ``persons`` people (1-3 records each across three sources) and the truth.

    Returns ``(rows, truth)`` where ``truth`` maps record_key -> person id. A share of the
    people get a twin or a father/son double who shares most attributes but is another person.
    """
    rng = random.Random(seed)
    people = []
    for pid in range(persons):
        people.append(_person(rng, pid))
    next_pid = persons
    for base in list(people):
        if rng.random() < hard_negative_share:
            people.append(_hard_negative(rng, base, next_pid, rng.choice(["twin", "father_son"])))
            next_pid += 1
    rows, truth = [], {}
    counters = {s: 0 for s in SOURCES}
    for p in people:
        n = rng.choices([1, 2, 3], weights=[0.35, 0.4, 0.25])[0]
        for i, source in enumerate(rng.sample(SOURCES, n)):
            counters[source] += 1
            rid = f"{source[0].upper()}{counters[source]:06d}"
            row = _record(rng, p, source, rid, clean=(i == 0))
            rows.append(row)
            truth[row["record_key"]] = p["pid"]
    rng.shuffle(rows)
    return rows, truth


def records_frame(spark, rows: list[dict]):
    """A Spark DataFrame with the silver/records schema from row dicts."""
    ordered = [tuple(r.get(name) for name, _ in RECORD_FIELDS) for r in rows]
    return spark.createDataFrame(ordered, RECORDS_SCHEMA)


def true_pairs(truth: dict) -> set[tuple[str, str]]:
    by_person: dict = {}
    for key, pid in truth.items():
        by_person.setdefault(pid, []).append(key)
    out = set()
    for keys in by_person.values():
        keys = sorted(keys)
        for i in range(len(keys)):
            for j in range(i + 1, len(keys)):
                out.add((keys[i], keys[j]))
    return out


def cluster_pairs(assignments: dict) -> set[tuple[str, str]]:
    """All within-cluster record pairs of a record_key -> cluster mapping."""
    return true_pairs(assignments)
