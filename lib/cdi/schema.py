"""Every table's name and the schemas of the tables whose columns do not depend on configuration.

Table names are relative to the lake root and are a contract (users query them, outside checks
rely on them): modules name tables through these constants, never as retyped strings. The golden
records' schema follows the configured attributes (:func:`cdi.gold.survivorship.golden_schema`).

    >>> lake.read(schema.ENTITY_MAP).select(*schema.ENTITY_MAP_SCHEMA.fieldNames())  # doctest: +SKIP
    >>> lake.read(schema.bronze("crm"))  # doctest: +SKIP
"""

from __future__ import annotations

from pyspark.sql.types import (
    ArrayType,
    BinaryType,
    BooleanType,
    DataType,
    DateType,
    DoubleType,
    LongType,
    MapType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

# ---------------------------------------------------------------- table names

QUARANTINE = "bronze/_quarantine"
INGESTED_FILES = "bronze/_ingested_files"
RECORDS = "silver/records"
FACTS = "silver/facts"
PAIRS = "silver/pairs"
ENTITY_MAP = "silver/entity_map"
ID_HISTORY = "silver/id_history"
GOLDEN_RECORDS = "gold/golden_records"
CHANGES = "gold/changes"
LIFE_EVENTS = "gold/life_events"
CUSTOMER_360 = "gold/customer_360"
SEGMENTS = "gold/segments"
UNMATCHED_FACTS = "gold/unmatched_facts"
# what stewards decided (the service and `cdi steward`), applied by every later link stage
STEWARD_DECISIONS = "steward/decisions"
# erasure (cdi.privacy): salted hashes of what was erased, and who erased whom, when and why
ERASURE_REGISTER = "privacy/erasure_register"
ERASURE_AUDIT = "privacy/erasure_audit"
ERASURE_PENDING = "privacy/erasure_pending"  # an erasure begun and not finished (removed when it is)
# the lake's own bookkeeping
LEASE = "_cdi/lease"  # who may write the lake now (cdi.lake.lease)
RUNS = "_cdi/runs"  # each run's progress and the table versions it started from (cdi.lake.runs)
TRANSACTIONS = "_cdi/transactions"  # multi-table commits (cdi.lake.transactions)


def bronze(source: str) -> str:
    """``bronze/<source>``: the ingested rows of one configured source."""
    return f"bronze/{source}"


def record_key(source: str, source_record_id: str) -> str:
    """``<source>:<source_record_id>``, the key of a customer record in every silver and gold table."""
    return f"{source}:{source_record_id}"


# ---------------------------------------------------------------- lineage (bronze/<source>)

SOURCE = "_source"
RECORD_ID = "_source_record_id"
BATCH_ID = "_batch_id"
INGESTED_AT = "_ingested_at"
SOURCE_FILE = "_source_file"
SOURCE_LINE = "_source_line"
SOURCE_LINE_END = "_source_line_end"  # quarantine: last line of a record spanning lines
ROW_HASH = "_row_hash"
DELETED = "_deleted"  # true on a tombstone: the record left a snapshot source (null in older tables: false)

LINEAGE_COLUMNS = (SOURCE, RECORD_ID, BATCH_ID, INGESTED_AT, SOURCE_FILE, SOURCE_LINE, ROW_HASH, DELETED)
"""Columns every bronze row carries (see :mod:`cdi.bronze.lineage`); tables written before
``_deleted`` existed lack it until their next append adds it."""

LINEAGE_TYPES = {SOURCE_LINE: "bigint", INGESTED_AT: "timestamp", DELETED: "boolean"}
"""Types of the lineage columns that are not strings."""

REQUIRED_LINEAGE = (SOURCE, RECORD_ID, BATCH_ID, INGESTED_AT, SOURCE_FILE, ROW_HASH)
"""The lineage columns silver reads; ``_source_line`` is null for some formats and not needed."""

# ---------------------------------------------------------------- bronze bookkeeping

INGESTED_FILES_SCHEMA = StructType(
    [
        StructField("source", StringType()),
        StructField("unit", StringType()),  # file URI, Delta table path or JDBC location
        StructField("size", LongType()),
        StructField("modified_at", TimestampType()),
        StructField("table_version", LongType()),
        StructField("watermark", StringType()),
        StructField("batch_id", StringType()),
        StructField("run_id", StringType()),
        StructField("rows_read", LongType()),
        StructField("rows_bronze", LongType()),
        StructField("rows_quarantined", LongType()),
        StructField("rows_unchanged", LongType()),
        StructField("ingested_at", TimestampType()),
    ]
)

QUARANTINE_SCHEMA = StructType(
    [
        StructField(SOURCE, StringType()),
        StructField(BATCH_ID, StringType()),
        StructField(SOURCE_FILE, StringType()),
        StructField(SOURCE_LINE, LongType()),
        StructField(SOURCE_LINE_END, LongType()),
        StructField(RECORD_ID, StringType()),
        StructField("_reason", StringType()),
        StructField("_raw", StringType()),
        StructField("_raw_bytes", BinaryType()),
        StructField(ROW_HASH, StringType()),
        StructField(INGESTED_AT, TimestampType()),
        StructField("_run_id", StringType()),
    ]
)

# ---------------------------------------------------------------- silver

ATTRIBUTE_TYPES: dict[str, DataType] = {
    "date_of_birth": DateType(), "income": DoubleType(), "deceased": BooleanType(), "date_of_death": DateType(),
}  # fmt: skip
"""Canonical customer attributes that are not strings, in silver/records and the golden records."""

RECORDS_COLUMNS = (
    "record_key", "source", "source_record_id",
    "honorific", "first_name", "middle_name", "last_name", "name_suffix", "full_name",
    "date_of_birth", "gender", "email", "phone", "address_line1", "address_line2", "city",
    "postcode", "region", "country", "national_id", "marital_status", "income", "income_currency",
    "deceased", "date_of_death", "updated_at", "reference_keys",
    "first_name_std", "last_name_std", "full_name_std", "given_name_canonical", "dob_year",
    "email_std", "email_user", "phone_std", "postcode_std", "city_std", "address_std",
    "quality_flags", "_batch_id", "_row_hash", "_ingested_at",
)  # fmt: skip
"""Columns of ``silver/records`` in order."""

MATCH_COLUMN_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "first_name_std": ("first_name", "full_name"),
    "last_name_std": ("last_name", "full_name"),
    "full_name_std": ("first_name", "last_name", "full_name"),
    "given_name_canonical": ("first_name", "full_name"),
    "middle_name": ("middle_name", "full_name"),
    "date_of_birth": ("date_of_birth",),
    "dob_year": ("date_of_birth",),
    "gender": ("gender",),
    "email_std": ("email",),
    "email_user": ("email",),
    "phone_std": ("phone",),
    "address_std": ("address_line1", "address_line2"),
    "postcode_std": ("postcode",),
    "city_std": ("city",),
    "national_id": ("national_id",),
}  # fmt: skip
"""The ``silver/records`` columns the linkage model reads, and the canonical attributes each is
built from: a column is there when a customer source maps any of them (else it is null throughout)."""

