"""The customer 360: one row per current golden customer with what they bought, owe, asked and
agreed to, their RFM scores, tenure and demographic bands (``gold/customer_360``).

Facts reach customers through the entity map: a fact's customer reference names a record of a
customer source (``<customer_ref.source>:<value>``), the entity map names that record's
customer. Decisions that shape the figures:

* **purchases** are facts of kind ``orders`` *and* ``transactions`` (POS receipts are purchases
  made in a store; their channel is the mapped channel or else the source name). ``orders``,
  ``revenue``, ``avg_order_value``, ``first_order_at``, ``last_order_at`` and ``channels`` count
  both.
* **currencies**: amounts are converted with ``customer_360.rates`` (rate to the reporting
  currency). A fact in a currency without a rate is *counted as unconvertible*, not an error: it
  counts as an order but adds nothing to money figures, and the run reports it per source (log
  line naming currency and source, ``gold/unmatched_facts.unconvertible``).
* **unmatched facts**: a fact whose reference names no record of a current customer is never
  silently dropped: it is counted per source and run in ``gold/unmatched_facts`` and logged.
* **billing**: ``outstanding_balance = invoiced - paid`` (all payments, may be negative as a
  credit). An invoice is settled at its ``closed_at`` or when the payments that reference it
  (``payments.reference_id = invoices.fact_id``) reach its amount; it is *late* when settled more
  than ``late_payment_days`` after ``due_at``, or still unpaid (and not marked paid by status)
  that many days past due at ``as_of``.
* **support**: a ticket is open while it has no ``closed_at`` and its status is not one of
  closed/resolved/done/cancelled; ``last_contact_at`` is the latest ticket open or close time.
* **marketing**: ``consent_<channel>`` is the answer of the latest response that answered for
  that channel (null when never asked), ``consent_<channel>_from`` the fact that gave it
  (``<source>:<id>``) and ``consent_<channel>_at`` its time; ``reachable_<channel>`` also needs
  the contact point, and is false for a customer the golden record says has died (``deceased``).
* **RFM**: quintiles 1-5 with ``ntile(5)`` over customers with at least one purchase (5 = most
  recent / most orders / most revenue, ties split by ``customer_id`` so scores are repeatable);
  customers without purchases score **0** (not null) so filters like ``r_score >= 4`` and sorts
  need no null handling; ``rfm_score`` is the three digits, ``000`` for non-buyers.
* **tenure**: days from the customer's first appearance (earliest fact, or the earliest
  ``valid_from`` of the golden record's history) to ``as_of``.
* **bands** are computed at ``as_of`` (default: today): ``age_band`` from ``date_of_birth``,
  ``income_band`` from income converted to the reporting currency (an income without currency is
  taken as reporting currency, one with an unknown currency is ``unknown``).
* **life events** (``gold/life_events``, rebuilt from the golden history by every run, see
  :mod:`cdi.gold.life_events`): ``moved_at``, ``moved_country_at``, ``marital_status_changed_at``,
  ``surname_changed_at``, ``new_email_at``, ``new_phone_at`` and ``deceased_at`` are when the
  latest such event happened at the source, up to ``as_of`` (``deceased_at`` only while the
  golden record still says so); ``income_change_pct_12m`` is the latest income rise or
  fall of the 12 months before ``as_of``, in percent.

    >>> df = build_customer_360(lake, cfg.customer_360)  # doctest: +SKIP
    >>> figures = run_customer_360(lake, cfg.customer_360, cfg.fact_sources, cfg.segments, run_id="r1")  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from itertools import pairwise
from typing import Any

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import (
    DoubleType,
    StringType,
    TimestampType,
)

from cdi import schema
from cdi.config import Customer360Config, SegmentConfig, SourceConfig
from cdi.errors import ConfigError, LakeError
from cdi.progress import RunSummary, Step
from cdi.silver.facts import PURCHASE_KINDS, read_silver_facts
from cdi.silver.standardise.regions import with_region
from cdi.sql import literal

from .life_events import derive_life_events, latest_life_events

log = logging.getLogger(__name__)

CUSTOMER_360 = schema.CUSTOMER_360
UNMATCHED_FACTS = schema.UNMATCHED_FACTS
GOLDEN_RECORDS = schema.GOLDEN_RECORDS
LIFE_EVENTS = schema.LIFE_EVENTS

CLOSED_TICKET_STATUSES = ("closed", "resolved", "done", "cancelled", "canceled")
PAID_INVOICE_STATUSES = ("paid", "settled", "closed")
UNKNOWN = "unknown"

_GOLDEN_COLUMNS = {
    name: schema.ATTRIBUTE_TYPES.get(name, StringType())
    for name in (
        "first_name", "last_name", "full_name", "date_of_birth", "gender", "email", "phone", "city", "postcode",
        "region", "country", "marital_status", "income", "income_currency", "deceased",
    )
}  # fmt: skip

UNMATCHED_SCHEMA = schema.UNMATCHED_FACTS_SCHEMA


# ---------------------------------------------------------------- bands
def as_of_date(settings: Customer360Config) -> Column:
    """The reference date of ages, recency, tenure and lateness (``as_of`` or today)."""
    if settings.as_of is None:
        return F.current_date()
    try:
        return F.lit(date.fromisoformat(settings.as_of[:10]))
    except ValueError as exc:
        raise ConfigError(f"customer_360.as_of: {settings.as_of!r} is not a date (write YYYY-MM-DD)") from exc


def _amount_label(value: float) -> str:
    if value >= 1000 and value % 1000 == 0:
        return f"{value / 1000:g}k"
    return f"{value:g}"


def band_labels(bounds: list[float], label=_amount_label, closed_upper: bool = False) -> list[str]:
    """Labels of the bands cut at ``bounds``: ``<b0``, ``b0-b1``..., ``bn+``.

    Ages use ``closed_upper`` (``18-24``: the last whole year inside the band), amounts the
    half-open form (``20k-40k`` is 20000 <= x < 40000).
    """
    labels = [f"<{label(bounds[0])}"]
    for low, high in pairwise(bounds):
        labels.append(f"{label(low)}-{label(high - 1) if closed_upper else label(high)}")
    labels.append(f"{label(bounds[-1])}+")
    return labels


def band(value: Column, bounds: list[float], labels: list[str]) -> Column:
    """The label of the band ``value`` falls into; ``unknown`` when it is null."""
    expr = F.when(value.isNull(), F.lit(UNKNOWN))
    for bound, text in zip(bounds, labels):
        expr = expr.when(value < F.lit(bound), F.lit(text))
    return expr.otherwise(F.lit(labels[-1]))


def age_band_labels(settings: Customer360Config) -> list[str]:
    return band_labels([int(b) for b in settings.age_bands], label=lambda v: str(int(v)), closed_upper=True)


def income_band_labels(settings: Customer360Config) -> list[str]:
    return band_labels([float(b) for b in settings.income_bands])


def _validate_bands(settings: Customer360Config) -> None:
    for key in ("age_bands", "income_bands"):
        bounds = list(getattr(settings, key))
        if not bounds or any(high <= low for low, high in pairwise(bounds)):
            raise ConfigError(f"customer_360.{key}: give a non-empty, strictly increasing list of bounds (got {bounds})")


# ---------------------------------------------------------------- inputs
def _column_or_null(df: DataFrame, name: str, dtype) -> Column:
    if name in df.columns:
        return F.col(name).cast(dtype)
    return F.lit(None).cast(dtype)


def current_customers(lake) -> DataFrame:
    """Current golden records (``is_current``) with the attributes the 360 shows, plus
    ``first_valid_from``: when the customer's first version appeared (for tenure)."""
    golden = lake.read(GOLDEN_RECORDS)
    missing = [c for c in ("customer_id", "is_current") if c not in golden.columns]
    if missing:
        raise LakeError(f"table {GOLDEN_RECORDS} lacks column(s) {missing}; rebuild it with the gold stage")
    first_seen = golden.groupBy("customer_id").agg(
        F.min(_column_or_null(golden, "valid_from", TimestampType())).alias("first_valid_from")
    )
    current = golden.where(F.col("is_current")).select(
        "customer_id", *[_column_or_null(golden, n, t).alias(n) for n, t in _GOLDEN_COLUMNS.items()]
    )
    return current.join(first_seen, "customer_id", "left")


