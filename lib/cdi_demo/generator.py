"""Generate the demo customer universe: true persons, six source systems that saw them, their
facts, and the ground truth to score entity resolution against.

    >>> manifest = generate(persons=300, seed=7, out="/tmp/demo")  # doctest: +SKIP

Deterministic for a seed: every random draw comes from numpy Generators spawned from one
``SeedSequence(seed)`` (one stream per stage, so changing one source's rates does not reshuffle
the others), and files are written without timestamps of the run. Same seed and same library
versions -> byte-identical files.

Output layout (``out``)::

    crm/contacts.csv            webshop/accounts.jsonl   webshop/orders.jsonl
    pos/loyalty_cards.csv       pos/transactions.csv
    billing/customers.parquet   billing/invoices.parquet billing/payments.parquet
    support/tickets.jsonl       marketing/responses.csv
    truth.csv  corruptions.csv  persons.csv  manifest.json
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pandas as pd

from cdi_demo.corruption import DEFAULT_RATES
from cdi_demo.facts import ORPHAN_RATE, billing_facts, pos_transactions, webshop_orders
from cdi_demo.formatting import format_phones, iso_days
from cdi_demo.persons import END, START, generate_persons
from cdi_demo.pools import COUNTRIES, CURRENCY, pools
from cdi_demo.sources import (
    COVERAGE,
    build_billing,
    build_crm,
    build_marketing,
    build_pos,
    build_support,
    build_webshop,
    national_ids,
)
from cdi_demo.writers import write_parquet, write_text

GENERATOR_VERSION = "1.1.0"  # 1.1: demographics in the web shop, billing and marketing; deaths in the CRM
SOURCES = ("crm", "webshop", "pos", "billing", "support", "marketing")
_STREAMS = ("persons", "activity", "nid", *SOURCES, "orders", "transactions", "billing_facts", "write")


def merged_rates(overrides: dict | None = None) -> dict[str, dict[str, float]]:
    """DEFAULT_RATES with per-source overrides ({source: {kind: rate}}) applied."""
    rates = copy.deepcopy(DEFAULT_RATES)
    for src, kinds in (overrides or {}).items():
        if src not in rates:
            raise ValueError(f"unknown source {src!r}; expected one of {SOURCES}")
        for kind, value in kinds.items():
            if not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"rate {src}.{kind}={value} is not a probability")
            rates[src][kind] = float(value)
    return rates


def generate(persons: int, seed: int, out: str | Path, *, rates: dict | None = None) -> dict:
    """Write the demo universe for ``persons`` true persons into ``out``; return the manifest.

    ``rates`` optionally overrides error rates per source, e.g. ``{"crm": {"typo": 0.2}}``.
    """
    if persons < 50:
        raise ValueError("persons must be at least 50")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    all_rates = merged_rates(rates)
    ss = np.random.SeedSequence(int(seed))
    rng = dict(zip(_STREAMS, (np.random.default_rng(s) for s in ss.spawn(len(_STREAMS)))))
    pools()

    P = generate_persons(rng["persons"], int(persons))
    activity = rng["activity"].random(P.n)
    nid = national_ids(rng["nid"], P)

    results = {
        "crm": build_crm(rng["crm"], P, all_rates["crm"], activity),
        "webshop": build_webshop(rng["webshop"], P, all_rates["webshop"], activity),
        "pos": build_pos(rng["pos"], P, all_rates["pos"], activity),
        "billing": build_billing(rng["billing"], P, all_rates["billing"], activity, nid),
        "support": build_support(rng["support"], P, all_rates["support"], activity),
        "marketing": build_marketing(rng["marketing"], P, all_rates["marketing"], activity),
    }
    orders, orders_info = webshop_orders(rng["orders"], results["webshop"])
    txns, txns_info = pos_transactions(rng["transactions"], results["pos"])
    bill_tables, bill_info = billing_facts(rng["billing_facts"], results["billing"])

    tables = [t for s in SOURCES for t in results[s].tables]
    tables = tables[:2] + [orders] + tables[2:3] + [txns] + tables[3:4] + bill_tables + tables[4:]
    files: dict[str, dict] = {}
    malformed: dict[str, list[dict]] = {}
    for t in tables:
        if t.fmt == "parquet":
            files[t.path] = write_parquet(out, t)
        else:
            info, entries = write_text(out, t, rng["write"])
            files[t.path] = info
            malformed[t.path] = entries
        files[t.path].update({"id_column": t.id_column, "customer_key": t.customer_key,
                              "last_updated": t.last_updated})

    # ground truth: one row per well-formed customer record
    truth = pd.concat([
        pd.DataFrame({"source": s, "source_record_id": results[s].record_ids,
                      "person_id": P.person_id[results[s].record_pid]}) for s in SOURCES
    ], ignore_index=True)
    truth.to_csv(out / "truth.csv", index=False, lineterminator="\n")

    corr = pd.concat([results[s].log.frame(results[s].record_ids) for s in SOURCES], ignore_index=True)
    corr.to_csv(out / "corruptions.csv", index=False, lineterminator="\n")

    _write_persons(out, P, nid)

    records = {}
    for s in SOURCES:
        r = results[s]
        per_person = np.bincount(r.record_pid, minlength=P.n)
        records[s] = {
            "records": int(len(r.record_ids)),
            "persons": int((per_person > 0).sum()),
            "persons_with_duplicates": int((per_person > 1).sum()),
            **r.info,
        }
    stats = {s: {k: {**v, "rate": all_rates[s].get(k, 0.0),
                     "observed": round(v["applied"] / v["eligible"], 4) if v["eligible"] else None}
                 for k, v in sorted(results[s].log.stats.items())} for s in SOURCES}
    relation_counts = pd.Series(P.relation).value_counts().sort_index()
    manifest = {
        "generator": "cdi_demo",
        "generator_version": GENERATOR_VERSION,
        "seed": int(seed),
        "persons": int(P.n),
        "history": {"start": str(np.datetime64(START, "s")) + "Z", "end": str(np.datetime64(END, "s")) + "Z"},
        "files": files,
        "customer_records": records,
        "customer_records_total": int(len(truth)),
        "facts": {"webshop/orders.jsonl": orders_info, "pos/transactions.csv": txns_info,
                  "billing": bill_info},
        "malformed_rows": malformed,
        "rates": all_rates,
        "coverage": COVERAGE,
        "orphan_rate": ORPHAN_RATE,
        "corruption_stats": stats,
        "hard_negatives": {k: int(v) for k, v in relation_counts.items() if k != "self"},
    }
    with open(out / "manifest.json", "w", encoding="utf-8") as fh:
        json.dump(manifest, fh, indent=2, ensure_ascii=False, sort_keys=False)
        fh.write("\n")
    return manifest


def _write_persons(out: Path, P, nid) -> None:
    """The true current state (at the end of the history) of every person, for golden-record
    checks and for tests of the hard negatives."""
    p = pools()
    cur_last = np.where(P.married_last != None, P.married_last, P.birth_last)  # noqa: E711
    maiden = np.where(P.married_last != None, P.birth_last, "")  # noqa: E711
    v = P.address_version(np.arange(P.n), np.full(P.n, END))
    rows = np.arange(P.n)
    city = P.addr_city[rows, v]
    mv = (P.mobile_t <= END).astype(np.int64)
    ev = (P.email_t <= END).astype(np.int64)
    iv = (P.income_t <= END).astype(np.int64)
    related = np.where(P.related >= 0, P.person_id[np.maximum(P.related, 0)], "")
    df = pd.DataFrame({
        "person_id": P.person_id,
        "household_id": [f"H{h + 1:07d}" for h in P.household],
        "relation": P.relation,
        "related_person_id": related,
        "first_name": P.first,
        "last_name": cur_last,
        "maiden_name": maiden,
        "suffix": P.suffix,
        "gender": np.where(P.gender == 1, "F", "M"),
        "date_of_birth": iso_days(P.dob),
        "marital_status": P.marital,
        "married_at": [("" if t == np.iinfo(np.int64).max else ("before " + str(np.datetime64(START, "s"))[:10] if t < START
                        else str(np.datetime64(int(t), "s")) + "Z")) for t in P.t_marriage.tolist()],
        "email": P.email[rows, ev],
        "mobile": format_phones(P.country, P.mobile[rows, mv], P.extras["mobile_split"],
                                np.full(P.n, "e164", dtype=object)),
        "landline": format_phones(P.country, P.landline, P.landline_split, np.full(P.n, "e164", dtype=object)),
        "street": P.addr_street[rows, v],
        "postcode": P.addr_postcode[rows, v],
        "city": p.city_name[city],
        "region": p.city_region[city],
        "country": np.array(COUNTRIES, dtype=object)[P.country],
        "address_moves": (P.addr_t < np.iinfo(np.int64).max).sum(axis=1),
        "national_id": nid,
        "annual_income": P.income[rows, iv],
        "currency": np.array([CURRENCY[c] for c in COUNTRIES], dtype=object)[P.country],
    })
    df = df.sort_values("person_id", kind="stable")
    df.to_csv(out / "persons.csv", index=False, lineterminator="\n")

