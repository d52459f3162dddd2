"""Typed, validated configuration: the one module that reads YAML.

An environment file (``conf/demo.yaml``) may ``include:`` other files (one per source, shared
defaults); included files are merged first and the including file overrides them, lists of
``sources`` are concatenated. ``${VAR}`` and ``${VAR:-default}`` are replaced from the
environment (secrets never live in the files). Relative local paths are resolved against the
directory of the environment file, so a run does not depend on the working directory; a leading
``~`` is the user's home.

Every problem (unknown key, wrong type, missing value, missing variable) raises
:class:`ConfigError` naming the file, the key path and what was expected, before Spark starts.
Secrets are never echoed: a value under a key named like a secret (``password``, ``dsn``,
``token``, ...) or taken from a variable named so (``${CDI_PG_DSN}``) is not shown in errors, and
``CdiConfig.redactor`` masks such values in any other text (driver messages, logs).

    >>> cfg = load_config("conf/demo.yaml")  # doctest: +SKIP
    >>> cfg.source("crm").trust_rank  # doctest: +SKIP
"""

from __future__ import annotations

import difflib
import logging
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from cdi.errors import ConfigError
from cdi.redaction import Redactor, is_secret_name
from cdi.schema import CUSTOMER_360_COLUMNS, MATCH_COLUMN_ATTRIBUTES
from cdi.sql import columns_read, unknown_columns

log = logging.getLogger(__name__)

CANONICAL_ATTRIBUTES = (
    "first_name",
    "middle_name",
    "last_name",
    "full_name",
    "date_of_birth",
    "gender",
    "email",
    "phone",
    "address_line1",
    "address_line2",
    "city",
    "postcode",
    "region",
    "country",
    "national_id",
    "marital_status",
    "income",
    "income_currency",
    "honorific",
    "deceased",
    "date_of_death",
)

FACT_FIELDS = (
    "fact_id",
    "event_at",
    "amount",
    "currency",
    "channel",
    "status",
    "due_at",
    "closed_at",
    "campaign",
    "subject",
    "consent_email",
    "consent_sms",
    "consent_phone",
    "reference_id",
)

CUSTOMER_KIND = "customers"
FACT_KINDS = ("orders", "invoices", "payments", "transactions", "tickets", "interactions")
DATE_ATTRIBUTES = ("date_of_birth", "date_of_death")
TIMESTAMP_FACT_FIELDS = ("event_at", "due_at", "closed_at")

_URL_PASSWORD = re.compile(r"([?&;]password=)|(://[^/@?]*:[^/@?]*@)", re.IGNORECASE)
_ENV_PATTERN = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_NAME_PATTERN = r"^[a-z][a-z0-9_]*$"
_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
RUN_ID_FORM = "1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"