RECORDS_TYPES = {
    **{name: dtype.simpleString() for name, dtype in ATTRIBUTE_TYPES.items()},
    "dob_year": "int", "updated_at": "timestamp", "_ingested_at": "timestamp", "quality_flags": "array<string>",
    "reference_keys": "array<string>",
}  # fmt: skip
"""Types of the ``silver/records`` columns that are not strings."""

FACTS_SCHEMA = StructType(
    [
        StructField("fact_key", StringType()),
        StructField("source", StringType()),
        StructField("kind", StringType()),
        StructField("record_key", StringType()),
        StructField("fact_id", StringType()),
        StructField("customer_ref", StringType()),
        StructField("event_at", TimestampType()),
        StructField("amount", DoubleType()),
        StructField("currency", StringType()),
        StructField("channel", StringType()),
        StructField("status", StringType()),
        StructField("due_at", TimestampType()),
        StructField("closed_at", TimestampType()),
        StructField("campaign", StringType()),
        StructField("subject", StringType()),
        StructField("consent_email", BooleanType()),
        StructField("consent_sms", BooleanType()),
        StructField("consent_phone", BooleanType()),
        StructField("reference_id", StringType()),
        StructField(BATCH_ID, StringType()),
        StructField(INGESTED_AT, TimestampType()),
    ]
)
"""``silver/facts``: one row per live source fact. ``fact_key`` is ``<source>:<source_record_id>``,
``record_key`` the key of the customer record its ``customer_ref`` names."""