def resolve_facts(facts: DataFrame, lake, customers: DataFrame) -> DataFrame:
    """Facts with ``customer_id`` of the current customer their reference names (null: unmatched)."""
    entity_map = lake.read(schema.ENTITY_MAP).select("record_key", "customer_id")
    current_map = entity_map.join(customers.select("customer_id"), "customer_id", "inner")
    return facts.join(current_map, "record_key", "left")


def reporting_rates(settings: Customer360Config) -> dict[str, float]:
    """Currency -> rate to the reporting currency (the reporting currency itself is 1)."""
    return {settings.currency: 1.0, **{k.upper(): float(v) for k, v in settings.rates.items()}}


def _rate(currency: Column, rates: dict[str, float]) -> Column:
    rate_map = F.create_map(*[x for code, rate in sorted(rates.items()) for x in (F.lit(code), F.lit(rate))])
    return F.when(currency.isin(*rates), F.element_at(rate_map, currency))


def to_reporting_currency(facts: DataFrame, settings: Customer360Config) -> DataFrame:
    """Add ``amount_reporting`` (amount x rate) and ``convertible`` (rate known, or no amount).

    A fact whose currency is not in ``rates`` keeps ``amount_reporting`` null and
    ``convertible = false``: it still counts as an order, but adds nothing to revenue, and the
    run reports it per source in ``gold/unmatched_facts.unconvertible``.
    """
    rate = _rate(F.col("currency"), reporting_rates(settings))
    return facts.withColumn("amount_reporting", (F.col("amount") * rate).cast(DoubleType())).withColumn(
        "convertible", F.col("amount").isNull() | rate.isNotNull()
    )


