"""A small hand-built lake for the customer 360, segment and notebook tests.

Four current customers (C1..C4), an entity map with a merged record (crm:5 -> C1) and a retired
customer (crm:9 -> C9, no current golden record), and six fact sources in bronze: web-shop orders
(multi-currency, one re-ingested, one unknown currency, unmatched and blank references), POS
transactions (day-first timestamps, decimal comma, no currency column), invoices, payments,
tickets and marketing responses. ``EXPECTED`` holds the figures computed by hand from these rows
(see the comments next to the rows).

The lake is built once per test session (``shared_lake``) and only read afterwards.
"""

from __future__ import annotations

import logging
import textwrap
from datetime import date, datetime
from pathlib import Path

from cdi.config import load_config
from cdi.lake import Lake

AS_OF = date(2026, 6, 30)
RUN_ID = "r-test-360"

CONFIG = """
name: c360-test
lake_root: {lake_root}
spark:
  master: local[1]
  shuffle_partitions: 1
sources:
  - {{name: crm, kind: customers, format: csv, path: /nonexistent/crm.csv, id_columns: [id]}}
  - name: webshop
    kind: orders
    format: csv
    path: /nonexistent/orders.csv
    id_columns: [order_id]
    customer_ref: {{column: customer_no, source: crm}}
    mapping:
      fact_id: order_id
      event_at: {{column: order_ts, formats: ["yyyy-MM-dd HH:mm:ss"]}}
      amount: total_amount
      currency: currency
      channel: channel
  - name: pos
    kind: transactions
    format: csv
    path: /nonexistent/pos.csv
    id_columns: [receipt]
    customer_ref: {{column: card, source: crm}}
    mapping:
      event_at: {{column: ts, formats: ["dd.MM.yyyy HH:mm"]}}
      amount: betrag
  - name: invoices
    kind: invoices
    format: csv
    path: /nonexistent/invoices.csv
    id_columns: [invoice_id]
    customer_ref: {{column: customer_no, source: crm}}
    mapping:
      fact_id: invoice_id
      event_at: issued_at
      amount: amount
      currency: currency
      due_at: due_at
      status: status
  - name: payments
    kind: payments
    format: csv
    path: /nonexistent/payments.csv
    id_columns: [payment_id]
    customer_ref: {{column: customer_no, source: crm}}
    mapping:
      event_at: paid_at
      amount: amount
      currency: currency
      reference_id: invoice_id
  - name: support
    kind: tickets
    format: csv
    path: /nonexistent/tickets.csv
    id_columns: [ticket_id]
    customer_ref: {{column: customer_no, source: crm}}
    mapping:
      event_at: opened_at
      closed_at: closed_at
      status: status
  - name: marketing
    kind: interactions
    format: csv
    path: /nonexistent/marketing.csv
    id_columns: [response_id]
    customer_ref: {{column: customer_no, source: crm}}
    mapping:
      event_at: responded_at
      campaign: campaign
      consent_email: consent_email
      consent_sms: consent_sms
      consent_phone: consent_phone
customer_360:
  currency: EUR
  rates: {{EUR: 1.0, USD: 0.5, GBP: 1.2}}
  as_of: "2026-06-30"
  late_payment_days: 0
  source_currencies: {{pos: GBP}}
segments:
  - {{name: women, description: all women, where: "gender = 'F'"}}
  - {{name: gb_buyers, where: "country = 'GB' AND orders > 0"}}
  - {{name: mid_income, where: "income_band = '40k-60k'"}}
  - {{name: nobody, where: "age > 200"}}
"""

GOLDEN_COLUMNS = (
    "customer_id first_name last_name full_name date_of_birth gender email phone address_line1 city postcode "
    "region country marital_status income income_currency valid_from valid_to is_current run_id"
).split()

