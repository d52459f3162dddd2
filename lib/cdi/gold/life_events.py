"""Life events: what changed in a customer's life, read from the golden history.

``gold/life_events`` has one row per event, derived from consecutive versions of each customer
in ``gold/golden_records`` (rebuilt in full by every gold run, so it always agrees with the
history, retired customers and steward regroupings included):

=========================  ==================================================================
``moved_home``             the address (line 1, postcode or city) changed within one country
``moved_country``          the country changed
``income_rose`` / ``_fell``  income changed by more than ``customer_360.income_change_share``
                           of the old income (both known, same currency)
``marital_status_changed``  both known and different
``surname_changed``        both known and different (case, accents and spacing ignored)
``new_email``/``new_phone``  a different value than before (the first one included)
``deceased``               the golden record says the customer has died and the version
                           before did not (a customer's first version included)
=========================  ==================================================================

A change between two versions is a life event only when the new value is *newer information at
the source*: the record it came from was updated after the record of the old value (both
``updated_at`` known), or, where a source keeps no update time, the new value comes from a
record that was already behind the customer (its value changed). A value that changes because
entity resolution brought in another, older record (a merge, a relink) is not an event.

A death is the exception: it is an event however the golden record came to say so (a merged
record of someone already dead still means the customer has died), dated by the date of death
where a source gives one.

``effective_at`` is when it happened at the source (the new value's ``updated_at``, else when
the lake learnt it); ``recorded_at`` is when the lake learnt it (the version's ``valid_from``).
Old and new values are text for every event, and numbers (``old_amount``, ``new_amount``,
``change_share``) for income; ``source`` and ``record_key`` say where the new value came from.

    >>> events = derive_life_events(lake.read("gold/golden_records"), income_change_share=0.1)  # doctest: +SKIP
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, DataType, StringType, TimestampType

from cdi import schema
from cdi.silver.standardise.text import fold

from .survivorship import PROVENANCE_TYPE, attribute_type, prov_column

EVENT_TYPES = (
    "moved_home", "moved_country", "income_rose", "income_fell", "marital_status_changed", "surname_changed",
    "new_email", "new_phone", "deceased",
)  # fmt: skip

LATEST_COLUMNS = {
    "moved_at": "moved_home",
    "moved_country_at": "moved_country",
    "marital_status_changed_at": "marital_status_changed",
    "surname_changed_at": "surname_changed",
    "new_email_at": "new_email",
    "new_phone_at": "new_phone",
    "deceased_at": "deceased",
}
"""``customer_360`` columns holding when the latest event of a type happened (effective time)."""

_ADDRESS = ("address_line1", "postcode", "city")
LIFE_EVENTS_TABLE = schema.LIFE_EVENTS


def _key(attribute: str, version: str) -> Column:
    """A value as compared: contact points exactly (case aside), other text in its match form
    (case, accents, apostrophes and punctuation make no change: O'Brien = OBrien, Müller = Muller)."""
    c = F.col(f"{version}.{attribute}").cast("string")
    if attribute in ("email", "phone"):
        return F.nullif(F.lower(F.trim(c)), F.lit(""))
    return c if attribute == "income" else fold(c)


def _prov(version: str, attribute: str, field: str) -> Column:
    """A provenance field of a version's value; ``address`` is the address group's (its members
    come from one record; the first one present says which)."""
    if attribute == "address":
        return F.coalesce(*[F.col(f"{version}.{a}_prov.{field}") for a in _ADDRESS])
    return F.col(f"{version}.{attribute}_prov.{field}")


def _newer(attribute: str) -> Column:
    """Whether the new version's value of ``attribute`` is newer information than the old one's."""
    new_at, old_at = _prov("cur", attribute, "updated_at"), _prov("prev", attribute, "updated_at")
    new_record = _prov("cur", attribute, "record_key")
    return (
        F.when(new_at.isNotNull() & old_at.isNotNull(), new_at > old_at)
        .when(new_record == _prov("prev", attribute, "record_key"), F.lit(True))
        .otherwise(F.coalesce(F.array_contains(F.col("prev.source_record_keys"), new_record), F.lit(False)))
    )


def _address_text(version: str) -> Column:
    line = F.concat_ws(" ", F.col(f"{version}.postcode"), F.col(f"{version}.city"))
    return F.nullif(
        F.concat_ws(", ", F.col(f"{version}.address_line1"), F.nullif(line, F.lit("")), F.col(f"{version}.country")),
        F.lit(""),
    )


def _event(
    event_type: str, attribute: str, condition: Column, old: Column, new: Column,
    *, newer: Column | None = None, happened_at: Column | None = None, **amounts: Column,
) -> Column:  # fmt: skip
    """One candidate event as a struct (null unless ``condition`` and ``newer`` hold; ``newer``
    defaults to :func:`_newer`, ``happened_at`` to the new value's ``updated_at``)."""
    happened = _prov("cur", attribute, "updated_at")
    if happened_at is not None:
        happened = F.coalesce(happened_at, happened)
    fields = [
        F.lit(event_type).alias("event_type"),
        # never after the lake learnt it (a source clock ahead of ours)
        F.least(F.coalesce(happened, F.col("cur.valid_from")), F.col("cur.valid_from")).alias("effective_at"),
        old.cast("string").alias("old_value"),
        new.cast("string").alias("new_value"),
        amounts.get("old_amount", F.lit(None)).cast("double").alias("old_amount"),
        amounts.get("new_amount", F.lit(None)).cast("double").alias("new_amount"),
        amounts.get("change_share", F.lit(None)).cast("double").alias("change_share"),
        _prov("cur", attribute, "source").alias("source"),
        _prov("cur", attribute, "record_key").alias("record_key"),
    ]
    return F.when(condition & (_newer(attribute) if newer is None else newer), F.struct(*fields))


def _changed(attribute: str, *, first_counts: bool = False) -> Column:
    old, new = _key(attribute, "prev"), _key(attribute, "cur")
    differs = new.isNotNull() & ~old.eqNullSafe(new)
    return differs if first_counts else differs & old.isNotNull()


_WATCHED = (*_ADDRESS, "country", "income", "marital_status", "last_name", "email", "phone", "deceased", "date_of_death")


def _version_columns(history: DataFrame) -> list[Column]:
    """The columns events read, null where a table written before them lacks one."""
    present = set(history.columns)
    wanted: dict[str, DataType] = {
        "valid_from": TimestampType(), "run_id": StringType(), "source_record_keys": ArrayType(StringType()),
        "income_currency": StringType(),
    }  # fmt: skip
    for attribute in _WATCHED:
        wanted[attribute] = attribute_type(attribute)
        wanted[prov_column(attribute)] = PROVENANCE_TYPE
    return [(F.col(c) if c in present else F.lit(None).cast(t)).alias(c) for c, t in wanted.items()]


def derive_life_events(golden_history: DataFrame, income_change_share: float) -> DataFrame:
    """Every customer's life events (:data:`schema.LIFE_EVENTS_SCHEMA`) from all versions of
    ``gold/golden_records`` (no action)."""
    order = Window.partitionBy("customer_id").orderBy(F.col("cur.valid_from"), F.col("cur.run_id"))
    versions = golden_history.select("customer_id", F.struct(*_version_columns(golden_history)).alias("cur"))
    versions = versions.withColumn("prev", F.lag("cur").over(order))

    same_country = ~_changed("country")
    moved = (_changed("address_line1") | _changed("postcode") | _changed("city")) & same_country
    old_income, new_income = F.col("prev.income"), F.col("cur.income")
    same_currency = F.col("prev.income_currency").eqNullSafe(F.col("cur.income_currency"))
    share = F.when(same_currency & (old_income > 0) & new_income.isNotNull(), (new_income - old_income) / old_income)
    amounts = {"old_amount": old_income, "new_amount": new_income, "change_share": share}
    candidates = [
        _event("moved_home", "address", moved, _address_text("prev"), _address_text("cur")),
        _event("moved_country", "country", _changed("country"), F.col("prev.country"), F.col("cur.country")),
        _event("income_rose", "income", share > income_change_share, old_income, new_income, **amounts),
        _event("income_fell", "income", share < -income_change_share, old_income, new_income, **amounts),
        _event("marital_status_changed", "marital_status", _changed("marital_status"),
               F.col("prev.marital_status"), F.col("cur.marital_status")),
        _event("surname_changed", "last_name", _changed("last_name"), F.col("prev.last_name"), F.col("cur.last_name")),
        _event("new_email", "email", _changed("email", first_counts=True), F.col("prev.email"), F.col("cur.email")),
        _event("new_phone", "phone", _changed("phone", first_counts=True), F.col("prev.phone"), F.col("cur.phone")),
    ]  # fmt: skip
    has_prev = F.col("prev").isNotNull()
    died = F.coalesce(F.col("cur.deceased"), F.lit(False)) & ~F.coalesce(F.col("prev.deceased"), F.lit(False))
    death = _event(
        "deceased", "deceased", died, F.col("prev.deceased"), F.col("cur.deceased"),
        newer=F.lit(True), happened_at=F.col("cur.date_of_death").cast("timestamp"),
    )  # fmt: skip
    candidates = [F.when(has_prev, event) for event in candidates] + [death]
    events = versions.select(
        "customer_id",
        F.col("cur.valid_from").alias("recorded_at"),
        F.col("cur.run_id").alias("run_id"),
        F.explode(F.array_compact(F.array(*candidates))).alias("e"),
    )
    return events.select(
        "customer_id", "e.event_type", "e.effective_at", "recorded_at", "e.old_value", "e.new_value",
        "e.old_amount", "e.new_amount", "e.change_share", "e.source", "e.record_key", "run_id",
    )  # fmt: skip


def latest_life_events(events: DataFrame, as_of: Column) -> DataFrame:
    """Per customer: when the latest event of each kind happened (:data:`LATEST_COLUMNS`), and
    ``income_change_pct_12m``, the latest income rise or fall of the 12 months before ``as_of``
    in percent (events after ``as_of`` are not seen)."""
    seen = events.where(F.to_date("effective_at") <= as_of)
    income = F.col("event_type").isin("income_rose", "income_fell") & (
        F.to_date("effective_at") > F.add_months(as_of, -12)
    )
    aggregates = [
        F.max(F.when(F.col("event_type") == kind, F.col("effective_at"))).alias(column)
        for column, kind in LATEST_COLUMNS.items()
    ]
    latest_income = F.max_by(F.when(income, F.round(F.col("change_share") * 100, 1)), F.when(income, F.col("effective_at")))
    return seen.groupBy("customer_id").agg(*aggregates, latest_income.alias("income_change_pct_12m"))