# ---------------------------------------------------------------- aggregates
def _money(col: Column) -> Column:
    return F.round(col, 2)


def purchase_aggregates(facts: DataFrame) -> DataFrame:
    """Orders and POS transactions per customer (see module notes)."""
    purchases = facts.where(F.col("kind").isin(*PURCHASE_KINDS))
    revenue = F.coalesce(F.sum("amount_reporting"), F.lit(0.0))
    return purchases.groupBy("customer_id").agg(
        F.count(F.lit(1)).alias("orders"),
        _money(revenue).alias("revenue"),
        _money(revenue / F.count("amount_reporting")).alias("avg_order_value"),
        F.min("event_at").alias("first_order_at"),
        F.max("event_at").alias("last_order_at"),
        F.array_sort(F.collect_set("channel")).alias("channels"),
    )


def billing_aggregates(facts: DataFrame, as_of: Column, late_payment_days: int) -> DataFrame:
    """Invoiced, paid, outstanding balance and late payments per customer."""
    invoices = facts.where(F.col("kind") == "invoices")
    payments = facts.where(F.col("kind") == "payments")
    paid_per_invoice = (
        payments.where(F.col("reference_id").isNotNull())
        .groupBy("customer_id", F.col("reference_id").alias("fact_id"))
        .agg(F.sum("amount_reporting").alias("paid_amount"), F.max("event_at").alias("last_paid_at"))
    )
    inv = invoices.join(paid_per_invoice, ["customer_id", "fact_id"], "left")
    fully_paid = F.col("last_paid_at").isNotNull() & (
        F.col("amount_reporting").isNull() | (F.col("paid_amount") >= F.col("amount_reporting") - 0.005)
    )
    settled_at = F.coalesce(F.col("closed_at"), F.when(fully_paid, F.col("last_paid_at")))
    is_paid = settled_at.isNotNull() | F.coalesce(F.col("status").isin(*PAID_INVOICE_STATUSES), F.lit(False))
    deadline = F.date_add(F.to_date("due_at"), late_payment_days)
    late = F.col("due_at").isNotNull() & (
        (settled_at.isNotNull() & (F.to_date(settled_at) > deadline)) | (~is_paid & (as_of > deadline))
    )
    per_invoice = inv.groupBy("customer_id").agg(
        F.count(F.lit(1)).alias("invoices"),
        F.coalesce(F.sum("amount_reporting"), F.lit(0.0)).alias("invoiced"),
        F.sum(late.cast("int")).alias("late_payments"),
        F.sum((~is_paid).cast("int")).alias("unpaid_invoices"),
    )
    per_payment = payments.groupBy("customer_id").agg(
        F.count(F.lit(1)).alias("payments"), F.coalesce(F.sum("amount_reporting"), F.lit(0.0)).alias("paid")
    )
    return per_invoice.join(per_payment, "customer_id", "full_outer")