_CURRENT = datetime(2026, 1, 1)
GOLDEN = [
    # C1: turns 36 the day after as_of -> 35 -> 35-44; 50k EUR -> 40k-60k; an older version from 2020 (tenure)
    ("C1", "Anna", "Nowak", "Anna Nowak", date(1990, 7, 1), "F", "anna@example.com", "+48601000001", "ul. Lipowa 1",
     "Warszawa", "00-001", "Mazowieckie", "PL", "married", 50000.0, "EUR", _CURRENT, None, True, "r0"),
    ("C1", "Anna", "Kowalska", "Anna Kowalska", date(1990, 7, 1), "F", "anna@example.com", None, None,
     "Warszawa", None, "Mazowieckie", "PL", "single", 40000.0, "EUR", datetime(2020, 1, 1), _CURRENT, False, "r0"),
    # C2: 26 on as_of (birthday); 100k USD x 0.5 = 50k EUR -> 40k-60k; no phone
    ("C2", "Ben", "Smith", "Ben Smith", date(2000, 6, 30), "M", "ben@example.com", None, "1 High St",
     "London", "SW1A 1AA", "England", "GB", "single", 100000.0, "USD", _CURRENT, None, True, "r0"),
    # C3: no birth date, no income -> unknown bands; no e-mail
    ("C3", "Cleo", "Meyer", "Cleo Meyer", None, "X", None, "+4915100000003", "Hauptstr. 3",
     "München", "80331", "Bavaria", "DE", None, None, None, _CURRENT, None, True, "r0"),
    # C4: 76 -> 65+; 30k GBP x 1.2 = 36k EUR -> 20k-40k; no facts at all
    ("C4", "Dan", "Brown", "Dan Brown", date(1950, 1, 1), "M", "dan@example.com", "+447700900004", "4 Low Rd",
     "Leeds", "LS1 1AA", "England", "GB", "widowed", 30000.0, "GBP", _CURRENT, None, True, "r0"),
]  # fmt: skip

ENTITY_MAP = [
    ("crm:1", "crm", "1", "C1"),
    ("crm:2", "crm", "2", "C2"),
    ("crm:3", "crm", "3", "C3"),
    ("crm:4", "crm", "4", "C4"),
    ("crm:5", "crm", "5", "C1"),  # a second CRM record merged into C1
    ("crm:9", "crm", "9", "C9"),  # a customer with no current golden record
]

PAIRS = [
    ("crm:1", "crm:5", 0.99, 9.5),
    ("crm:2", "crm:4", 0.12, -2.7),
    ("crm:3", "crm:4", 0.02, -5.4),
]

