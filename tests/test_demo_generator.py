"""The demo universe: determinism, corruption rates, malformed rows, truth coverage, hard
negatives, phone validity, orphans and the PostgreSQL loader."""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections import Counter
from datetime import datetime
from pathlib import Path

import pandas as pd
import phonenumbers
import pyarrow.parquet as pq
import pytest
from pg_fixture import postgres_dsn  # noqa: F401  (fixture)
from unidecode import unidecode

from cdi_demo import DEFAULT_RATES, generate
from cdi_demo.sources import PHONE_STYLE

SOURCES = ("crm", "webshop", "pos", "billing", "support", "marketing")
CUSTOMER_FILES = {
    "crm": ("crm/contacts.csv", "contact_id"),
    "webshop": ("webshop/accounts.jsonl", "account_id"),
    "pos": ("pos/loyalty_cards.csv", "card_no"),
    "billing": ("billing/customers.parquet", "billing_id"),
    "support": ("support/tickets.jsonl", "contact_id"),
    "marketing": ("marketing/responses.csv", "lead_id"),
}
NAME_KINDS = {"nickname", "name_swap", "typo", "transposition", "diacritics_stripped", "case_noise",
              "whitespace_noise", "maiden_name"}


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    """3,000 persons with the default rates (≈ 5,000 customer records)."""
    out = tmp_path_factory.mktemp("demo_big")
    return out, generate(3000, 11, out)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo_small")
    return out, generate(300, 5, out)


def _malformed_lines(manifest, path) -> set[int]:
    return {e["line"] for e in manifest["malformed_rows"].get(path, [])}


def _read_csv(out: Path, path: str, manifest) -> pd.DataFrame:
    """Well-formed rows of a generated CSV (malformed lines dropped by the manifest's list)."""
    raw = (out / path).read_bytes().split(b"\n")[:-1]
    bad = _malformed_lines(manifest, path)
    delim = manifest["files"][path]["delimiter"]
    keep = [raw[0]] + [b for i, b in enumerate(raw[1:], start=2) if i not in bad]
    text = b"\n".join(keep).decode("utf-8")
    return pd.read_csv(io.StringIO(text), sep=delim, dtype=str, keep_default_na=False)


def _read_jsonl(out: Path, path: str, manifest) -> list[dict]:
    bad = _malformed_lines(manifest, path)
    rows = []
    for i, b in enumerate((out / path).read_bytes().split(b"\n")[:-1], start=1):
        if i not in bad:
            rows.append(json.loads(b.decode("utf-8")))
    return rows


def _customer_ids(out, manifest, source) -> set[str]:
    path, key = CUSTOMER_FILES[source]
    if path.endswith(".csv"):
        return set(_read_csv(out, path, manifest)[key])
    if path.endswith(".jsonl"):
        return {r[key] for r in _read_jsonl(out, path, manifest)}
    return {str(v) for v in pq.read_table(out / path, columns=[key]).column(key).to_pylist()}


# ------------------------------------------------------------------------------ determinism


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    generate(300, 42, a)
    generate(300, 42, b)
    generate(300, 43, c)
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert len(files) == 14
    for f in files:
        assert (a / f).read_bytes() == (b / f).read_bytes(), f
    assert (a / "crm/contacts.csv").read_bytes() != (c / "crm/contacts.csv").read_bytes()
    assert (a / "truth.csv").read_bytes() != (c / "truth.csv").read_bytes()


def test_rate_overrides_apply(tmp_path):
    m = generate(300, 3, tmp_path, rates={"crm": {"typo": 0.5}, "pos": {"missing_field": 0.0}})
    st = m["corruption_stats"]
    assert m["rates"]["crm"]["typo"] == 0.5
    assert abs(st["crm"]["typo"]["observed"] - 0.5) < 0.12
    assert st["pos"]["missing_field"]["applied"] == 0
    with pytest.raises(ValueError):
        generate(300, 3, tmp_path / "x", rates={"nope": {"typo": 0.1}})


# ---------------------------------------------------------------------------------- rates