ENTITY_MAP_SCHEMA = StructType(
    [
        StructField("record_key", StringType(), True),
        StructField("source", StringType(), True),
        StructField("source_record_id", StringType(), True),
        StructField("customer_id", StringType(), True),
        StructField("run_id", StringType(), True),
        StructField("id_first_seen_run", StringType(), True),
        StructField("id_minted_at", TimestampType(), True),
    ]
)

ID_HISTORY_SCHEMA = StructType(
    [
        StructField("event_type", StringType(), True),
        StructField("customer_id", StringType(), True),
        StructField("related_ids", ArrayType(StringType(), True), True),
        StructField("run_id", StringType(), True),
        StructField("at", TimestampType(), True),
    ]
)

PAIRS_KEY_COLUMNS = ("record_key_l", "record_key_r", "match_probability", "match_weight", "cross_reference", "run_id")
"""The contract columns of ``silver/pairs``; one ``mw_<comparison>`` column follows per comparison.
A pair one record's cross-reference column joins has ``cross_reference`` true and probability 1
(the model's weights kept where it scored the pair too, else null)."""

PAIRS_TYPES = {"match_probability": "double", "match_weight": "double", "cross_reference": "boolean"}
"""Types of the ``silver/pairs`` contract columns that are not strings."""

# ---------------------------------------------------------------- gold

CHANGED_ATTRIBUTE = StructType(
    [
        StructField("attribute", StringType()),
        StructField("old_value", StringType()),
        StructField("new_value", StringType()),
    ]
)

CHANGES_SCHEMA = StructType(
    [
        StructField("customer_id", StringType()),
        StructField("change_type", StringType()),
        StructField("changed_attributes", ArrayType(CHANGED_ATTRIBUTE)),
        StructField("retired_ids", ArrayType(StringType())),
        StructField("related_ids", ArrayType(StringType())),
        StructField("run_id", StringType()),
        StructField("changed_at", TimestampType()),
    ]
)

LIFE_EVENTS_SCHEMA = StructType(
    [
        StructField("customer_id", StringType()),
        StructField("event_type", StringType()),
        StructField("effective_at", TimestampType()),  # when it happened at the source
        StructField("recorded_at", TimestampType()),  # when the lake learnt it (the version's valid_from)
        StructField("old_value", StringType()),
        StructField("new_value", StringType()),
        StructField("old_amount", DoubleType()),
        StructField("new_amount", DoubleType()),
        StructField("change_share", DoubleType()),
        StructField("source", StringType()),
        StructField("record_key", StringType()),
        StructField("run_id", StringType()),
    ]
)
"""``gold/life_events``: one row per detected event (see :mod:`cdi.gold.life_events`)."""