# (table, id column, rows as dicts; "_batch"/"_ingested" give the lineage of re-ingested versions)
BRONZE = {
    "webshop": ("order_id", [
        {"order_id": "o1", "customer_no": "1", "order_ts": "2026-06-01 10:00:00", "total_amount": "90.00",
         "currency": "EUR", "channel": "Web", "_batch": "b1", "_ingested": datetime(2026, 6, 2)},
        # re-ingested with the corrected amount: the latest version counts (100 EUR)
        {"order_id": "o1", "customer_no": "1", "order_ts": "2026-06-01 10:00:00", "total_amount": "100.00",
         "currency": "EUR", "channel": "Web", "_batch": "b2", "_ingested": datetime(2026, 6, 3)},
        {"order_id": "o2", "customer_no": "5", "order_ts": "2026-03-01 09:00:00", "total_amount": "50.00",
         "currency": "usd", "channel": "app"},  # C1 via crm:5, 25 EUR
        {"order_id": "o3", "customer_no": "2", "order_ts": "2026-05-15 12:00:00", "total_amount": "1,000.00",
         "currency": "USD", "channel": "web"},  # C2, 500 EUR
        {"order_id": "o4", "customer_no": "2", "order_ts": "2025-12-01 12:00:00", "total_amount": "20",
         "currency": "CHF", "channel": "web"},  # C2, no CHF rate: an order without revenue
        {"order_id": "o5", "customer_no": "77", "order_ts": "2026-06-01 10:00:00", "total_amount": "30",
         "currency": "EUR", "channel": "web"},  # no such CRM record: unmatched
        {"order_id": "o6", "customer_no": "9", "order_ts": "2026-06-01 10:00:00", "total_amount": "30",
         "currency": "EUR", "channel": "web"},  # retired customer C9: unmatched
        {"order_id": "o7", "customer_no": " ", "order_ts": "2026-06-01 10:00:00", "total_amount": "30",
         "currency": "EUR", "channel": "web"},  # no reference
    ]),
    "pos": ("receipt", [
        {"receipt": "t1", "card": "3", "ts": "15.06.2026 14:30", "betrag": "10,00"},  # C3, 10 GBP = 12 EUR
        {"receipt": "t2", "card": "1", "ts": "01.01.2026 08:00", "betrag": "1.234,50"},  # C1, 1481.40 EUR
    ]),
    "invoices": ("invoice_id", [
        {"invoice_id": "i1", "customer_no": "1", "issued_at": "2026-04-01", "amount": "200.00", "currency": "EUR",
         "due_at": "2026-04-30", "status": "open"},  # paid on time by p1
        {"invoice_id": "i2", "customer_no": "1", "issued_at": "2026-05-01", "amount": "100.00", "currency": "EUR",
         "due_at": "2026-05-31", "status": "open"},  # paid late by p2 (2026-06-10)
        {"invoice_id": "i3", "customer_no": "2", "issued_at": "2026-05-01", "amount": "80.00", "currency": "GBP",
         "due_at": "2026-06-15", "status": "open"},  # 96 EUR, unpaid past due: late
        {"invoice_id": "i4", "customer_no": "2", "issued_at": "2026-06-20", "amount": "40.00", "currency": "EUR",
         "due_at": "2026-07-20", "status": "open"},  # unpaid, not yet due
        {"invoice_id": "i5", "customer_no": "3", "issued_at": "2026-02-01", "amount": "50.00", "currency": "EUR",
         "due_at": "2026-03-01", "status": "PAID"},  # paid by status, no payment fact: not late
    ]),
    "payments": ("payment_id", [
        {"payment_id": "p1", "customer_no": "1", "paid_at": "2026-04-20", "amount": "200.00", "currency": "EUR",
         "invoice_id": "i1"},
        {"payment_id": "p2", "customer_no": "5", "paid_at": "2026-06-10", "amount": "100.00", "currency": "EUR",
         "invoice_id": "i2"},
        {"payment_id": "p3", "customer_no": "2", "paid_at": "2026-06-01", "amount": "30.00", "currency": "EUR",
         "invoice_id": None},  # on account
    ]),
    "support": ("ticket_id", [
        {"ticket_id": "k1", "customer_no": "1", "opened_at": "2026-06-20 09:00:00", "closed_at": None, "status": "open"},
        {"ticket_id": "k2", "customer_no": "1", "opened_at": "2026-02-01 00:00:00", "closed_at": "2026-02-03 10:00:00",
         "status": "closed"},
        {"ticket_id": "k3", "customer_no": "3", "opened_at": "2026-05-01 00:00:00", "closed_at": None,
         "status": "Resolved"},
    ]),
    "marketing": ("response_id", [
        {"response_id": "m1", "customer_no": "1", "responded_at": "2026-01-10", "campaign": "spring",
         "consent_email": "Y", "consent_sms": "N", "consent_phone": ""},
        {"response_id": "m2", "customer_no": "1", "responded_at": "2026-05-10", "campaign": "summer",
         "consent_email": "N", "consent_sms": "", "consent_phone": "Y"},
        {"response_id": "m3", "customer_no": "2", "responded_at": "2026-03-01", "campaign": "spring",
         "consent_email": "yes", "consent_sms": "Y", "consent_phone": "Y"},
        {"response_id": "m4", "customer_no": "3", "responded_at": "2026-04-01", "campaign": "spring",
         "consent_email": "Y", "consent_sms": "Y", "consent_phone": "N"},
    ]),
}  # fmt: skip