def test_corruption_rates_match_configuration(big):
    out, m = big
    corr = pd.read_csv(out / "corruptions.csv", dtype=str, keep_default_na=False)
    counts = Counter(zip(corr.source, corr.corruption))
    seen_kinds = set(corr.corruption)
    for src in SOURCES:
        for kind, rate in DEFAULT_RATES[src].items():
            st = m["corruption_stats"][src][kind]
            assert st["applied"] == counts[(src, kind)], (src, kind)  # the log is the file
            n = st["eligible"]
            assert n > 0, (src, kind)
            sd = math.sqrt(n * rate * (1 - rate))
            assert abs(st["applied"] - rate * n) <= 4 * sd + 2, (src, kind, st)
            if rate > 0:
                assert kind in seen_kinds
    assert seen_kinds == {k for r in DEFAULT_RATES.values() for k, v in r.items() if v > 0}


def test_corruptions_visible_in_the_files(big):
    out, m = big
    corr = pd.read_csv(out / "corruptions.csv", dtype=str, keep_default_na=False)
    persons = pd.read_csv(out / "persons.csv", dtype=str, keep_default_na=False).set_index("person_id")
    truth = pd.read_csv(out / "truth.csv", dtype=str)
    crm = _read_csv(out, "crm/contacts.csv", m).set_index("contact_id")
    crm["person_id"] = truth[truth.source == "crm"].set_index("source_record_id").person_id
    c = corr[corr.source == "crm"]
    kinds = c.groupby("source_record_id").corruption.agg(set)

    def only(kind, allowed=frozenset()):
        return [i for i, ks in kinds.items() if kind in ks and not (ks & NAME_KINDS) - {kind} - allowed]

    nick = c[c.corruption == "nickname"].set_index("source_record_id").detail
    ids = only("nickname")
    assert ids
    for i in ids:
        assert crm.loc[i, "first_name"] == nick[i].split("->")[1]
    for i in only("name_swap"):
        assert crm.loc[i, "last_name"] == persons.loc[crm.loc[i, "person_id"], "first_name"]
    ids = only("maiden_name")
    assert ids
    for i in ids:
        assert crm.loc[i, "last_name"] == persons.loc[crm.loc[i, "person_id"], "maiden_name"]
    for i in c[c.corruption == "diacritics_stripped"].source_record_id:
        assert all(crm.loc[i, f].isascii() for f in ("first_name", "last_name", "street", "city"))
    for i, f in c[c.corruption == "missing_field"][["source_record_id", "detail"]].itertuples(index=False):
        assert crm.loc[i, f] == ""
    for i in c[c.corruption == "email_case"].source_record_id:
        assert crm.loc[i, "email"] != crm.loc[i, "email"].lower()
    stale = c[c.corruption == "stale_address"].source_record_id
    norm = lambda s: " ".join(unidecode(s).split())  # noqa: E731
    differs = [norm(crm.loc[i, "street"]) != norm(persons.loc[crm.loc[i, "person_id"], "street"])
               for i in stale if crm.loc[i, "street"]]
    assert differs and sum(differs) >= 0.95 * len(differs)
    # phone style: CRM's usual style is international ("+48 601 ..."), variants are not
    variant = set(c[c.corruption == "phone_format"].source_record_id)
    assert PHONE_STYLE["crm"][0] == "intl"
    usual = crm[(crm.phone != "") & ~crm.index.isin(variant)].phone
    assert usual.str.match(r"^\+\d{1,2} ").all()
    # webshop birth dates: ISO unless the record has a date_format corruption
    web = {r["account_id"]: r for r in _read_jsonl(out, "webshop/accounts.jsonl", m)}
    alt = set(corr[(corr.source == "webshop") & (corr.corruption == "date_format")].source_record_id)
    iso = re.compile(r"^\d{4}-\d{2}-\d{2}$")
    for i, r in web.items():
        if r["birth_date"] is not None:
            assert bool(iso.match(r["birth_date"])) == (i not in alt)
    lf = set(corr[(corr.source == "webshop") & (corr.corruption == "last_first_order")].source_record_id)
    assert all("," in web[i]["full_name"] for i in lf)
    # billing names are upper case
    bill = pq.read_table(out / "billing/customers.parquet").to_pandas()
    assert (bill.last_name.str.strip() == bill.last_name.str.strip().str.upper()).all()