CUSTOMER_360_COLUMNS = (
    "customer_id", "full_name", "first_name", "last_name", "email", "phone", "city", "postcode",
    "region", "region_code", "country", "date_of_birth", "age", "age_band", "gender", "marital_status",
    "income_reporting", "income_band", "deceased",
    "orders", "revenue", "avg_order_value", "first_order_at", "last_order_at", "channels",
    "invoices", "invoiced", "payments", "paid", "outstanding_balance", "unpaid_invoices", "late_payments",
    "tickets", "open_tickets", "last_contact_at",
    "responses", "last_response_at", "consent_email", "consent_sms", "consent_phone",
    "consent_email_from", "consent_email_at", "consent_sms_from", "consent_sms_at", "consent_phone_from", "consent_phone_at",
    "reachable_email", "reachable_sms", "reachable_phone",
    "recency_days", "r_score", "f_score", "m_score", "rfm_score",
    "first_seen_at", "tenure_days",
    "moved_at", "moved_country_at", "marital_status_changed_at", "surname_changed_at", "new_email_at", "new_phone_at",
    "deceased_at", "income_change_pct_12m",
    "currency", "as_of",
)  # fmt: skip
"""Columns of ``gold/customer_360`` in order (a ``run_id`` follows)."""

CUSTOMER_360_TYPES = {
    "date_of_birth": "date", "age": "int", "income_reporting": "double",
    **dict.fromkeys(("orders", "invoices", "payments", "unpaid_invoices", "late_payments", "tickets", "open_tickets",
                     "responses", "recency_days", "r_score", "f_score", "m_score", "tenure_days"), "int"),
    **dict.fromkeys(("revenue", "avg_order_value", "invoiced", "paid", "outstanding_balance"), "double"),
    **dict.fromkeys(("first_order_at", "last_order_at", "last_contact_at", "last_response_at", "first_seen_at",
                     "consent_email_at", "consent_sms_at", "consent_phone_at", "moved_at", "moved_country_at", "marital_status_changed_at", "surname_changed_at",
                     "new_email_at", "new_phone_at", "deceased_at"), "timestamp"),
    "income_change_pct_12m": "double",
    **dict.fromkeys(("consent_email", "consent_sms", "consent_phone", "deceased",
                     "reachable_email", "reachable_sms", "reachable_phone"), "boolean"),
    "channels": "array<string>", "as_of": "date",
}  # fmt: skip
"""Types of the ``gold/customer_360`` columns that are not strings."""

SEGMENTS_SCHEMA = StructType([StructField("segment", StringType()), StructField("customer_id", StringType())])

UNMATCHED_FACTS_SCHEMA = StructType(
    [
        StructField("run_id", StringType()),
        StructField("source", StringType()),
        StructField("kind", StringType()),
        StructField("customer_source", StringType()),
        StructField("facts", LongType()),
        StructField("matched", LongType()),
        StructField("unmatched", LongType()),
        StructField("no_reference", LongType()),
        StructField("unconvertible", LongType()),
        StructField("unconvertible_currencies", StringType()),
        StructField("sample_unmatched_reference", StringType()),
        StructField("computed_at", TimestampType()),
    ]
)

# ---------------------------------------------------------------- stewardship

STEWARD_ACTIONS = ("link", "separate", "revoke")
"""``link``: the two records are one customer; ``separate``: they are two; ``revoke``: the decision
``revokes`` names no longer holds."""

STEWARD_DECISIONS_SCHEMA = StructType(
    [
        StructField("decision_id", StringType()),  # one per steward action; a separation of two customers has a row per record pair
        StructField("action", StringType()),
        StructField("record_key_l", StringType()),  # the pair, ordered (l < r); null for a revoke
        StructField("record_key_r", StringType()),
        StructField("revokes", StringType()),  # the decision a revoke undoes
        StructField("review", StringType()),  # accepted | rejected: decided on a review-queue item
        StructField("match_probability", DoubleType()),  # the pair's score when decided, where it was scored
        StructField("customer_ids", ArrayType(StringType())),  # the customers the records belonged to then
        StructField("steward", StringType()),  # the role (and user, behind a trusted proxy) that decided
        StructField("reason", StringType()),
        StructField("origin", StringType()),  # api | cli
        StructField("decided_at", TimestampType()),
    ]
)
"""``steward/decisions``: append-only; the newest decision on a pair wins (see :mod:`cdi.silver.steward`)."""

