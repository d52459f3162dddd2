"""Audiences by condition: who to contact on a channel, chosen by a Spark SQL condition over the
customer 360 and the life events, without a configured segment or a gold run.

The condition is checked before Spark starts (:func:`check_condition`): it must parse, be one
row condition (no aggregates, windows or subqueries) and read only columns of
``gold/customer_360`` and ``gold/life_events``. A condition that reads life-event columns
(``event_type``, ``effective_at``, ``change_share``, ...) is tested on each of the customer's
events joined to their 360 row, and the customer is in the audience when one event satisfies it:
``event_type = 'moved_home' and effective_at >= current_date() - interval 90 days and
age_band = '25-34'`` is "movers of the last 90 days aged 25-34". Other conditions are tested on
the 360 row alone.

Consent is enforced: only customers ``reachable_<channel>`` (they consented on the channel and
have its contact point) are in the audience. The contact point is masked unless asked otherwise
(``j***@example.com``, ``+44*******01``): a preview or a file that leaves the lake by accident
shows no one's contact details.

    >>> members = select_audience(c360, events, "income_change_pct_12m > 10", "email")  # doctest: +SKIP
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from cdi import schema
from cdi.errors import ConfigError
from cdi.sql import condition_columns, unknown_columns

from .segments import CHANNELS, masked_contact

EVENT_COLUMNS = tuple(f.name for f in schema.LIFE_EVENTS_SCHEMA.fields if f.name not in ("customer_id", "run_id"))
"""The life-event columns a condition may read (their own ``run_id`` is the 360's)."""

AUDIENCE_COLUMNS = ("customer_id", "full_name", "first_name", "last_name", "contact")


def check_condition(where: str) -> bool:
    """Check ``where`` without Spark (ConfigError naming what is wrong); whether it reads
    life-event columns."""
    try:
        unknown_columns(
            where, (*schema.CUSTOMER_360_COLUMNS, "run_id", *EVENT_COLUMNS), "gold/customer_360 or gold/life_events"
        )
        read = {c.lower() for c in condition_columns(where)}
    except ValueError as exc:
        raise ConfigError(f"audience condition {where!r}: {exc}") from None
    return bool(read & {c.lower() for c in EVENT_COLUMNS})


def check_channel(channel: str) -> str:
    if channel not in CHANNELS:
        raise ConfigError(f"unknown channel {channel!r}: use one of {', '.join(CHANNELS)}")
    return channel


def select_audience(c360: DataFrame, events: DataFrame | None, where: str, channel: str, *, masked: bool = True) -> DataFrame:
    """The customers of ``c360`` that satisfy ``where`` (with one of their ``events`` when it
    reads life-event columns) and are reachable on ``channel``: :data:`AUDIENCE_COLUMNS`, the
    contact masked unless ``masked`` is false. No action."""
    check_channel(channel)
    reads_events = check_condition(where)
    rows = c360
    if reads_events:
        if events is None:
            raise ConfigError(f"audience condition {where!r} reads life events, but gold/life_events is not there: run the gold stage")
        rows = c360.join(events.select("customer_id", *EVENT_COLUMNS), "customer_id", "left")
    chosen = rows.where(F.expr(where)).select("customer_id").distinct()
    contact = F.col("email" if channel == "email" else "phone")
    shown = (masked_contact(contact, channel) if masked else contact).alias("contact")
    reachable = c360.join(chosen, "customer_id", "left_semi").where(F.col(f"reachable_{channel}"))
    return reachable.select("customer_id", "full_name", "first_name", "last_name", shown)