def test_diacritics_and_locales_present(big):
    out, m = big
    text = (out / "crm/contacts.csv").read_bytes().decode("utf-8", errors="replace")
    for ch in "łóęśżźńąüöäñéí":
        assert ch in text.lower(), ch
    persons = pd.read_csv(out / "persons.csv", dtype=str, keep_default_na=False)
    assert set(persons.country) == {"US", "GB", "PL", "ES", "DE"}


# ------------------------------------------------------------------------------ malformed


def _parse_ts(value: str, fmt: str) -> datetime:
    return datetime.strptime(value, fmt)


TS_FORMATS = {"crm/contacts.csv": "%Y-%m-%d %H:%M:%S", "marketing/responses.csv": "%Y-%m-%d %H:%M:%S",
              "pos/loyalty_cards.csv": "%d.%m.%Y %H:%M", "webshop/accounts.jsonl": "%Y-%m-%dT%H:%M:%SZ",
              "support/tickets.jsonl": "%Y-%m-%dT%H:%M:%SZ"}


def test_malformed_rows_are_broken_as_stated(small):
    out, m = small
    kinds_seen = set()
    for path, entries in m["malformed_rows"].items():
        info = m["files"][path]
        raw = (out / path).read_bytes().split(b"\n")
        assert raw[-1] == b""
        raw = raw[:-1]
        header = next(csv.reader([raw[0].decode()], delimiter=info["delimiter"])) if path.endswith(".csv") else None
        bad = {e["line"]: e for e in entries}
        assert len(raw) - (1 if header else 0) == info["rows"]
        for lineno, b in enumerate(raw, start=1):
            if header and lineno == 1:
                continue
            e = bad.get(lineno)
            kind = e["kind"] if e else None
            kinds_seen.add(kind)
            if kind == "invalid_utf8":
                with pytest.raises(UnicodeDecodeError):
                    b.decode("utf-8")
                continue
            text = b.decode("utf-8")
            if path.endswith(".jsonl"):
                if kind == "invalid_json":
                    with pytest.raises(json.JSONDecodeError):
                        json.loads(text)
                    continue
                row = json.loads(text)
            else:
                fields = next(csv.reader([text], delimiter=info["delimiter"]))
                if kind == "broken_quoting":
                    assert len(fields) < len(header)
                    continue
                assert len(fields) == len(header), (path, lineno)
                row = dict(zip(header, fields))
            if kind == "impossible_date":
                with pytest.raises(ValueError):
                    _parse_ts(row[info["last_updated"]], TS_FORMATS[path])
            elif kind == "overlong_field":
                assert max(len(str(v)) for v in row.values()) > 2000
            elif kind == "missing_id":
                assert row[e["id_column"]] in ("", None)
            else:
                assert kind is None
                assert row[info["customer_key"] or info["id_column"]] not in ("", None)
                assert max(len(str(v)) for v in row.values()) < 2000
                if path in TS_FORMATS:
                    _parse_ts(row[info["last_updated"]], TS_FORMATS[path])
    assert kinds_seen >= {"broken_quoting", "invalid_json", "impossible_date", "invalid_utf8",
                          "overlong_field", "missing_id"}
    truth = pd.read_csv(out / "truth.csv", dtype=str)
    ids = {e["id"] for es in m["malformed_rows"].values() for e in es if e["id"]}
    assert ids and not ids & set(truth.source_record_id)


def test_spark_flags_exactly_the_broken_quoting_lines(small, spark):
    out, m = small
    for path, info in m["files"].items():
        if info["format"] != "csv":
            continue
        raw = (out / path).read_bytes().split(b"\n")[:-1]
        header = raw[0].decode().split(info["delimiter"])
        schema = ", ".join(f"`{c}` STRING" for c in header) + ", _corrupt STRING"
        df = spark.read.csv(str(out / path), header=True, schema=schema, sep=info["delimiter"],
                            mode="PERMISSIVE", columnNameOfCorruptRecord="_corrupt", multiLine=False)
        rows = df.collect()
        assert len(rows) == info["rows"], path  # nothing swallowed
        corrupt = {r["_corrupt"] for r in rows if r["_corrupt"] is not None}
        expected = {raw[e["line"] - 1].decode() for e in m["malformed_rows"][path] if e["kind"] == "broken_quoting"}
        assert expected and corrupt == expected, path


# ---------------------------------------------------------------------------------- truth