# ---------------------------------------------------------------- privacy (privacy/)

ERASURE_REGISTER_SCHEMA = StructType(
    [
        StructField("erasure_id", StringType()),
        StructField("kind", StringType()),  # record (a customer or fact record key) | email | national_id
        StructField("hash", StringType()),  # sha256 of the salted value (cdi.privacy.register); never the value
        StructField("erased_at", TimestampType()),
    ]
)
"""``privacy/erasure_register``: a re-ingested row whose record key is here is quarantined as ``erased``."""

ERASURE_AUDIT_SCHEMA = StructType(
    [
        StructField("erasure_id", StringType()),
        StructField("erased_at", TimestampType()),
        StructField("by", StringType()),
        StructField("reason", StringType()),
        StructField("selector", StringType()),  # customer | record | email | national_id (the kind, not the value)
        StructField("customers", LongType()),
        StructField("records", LongType()),
        StructField("facts", LongType()),
        StructField("rows_removed", MapType(StringType(), LongType())),  # table -> rows
        StructField("files_vacuumed", LongType()),
        StructField("outbox_lines_removed", LongType()),
        StructField("outbox_values_cleared", LongType()),
        StructField("postgres_rows_removed", LongType()),
        StructField("artefacts_cleaned", LongType()),
        StructField("seconds", DoubleType()),
    ]
)
"""``privacy/erasure_audit``: one row per erasure; counts only, no personal values."""

ERASURE_PENDING_SCHEMA = StructType(
    [
        StructField("erasure_id", StringType()),
        StructField("erased_at", TimestampType()),
        StructField("by", StringType()),
        StructField("reason", StringType()),
        StructField("selector", StringType()),
        StructField("customer_ids", ArrayType(StringType())),
        StructField("record_keys", ArrayType(StringType())),
        StructField("fact_keys", ArrayType(StringType())),
        StructField("values", ArrayType(StringType())),  # what to scrub from text outside the tables
        StructField("emails", ArrayType(StringType())),
        StructField("national_ids", ArrayType(StringType())),
        StructField("phone_digits", ArrayType(StringType())),
        StructField("phones", ArrayType(StringType())),
    ]
)
"""``privacy/erasure_pending``: what an unfinished erasure still has to remove; the next ``cdi
erase``, ``cdi run`` or ``cdi maintain`` finishes it, then deletes the row and vacuums the table."""

# ---------------------------------------------------------------- the lake's bookkeeping (_cdi/)

TRANSACTIONS_SCHEMA = StructType(
    [
        StructField("txn_id", StringType()),
        StructField("name", StringType()),
        StructField("state", StringType()),
        StructField("run_id", StringType()),
        StructField("holder", StringType()),
        StructField("tables", MapType(StringType(), LongType())),
        StructField("at", TimestampType()),
    ]
)

LEASE_SCHEMA = StructType(
    [
        StructField("key", StringType()),
        StructField("token", StringType()),
        StructField("holder", StringType()),
        StructField("run_id", StringType()),
        StructField("command", StringType()),
        StructField("state", StringType()),  # running | lake_committed | done: how far the holder's run got
        StructField("acquired_at", TimestampType()),
        StructField("heartbeat_at", TimestampType()),
        StructField("expires_at", TimestampType()),
    ]
)

RUNS_SCHEMA = StructType(
    [
        StructField("run_id", StringType()),
        StructField("outcome", StringType()),
        StructField("command", StringType()),
        StructField("stages", ArrayType(StringType())),
        StructField("holder", StringType()),
        StructField("reason", StringType()),
        # "<stage>/<table>" -> version that stage committed (or, rolled back, the version restored)
        StructField("tables", MapType(StringType(), LongType())),
        StructField("recorded_at", TimestampType()),
        # what silver and gold were computed from (cdi.run_inputs), on runs that wrote or confirmed them
        StructField("inputs", StringType()),
    ]
)
