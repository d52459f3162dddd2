"""Fact tables: web orders, POS transactions, invoices and payments, with a few orphans (rows
whose customer reference matches no customer record)."""

from __future__ import annotations

import numpy as np

from cdi_demo.formatting import iso_seconds, ts_dotted, ts_z
from cdi_demo.persons import DAY, END
from cdi_demo.pools import COUNTRIES, CURRENCY
from cdi_demo.sources import N_STORES, SourceResult, store_ids
from cdi_demo.tables import Table

ORPHAN_RATE = 0.02
_CUR = np.array([CURRENCY[c] for c in COUNTRIES], dtype=object)
# typical basket size per currency (USD, GBP, PLN, EUR, EUR)
_SCALE = np.array([60.0, 45.0, 220.0, 50.0, 50.0])


def _amounts(rng, country: np.ndarray, sigma: float = 0.8, scale: float = 1.0) -> np.ndarray:
    return np.round(_SCALE[country] * scale * rng.lognormal(0.0, sigma, size=len(country)), 2)


def _orphans(rng, n: int) -> np.ndarray:
    return np.flatnonzero(rng.random(n) < ORPHAN_RATE)


def _money(x: np.ndarray) -> np.ndarray:
    return np.char.mod("%.2f", x).astype(object)


def webshop_orders(rng, web: SourceResult) -> tuple[Table, dict]:
    created, country = web.records["created"], web.records["country"]
    n = len(created)
    k = rng.poisson(2.2, size=n)
    acc = np.repeat(np.arange(n), k)
    m = len(acc)
    ts = created[acc] + (rng.random(m) * (END - created[acc])).astype(np.int64)
    order = np.argsort(ts, kind="stable")
    acc, ts = acc[order], ts[order]
    account = web.record_ids[acc].copy()
    orph = _orphans(rng, m)
    account[orph] = np.array([f"WS-{h:010x}" for h in rng.integers(0xe000000000, 0xf000000000, size=len(orph))],
                             dtype=object)
    data = {
        "order_id": np.array([f"O{i:09d}" for i in range(1, m + 1)], dtype=object),
        "account_id": account,
        "order_ts": ts_z(iso_seconds(ts)),
        "channel": np.where(rng.random(m) < 0.6, "web", "app").astype(object),
        "currency": _CUR[country[acc]],
        "total_amount": _amounts(rng, country[acc]),
    }
    t = Table(path="webshop/orders.jsonl", fmt="jsonl", columns=list(data), data=data,
              id_column="order_id", last_updated="order_ts", last_updated_format="isoz",
              malformed=(("invalid_json", 1), ("missing_id", 1)),
              fresh_ids=lambda j: {"order_id": f"O9{j:08d}"}, extra={"fast_json": True})
    return t, {"rows": m, "orphans": int(len(orph))}


def pos_transactions(rng, pos: SourceResult) -> tuple[Table, dict]:
    issued, country, home = pos.records["issued"], pos.records["country"], pos.records["home"]
    n = len(issued)
    k = rng.poisson(4.0, size=n)
    card = np.repeat(np.arange(n), k)
    m = len(card)
    ts = issued[card] + (rng.random(m) * (END - issued[card])).astype(np.int64)
    order = np.argsort(ts, kind="stable")
    card, ts = card[order], ts[order]
    card_no = pos.record_ids[card].copy()
    orph = _orphans(rng, m)
    card_no[orph] = (3_000_000_000 + rng.integers(0, 900_000_000, size=len(orph))).astype(str).astype(object)
    store = np.where(rng.random(m) < 0.8, home[card], rng.integers(1, N_STORES + 1, size=m))
    data = {
        "txn_id": np.array([str(i) for i in range(10_000_001, 10_000_001 + m)], dtype=object),
        "card_no": card_no,
        "txn_ts": ts_dotted(iso_seconds(ts), seconds=True),
        "store_id": store_ids(country[card], store),
        "currency": _CUR[country[card]],
        "amount": _money(_amounts(rng, country[card], sigma=0.9, scale=0.6)),
    }
    t = Table(path="pos/transactions.csv", fmt="csv", columns=list(data), data=data, delimiter=";",
              id_column="txn_id", last_updated="txn_ts", last_updated_format="dotted_s",
              malformed=(("broken_quoting", 1), ("missing_id", 1)),
              fresh_ids=lambda j: {"txn_id": str(99_000_001 + j)})
    return t, {"rows": m, "orphans": int(len(orph))}