# hand-computed figures per customer (see the comments on the rows above)
EXPECTED = {
    "C1": dict(orders=3, revenue=1606.4, avg_order_value=535.47, first_order_at=datetime(2026, 1, 1, 8),
               last_order_at=datetime(2026, 6, 1, 10), channels=["app", "pos", "web"],
               invoices=2, invoiced=300.0, payments=2, paid=300.0, outstanding_balance=0.0, unpaid_invoices=0,
               late_payments=1, tickets=2, open_tickets=1, last_contact_at=datetime(2026, 6, 20, 9),
               responses=2, consent_email=False, consent_sms=False, consent_phone=True,
               # latest answer per channel, from the fact that gave it (m2 left sms blank: m1's answer stands)
               consent_email_from="marketing:m2", consent_email_at=datetime(2026, 5, 10),
               consent_sms_from="marketing:m1", consent_sms_at=datetime(2026, 1, 10),
               consent_phone_from="marketing:m2", consent_phone_at=datetime(2026, 5, 10),
               reachable_email=False, reachable_sms=False, reachable_phone=True,
               recency_days=29, r_score=2, f_score=3, m_score=3, rfm_score="233",
               first_seen_at=datetime(2020, 1, 1), tenure_days=(AS_OF - date(2020, 1, 1)).days,
               age=35, age_band="35-44", gender="F", income_reporting=50000.0, income_band="40k-60k",
               region="Mazowieckie", region_code="PL-14"),
    "C2": dict(orders=2, revenue=500.0, avg_order_value=500.0, first_order_at=datetime(2025, 12, 1, 12),
               last_order_at=datetime(2026, 5, 15, 12), channels=["web"],
               invoices=2, invoiced=136.0, payments=1, paid=30.0, outstanding_balance=106.0, unpaid_invoices=2,
               late_payments=1, tickets=0, open_tickets=0, last_contact_at=None,
               responses=1, consent_email=True, consent_sms=True, consent_phone=True,
               reachable_email=True, reachable_sms=False, reachable_phone=False,
               recency_days=46, r_score=1, f_score=2, m_score=2, rfm_score="122",
               first_seen_at=datetime(2025, 12, 1, 12), tenure_days=(AS_OF - date(2025, 12, 1)).days,
               age=26, age_band="25-34", gender="M", income_reporting=50000.0, income_band="40k-60k"),
    "C3": dict(orders=1, revenue=12.0, avg_order_value=12.0, first_order_at=datetime(2026, 6, 15, 14, 30),
               last_order_at=datetime(2026, 6, 15, 14, 30), channels=["pos"],
               invoices=1, invoiced=50.0, payments=0, paid=0.0, outstanding_balance=50.0, unpaid_invoices=0,
               late_payments=0, tickets=1, open_tickets=0, last_contact_at=datetime(2026, 5, 1),
               responses=1, consent_email=True, consent_sms=True, consent_phone=False,
               reachable_email=False, reachable_sms=True, reachable_phone=False,
               recency_days=15, r_score=3, f_score=1, m_score=1, rfm_score="311",
               first_seen_at=datetime(2026, 1, 1), tenure_days=(AS_OF - date(2026, 1, 1)).days,
               age=None, age_band="unknown", gender="X", income_reporting=None, income_band="unknown",
               region="Bayern", region_code="DE-BY"),  # written "Bavaria": the ISO 3166-2 name
    "C4": dict(orders=0, revenue=0.0, avg_order_value=None, first_order_at=None, last_order_at=None, channels=[],
               invoices=0, invoiced=0.0, payments=0, paid=0.0, outstanding_balance=0.0, unpaid_invoices=0,
               late_payments=0, tickets=0, open_tickets=0, last_contact_at=None,
               responses=0, consent_email=None, consent_sms=None, consent_phone=None,
               consent_email_from=None, consent_email_at=None, consent_sms_from=None, consent_phone_at=None,
               reachable_email=False, reachable_sms=False, reachable_phone=False,
               recency_days=None, r_score=0, f_score=0, m_score=0, rfm_score="000",
               first_seen_at=datetime(2026, 1, 1), tenure_days=(AS_OF - date(2026, 1, 1)).days,
               age=76, age_band="65+", gender="M", income_reporting=36000.0, income_band="20k-40k"),
}  # fmt: skip