def test_truth_covers_exactly_the_well_formed_customer_records(big):
    out, m = big
    truth = pd.read_csv(out / "truth.csv", dtype=str)
    assert list(truth.columns) == ["source", "source_record_id", "person_id"]
    assert not truth.duplicated(["source", "source_record_id"]).any()
    n_persons = m["persons"]
    for src in SOURCES:
        t = truth[truth.source == src]
        assert set(t.source_record_id) == _customer_ids(out, m, src), src
        per_person = t.person_id.value_counts()
        assert 0 < len(per_person) < n_persons  # a subset of persons
        assert (per_person > 1).any(), f"no duplicates in {src}"
        assert m["customer_records"][src]["records"] == len(t)


def test_hard_negatives_exist(big):
    out, m = big
    p = pd.read_csv(out / "persons.csv", dtype=str, keep_default_na=False).set_index("person_id")
    truth = pd.read_csv(out / "truth.csv", dtype=str)
    seen = set(truth.person_id)
    rel = p[p.relation != "self"]
    assert set(rel.relation) == {"spouse", "twin", "junior", "namesake"}
    for pid, r in rel.iterrows():
        a = p.loc[r.related_person_id]
        if r.relation == "twin":
            assert (r.date_of_birth, r.street) == (a.date_of_birth, a.street)
            if r.gender == a.gender:
                assert r.last_name == a.last_name
            else:  # Polish surnames are gendered: Kowalski / Kowalska
                assert r.last_name[:-1] == a.last_name[:-1]
            assert r.first_name != a.first_name and r.household_id == a.household_id
        elif r.relation == "junior":
            assert (r.first_name, r.last_name, r.street) == (a.first_name, a.last_name, a.street)
            assert int(r.date_of_birth[:4]) - int(a.date_of_birth[:4]) >= 18
        elif r.relation == "namesake":
            assert (r.first_name, r.last_name, r.date_of_birth[:4]) == (a.first_name, a.last_name, a.date_of_birth[:4])
            assert r.household_id != a.household_id
        else:  # spouse: same household, same landline
            assert r.street == a.street and r.landline == a.landline
    # the pairs actually reach the sources: both members of some twin/junior pair have records
    for kind in ("twin", "junior", "spouse", "namesake"):
        pairs = rel[rel.relation == kind]
        assert any(pid in seen and r.related_person_id in seen for pid, r in pairs.iterrows()), kind
    suffixed = _read_csv(out, "crm/contacts.csv", m).last_name.str.contains(r" (?:Jr|Sr)\.$")
    assert suffixed.any()
    assert m["hard_negatives"]["twin"] > 0 and m["hard_negatives"]["junior"] > 0


def test_phones_are_valid_for_the_country(big):
    out, m = big
    persons = pd.read_csv(out / "persons.csv", dtype=str, keep_default_na=False).set_index("person_id")
    truth = pd.read_csv(out / "truth.csv", dtype=str)
    country_of = {(s, r): persons.at[p, "country"] for s, r, p in truth.itertuples(index=False)}
    samples = {
        "crm": _read_csv(out, "crm/contacts.csv", m)[["contact_id", "phone"]].values.tolist(),
        "pos": _read_csv(out, "pos/loyalty_cards.csv", m)[["card_no", "phone"]].values.tolist(),
        "marketing": _read_csv(out, "marketing/responses.csv", m)[["lead_id", "phone"]].values.tolist(),
        "webshop": [[r["account_id"], r["phone"]] for r in _read_jsonl(out, "webshop/accounts.jsonl", m)],
        "support": [[r["contact_id"], r["contact_phone"]] for r in _read_jsonl(out, "support/tickets.jsonl", m)],
        "billing": pq.read_table(out / "billing/customers.parquet").to_pandas()[["billing_id", "phone"]]
        .astype(str).values.tolist(),
    }
    for src, rows in samples.items():
        rows = [r for r in rows if r[1] not in ("", None, "None")][:250]
        assert len(rows) > 100
        for rid, phone in rows:
            num = phonenumbers.parse(phone, country_of[(src, rid)])
            assert phonenumbers.is_valid_number(num), (src, rid, phone)
            assert phonenumbers.region_code_for_number(num) == country_of[(src, rid)]
    pos = _read_csv(out, "pos/loyalty_cards.csv", m)
    pl = pos[(pos.store_country == "PL") & (pos.phone != "")].phone
    assert pl.str.match(r"^\d{3} \d{3} \d{3}$|^\d{2} \d{3} \d{2} \d{2}$").mean() > 0.7