def billing_facts(rng, bill: SourceResult) -> tuple[list[Table], dict]:
    import pyarrow as pa

    country, bid = bill.records["country"], bill.records["bid"]
    n = len(bid)
    k = rng.poisson(3.5, size=n)
    cust = np.repeat(np.arange(n), k)
    m = len(cust)
    lo = int(np.datetime64("2019-01-01T00:00:00", "s").astype(np.int64))
    issued = lo + (rng.random(m) * (END - 10 * DAY - lo)).astype(np.int64)
    order = np.argsort(issued, kind="stable")
    cust, issued = cust[order], issued[order]
    billing_id = bid[cust].copy()
    orph = _orphans(rng, m)
    billing_id[orph] = 900_000_000 + rng.integers(0, 1_000_000, size=len(orph))
    due = issued + np.where(rng.random(m) < 0.5, 14, 30) * DAY
    amount = _amounts(rng, country[cust], sigma=0.7, scale=2.0)
    invoice_id = np.arange(1, m + 1, dtype=np.int64) + 5_000_000
    cur = _CUR[country[cust]]
    # payment behaviour: on time, late, in two parts, or not (yet) paid
    u = rng.random(m)
    kind = np.where(u < 0.70, 0, np.where(u < 0.82, 1, np.where(u < 0.87, 2, 3)))
    pay1 = np.where(kind == 0, issued + (rng.random(m) * (due - issued)).astype(np.int64),
                    due + (rng.random(m) * 60 * DAY).astype(np.int64) + DAY)
    pay1 = np.where(kind == 2, issued + (rng.random(m) * (due - issued)).astype(np.int64), pay1)
    part = np.round(amount * rng.uniform(0.3, 0.7, size=m), 2)
    pay2 = pay1 + (rng.random(m) * 45 * DAY).astype(np.int64) + DAY
    has1 = (kind < 3) & (pay1 <= END)
    has2 = (kind == 2) & has1 & (pay2 <= END)
    a1 = np.where(kind == 2, part, amount)
    a2 = np.round(amount - part, 2)
    p_inv = np.concatenate([np.flatnonzero(has1), np.flatnonzero(has2)])
    p_ts = np.concatenate([pay1[has1], pay2[has2]])
    p_amt = np.concatenate([a1[has1], a2[has2]])
    o = np.lexsort((p_inv, p_ts))
    p_inv, p_ts, p_amt = p_inv[o], p_ts[o], p_amt[o]
    dec = pa.decimal128(12, 2)

    def to_dec(x: np.ndarray):
        """float amounts -> decimal(12,2) without per-value Python (unscaled cents buffer)."""
        cents = np.round(x * 100).astype(np.int64)
        raw = np.empty((len(cents), 2), dtype=np.int64)
        raw[:, 0] = cents
        raw[:, 1] = np.where(cents < 0, -1, 0)
        return pa.Array.from_buffers(dec, len(cents), [None, pa.py_buffer(raw.tobytes())])

    inv_data = {
        "invoice_id": invoice_id, "billing_id": billing_id, "issued_at": issued * 1_000_000,
        "due_at": due * 1_000_000, "currency": cur, "amount": to_dec(amount),
    }
    inv_schema = pa.schema([("invoice_id", pa.int64()), ("billing_id", pa.int64()),
                            ("issued_at", pa.timestamp("us", tz="UTC")),
                            ("due_at", pa.timestamp("us", tz="UTC")), ("currency", pa.string()),
                            ("amount", dec)])
    pay_data = {
        "payment_id": np.arange(1, len(p_inv) + 1, dtype=np.int64) + 7_000_000,
        "invoice_id": invoice_id[p_inv], "billing_id": billing_id[p_inv],
        "paid_at": p_ts * 1_000_000, "currency": cur[p_inv], "amount": to_dec(p_amt),
    }
    pay_schema = pa.schema([("payment_id", pa.int64()), ("invoice_id", pa.int64()),
                            ("billing_id", pa.int64()), ("paid_at", pa.timestamp("us", tz="UTC")),
                            ("currency", pa.string()), ("amount", dec)])
    t1 = Table(path="billing/invoices.parquet", fmt="parquet", columns=list(inv_data), data=inv_data,
               id_column="invoice_id", arrow_schema=inv_schema)
    t2 = Table(path="billing/payments.parquet", fmt="parquet", columns=list(pay_data), data=pay_data,
               id_column="payment_id", arrow_schema=pay_schema)
    paid_late = int(((kind == 1) & has1).sum())
    unpaid = int((~has1).sum())
    return [t1, t2], {"invoices": m, "payments": int(len(p_inv)), "orphans": int(len(orph)),
                      "unpaid_invoices": unpaid, "late_invoices": paid_late}