def support_aggregates(facts: DataFrame) -> DataFrame:
    tickets = facts.where(F.col("kind") == "tickets")
    is_open = F.col("closed_at").isNull() & ~F.coalesce(F.col("status").isin(*CLOSED_TICKET_STATUSES), F.lit(False))
    return tickets.groupBy("customer_id").agg(
        F.count(F.lit(1)).alias("tickets"),
        F.sum(is_open.cast("int")).alias("open_tickets"),
        F.max(F.greatest("event_at", "closed_at")).alias("last_contact_at"),
    )


def marketing_aggregates(facts: DataFrame) -> DataFrame:
    responses = facts.where(F.col("kind") == "interactions")

    def latest(flag: str) -> Column:
        # the answer of the latest response that answered for this channel, with the fact that gave it
        answer = F.struct(F.col(flag).alias("answer"), F.col("fact_key").alias("fact_key"), F.col("event_at").alias("at"))
        return F.max_by(answer, F.when(F.col(flag).isNotNull(), F.struct("event_at", "fact_id"))).alias(flag)

    flags = ("consent_email", "consent_sms", "consent_phone")
    answers = responses.groupBy("customer_id").agg(
        F.count(F.lit(1)).alias("responses"), F.max("event_at").alias("last_response_at"), *[latest(f) for f in flags]
    )
    return answers.select(
        "customer_id", "responses", "last_response_at",
        *[F.col(f"{f}.answer").alias(f) for f in flags],
        *[c for f in flags for c in (F.col(f"{f}.fact_key").alias(f"{f}_from"), F.col(f"{f}.at").alias(f"{f}_at"))],
    )  # fmt: skip


def with_rfm(df: DataFrame, as_of: Column) -> DataFrame:
    """Recency in days and R/F/M quintile scores over buyers; 0 for customers without purchases."""
    buyer = F.col("orders") > 0

    def quintile(*order: Column) -> Column:
        # one global ranking: Spark moves buyers to one partition for it (a few columns each)
        window = Window.partitionBy(buyer).orderBy(*order, F.col("customer_id"))
        return F.when(buyer, F.ntile(5).over(window)).otherwise(F.lit(0))

    scored = (
        df.withColumn("recency_days", F.when(buyer, F.datediff(as_of, F.to_date("last_order_at"))))
        .withColumn("r_score", quintile(F.col("last_order_at").asc_nulls_first()))
        .withColumn("f_score", quintile(F.col("orders").asc()))
        .withColumn("m_score", quintile(F.col("revenue").asc()))
    )
    return scored.withColumn("rfm_score", F.concat(*[F.col(c).cast("string") for c in ("r_score", "f_score", "m_score")]))


def _with_demographics(customers: DataFrame, settings: Customer360Config, as_of: Column) -> DataFrame:
    currency = F.upper(F.trim("income_currency"))
    income_reporting = F.when(currency.isNull(), F.col("income")).otherwise(
        F.col("income") * _rate(currency, reporting_rates(settings))
    )
    age = F.floor(F.months_between(as_of, F.col("date_of_birth")) / 12).cast("int")
    age = F.when(age >= 0, age)
    return (
        with_region(customers, "region", "country", code="region_code")
        .withColumn("age", age)
        .withColumn("age_band", band(F.col("age"), [int(b) for b in settings.age_bands], age_band_labels(settings)))
        .withColumn("income_reporting", _money(income_reporting))
        .withColumn(
            "income_band",
            band(F.col("income_reporting"), [float(b) for b in settings.income_bands], income_band_labels(settings)),
        )
    )


CUSTOMER_360_COLUMNS = schema.CUSTOMER_360_COLUMNS