def test_facts_reference_customers_with_a_few_orphans(big):
    out, m = big
    accounts = _customer_ids(out, m, "webshop")
    orders = _read_jsonl(out, "webshop/orders.jsonl", m)
    orphans = sum(o["account_id"] not in accounts for o in orders)
    assert orphans == m["facts"]["webshop/orders.jsonl"]["orphans"]
    assert 0 < orphans < 0.05 * len(orders)
    cards = _customer_ids(out, m, "pos")
    tx = _read_csv(out, "pos/transactions.csv", m)
    assert (~tx.card_no.isin(cards)).sum() == m["facts"]["pos/transactions.csv"]["orphans"] > 0
    bill = {int(x) for x in _customer_ids(out, m, "billing")}
    inv = pq.read_table(out / "billing/invoices.parquet").to_pandas()
    pay = pq.read_table(out / "billing/payments.parquet").to_pandas()
    assert (~inv.billing_id.isin(bill)).sum() == m["facts"]["billing"]["orphans"] > 0
    assert set(pay.invoice_id) <= set(inv.invoice_id)
    assert len(set(inv.invoice_id) - set(pay.invoice_id)) > 0  # unpaid invoices
    late = pay.merge(inv[["invoice_id", "due_at"]], on="invoice_id")
    assert (late.paid_at > late.due_at).any()


# ------------------------------------------------------------------------------- postgres


@pytest.mark.postgres
def test_load_crm_into_postgres(small, postgres_dsn):  # noqa: F811
    import psycopg

    from cdi_demo import load_crm_into_postgres

    out, m = small
    res = load_crm_into_postgres(postgres_dsn, out / "crm/contacts.csv")
    broken = {e["line"] for e in m["malformed_rows"]["crm/contacts.csv"]
              if e["kind"] in ("broken_quoting", "invalid_utf8")}
    assert {s["line"] for s in res["lines_skipped"]} == broken
    expected = m["files"]["crm/contacts.csv"]["rows"] - len(broken)
    assert res["rows_loaded"] == expected
    with psycopg.connect(postgres_dsn) as conn:
        assert conn.execute("select count(*) from crm_contacts").fetchone()[0] == expected
        types = {r[0] for r in conn.execute(
            "select data_type from information_schema.columns where table_name = 'crm_contacts'")}
        assert types == {"text"}
        bad_dates = conn.execute("select count(*) from crm_contacts where last_modified like '2023-02-30%' "
                                 "or last_modified like '2022-13-%' or last_modified like '2024-04-31%'").fetchone()[0]
        assert bad_dates == 2  # kept as text, as in the CSV
        name = conn.execute("select first_name from crm_contacts where first_name ~ '[^ -~]' limit 1").fetchone()
        assert name is not None  # UTF-8 survives
    res2 = load_crm_into_postgres(postgres_dsn, out / "crm/contacts.csv")  # re-runnable
    assert res2["rows_loaded"] == expected


def test_demo_data_written_by_another_generator_version_is_generated_again(tmp_path, monkeypatch):
    import json

    from cdi import pipeline
    from cdi.config import CdiConfig
    from cdi_demo import GENERATOR_VERSION

    calls = []
    monkeypatch.setattr(pipeline, "demo_generator", lambda: lambda **kw: calls.append(kw))
    cfg = CdiConfig(lake_root=str(tmp_path / "lake"), demo={"persons": 10, "seed": 1, "out": str(tmp_path / "data")})
    pipeline.ensure_demo_data(cfg)  # absent
    (tmp_path / "data").mkdir()
    manifest = tmp_path / "data" / "manifest.json"
    manifest.write_text(json.dumps({"generator_version": GENERATOR_VERSION}))
    pipeline.ensure_demo_data(cfg)  # current: kept
    manifest.write_text(json.dumps({"generator_version": "0.9"}))
    pipeline.ensure_demo_data(cfg)  # older: its columns are not the configs' any more
    assert [c["out"] for c in calls] == [str(tmp_path / "data")] * 2