EXPECTED_UNMATCHED = {
    # source: (facts, matched, unmatched, no_reference, unconvertible, currencies, sample reference)
    "webshop": (7, 4, 2, 1, 1, "CHF", "77"),
    "pos": (2, 2, 0, 0, 0, None, None),
    "invoices": (5, 5, 0, 0, 0, None, None),
    "payments": (3, 3, 0, 0, 0, None, None),
    "support": (3, 3, 0, 0, 0, None, None),
    "marketing": (4, 4, 0, 0, 0, None, None),
}

EXPECTED_SEGMENTS = {"women": ["C1"], "gb_buyers": ["C2"], "mid_income": ["C1", "C2"], "nobody": []}


def write_config(folder: Path, lake_root: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "c360.yaml"
    path.write_text(textwrap.dedent(CONFIG.format(lake_root=lake_root)), encoding="utf-8")
    return path


def write_inputs(spark, lake: Lake) -> None:
    """gold/golden_records, silver/entity_map, silver/pairs and the bronze fact tables."""
    from pyspark.sql import Row

    golden = spark.createDataFrame(
        GOLDEN,
        "customer_id string, first_name string, last_name string, full_name string, date_of_birth date, "
        "gender string, email string, phone string, address_line1 string, city string, postcode string, "
        "region string, country string, marital_status string, income double, income_currency string, "
        "valid_from timestamp, valid_to timestamp, is_current boolean, run_id string",
    )
    lake.write("gold/golden_records", golden, mode="overwrite")
    emap = spark.createDataFrame(
        [r + ("r0",) for r in ENTITY_MAP], "record_key string, source string, source_record_id string, customer_id string, run_id string"
    )
    lake.write("silver/entity_map", emap, mode="overwrite")
    pairs = spark.createDataFrame(
        [r + ("r0",) for r in PAIRS],
        "record_key_l string, record_key_r string, match_probability double, match_weight double, run_id string",
    )
    lake.write("silver/pairs", pairs, mode="overwrite")
    for source, (id_column, rows) in BRONZE.items():
        columns = [c for c in rows[0] if not c.startswith("_")]
        out = []
        for row in rows:
            values = {c: row.get(c) for c in columns}
            values.update(
                _source=source,
                _source_record_id=row[id_column],
                _batch_id=row.get("_batch", "b1"),
                _ingested_at=row.get("_ingested", datetime(2026, 6, 1)),
                _source_file=f"/landing/{source}.csv",
                _row_hash=f"{source}-{row[id_column]}-{row.get('_batch', 'b1')}",
            )
            out.append(Row(**values))
        schema = ", ".join(f"{c} string" for c in columns)
        schema += ", _source string, _source_record_id string, _batch_id string, _ingested_at timestamp, "
        schema += "_source_file string, _row_hash string"
        lake.write(f"bronze/{source}", spark.createDataFrame(out, schema), mode="overwrite")


_SHARED: dict = {}


def shared_lake(spark, tmp_path_factory):
    """(config, lake, figures): the hand-built lake after one ``run_customer_360`` (once per session)."""
    if "lake" not in _SHARED:
        from cdi.gold.customer_360 import run_customer_360
        from cdi.silver.facts import write_facts

        base = tmp_path_factory.mktemp("c360")
        lake_root = base / "lake"
        cfg = load_config(write_config(base / "conf", lake_root))
        lake = Lake(spark, str(lake_root), job="test", run_id=RUN_ID)
        write_inputs(spark, lake)
        write_facts(lake, cfg.fact_sources, cfg.customer_360)
        records: list[logging.LogRecord] = []
        handler = logging.Handler(level=logging.INFO)
        handler.emit = records.append  # type: ignore[method-assign]
        logger = logging.getLogger("cdi.gold.customer_360")
        logger.addHandler(handler)
        level = logger.level
        logger.setLevel(logging.INFO)
        try:
            figures = run_customer_360(lake, cfg.customer_360, cfg.fact_sources, cfg.segments, RUN_ID)
        finally:
            logger.removeHandler(handler)
            logger.setLevel(level)
        _SHARED.update(
            cfg=cfg, lake=lake, figures=figures, conf_path=Path(cfg.config_file),
            log=[(r.levelno, r.getMessage()) for r in records],
        )  # fmt: skip
    return _SHARED