def assemble_customer_360(
    customers: DataFrame, facts: DataFrame, settings: Customer360Config, events: DataFrame | None = None
) -> DataFrame:
    """The 360 from current customers, resolved, currency-converted facts and the life events
    (``gold/life_events``; none given, their columns are null): a pure transformation."""
    _validate_bands(settings)
    as_of = as_of_date(settings)
    matched = facts.where(F.col("customer_id").isNotNull())
    first_fact = matched.groupBy("customer_id").agg(F.min("event_at").alias("first_fact_at"))
    df = _with_demographics(customers, settings, as_of)
    if events is None:
        events = customers.sparkSession.createDataFrame([], schema.LIFE_EVENTS_SCHEMA)
    for part in (
        purchase_aggregates(matched),
        billing_aggregates(matched, as_of, settings.late_payment_days),
        support_aggregates(matched),
        marketing_aggregates(matched),
        first_fact,
        latest_life_events(events, as_of),
    ):
        df = df.join(part, "customer_id", "left")
    zero_counts = ["orders", "invoices", "payments", "unpaid_invoices", "late_payments", "tickets", "open_tickets", "responses"]
    zero_money = ["revenue", "invoiced", "paid"]
    df = df.fillna(0, subset=zero_counts).fillna(0.0, subset=zero_money)
    alive = ~F.coalesce(F.col("deceased"), F.lit(False))
    df = (
        df.withColumn("channels", F.coalesce(F.col("channels"), F.array().cast("array<string>")))
        .withColumn("invoiced", _money(F.col("invoiced")))
        .withColumn("paid", _money(F.col("paid")))
        .withColumn("outstanding_balance", _money(F.col("invoiced") - F.col("paid")))
        .withColumn("reachable_email", F.coalesce(F.col("consent_email"), F.lit(False)) & F.col("email").isNotNull() & alive)
        .withColumn("reachable_sms", F.coalesce(F.col("consent_sms"), F.lit(False)) & F.col("phone").isNotNull() & alive)
        .withColumn("reachable_phone", F.coalesce(F.col("consent_phone"), F.lit(False)) & F.col("phone").isNotNull() & alive)
        .withColumn("deceased_at", F.when(~alive, F.col("deceased_at")))
        .withColumn("first_seen_at", F.least("first_fact_at", "first_valid_from"))
        .withColumn("tenure_days", F.datediff(as_of, F.to_date("first_seen_at")))
        .withColumn("currency", F.lit(settings.currency))
        .withColumn("as_of", as_of)
    )
    df = with_rfm(df, as_of)
    for count_column in zero_counts + ["r_score", "f_score", "m_score"]:
        df = df.withColumn(count_column, F.col(count_column).cast("int"))
    return df.select(*CUSTOMER_360_COLUMNS)


def _customer_facts(lake, settings: Customer360Config) -> tuple[DataFrame, DataFrame]:
    customers = current_customers(lake)
    facts = to_reporting_currency(read_silver_facts(lake), settings)
    return customers, resolve_facts(facts, lake, customers)


def build_customer_360(lake, settings: Customer360Config) -> DataFrame:
    """The customer 360 for the lake's current golden records (lazy; nothing is written)."""
    customers, facts = _customer_facts(lake, settings)
    return assemble_customer_360(customers, facts, settings, _life_events(lake, settings))


def _life_events(lake, settings: Customer360Config) -> DataFrame:
    """The life events of the lake's whole golden history (lazy)."""
    return derive_life_events(lake.read(GOLDEN_RECORDS), settings.income_change_share)


# ---------------------------------------------------------------- unmatched facts
def fact_match_counts(facts: DataFrame) -> DataFrame:
    """Per fact source: facts, matched, unmatched, without reference, unconvertible (small)."""
    unmatched = F.col("customer_ref").isNotNull() & F.col("customer_id").isNull()
    return facts.groupBy("source", "kind").agg(
        F.count(F.lit(1)).alias("facts"),
        F.count("customer_id").alias("matched"),
        F.sum(unmatched.cast("long")).alias("unmatched"),
        F.sum(F.col("customer_ref").isNull().cast("long")).alias("no_reference"),
        F.sum((~F.col("convertible")).cast("long")).alias("unconvertible"),
        F.slice(F.array_sort(F.collect_set(F.when(~F.col("convertible"), F.col("currency")))), 1, 20).alias(
            "unconvertible_currencies"
        ),
        F.min(F.when(unmatched, F.col("customer_ref"))).alias("sample_unmatched_reference"),
    )