def check_run_id(run_id: str) -> str:
    """``run_id`` if it has the allowed form: it names outbox files and sits in lake predicates,
    so a bad one must fail before anything is written, not half-way through a run."""
    if not _RUN_ID.match(run_id):
        raise ConfigError(f"--run-id {run_id!r} is not a valid run id: use {RUN_ID_FORM}")
    return run_id


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SparkConfig(_Strict):
    master: str | None = "local[2]"
    app_name: str = "cdi"
    shuffle_partitions: int = Field(8, ge=1)
    driver_memory: str | None = None
    checkpoint_dir: str | None = None
    conf: dict[str, str] = Field(default_factory=dict)

    @field_validator("conf", mode="before")
    @classmethod
    def _stringify(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {str(k): str(v).lower() if isinstance(v, bool) else str(v) for k, v in value.items()}
        return value


class StorageConfig(_Strict):
    """How the lake's Delta tables are written.

    ``auto`` (default) and ``delta-spark`` use delta-spark's jars (``auto`` falls back to the
    ``deltalake`` package, with a warning, where the jars cannot be had); ``deltalake`` always
    uses that package (for machines that can never reach the jars).
    """

    engine: Literal["auto", "delta-spark", "deltalake"] = "auto"
    # hours of history VACUUM keeps (time travel and --as-of reach back this far)
    vacuum_retention_hours: float = Field(168, ge=0)
    # a writer's lease on the lake lasts this long without a heartbeat (renewed every third of
    # it); a run whose process died on another machine is taken over after this
    lease_ttl_seconds: float = Field(600, ge=10)


class DemoConfig(_Strict):
    """Where the bundled demo data lives and how to generate it when it is absent."""

    persons: int = Field(3000, ge=10)
    seed: int = 42
    out: str = Field(default_factory=lambda: os.path.expanduser("~/cdi-demo/data"))
    generate_if_missing: bool = True


class ColumnSpec(_Strict):
    """A source column (dotted path for nested JSON) with how to read it."""

    column: str
    formats: list[str] = Field(default_factory=list)
    default_region: str | None = None


class MappedSpec(_Strict):
    """Where a canonical attribute comes from: one column (``column``, as :class:`ColumnSpec`),
    several columns joined as text (``columns``: street number + street name + unit; blanks
    skipped, joined by ``separator``), or a Spark SQL expression over the source's columns
    (``expr``: ``concat_ws(' ', given_1, given_2)``, ``regexp_replace(ssn, '-', '')``).
    A list in YAML is shorthand for ``columns``."""

    column: str | None = None
    columns: list[str] | None = Field(None, min_length=1)
    expr: str | None = None
    separator: str = " "
    formats: list[str] = Field(default_factory=list)
    default_region: str | None = None

    @model_validator(mode="after")
    def _one_way(self) -> MappedSpec:
        given = [k for k in ("column", "columns", "expr") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError(f"give exactly one of 'column', 'columns' or 'expr' (got {', '.join(given) or 'none'})")
        if self.expr is not None:
            expression_columns(self.expr)  # a syntax error fails here, before Spark starts
        return self

    def source_columns(self) -> list[str]:
        """The source columns the mapping reads (for drift checks and messages)."""
        if self.column:
            return [self.column]
        if self.columns:
            return list(self.columns)
        return expression_columns(self.expr or "")


def expression_columns(expr: str) -> list[str]:
    """The columns a Spark SQL expression reads, in order; a ValueError when it does not parse
    as one expression (sqlglot, Spark dialect: Splink's own SQL library)."""
    import sqlglot
    from sqlglot import exp

    try:
        tree = sqlglot.parse_one(expr, read="spark")
    except sqlglot.errors.ParseError as exc:
        raise ValueError(f"expr {expr!r} is not a Spark SQL expression: {str(exc).splitlines()[0]}") from None
    if isinstance(tree, exp.Query) or tree.find(exp.Subquery, exp.Select) is not None:
        raise ValueError(f"expr {expr!r} must be an expression over the row's columns, not a query")
    names: list[str] = []
    for column in tree.find_all(exp.Column):
        name = ".".join(part.name for part in column.parts)
        if name not in names:
            names.append(name)
    return names


MappingValue = str | list[str] | MappedSpec


class JdbcConfig(_Strict):
    """Credentials are connection properties (``user``, ``password``), never part of ``url``."""

    url: str
    table: str | None = None
    query: str | None = None
    user: str | None = None
    password: str | None = Field(None, repr=False)
    driver: str = "org.postgresql.Driver"
    jar: str = "/usr/share/java/postgresql.jar"
    watermark_column: str | None = None
    fetch_size: int = 10000

    @model_validator(mode="after")
    def _table_or_query(self) -> JdbcConfig:
        if bool(self.table) == bool(self.query):
            raise ValueError("give exactly one of 'table' or 'query'")
        return self

    @field_validator("url")
    @classmethod
    def _no_credentials(cls, url: str) -> str:
        if _URL_PASSWORD.search(url):
            raise ValueError("the URL carries a password: give it as jdbc.password (a connection property) instead")
        return url


# Reader options each file format takes (Spark's documented options of that data source, and
# the ones this project's readers handle); an option outside them would be ignored silently.
# JDBC takes any: Spark passes unknown JDBC options to the driver as connection properties.
_LISTING_OPTIONS = frozenset({"pathGlobFilter", "recursiveFileLookup"})
_SPARK_FILE_OPTIONS = frozenset({"ignoreCorruptFiles", "ignoreMissingFiles", "modifiedBefore", "modifiedAfter"})
_TEXT_COMMON = frozenset({
    "encoding", "charset", "lineSep", "mode", "columnNameOfCorruptRecord", "dateFormat", "timestampFormat",
    "timestampNTZFormat", "enableDateTimeParsingFallback", "multiLine", "samplingRatio", "locale", "timeZone",
    "compression",
})  # fmt: skip
READER_OPTIONS: dict[str, frozenset[str] | None] = {
    "csv": _LISTING_OPTIONS | _SPARK_FILE_OPTIONS | _TEXT_COMMON | {
        "sep", "delimiter", "quote", "quoteAll", "escape", "escapeQuotes", "comment", "header", "inferSchema",
        "preferDate", "enforceSchema", "ignoreLeadingWhiteSpace", "ignoreTrailingWhiteSpace", "nullValue", "nanValue",
        "positiveInf", "negativeInf", "maxColumns", "maxCharsPerColumn", "charToEscapeQuoteEscaping", "emptyValue",
        "unescapedQuoteHandling", "max_record_lines",
    },
    "json": _LISTING_OPTIONS | _SPARK_FILE_OPTIONS | _TEXT_COMMON | {
        "primitivesAsString", "prefersDecimal", "allowComments", "allowUnquotedFieldNames", "allowSingleQuotes",
        "allowNumericLeadingZeros", "allowBackslashEscapingAnyCharacter", "allowUnquotedControlChars",
        "allowNonNumericNumbers", "dropFieldIfAllNull", "ignoreNullFields",
    },
    "parquet": _LISTING_OPTIONS,
    "delta": frozenset(),
    "jdbc": None,
}  # fmt: skip


def check_reader_options(fmt: str, options: Iterable[str]) -> list[str]:
    """One message per option the format does not take, with the closest known name."""
    known = READER_OPTIONS.get(fmt)
    if known is None:
        return []
    by_lower = {k.lower(): k for k in known}
    problems = []
    for name in options:
        if name in known:
            continue
        close = [by_lower[name.lower()]] if name.lower() in by_lower else difflib.get_close_matches(name, sorted(known), n=1)
        hint = f"did you mean {close[0]!r}?" if close else (
            f"known: {', '.join(sorted(known))}" if known else f"format '{fmt}' takes no options"
        )
        problems.append(f"unknown option {name!r} for format '{fmt}' ({hint})")
    return problems


class CustomerRef(_Strict):
    """For fact sources: the column with the customer's id in ``source``."""

    column: str
    source: str


class CrossReference(_Strict):
    """A customer source's column holding the id of a record in another customer source (billing
    rows carrying the CRM contact id, a loyalty number on POS receipts): deterministic evidence
    that the two records are one customer, whatever the model scores. ``column`` is a column or
    dotted path; a list gives the referenced source's id columns in order (joined by "|", as
    bronze joins a composite id)."""

    column: str | list[str]
    source: str

    def columns(self) -> list[str]:
        return [self.column] if isinstance(self.column, str) else list(self.column)


class SourceConfig(_Strict):
    name: str = Field(pattern=_NAME_PATTERN)
    kind: Literal["customers", "orders", "invoices", "payments", "transactions", "tickets", "interactions"]
    format: Literal["csv", "json", "parquet", "delta", "jdbc"]
    path: str | None = None
    jdbc: JdbcConfig | None = None
    options: dict[str, str | int | float | bool] = Field(default_factory=dict)
    id_columns: list[str] = Field(min_length=1)
    customer_ref: CustomerRef | None = None
    # customer sources: columns holding other customer sources' record ids (see CrossReference)
    references: list[CrossReference] = Field(default_factory=list)
    updated_at: ColumnSpec | None = None
    required: list[str] = Field(default_factory=list)
    types: dict[str, Literal["date", "timestamp", "int", "double", "decimal"]] = Field(default_factory=dict)
    type_formats: dict[str, list[str]] = Field(default_factory=dict)
    max_field_length: int | None = None
    max_quarantine_share: float | None = Field(None, ge=0, le=1)
    # rows of one batch with the same id but different content: all quarantined (quarantine), the
    # latest kept (greatest updated_at, then the last file and line) and the others quarantined
    # (latest), or all kept as versions of the record, silver reading the latest (versions: for
    # feeds where each row carries its record's details as of that row, e.g. one line per ticket)
    duplicate_ids: Literal["quarantine", "latest", "versions"] = "quarantine"
    # append: every batch adds to what the source delivered before (records are never deleted);
    # snapshot: each run's batch (all the source's new files, or the whole table) is the full
    # current set of records, so a record missing from it is deleted (a tombstone in bronze)
    load: Literal["append", "snapshot"] = "append"
    # snapshot sources: a batch that would delete more than this share of the live records fails
    max_delete_share: float | None = Field(None, ge=0, le=1)
    default_country: str | None = Field(None, pattern=r"^[A-Z]{2}$")
    # how the source writes names: decided from its data (auto: see cdi.silver.name_order), or
    # said here (surname_first: "Kowalski Jan" full names, or first/last-name columns swapped)
    name_order: Literal["auto", "given_first", "surname_first"] = "auto"
    trust_rank: int = Field(100, ge=0)
    mapping: dict[str, MappingValue] = Field(default_factory=dict)
    origin: str | None = Field(None, exclude=True)

    @model_validator(mode="after")
    def _consistent(self) -> SourceConfig:
        """Every inconsistency of the source at once, so one edit fixes them all."""
        problems = []
        if self.format == "jdbc" and self.jdbc is None:
            problems.append("format 'jdbc' needs a 'jdbc' block (url and table or query)")
        if self.format != "jdbc" and not self.path:
            problems.append(f"format '{self.format}' needs a 'path'")
        problems += [f"options: {p}" for p in check_reader_options(self.format, self.options)]
        allowed = CANONICAL_ATTRIBUTES if self.kind == CUSTOMER_KIND else FACT_FIELDS
        for target in sorted(set(self.mapping) - set(allowed)):
            close = difflib.get_close_matches(target, allowed, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"allowed: {', '.join(allowed)}"
            problems.append(f"mapping has unknown target {target!r} for a '{self.kind}' source ({hint})")
        if self.kind != CUSTOMER_KIND and self.customer_ref is None:
            problems.append(f"a '{self.kind}' source needs 'customer_ref' (column and customer source)")
        if self.references and self.kind != CUSTOMER_KIND:
            problems.append(f"'references' link customer records to each other; a '{self.kind}' source has 'customer_ref' instead")
        if self.load == "snapshot" and self.jdbc is not None and self.jdbc.watermark_column:
            problems.append("load 'snapshot' needs the whole table on every read: drop jdbc.watermark_column or use load 'append'")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def column_spec(self, target: str) -> MappedSpec | None:
        """The mapping of one canonical target, normalised to a MappedSpec."""
        value = self.mapping.get(target)
        if value is None:
            return None
        if isinstance(value, str):
            return MappedSpec(column=value)
        if isinstance(value, list):
            return MappedSpec(columns=value)
        return value

    @property
    def is_customer_source(self) -> bool:
        return self.kind == CUSTOMER_KIND


class IngestConfig(_Strict):
    max_quarantine_share: float = Field(0.05, ge=0, le=1)
    max_delete_share: float = Field(0.5, ge=0, le=1)
    max_field_length: int = Field(2000, ge=1)


class ComparisonConfig(_Strict):
    """One Splink comparison; ``kind`` picks a comparison-library template."""

    name: str | None = None
    kind: Literal[
        "name", "exact", "jaro_winkler", "levenshtein", "email", "date_of_birth", "postcode", "forename_surname",
        "address", "identifier", "middle_name",
    ]
    column: str
    second_column: str | None = None
    alias_column: str | None = None  # e.g. a nickname-mapped given name: an extra "alias agrees" level
    # date_of_birth / address: agreement counts only when this given-name column agrees too
    # (twins share a birth date, families an address); otherwise the level carries no weight
    given_name_column: str | None = None
    # address: agreement counts only when these birth dates do not conflict (parent and child)
    date_of_birth_column: str | None = None
    # with given_name_column: the surname, so that names written the other way round (the given
    # name in the surname field) still count as the same given name
    surname_column: str | None = None
    # with given_name_column / date_of_birth_column: a person-level id (national id) that, when it
    # agrees (one typo allowed), makes the agreement count whatever the names say; relatives who
    # share an address or a birth date never share an id
    identifier_column: str | None = None
    thresholds: list[float] = Field(default_factory=list)
    term_frequency: bool = False


class LinkageConfig(_Strict):
    backend: Literal["auto", "spark", "duckdb"] = "auto"
    max_local_records: int = Field(3_000_000, ge=1)
    comparisons: list[ComparisonConfig] = Field(default_factory=list)
    blocking_rules: list[str | list[str]] = Field(default_factory=list)
    training_blocking_rules: list[str | list[str]] = Field(default_factory=list)
    deterministic_rules: list[str | list[str]] = Field(default_factory=list)
    recall: float = Field(0.7, gt=0, le=1)
    blocking_key_cap: int = Field(200, ge=2)
    u_max_pairs: int = Field(2_000_000, ge=1000)
    # EM on at most about this many pairs per training rule (Splink samples records by a hash of
    # their key, so the match share of the rule's pairs is kept); null trains on every pair
    em_max_pairs: int | None = Field(2_000_000, ge=1000)
    predict_threshold: float = Field(0.5, ge=0, le=1)
    cluster_threshold: float = Field(0.9, ge=0, le=1)
    retrain: bool = False
    seed: int = 42
    # a cluster of more records than this is reported (log warning with examples, run summary):
    # one person rarely has that many records, a chain of false links often does
    max_cluster_size: int = Field(30, ge=2)
    # a cluster of two groups joined by one pair that most pairs across them do not support
    # (see cdi.silver.linkage.chains): cut at that pair, only listed, or not looked for
    weak_chains: Literal["split", "flag", "off"] = "split"
    # build the model from the attributes the customer sources map (see derive_linkage)
    derive: bool = True
    # the canonical attributes the model was derived from (set at config load; None: not derived)
    attributes: list[str] | None = None

    @model_validator(mode="after")
    def _thresholds(self) -> LinkageConfig:
        if self.cluster_threshold < self.predict_threshold:
            raise ValueError("cluster_threshold must be >= predict_threshold (pairs below the floor are not kept)")
        if len(self.training_blocking_rules) == 1:
            raise ValueError("training_blocking_rules needs at least two rules so every parameter is estimated")
        return self


IDENTIFIER_FALLBACKS = {
    "national_id": ("national_id", "identifier"),
    "email": ("email_std", "exact"),
    "phone": ("phone_std", "exact"),
}
"""Identifier attribute -> (match column, comparison kind) used when a mapped identifier has no
configured comparison or blocking rule: an identifier always gets both."""


TRAINING_FALLBACKS = ("national_id", "email_std", "phone_std", "postcode_std")
"""Single-column training rules, most person-specific first, added when the sources leave fewer
than two of the configured ones (two rules are needed so every comparison is estimated)."""


def _available(column: str | None, attributes: set[str]) -> bool:
    """A match column holds data when a source maps one of its attributes (unknown columns count)."""
    return column is None or column not in MATCH_COLUMN_ATTRIBUTES or bool(attributes & set(MATCH_COLUMN_ATTRIBUTES[column]))


def _rules_for(rules: list[str | list[str]], attributes: set[str], key: str, report: bool) -> list[str | list[str]]:
    kept = []
    for rule in rules:
        missing = sorted(c for c in columns_read(rule) if not _available(c, attributes))
        if missing and report:
            log.info("linkage.%s: rule %r dropped: no customer source maps the attributes of %s", key, rule, missing)
        if not missing:
            kept.append(rule)
    return kept


def derive_linkage(linkage: LinkageConfig, attributes: Iterable[str], *, report: bool = True) -> LinkageConfig:
    """The linkage model for customer sources that together map ``attributes``.

    A comparison or rule over a column no source fills would only ever see nulls (a comparison
    that never fires, a training rule with no pairs), so it is left out; optional columns of a
    comparison (a given name or birth date that makes an address count) are dropped the same way.
    Every mapped identifier keeps a comparison and a blocking rule (:data:`IDENTIFIER_FALLBACKS`),
    and training keeps two rules where the sources allow (:data:`TRAINING_FALLBACKS`).
    A source that lacks an attribute some other source has is null on it, which every comparison
    scores with Splink's null level (neutral). Idempotent.
    """
    mapped = set(attributes)
    comparisons = []
    for c in linkage.comparisons:
        if not (_available(c.column, mapped) and _available(c.second_column, mapped)):
            if report:
                log.info("linkage.comparisons: %r dropped: no customer source maps the attributes of %s", c.name or c.column, c.column)
            continue
        optional = ("alias_column", "given_name_column", "date_of_birth_column", "surname_column", "identifier_column")
        comparisons.append(c.model_copy(update={k: None for k in optional if not _available(getattr(c, k), mapped)}))
    blocking = _rules_for(linkage.blocking_rules, mapped, "blocking_rules", report)
    compared = {col for c in comparisons for col in (c.column, c.second_column) if col}
    blocked = {cols[0] for r in blocking if len(cols := sorted(columns_read(r))) == 1}
    for attribute, (column, kind) in IDENTIFIER_FALLBACKS.items():
        if attribute not in mapped:
            continue
        if column not in compared:
            comparisons.append(ComparisonConfig(name=attribute, kind=kind, column=column, term_frequency=True))
        if column not in blocked:
            blocking.append([column])
    training = _rules_for(linkage.training_blocking_rules, mapped, "training_blocking_rules", report)
    for column in TRAINING_FALLBACKS:
        if 0 < len(training) < 2 and _available(column, mapped) and [column] not in training:
            training.append([column])
            if report:
                log.info("linkage.training_blocking_rules: [%s] added so that two rules estimate the model", column)
    deterministic = _rules_for(linkage.deterministic_rules, mapped, "deterministic_rules", report)
    problems = [
        what
        for what, empty in (
            ("comparisons", not comparisons and bool(linkage.comparisons)),
            ("blocking_rules", not blocking and bool(linkage.blocking_rules)),
            ("training_blocking_rules (at least two)", len(training) < 2 and bool(linkage.training_blocking_rules)),
            ("deterministic_rules", not deterministic and bool(linkage.deterministic_rules)),
        )
        if empty
    ]
    if problems:
        raise ValueError(
            f"linkage: the customer sources map only {sorted(mapped)}, which leaves no usable "
            f"{', '.join(problems)}; map more attributes or add rules over these to linkage"
        )
    return linkage.model_copy(
        update={
            "comparisons": comparisons,
            "blocking_rules": blocking,
            "training_blocking_rules": training,
            "deterministic_rules": deterministic,
            "attributes": sorted(mapped),
        }
    )


SurvivorshipRuleName = Literal["source_priority", "most_recent", "most_frequent", "most_complete", "first_non_null"]


class AttributeRule(_Strict):
    rule: SurvivorshipRuleName
    tie_breakers: list[SurvivorshipRuleName] = Field(default_factory=list)


class AttributeGroup(_Strict):
    attributes: list[str] = Field(min_length=2)
    rule: SurvivorshipRuleName = "most_recent"
    tie_breakers: list[SurvivorshipRuleName] = Field(default_factory=lambda: list[SurvivorshipRuleName](["source_priority"]))
    # members a record must have to supply the group (e.g. no address taken from a record with only a country)
    required: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _required_are_members(self) -> AttributeGroup:
        extra = sorted(set(self.required) - set(self.attributes))
        if extra:
            raise ValueError(f"required member(s) {extra} are not in the group's attributes {self.attributes}")
        return self


class SurvivorshipConfig(_Strict):
    default: AttributeRule = AttributeRule(rule="most_recent", tie_breakers=["source_priority"])
    attributes: dict[str, AttributeRule] = Field(default_factory=dict)
    groups: dict[str, AttributeGroup] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known(self) -> SurvivorshipConfig:
        names = set(self.attributes)
        for group in self.groups.values():
            names.update(group.attributes)
        unknown = sorted(names - set(CANONICAL_ATTRIBUTES))
        if unknown:
            raise ValueError(f"unknown attribute(s) {unknown}; allowed: {', '.join(CANONICAL_ATTRIBUTES)}")
        grouped = [a for g in self.groups.values() for a in g.attributes]
        twice = sorted({a for a in grouped if grouped.count(a) > 1})
        if twice:
            raise ValueError(f"attribute(s) {twice} belong to more than one group")
        return self


class Customer360Config(_Strict):
    currency: str = Field("EUR", pattern=r"^[A-Z]{3}$")
    rates: dict[str, float] = Field(default_factory=lambda: {"EUR": 1.0})
    age_bands: list[int] = Field(default_factory=lambda: [18, 25, 35, 45, 55, 65])
    income_bands: list[float] = Field(default_factory=lambda: [20000.0, 40000.0, 60000.0, 100000.0])
    as_of: str | None = None
    late_payment_days: int = 0
    # an income change by more than this share of the old income is a life event (gold/life_events)
    income_change_share: float = Field(0.1, gt=0)
    # currency of facts from sources without a currency column (source name -> ISO code);
    # sources not listed are taken to be in the reporting currency
    source_currencies: dict[str, str] = Field(default_factory=dict)


class SegmentConfig(_Strict):
    name: str = Field(pattern=_NAME_PATTERN)
    description: str = ""
    where: str = Field(description="a Spark SQL condition over customer_360 columns")

    @field_validator("where")
    @classmethod
    def _over_customer_360(cls, where: str) -> str:
        """Parsed here, before Spark starts: a typo must not fail the gold stage after hours."""
        unknown_columns(where, (*CUSTOMER_360_COLUMNS, "run_id"), "gold/customer_360")
        return where


class PostgresTarget(_Strict):
    """Where golden records are upserted. ``dsn`` is a libpq connection string or URI; the other
    fields are passed to the driver as parameters and win over the DSN's, so a password with
    spaces or quotes needs no escaping. Neither a DSN nor a host switches the target off."""

    dsn: str = Field("", repr=False)
    host: str | None = None
    port: int | None = Field(None, ge=1, le=65535)
    dbname: str | None = None
    user: str | None = None
    password: str | None = Field(None, repr=False)
    table: str = "cdi_golden_customers"

    @field_validator("dsn")
    @classmethod
    def _parses(cls, dsn: str) -> str:
        from psycopg import ProgrammingError
        from psycopg.conninfo import conninfo_to_dict

        try:
            conninfo_to_dict(dsn)
        except ProgrammingError:
            # libpq's message quotes a piece of the string, which may be a piece of the password
            raise ValueError(
                "not a valid libpq connection string (key=value pairs or a postgresql:// URI); give the "
                "password as propagation.postgres.password, or single-quote values that hold spaces"
            ) from None
        return dsn

    @property
    def enabled(self) -> bool:
        return bool(self.dsn.strip() or (self.host or "").strip())

    def parameters(self) -> dict[str, str | int]:
        """The separately given connection parameters (empty ones left out)."""
        given = {"host": self.host, "port": self.port, "dbname": self.dbname, "user": self.user, "password": self.password}
        return {k: v for k, v in given.items() if v not in (None, "")}


class PropagationConfig(_Strict):
    """Where golden changes go, and how sensitive attributes leave the lake: ``masking``
    ``partial`` (``*******6458``, the default), ``token`` (a keyed hash under ``token_key``, give it
    as ``${CDI_TOKEN_KEY}``; the same value gives the same token, so systems downstream can join on
    it) or ``none`` (in clear: for a target allowed to hold them)."""

    outbox_dir: str | None = None
    postgres: PostgresTarget | None = None
    masked_attributes: list[str] = Field(default_factory=lambda: ["national_id"])
    masking: Literal["partial", "token", "none"] = "partial"
    # customers whose latest answer on this channel (the sources' consent facts, as customer_360
    # reads them) is no are not published: their changes stay in the lake
    opt_out_channel: Literal["email", "sms", "phone"] | None = None
    token_key: str | None = Field(None, repr=False, min_length=16)

    @field_validator("token_key", mode="before")
    @classmethod
    def _blank_key_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _masking_possible(self) -> PropagationConfig:
        from cdi.schema import ATTRIBUTE_TYPES

        unknown = sorted(set(self.masked_attributes) - set(CANONICAL_ATTRIBUTES))
        if unknown:
            raise ValueError(f"propagation.masked_attributes: unknown attribute(s) {unknown}; known: {', '.join(CANONICAL_ATTRIBUTES)}")
        typed = sorted(set(self.masked_attributes) & set(ATTRIBUTE_TYPES))
        if typed and self.masking != "none":
            raise ValueError(
                f"propagation.masked_attributes: {typed} cannot be masked in place (the target's column is a date, a "
                "number or a flag); leave them out of the list, or set masking: none"
            )
        if self.masking == "token" and not self.token_key:
            raise ValueError("propagation.masking is token but propagation.token_key is not set: give it as ${CDI_TOKEN_KEY} (16+ characters)")
        return self


class PrivacyConfig(_Strict):
    """``cdi erase`` and the erasure register. ``hash_key`` salts the register's hashes: give it as
    ``${CDI_HASH_KEY}`` (a secret of 16+ characters, the same for every run of this lake); without
    it nothing can be erased, and a lake that has an erasure register cannot be ingested."""

    hash_key: str | None = Field(None, repr=False, min_length=16)
    vacuum_after_erasure: bool = True  # VACUUM (0 h) the tables an erasure changed: no old file keeps the values
    # retention (cdi maintain, cdi.privacy.retention): quarantine rows older than this lose their raw
    # text; bronze versions older than this that a newer delivery superseded are removed
    quarantine_raw_days: int | None = Field(None, ge=0)
    bronze_versions_days: int | None = Field(None, ge=0)

    @field_validator("hash_key", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value


class ServiceRole(_Strict):
    """Who may do what in the service: a reader presenting ``token`` (``Authorization: Bearer``)
    or named by the trusted proxy's identity header gets this role. Give tokens as
    ``${ENV_VAR}`` so that no secret sits in the file."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_-]*$")
    token: str | None = Field(None, repr=False, min_length=16)
    unmasked: bool = False  # sees the masked attributes in clear
    steward: bool = False  # may change links and review items (audited)
    submit: bool = False  # may submit records (POST /api/records); stewards may too


class ServiceConfig(_Strict):
    """``cdi serve``: where it listens, how often it looks for newer table versions, what a
    reader without a role (a viewer) sees masked."""

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    refresh_seconds: float = Field(5.0, ge=0)  # 0: never (tests, a fixed snapshot)
    search_limit: int = Field(20, ge=1, le=500)
    masked_attributes: list[str] = Field(default_factory=lambda: ["national_id", "date_of_birth"])
    identity_header: str | None = None  # e.g. X-Forwarded-Role, set only by a proxy you trust
    user_header: str | None = None  # e.g. X-Forwarded-User: who, within the role, decided (audit)
    roles: list[ServiceRole] = Field(default_factory=list)
    # the review queue: scored pairs with review_lower <= probability < review_upper (None: the
    # linkage's cluster_threshold, above which pairs are merged without review)
    review_lower: float = Field(0.5, ge=0, le=1)
    review_upper: float | None = Field(None, ge=0, le=1)
    # POST /api/records lands records as files of this customer source (format json, a local folder)
    landing_source: str | None = None
    # POST /api/match: start Spark and prepare the model's input when the service starts (else at
    # the first request), and the lowest match probability a candidate is shown with
    match_on_start: bool = True
    match_min_probability: float = Field(0.01, ge=0, le=1)

    @model_validator(mode="after")
    def _roles_distinct(self) -> ServiceConfig:
        names = [r.name for r in self.roles]
        if len(set(names)) != len(names):
            raise ValueError(f"service.roles: role names must be distinct, got {names}")
        tokens = [r.token for r in self.roles if r.token]
        if len(set(tokens)) != len(tokens):
            raise ValueError("service.roles: two roles share a token; give each its own")
        if self.review_upper is not None and self.review_upper <= self.review_lower:
            raise ValueError(f"service.review_upper ({self.review_upper}) must be above review_lower ({self.review_lower})")
        unknown = sorted(set(self.masked_attributes) - set(CANONICAL_ATTRIBUTES))
        if unknown:
            raise ValueError(f"service.masked_attributes: unknown attribute(s) {unknown}; known: {', '.join(CANONICAL_ATTRIBUTES)}")
        return self


class CdiConfig(_Strict):
    """The whole, validated configuration of one environment."""

    name: str = "cdi"
    lake_root: str
    spark: SparkConfig = SparkConfig()
    storage: StorageConfig = StorageConfig()
    demo: DemoConfig | None = None
    ingest: IngestConfig = IngestConfig()
    sources: list[SourceConfig] = Field(default_factory=list)
    linkage: LinkageConfig = LinkageConfig()
    survivorship: SurvivorshipConfig = SurvivorshipConfig()
    customer_360: Customer360Config = Customer360Config()
    segments: list[SegmentConfig] = Field(default_factory=list)
    propagation: PropagationConfig = PropagationConfig()
    service: ServiceConfig = ServiceConfig()
    privacy: PrivacyConfig = PrivacyConfig()
    config_file: str | None = Field(None, exclude=True)
    _secrets: frozenset[str] = PrivateAttr(default_factory=frozenset)

    @property
    def redactor(self) -> Redactor:
        """Masks this configuration's secret values in text bound for errors and logs."""
        return Redactor(self._secrets)

    @model_validator(mode="after")
    def _sources_consistent(self) -> CdiConfig:
        names = [s.name for s in self.sources]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"source name(s) {twice} are declared more than once")
        customer_sources = {s.name for s in self.sources if s.is_customer_source}
        for src in self.sources:
            if src.customer_ref and src.customer_ref.source not in customer_sources:
                raise ValueError(
                    f"source '{src.name}': customer_ref.source '{src.customer_ref.source}' is not a "
                    f"customer source (known: {sorted(customer_sources)})"
                )
            id_columns = {s.name: len(s.id_columns) for s in self.sources if s.is_customer_source}
            for ref in src.references:
                if ref.source not in customer_sources:
                    raise ValueError(
                        f"source '{src.name}': references[].source '{ref.source}' is not a customer source "
                        f"(known: {sorted(customer_sources)})"
                    )
                if len(ref.columns()) not in (1, id_columns[ref.source]):
                    raise ValueError(
                        f"source '{src.name}': references[].column {ref.column!r} gives {len(ref.columns())} columns, "
                        f"source '{ref.source}' has {id_columns[ref.source]} id column(s): give one column holding "
                        "the whole id, or one column per id column in order"
                    )
        return self

    @model_validator(mode="after")
    def _landing_source_fits(self) -> CdiConfig:
        name = self.service.landing_source
        if name is None:
            return self
        src = next((s for s in self.sources if s.name == name), None)
        if src is None:
            raise ValueError(f"service.landing_source '{name}' is not a configured source (known: {[s.name for s in self.sources]})")
        if not src.is_customer_source or src.format != "json" or not src.path or _is_uri(src.path):
            raise ValueError(
                f"service.landing_source '{name}' must be a customer source of format json over a local folder "
                f"(it is {src.kind}, {src.format}, path {src.path!r}): the service writes one JSON-lines file per record there"
            )
        from cdi.service.landing import landing_folder

        landing_folder(src)  # a file pattern it cannot fill fails here
        return self

    @model_validator(mode="after")
    def _linkage_derivable(self) -> CdiConfig:
        """A model the sources cannot fill fails here, before Spark starts."""
        self._derive(report=False)
        return self

    def _derive(self, report: bool) -> LinkageConfig:
        if not self.linkage.derive or not self.customer_sources:
            return self.linkage
        return derive_linkage(self.linkage, self.mapped_attributes, report=report)

    @property
    def link_model(self) -> LinkageConfig:
        """The linkage settings the link stage runs: ``linkage`` derived from what the customer
        sources map (:func:`derive_linkage`), or as configured without customer sources or with
        ``linkage.derive: false``. Computed from ``linkage`` each time, so a copy of this config
        with other linkage settings derives from those."""
        return self._derive(report=True)

    @property
    def mapped_attributes(self) -> set[str]:
        """Canonical attributes at least one customer source maps."""
        return {a for s in self.customer_sources for a in s.mapping}

    def source(self, name: str) -> SourceConfig:
        for src in self.sources:
            if src.name == name:
                return src
        raise KeyError(f"no source named '{name}' (known: {[s.name for s in self.sources]})")

    @property
    def customer_sources(self) -> list[SourceConfig]:
        return [s for s in self.sources if s.is_customer_source]

    @property
    def fact_sources(self) -> list[SourceConfig]:
        return [s for s in self.sources if not s.is_customer_source]

    def select_sources(self, names: Iterable[str] | None, given_as: str = "sources") -> list[SourceConfig]:
        """The configured sources named (all when none are), in config order; an unknown name is
        a configuration error naming where it was given (``--source`` on the command line)."""
        if not names:
            return list(self.sources)
        wanted = set(names)
        known = {s.name for s in self.sources}
        unknown = sorted(wanted - known)
        if unknown:
            raise ConfigError(f"{given_as}: unknown source(s) {unknown}; configured: {', '.join(sorted(known))}")
        return [s for s in self.sources if s.name in wanted]

    def table_path(self, name: str) -> str:
        """Absolute location of a lake table such as ``silver/records``."""
        return join_path(self.lake_root, name)


def join_path(root: str, name: str) -> str:
    return root.rstrip("/") + "/" + name.strip("/")


def _is_uri(path: str) -> bool:
    return bool(re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", path))


def _resolve_path(value: str, base: Path) -> str:
    if not value or _is_uri(value):
        return value
    value = os.path.expanduser(value)  # the demo's defaults live under ~/cdi-demo, outside any checkout
    if os.path.isabs(value):
        return value
    return str((base / value).resolve())


def _interpolate(node: Any, file: Path, keypath: str, secrets: set[str]) -> Any:
    """Replace ``${VAR}``; values under secret keys, from secret variables and URLs carrying a
    password go into ``secrets``."""
    if isinstance(node, dict):
        return {k: _interpolate(v, file, f"{keypath}.{k}" if keypath else str(k), secrets) for k, v in node.items()}
    if isinstance(node, list):
        return [_interpolate(v, file, f"{keypath}[{i}]", secrets) for i, v in enumerate(node)]
    if isinstance(node, str):

        def replace(match: re.Match) -> str:
            var, default = match.group(1), match.group(2)
            if var in os.environ:
                value = os.environ[var]
            elif default is not None:
                value = default
            else:
                raise ConfigError(
                    f"{file}: {keypath}: environment variable ${{{var}}} is not set "
                    f"(export it, or write ${{{var}:-default}} in the file)"
                )
            if is_secret_name(var):
                secrets.add(value)
            return value

        value = _ENV_PATTERN.sub(replace, node)
        if is_secret_name(keypath.rsplit(".", 1)[-1]) or _URL_PASSWORD.search(value):
            secrets.add(value)
        return value
    return node


def _read_yaml(path: Path, included_from: Path | None = None) -> dict:
    if not path.exists():
        where = f" (included from {included_from})" if included_from else ""
        raise ConfigError(f"{path}: config file not found{where}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping of keys, got {type(data).__name__}")
    return data


def _merge(base: dict, override: dict) -> dict:
    out = dict(base)
    for key, value in override.items():
        if key == "sources" and isinstance(value, list) and isinstance(out.get(key), list):
            out[key] = out[key] + value
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _load_tree(path: Path, origins: dict, secrets: set[str], stack: tuple[Path, ...] = ()) -> dict:
    """Read a file and its includes; record which file set each top-level key and source."""
    if path in stack:
        chain = " -> ".join(str(p) for p in stack + (path,))
        raise ConfigError(f"{path}: include cycle: {chain}")
    raw = _read_yaml(path, stack[-1] if stack else None)
    includes = raw.pop("include", []) or []
    if isinstance(includes, str):
        includes = [includes]
    if not isinstance(includes, list) or not all(isinstance(i, str) for i in includes):
        raise ConfigError(f"{path}: include: expected a list of file paths")
    merged: dict = {}
    for inc in includes:
        inc_path = (path.parent / _interpolate(inc, path, "include", secrets)).resolve()
        merged = _merge(merged, _load_tree(inc_path, origins, secrets, stack + (path,)))
    raw = _interpolate(raw, path, "", secrets)
    for key in raw:
        if key != "sources":
            origins.setdefault("keys", {})[key] = path
    for src in raw.get("sources") or []:
        origins.setdefault("sources", []).append(path)
        if isinstance(src, dict):
            src.setdefault("_origin", str(path))
    return _merge(merged, raw)


def _locate(loc: tuple, origins: dict, top: Path) -> tuple[Path, str]:
    parts = [str(p) for p in loc]
    keypath = ""
    for p in loc:
        keypath += f"[{p}]" if isinstance(p, int) else (f".{p}" if keypath else str(p))
    if loc and loc[0] == "sources" and len(loc) > 1 and isinstance(loc[1], int):
        files = origins.get("sources", [])
        if loc[1] < len(files):
            return files[loc[1]], keypath
    if parts:
        return origins.get("keys", {}).get(parts[0], top), keypath
    return top, keypath


def _resolve_paths(data: dict, base: Path) -> dict:
    if isinstance(data.get("lake_root"), str):
        data["lake_root"] = _resolve_path(data["lake_root"], base)
    demo = data.get("demo")
    if isinstance(demo, dict) and isinstance(demo.get("out"), str):
        demo["out"] = _resolve_path(demo["out"], base)
    prop = data.get("propagation")
    if isinstance(prop, dict) and isinstance(prop.get("outbox_dir"), str):
        prop["outbox_dir"] = _resolve_path(prop["outbox_dir"], base)
    spark = data.get("spark")
    if isinstance(spark, dict) and isinstance(spark.get("checkpoint_dir"), str):
        spark["checkpoint_dir"] = _resolve_path(spark["checkpoint_dir"], base)
    for src in data.get("sources") or []:
        if isinstance(src, dict) and isinstance(src.get("path"), str):
            src["path"] = _resolve_path(src["path"], base)
    return data


def load_config(path: str | os.PathLike) -> CdiConfig:
    """Load, merge, interpolate and validate one environment's configuration."""
    top = Path(path).resolve()
    origins: dict = {}
    secrets: set[str] = set()
    data = _load_tree(top, origins, secrets)
    data = _resolve_paths(data, top.parent)
    origin_list = []
    for src in data.get("sources") or []:
        origin_list.append(src.pop("_origin", str(top)) if isinstance(src, dict) else str(top))
    try:
        cfg = CdiConfig(**data, config_file=str(top))
    except ValidationError as exc:
        redactor = Redactor(secrets)
        messages = []
        for err in exc.errors(include_url=False, include_context=False):
            file, keypath = _locate(err["loc"], origins, top)
            expected = err["msg"].removeprefix("Value error, ")  # pydantic's prefix for a validator's own message
            if err["type"] == "extra_forbidden":
                expected = "unknown key (check its spelling and where it belongs)"
            elif err["type"] == "missing":
                expected = "required value is missing"
            given = err.get("input")
            hidden = any(is_secret_name(str(p)) for p in err["loc"]) or redactor.text(str(given)) != str(given)
            silent = err["type"] in ("missing", "extra_forbidden") or isinstance(given, dict) or hidden
            shown = "" if silent else f" (got {given!r})"
            messages.append(redactor.text(f"{file}: {keypath or '<top>'}: {expected}{shown}"))
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(messages)) from None
    sources = [s.model_copy(update={"origin": o}) for s, o in zip(cfg.sources, origin_list)]
    loaded = cfg.model_copy(update={"sources": sources})
    loaded._secrets = frozenset(secrets)
    return loaded