def _report_unmatched(fact_sources: Sequence[SourceConfig], facts: DataFrame, run_id: str) -> list[tuple]:
    """Collect the per-source counts (one row per fact source), log problems, return the table rows."""
    rows = {r["source"]: r for r in fact_match_counts(facts).collect()}  # one row per fact source
    now = datetime.now(UTC).replace(tzinfo=None)
    out = []
    for source in fact_sources:
        r = rows.get(source.name)
        if r is None or source.customer_ref is None:  # a fact source always has a customer_ref
            continue
        currencies = ",".join(c for c in r["unconvertible_currencies"] if c) or None
        if r["unmatched"] or r["no_reference"]:
            log.warning(
                "fact source '%s': %d of %d facts reference no current %s customer (%d without a reference; "
                "e.g. %r); counted in %s",
                source.name, r["unmatched"] + r["no_reference"], r["facts"], source.customer_ref.source,
                r["no_reference"], r["sample_unmatched_reference"], UNMATCHED_FACTS,
            )  # fmt: skip
        if r["unconvertible"]:
            log.warning(
                "fact source '%s': %d facts in currency %s without a rate in customer_360.rates: counted, "
                "but left out of money figures (add the rate to convert them)",
                source.name, r["unconvertible"], currencies,
            )  # fmt: skip
        out.append(
            (run_id, source.name, source.kind, source.customer_ref.source, r["facts"], r["matched"], r["unmatched"],
             r["no_reference"], r["unconvertible"], currencies, r["sample_unmatched_reference"], now)
        )  # fmt: skip
    return out


# ---------------------------------------------------------------- run
@dataclass(frozen=True)
class Customer360Result:
    """What one customer 360 run wrote: customers, buyers and revenue (reporting currency), the
    facts read and how many reached no customer or had no rate, members per segment."""

    customers: int
    buyers: int
    revenue: float
    currency: str
    facts: int
    unmatched_facts: int
    unconvertible_facts: int
    segments: dict[str, int]
    # per demographic dimension: known, without the attribute, not usable (see demographic_coverage)
    coverage: dict[str, dict[str, Any]] = field(default_factory=dict)


COVERAGE_DIMENSIONS = {
    "age_band": "date_of_birth", "gender": "gender", "income_band": "income_reporting",
    "marital_status": "marital_status", "region": "region", "country": "country",
}  # fmt: skip
"""Demographic dimension of the 360 -> the attribute it is read from."""


UNUSABLE_REASONS = {
    "age_band": "birth date after the as-of date", "gender": "written as unknown",
    "income_band": "income that gives no band", "marital_status": "written as unknown",
    "region": "not an ISO 3166-2 subdivision of the customer's country", "country": "written as unknown",
}  # fmt: skip
"""Why a dimension's value is there but not usable, for the coverage summary."""


def coverage_counts(c360: DataFrame) -> list[Column]:
    """Aggregates for :func:`demographic_coverage`: per dimension, customers whose value is
    known (a region only when it is an ISO 3166-2 subdivision), and those unknown because no
    record holds the attribute."""
    out = []
    for dim, attribute in COVERAGE_DIMENSIONS.items():
        known = F.col(dim).isNotNull() & (F.lower(F.col(dim)) != F.lit(UNKNOWN))
        if dim == "region" and "region_code" in c360.columns:  # a 360 written before regions had codes: as written
            known = F.col("region_code").isNotNull()
        out.append(F.count(F.when(known, F.lit(1))).alias(f"{dim}__known"))
        out.append(F.count(F.when(F.col(attribute).isNull(), F.lit(1))).alias(f"{dim}__missing"))
    return out


def demographic_coverage(counts: dict[str, Any], customers: int) -> dict[str, dict[str, Any]]:
    """Per dimension: ``known``, ``missing`` (no record of the customer holds the attribute; for
    income also one in a currency without a rate, which leaves no reporting income), ``unusable``
    (it is there but gives no band: a birth date in the future, a value written ``unknown``) and
    a one-line ``summary`` for the run summary."""
    out = {}
    for dim, attribute in COVERAGE_DIMENSIONS.items():
        known, missing = counts[f"{dim}__known"], counts[f"{dim}__missing"]
        unusable = max(customers - known - missing, 0)
        share = known / customers if customers else 0.0
        if customers and missing == customers:
            why = f"no customer source provides {attribute}"
        else:
            reasons = [f"{missing:,} without {attribute}" if missing else "",
                       f"{unusable:,} {UNUSABLE_REASONS.get(dim, 'not usable')}" if unusable else ""]  # fmt: skip
            why = "; ".join(r for r in reasons if r)
        out[dim] = {"known": known, "missing": missing, "unusable": unusable, "share_known": round(share, 3),
                    "summary": f"{share:.0%} known" + (f" ({why})" if why else "")}  # fmt: skip
    return out


@contextmanager
def _step(summary: RunSummary | None, name: str) -> Iterator[Step]:
    if summary is None:
        yield Step("gold", name)
        return
    with summary.step("gold", name) as st:
        yield st


def run_customer_360(
    lake,
    settings: Customer360Config,
    fact_sources: Sequence[SourceConfig],
    segments: Sequence[SegmentConfig],
    run_id: str,
    summary: RunSummary | None = None,
) -> Customer360Result:
    """Build and write ``gold/customer_360`` (overwrite), ``gold/unmatched_facts`` (this run's rows)
    and ``gold/segments`` (membership of ``segments``); return the run's figures.

    Segment rules are checked against the 360's columns before anything is written.
    """
    from .segments import SEGMENTS, segment_membership, write_segments

    spark = lake.spark
    customers, facts = _customer_facts(lake, settings)
    # analysis only: a bad rule fails before any write (the 360's columns are the same without events)
    segment_membership(assemble_customer_360(customers, facts, settings), segments)
    with _step(summary, "life_events") as st:
        lake.write(LIFE_EVENTS, _life_events(lake, settings), mode="overwrite", allow_new_columns=True)
        events = lake.read(LIFE_EVENTS)
        counts = events.groupBy("event_type").agg(F.count(F.lit(1)).alias("n")).collect()  # one row per type
        by_type = {r["event_type"]: r["n"] for r in counts}
        st.rows = sum(by_type.values())
        st.details.update(by_type)
    c360 = assemble_customer_360(customers, facts, settings, events).withColumn("run_id", F.lit(run_id))
    facts.persist()  # read by the unmatched report and by the 360
    try:
        with _step(summary, "unmatched_facts") as st:
            rows = _report_unmatched(fact_sources, facts, run_id)
            lake.write(
                UNMATCHED_FACTS, spark.createDataFrame(rows, UNMATCHED_SCHEMA),
                mode="overwrite", replace_where=f"run_id = {literal(run_id)}",
            )  # fmt: skip
            counts = {
                "facts": sum(r[4] for r in rows),
                "unmatched": sum(r[6] + r[7] for r in rows),
                "unconvertible": sum(r[8] for r in rows),
            }
            st.rows = counts["facts"]
            st.details.update(unmatched=counts["unmatched"], unconvertible=counts["unconvertible"])
        with _step(summary, "customer_360") as st:
            lake.write(CUSTOMER_360, c360, mode="overwrite", allow_new_columns=True)
            written = lake.read(CUSTOMER_360)
            totals = written.agg(
                F.count(F.lit(1)).alias("customers"),
                F.coalesce(F.sum((F.col("orders") > 0).cast("long")), F.lit(0)).alias("buyers"),
                F.coalesce(F.sum("revenue"), F.lit(0.0)).alias("revenue"),
                *coverage_counts(written),
            ).first()
            st.rows = totals["customers"]
            st.details.update(buyers=totals["buyers"])
        with _step(summary, "demographic coverage") as st:
            coverage = demographic_coverage(totals.asDict(), totals["customers"])
            st.rows = totals["customers"]
            st.details.update({dim: c["summary"] for dim, c in coverage.items()})
    finally:
        facts.unpersist()
    with _step(summary, "segments") as st:
        write_segments(lake, segment_membership(written, segments), run_id)
        per_segment = lake.read(SEGMENTS).groupBy("segment").agg(F.count(F.lit(1)).alias("customers"))
        found = {r["segment"]: r["customers"] for r in per_segment.collect()}  # one row per segment
        sizes = {seg.name: found.get(seg.name, 0) for seg in segments}
        st.rows = sum(sizes.values())
        st.details.update(segments=len(sizes))
    figures = Customer360Result(
        customers=totals["customers"],
        buyers=totals["buyers"],
        revenue=round(float(totals["revenue"]), 2),
        currency=settings.currency,
        facts=counts["facts"],
        unmatched_facts=counts["unmatched"],
        unconvertible_facts=counts["unconvertible"],
        segments=sizes,
        coverage=coverage,
    )
    log.info("customer 360: %s", figures)
    return figures
