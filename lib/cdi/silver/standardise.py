"""Standardisers: raw source text -> canonical display values and folded match keys.

Each standardiser is a pure column transformation (``Column -> Column``) built from Spark's own
functions, so it composes without actions and is tested on a two-row DataFrame. Closed
vocabularies (gender codes, honorifics, street types, marital statuses, currency symbols, postcode
rules) are read once from the CSV tables shipped in ``cdi/data`` and inlined as literal maps or
CASE chains; the two open-ended tables (nicknames, country names) are broadcast-joined
(:func:`with_country_code`, :func:`with_given_name_canonical`). The one Python UDF is the phone
parser (libphonenumber has no Spark equivalent): a pandas UDF with a per-worker cache.

Naming: every attribute keeps a *display* column under its canonical name (``first_name`` "Łukasz",
``city`` "Kraków", ``phone`` "+48 601 234 567") and the linkage works on *match* columns:

==========================  ===================================================================
``first_name_std``          :func:`fold` of ``first_name``: "Łukasz" -> "lukasz"
``last_name_std``           :func:`fold` of ``last_name``: "O'Brien-Smith" -> "obrien smith"
``full_name_std``           :func:`fold` of first, middle and last name in that order
``given_name_canonical``    first word of ``first_name_std`` with nicknames mapped through
                            ``nicknames.csv`` (gender-aware): "Bill" -> "william",
                            "Gosia" -> "malgorzata", "Chema" -> "jose"
``dob_year``                year of ``date_of_birth`` (int)
``email_std``               lower-cased e-mail; ``+tag`` removed, and for gmail/googlemail the dots
                            of the local part too and the domain as gmail.com
``email_user``              local part of ``email_std``
``phone_std``               E.164 ("+48601234567"); ``phone`` is the international display form.
                            A number without a country prefix is read in the record's country,
                            else the phone mapping's ``default_region``, else the source's
                            ``default_country``, else the country of the e-mail's domain (".de")
``postcode_std``            postcode without spaces or dashes ("SW1A1AA"); ``postcode`` is laid out
                            per country ("SW1A 1AA", "00-950")
``city_std``                :func:`fold` of ``city``
``address_std``             :func:`fold` of both address lines, street types canonical
                            ("ul." -> "ulica", "Avda." -> "avenue", "Hauptstr." -> "hauptstrasse")
==========================  ===================================================================

:func:`fold` lower-cases, transliterates Latin, Greek and Cyrillic letters as ``unidecode`` does
(ł -> l, ß -> ss, ø -> o, ж -> zh), drops apostrophes and turns every other non-alphanumeric run
into one space; :func:`fold_text` is the same in Python (used for the lookup tables' keys).

A value that cannot be read becomes null and adds a flag to ``quality_flags`` (array<string>):
``name_missing``, ``dob_unparseable``, ``dob_out_of_range``, ``gender_unknown``, ``email_invalid``,
``phone_invalid``, ``postcode_invalid``, ``country_unknown``, ``marital_status_unknown``,
``income_unparseable``, ``currency_unknown``, ``updated_at_unparseable``. No standardiser raises on
data and no row is dropped.

    >>> df.select(fold(F.col("city")).alias("city_std"))  # doctest: +SKIP
    >>> standardise_records(staged)  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import functools
import importlib.resources
import json
import logging
import re
from collections.abc import Callable, Sequence

import pandas as pd
import phonenumbers
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.functions import pandas_udf
from pyspark.sql.types import StringType, StructField, StructType
from unidecode import unidecode

from cdi.errors import LookupTableError
from cdi.schema import RECORDS_COLUMNS, RECORDS_TYPES

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------- shipped tables


@functools.cache
def load_table(name: str) -> tuple[dict[str, str], ...]:
    """Rows of ``cdi/data/<name>`` (``#`` lines are comments), read with importlib.resources."""
    resource = importlib.resources.files("cdi").joinpath("data", name)
    try:
        text = resource.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise LookupTableError(
            f"lookup table cdi/data/{name} is missing from the installed package; reinstall it "
            "(pip install -e .) so the shipped CSV files are present"
        ) from exc
    lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    rows = tuple({k: (v or "").strip() for k, v in row.items()} for row in csv.DictReader(lines))
    if not rows:
        raise LookupTableError(f"lookup table cdi/data/{name} has no rows")
    return rows


@functools.cache
def _keyed(name: str, key: str, value: str, where: tuple[tuple[str, str], ...] = ()) -> dict[str, str]:
    """``fold(row[key]) -> row[value]`` of one table (rows matching ``where`` pairs); two different
    values for one key is an error."""
    out: dict[str, str] = {}
    for i, row in enumerate(load_table(name)):
        if any(row.get(k) != v for k, v in where):
            continue
        k = fold_text(row[key])
        if k is None:
            raise LookupTableError(f"cdi/data/{name}: row {i + 1}: {key} {row[key]!r} is empty once folded")
        if k in out and out[k] != row[value]:
            raise LookupTableError(
                f"cdi/data/{name}: row {i + 1}: {key} {row[key]!r} (folded {k!r}) maps to both "
                f"{out[k]!r} and {row[value]!r}; keep one"
            )
        out[k] = row[value]
    return out


def _literal_map(mapping: dict[str, str]) -> Column:
    """A map<string,string> constant as ONE plan node (a JSON literal the optimizer folds), so a
    lookup table of hundreds of entries does not bloat every expression that uses it."""
    return F.from_json(F.lit(json.dumps(mapping, sort_keys=True, ensure_ascii=False)), "map<string,string>")


def _let(value: Column, body: Callable[[Column], Column]) -> Column:
    """``body(value)`` with ``value`` computed once: a one-element transform binds it to a lambda
    variable. Without it every use of an intermediate copies its whole expression into the plan."""
    return F.element_at(F.transform(F.array(value), body), 1)


# --------------------------------------------------------------------------- folding

_FOLD_RANGES = ((0x00C0, 0x024F), (0x0370, 0x03FF), (0x0400, 0x04FF), (0x1E00, 0x1EFF))
_COMBINING = (0x0300, 0x036F)
_APOSTROPHES = "'’ʼ‘`´"


@functools.cache
def fold_map() -> dict[str, str]:
    """Character -> ASCII letters ("" to delete) for Latin, Greek and Cyrillic letters and
    combining marks, derived from unidecode once so Spark and Python fold alike."""
    table = {chr(cp): "" for cp in range(_COMBINING[0], _COMBINING[1] + 1)}
    for lo, hi in _FOLD_RANGES:
        for cp in range(lo, hi + 1):
            table[chr(cp)] = re.sub(r"[^a-z]", "", unidecode(chr(cp)).lower())
    return table


@functools.cache
def _python_fold_table() -> dict[int, str]:
    table = {ord(k): v for k, v in fold_map().items()}
    table.update({ord(c): "" for c in _APOSTROPHES})
    return table


_NON_ALNUM = re.compile(r"[^a-z0-9]+")


def fold_text(value: str | None) -> str | None:
    """Python twin of :func:`fold` (for lookup keys and tests): "Łukasz O'Brien" -> "lukasz obrien"."""
    if value is None:
        return None
    folded = _NON_ALNUM.sub(" ", value.lower().translate(_python_fold_table())).strip()
    return folded or None


def fold(col: Column) -> Column:
    """Match form of text: lower case, transliterated, apostrophes dropped, punctuation -> one space."""
    chars = _literal_map(fold_map())

    def transliterate(lowered: Column) -> Column:
        letters = F.transform(F.split(lowered, ""), lambda ch: F.coalesce(F.try_element_at(chars, ch), ch))
        # most values are ASCII: skip the per-character lookup for them (CASE evaluates one branch)
        return F.when(lowered.rlike(r"[^\x00-\x7F]"), F.array_join(letters, "")).otherwise(lowered)

    c = F.regexp_replace(F.regexp_replace(_let(F.lower(col), transliterate), "[" + _APOSTROPHES + "]", ""), "[^a-z0-9]+", " ")
    return F.nullif(F.trim(c), F.lit(""))


# --------------------------------------------------------------------------- text

_PLACEHOLDER = r"(?i)^(?:null|none|nan|n/a|#n/a|-+|\?+|nil)$"


def clean_text(col: Column) -> Column:
    """Trimmed text with inner whitespace runs as one space; empty and placeholders ("NULL", "N/A") -> null."""
    c = F.regexp_replace(col.cast("string"), r"\p{Cf}", "")
    c = F.trim(F.regexp_replace(c, r"[\s\p{Z}\p{Cc}]+", " "))
    return F.nullif(F.regexp_replace(c, _PLACEHOLDER, ""), F.lit(""))


def display_case(col: Column) -> Column:
    """Title case for text written all upper or all lower ("ŁUKASZ" -> "Łukasz", "o'brien-smith" ->
    "O'Brien-Smith"); mixed case is taken as intended and kept ("McDonald", "van Dijk")."""

    def recase(text: Column) -> Column:
        titled = F.array_join(
            F.transform(
                F.split(F.lower(text), "-"),
                lambda part: F.array_join(F.transform(F.split(part, "'"), lambda p: F.initcap(p)), "'"),
            ),
            "-",
        )
        return F.when(text.rlike(r"(?=.*\p{Lu})(?=.*\p{Ll})"), text).otherwise(titled)

    return _let(col, recase)


# --------------------------------------------------------------------------- names

_PARTICLES = "van|von|der|den|del|della|delle|di|da|das|dos|du|de|la|las|le|les|los|ten|ter|zu|zum|zur|vom|al|el|bin|ibn"
_ONE_SURNAME = rf"(?iu)^(.+?)\s+((?:(?:{_PARTICLES})\s+)*\S+)$"
_TWO_SURNAMES = rf"(?iu)^(.+?)\s+((?:(?:{_PARTICLES})\s+)*\S+\s+(?:(?:{_PARTICLES}|y|i)\s+)*\S+)$"
# countries where people usually carry two surnames (father's and mother's), last in the full name
TWO_SURNAME_COUNTRIES = (
    "ES", "MX", "AR", "CO", "CL", "PE", "VE", "EC", "GT", "CU", "BO", "DO", "HN", "PY", "SV", "NI",
    "CR", "PA", "UY", "PR",
)  # fmt: skip


def _honorific_alternatives(kind: str) -> str:
    tokens = {row["token"] for row in load_table("honorifics.csv") if row["kind"] == kind}
    return "|".join(re.escape(t) for t in sorted(tokens, key=lambda t: (-len(t), t)))


@functools.cache
def _title_regex() -> str:
    """Leading titles: "Dr. ", "Prof. Dr. hab. ", "Sra " (a dot or a space must follow each)."""
    return rf"(?iu)^((?:(?:{_honorific_alternatives('title')})(?:\.\s*|\s+))+)(?=\S)"


@functools.cache
def _suffix_regex() -> str:
    """Trailing suffixes after a space or comma: " Jr.", ", III", " PhD"."""
    return rf"(?iu)(?<=[^\s,])((?:[\s,]+(?:{_honorific_alternatives('suffix')})\.?)+)[\s,]*$"


def _canonical_tokens(raw: Column, mapping: dict[str, str]) -> Column:
    """Each folded word of ``raw`` through ``mapping`` (unknown words dropped), joined by spaces."""
    words = F.transform(F.split(fold(raw), " "), lambda w: F.try_element_at(_literal_map(mapping), w))
    return F.nullif(F.array_join(words, " "), F.lit(""))


def _honorific_map(kind: str) -> dict[str, str]:
    return _keyed("honorifics.csv", "token", "canonical", where=(("kind", kind),))


def standardise_honorific(col: Column) -> Column:
    """Canonical honorific(s) of title text ("dr." -> "Dr", "SRA" -> "Sra", "Prof. Dr." -> "Prof Dr");
    words that are not titles are dropped, nothing left -> null."""
    return _canonical_tokens(clean_text(col), _honorific_map("title"))


def standardise_name_suffix(col: Column) -> Column:
    """Canonical suffix(es) of suffix text ("jr." -> "Jr", ", iii" -> "III")."""
    return _canonical_tokens(clean_text(col), _honorific_map("suffix"))


def strip_title(col: Column) -> Column:
    """struct<title, rest>: leading honorifics split off a name, as written ("Dr. Anna" -> "Dr.", "Anna").

    The title stays raw text so this stays cheap to nest; :func:`standardise_honorific` makes it canonical.
    """
    regex = _title_regex()
    title = F.trim(F.regexp_extract(col, regex, 1))
    return F.struct(
        F.when(title != "", title).alias("title"),
        F.trim(F.regexp_replace(col, regex, "")).alias("rest"),
    )


def strip_suffix(col: Column) -> Column:
    """struct<suffix, rest>: trailing name suffixes split off, as written ("Smith Jr." -> "Jr.", "Smith")."""
    regex = _suffix_regex()
    suffix = F.trim(F.regexp_replace(F.regexp_extract(col, regex, 1), r"^[\s,]+", ""))
    return F.struct(
        F.when(suffix != "", suffix).alias("suffix"),
        F.trim(F.regexp_replace(col, regex, "")).alias("rest"),
    )


def _nullif_empty(col: Column) -> Column:
    return F.nullif(F.trim(col), F.lit(""))


def split_full_name(full: Column, two_surnames: Column | None = None) -> Column:
    """struct<honorific, first_name, middle_name, last_name, name_suffix> of a full name.

    "Nowak, Anna Maria" and "Dr. Anna Maria Nowak" give first Anna, middle Maria, last Nowak;
    surname particles stay with the surname ("Ursula von der Leyen"); with ``two_surnames`` true
    (Spanish-speaking countries) the last two words are the surname ("José Luis García López").
    A single word is taken as the last name. Names follow :func:`display_case`; honorific and
    suffix are canonical ("Dr", "Jr").
    """
    title_re, suffix_re = _title_regex(), _suffix_regex()
    use_two = F.coalesce(two_surnames, F.lit(False)) if two_surnames is not None else F.lit(False)

    def from_body(text: Column, unsuffixed: Column, body: Column) -> Column:
        has_comma = F.instr(body, ",") > 0
        # "Last, Given": a suffix may trail the last name, titles may lead the given names
        comma_last_raw = F.trim(F.substring_index(body, ",", 1))
        comma_given_raw = F.trim(F.regexp_replace(F.regexp_extract(body, r"^[^,]*,(.*)$", 1), ",", " "))
        # "Given ... Last": group 1 is the given names, group 2 the surname with its particles
        two = use_two & body.rlike(_TWO_SURNAMES)
        plain_last = (
            F.when(two, F.regexp_extract(body, _TWO_SURNAMES, 2))
            .when(body.rlike(_ONE_SURNAME), F.regexp_extract(body, _ONE_SURNAME, 2))
            .otherwise(body)
        )
        plain_given = F.when(two, F.regexp_extract(body, _TWO_SURNAMES, 1)).when(
            body.rlike(_ONE_SURNAME), F.regexp_extract(body, _ONE_SURNAME, 1)
        )
        given = F.when(has_comma, F.trim(F.regexp_replace(comma_given_raw, title_re, ""))).otherwise(plain_given)
        last = F.when(has_comma, F.trim(F.regexp_replace(comma_last_raw, suffix_re, ""))).otherwise(plain_last)
        title = F.concat_ws(
            " ", F.regexp_extract(unsuffixed, title_re, 1), F.when(has_comma, F.regexp_extract(comma_given_raw, title_re, 1))
        )
        suffix = F.concat_ws(
            " ", F.regexp_extract(text, suffix_re, 1), F.when(has_comma, F.regexp_extract(comma_last_raw, suffix_re, 1))
        )
        return _let(
            given,
            lambda g: F.struct(
                standardise_honorific(title).alias("honorific"),
                display_case(_nullif_empty(F.substring_index(g, " ", 1))).alias("first_name"),
                display_case(_nullif_empty(F.regexp_extract(g, r"^\S+\s+(.*)$", 1))).alias("middle_name"),
                display_case(_nullif_empty(last)).alias("last_name"),
                standardise_name_suffix(suffix).alias("name_suffix"),
            ),
        )

    return _let(
        clean_text(full),
        lambda text: _let(
            F.trim(F.regexp_replace(text, suffix_re, "")),
            lambda unsuffixed: _let(
                F.trim(F.regexp_replace(unsuffixed, title_re, "")),
                lambda body: from_body(text, unsuffixed, body),
            ),
        ),
    )


# --------------------------------------------------------------------------- coded values


def _coded(col: Column, table: str, key: str, value: str) -> tuple[Column, Column]:
    """(canonical value or null, True when a value was given but is not in the table)."""
    mapping = _literal_map(_keyed(table, key, value))
    value_of = _let(fold(clean_text(col)), lambda k: F.nullif(F.try_element_at(mapping, k), F.lit("")))
    unknown = _let(fold(clean_text(col)), lambda k: k.isNotNull() & F.try_element_at(mapping, k).isNull())
    return value_of, unknown


def standardise_gender(col: Column) -> Column:
    """'M', 'F', 'X' or null from codes in many languages ("k", "Mężczyzna", "mujer", "weiblich")."""
    return _coded(col, "gender_codes.csv", "code", "gender")[0]


def gender_unknown(col: Column) -> Column:
    """True when a gender was given that no row of ``gender_codes.csv`` knows."""
    return _coded(col, "gender_codes.csv", "code", "gender")[1]


def standardise_marital_status(col: Column) -> Column:
    """single, married, divorced, widowed, separated, civil_partnership or null ("żonaty" -> married)."""
    return _coded(col, "marital_status.csv", "code", "status")[0]


def marital_status_unknown(col: Column) -> Column:
    return _coded(col, "marital_status.csv", "code", "status")[1]


def standardise_national_id(col: Column) -> Column:
    """Upper case, letters and digits only ("ab 12 34 56 c" -> "AB123456C")."""
    c = F.upper(F.regexp_replace(clean_text(col), r"[^0-9A-Za-z]", ""))
    return F.when(c != "", c)


# --------------------------------------------------------------------------- e-mail

_EMAIL = (
    r"^[\p{L}\p{N}!#$%&'*+/=?^_`{|}~-]+(\.[\p{L}\p{N}!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[\p{L}\p{N}](?:[\p{L}\p{N}-]*[\p{L}\p{N}])?\.)+\p{L}{2,}$"
)
_GMAIL_DOMAINS = ("gmail.com", "googlemail.com")


def standardise_email(col: Column) -> Column:
    """Lower-cased, trimmed address without "mailto:" or inner spaces; null when not an address."""
    c = F.regexp_replace(F.lower(F.regexp_replace(clean_text(col), r"\s+", "")), r"^mailto:", "")
    return _let(c, lambda e: F.when(e.rlike(_EMAIL), e))


def email_invalid(col: Column) -> Column:
    return clean_text(col).isNotNull() & standardise_email(col).isNull()


def email_user(email: Column) -> Column:
    """Local part of the match key: "+tag" removed, gmail dots removed ("j.doe+x@gmail.com" -> "jdoe")."""

    def user(e: Column) -> Column:
        local = F.regexp_replace(F.substring_index(e, "@", 1), r"\+.*$", "")
        return F.when(F.substring_index(e, "@", -1).isin(*_GMAIL_DOMAINS), F.regexp_replace(local, r"\.", "")).otherwise(local)

    return _let(email, user)


def email_match_key(email: Column) -> Column:
    """Match key of a standardised address: :func:`email_user` @ domain (googlemail.com -> gmail.com)."""

    def key(e: Column) -> Column:
        domain = F.regexp_replace(F.substring_index(e, "@", -1), r"^googlemail\.com$", "gmail.com")
        return F.concat(email_user(e), F.lit("@"), domain)

    return _let(email, key)


# country-code domains that are mostly used for other reasons (.io, .co, .tv, .me ...)
_VANITY_DOMAINS = ("io", "co", "tv", "me", "ai", "ly", "fm", "gg", "cc", "ws", "to", "la", "eu", "su", "ac")


def email_country_hint(email: Column) -> Column:
    """ISO alpha-2 guessed from an address's country-code domain ("x@web.de" -> DE, "y@bt.co.uk" ->
    GB); null for generic (.com) and vanity (.io, .co) domains. Only a last-resort phone region."""
    tld = F.lower(F.regexp_extract(email, r"\.([A-Za-z]{2})$", 1))
    return F.when(tld == "uk", F.lit("GB")).when((tld != "") & ~tld.isin(*_VANITY_DOMAINS), F.upper(tld))


# --------------------------------------------------------------------------- phone

_PHONE_SCHEMA = StructType([StructField("e164", StringType()), StructField("international", StringType())])


@functools.lru_cache(maxsize=262_144)
def format_phone(raw: str, region: str | None) -> tuple[str | None, str | None]:
    """(E.164, international display) of a valid number, else (None, None); never raises."""
    try:
        number = phonenumbers.parse(raw, region or None)
        if not phonenumbers.is_valid_number(number):
            return None, None
        return (
            phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164),
            phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL),
        )
    except Exception:  # noqa: BLE001 - libphonenumber raises NumberParseException and, on odd input, others
        return None, None


@pandas_udf(_PHONE_SCHEMA)
def _phone_udf(raw: pd.Series, region: pd.Series) -> pd.DataFrame:
    out = [
        format_phone(r, g if isinstance(g, str) else None) if isinstance(r, str) else (None, None)
        for r, g in zip(raw, region)
    ]
    return pd.DataFrame(out, columns=["e164", "international"], dtype=object)


def standardise_phone(col: Column, region: Column) -> Column:
    """struct<e164, international> of a phone number read with ``region`` (ISO alpha-2) as its
    home country when it has no "+"/"00" prefix; both null when it is not a valid number."""
    return _phone_udf(clean_text(col), region)


# --------------------------------------------------------------------------- dates

DEFAULT_DATE_FORMATS = ("yyyy-MM-dd",)


def _two_digit_year(fmt: str) -> bool:
    return "yy" in fmt and "yyy" not in fmt


def parse_date(col: Column, formats: Sequence[str] = ()) -> Column:
    """Date from the first of ``formats`` (Spark datetime patterns) that reads the text, then ISO
    forms; null when none does (an impossible date such as 31.02.2020 is null, not an error).
    With a two-digit year pattern, a date in the future is taken as the previous century."""

    def one(c: Column, fmt: str) -> Column:
        parsed = F.to_date(F.try_to_timestamp(c, F.lit(fmt)))
        if _two_digit_year(fmt):
            return _let(parsed, lambda d: F.when(d > F.current_date(), F.add_months(d, -1200)).otherwise(d))
        return parsed

    return _let(
        clean_text(col),
        lambda c: F.coalesce(*[one(c, fmt) for fmt in [*formats, *DEFAULT_DATE_FORMATS]], F.to_date(F.try_to_timestamp(c))),
    )


def parse_timestamp(col: Column, formats: Sequence[str] = ()) -> Column:
    """Timestamp from ``formats``, then ISO-8601 forms, then epoch seconds (10 digits) or
    milliseconds (13 digits); null when nothing reads it."""

    def read(c: Column) -> Column:
        return F.coalesce(
            *[F.try_to_timestamp(c, F.lit(fmt)) for fmt in formats],
            F.try_to_timestamp(c),
            F.when(c.rlike(r"^[0-9]{10}$"), F.timestamp_seconds(c.try_cast("long"))),
            F.when(c.rlike(r"^[0-9]{13}$"), F.timestamp_millis(c.try_cast("long"))),
        )

    return _let(clean_text(col), read)


MIN_BIRTH_DATE = "1900-01-01"


def dob_out_of_range(dob: Column) -> Column:
    """True for a birth date before 1900 or after today."""
    return (dob < F.lit(MIN_BIRTH_DATE).cast("date")) | (dob > F.current_date())


# --------------------------------------------------------------------------- places


@functools.cache
def _postcode_rules() -> dict[str, dict[str, str]]:
    """Per rule column (valid, layout, display, pad): country -> value, for literal-map lookups."""
    rows = load_table("postcode_formats.csv")
    return {field: {r["country"]: r[field] for r in rows if r[field]} for field in ("valid", "layout", "display", "pad")}


def compact_postcode(col: Column) -> Column:
    """Upper case, letters and digits only: " sw1a-1aa " -> "SW1A1AA"."""
    return F.nullif(F.upper(F.regexp_replace(clean_text(col), r"[^0-9A-Za-z]", "")), F.lit(""))


def standardise_postcode(col: Column, country: Column) -> Column:
    """Postcode laid out per ``country`` ("sw1a1aa", GB -> "SW1A 1AA"; "00950", PL -> "00-950";
    8001, ES -> "08001"); null when it breaks the country's rule; upper-cased as written for
    countries without a rule in ``postcode_formats.csv``."""
    rules = {field: _literal_map(values) for field, values in _postcode_rules().items()}

    def laid_out(compact: Column, ctry: Column) -> Column:
        valid = F.try_element_at(rules["valid"], ctry)
        layout = F.try_element_at(rules["layout"], ctry)
        pad = F.try_element_at(rules["pad"], ctry).cast("int")
        short = compact.rlike(r"^[0-9]+$") & (F.length(compact) >= pad - 2) & (F.length(compact) < pad)
        padded = F.when(short, F.lpad(compact, pad, F.lit("0"))).otherwise(compact)
        shown = F.when(layout.isNotNull(), F.regexp_replace(padded, layout, F.try_element_at(rules["display"], ctry)))
        return (
            F.when(compact.isNull(), F.lit(None))
            .when(valid.isNull(), F.upper(clean_text(col)))
            .when(F.regexp_like(padded, valid), F.coalesce(shown, padded))
        )

    return _let(compact_postcode(col), lambda compact: _let(country, lambda ctry: laid_out(compact, ctry)))


def postcode_invalid(col: Column, country: Column) -> Column:
    return compact_postcode(col).isNotNull() & standardise_postcode(col, country).isNull()


def postcode_match_key(postcode: Column) -> Column:
    """Postcode without spaces or dashes: "SW1A 1AA" -> "SW1A1AA"."""
    return compact_postcode(postcode)


@functools.cache
def _street_maps() -> tuple[dict[str, str], dict[str, str]]:
    anywhere = _keyed("street_types.csv", "token", "canonical", where=(("position", "any"),))
    first = _keyed("street_types.csv", "token", "canonical", where=(("position", "first"),))
    return anywhere, first


def address_match_key(*lines: Column) -> Column:
    """Folded address lines with street types canonical: "ul. Długa 5/3" -> "ulica dluga 5 3",
    "12 Baker St" -> "12 baker street", "Avda. de América 4" -> "avenue de america 4"."""
    anywhere, first = _street_maps()
    any_map, first_map = _literal_map(anywhere), _literal_map(first)

    def canonical(text: Column) -> Column:
        words = F.transform(
            F.split(text, " "),
            lambda w, i: F.coalesce(
                F.when(i == 0, F.try_element_at(first_map, w)),
                F.try_element_at(any_map, w),
                F.regexp_replace(w, r"^([a-z]{3,})str$", "$1strasse"),
            ),
        )
        return F.when(text.isNotNull(), F.array_join(words, " "))

    return _let(fold(F.concat_ws(" ", *[clean_text(line) for line in lines])), canonical)


def country_lookup(spark: SparkSession) -> DataFrame:
    """Folded country alias -> ISO alpha-2, from ``countries.csv`` (names in many languages)."""
    mapping = _keyed("countries.csv", "alias", "alpha2")
    return spark.createDataFrame(sorted(mapping.items()), "alias string, alpha2 string")


def with_country_code(df: DataFrame, raw: str, out: str = "country") -> DataFrame:
    """Add ``out``: the ISO alpha-2 code of the country written in column ``raw`` ("Polska",
    "Deutschland", "UK", "ESP" -> PL, DE, GB, ES), by a broadcast join; null when unknown."""
    spark = df.sparkSession
    lookup = F.broadcast(country_lookup(spark).withColumnRenamed("alpha2", out).withColumnRenamed("alias", "_country_alias"))
    keyed = df.withColumn("_country_key", fold(clean_text(F.col(raw))))
    return keyed.join(lookup, keyed["_country_key"] == lookup["_country_alias"], "left").drop("_country_key", "_country_alias")


@functools.cache
def nickname_rows() -> tuple[tuple[str, str | None, str | None, str | None], ...]:
    """(folded nickname, canonical for anyone, for men, for women), canonical as its folded first word.

    A nickname with only gendered rows has no gender-free canonical (Chris: Christopher or
    Christine) and stays itself when the record's gender is unknown.
    """
    by_key: dict[str, dict[str, str]] = {}
    for i, row in enumerate(load_table("nicknames.csv")):
        key = fold_text(row["nickname"])
        canonical = fold_text(row["canonical"])
        if key is None or canonical is None or " " in key:
            raise LookupTableError(
                f"cdi/data/nicknames.csv: row {i + 1}: nickname {row['nickname']!r} must be one word and "
                "the canonical name non-empty"
            )
        gender = row["gender"]
        if gender not in ("", "M", "F"):
            raise LookupTableError(f"cdi/data/nicknames.csv: row {i + 1}: gender must be M, F or empty, got {gender!r}")
        slot = by_key.setdefault(key, {})
        if gender in slot:
            raise LookupTableError(
                f"cdi/data/nicknames.csv: row {i + 1}: nickname {row['nickname']!r} (folded {key!r}) is listed "
                f"twice for gender {gender or 'any'!r}; keep one"
            )
        slot[gender] = canonical.split(" ")[0]
    rows = []
    for key, slot in sorted(by_key.items()):
        anyone = slot.get("")
        rows.append((key, anyone, slot.get("M", anyone), slot.get("F", anyone)))
    return tuple(rows)


def nickname_lookup(spark: SparkSession) -> DataFrame:
    return spark.createDataFrame(
        list(nickname_rows()),
        "nickname string, canonical_any string, canonical_m string, canonical_f string",
    )


def with_given_name_canonical(df: DataFrame, first_name_std: str = "first_name_std", gender: str = "gender",
                              out: str = "given_name_canonical") -> DataFrame:
    """Add ``out``: the first word of ``first_name_std`` with nicknames mapped to their canonical
    name by a broadcast join of ``nicknames.csv``, choosing by ``gender`` where a nickname is
    gendered ("bill" -> "william", "sam" + F -> "samantha"); the word itself when not a nickname."""
    lookup = F.broadcast(nickname_lookup(df.sparkSession))
    keyed = df.withColumn("_nick_key", F.substring_index(F.col(first_name_std), " ", 1))
    joined = keyed.join(lookup, keyed["_nick_key"] == lookup["nickname"], "left")
    g = F.col(gender)
    canonical = (
        F.when(g == "M", F.col("canonical_m")).when(g == "F", F.col("canonical_f")).otherwise(F.col("canonical_any"))
    )
    return joined.withColumn(out, F.coalesce(canonical, F.col("_nick_key"))).drop(
        "_nick_key", "nickname", "canonical_any", "canonical_m", "canonical_f"
    )


# --------------------------------------------------------------------------- money


def _decimal_text(digits: Column) -> Column:
    """Digits with "." and "," (nothing else) as plain decimal text, deciding which one separates
    thousands; null when the separators are inconsistent ("1.2.3,4,5")."""
    has_dot, has_comma = F.instr(digits, ".") > 0, F.instr(digits, ",") > 0
    return (
        F.when(has_dot & has_comma & digits.rlike(r"^[0-9.]*,[0-9]*$"), F.translate(F.regexp_replace(digits, r"\.", ""), ",", "."))
        .when(has_dot & has_comma & digits.rlike(r"^[0-9,]*\.[0-9]*$"), F.regexp_replace(digits, ",", ""))
        .when(has_dot & has_comma, F.lit(None))
        .when(has_comma & digits.rlike(r"^[0-9]{1,3}(,[0-9]{3})+$"), F.regexp_replace(digits, ",", ""))
        .when(has_comma & digits.rlike(r"^[0-9]*,[0-9]+$"), F.translate(digits, ",", "."))
        .when(has_comma, F.lit(None))
        .when(has_dot & digits.rlike(r"^[0-9]{1,3}(\.[0-9]{3})+$"), F.regexp_replace(digits, r"\.", ""))
        .when(has_dot & digits.rlike(r"^[0-9]*\.[0-9]+$"), digits)
        .when(has_dot, F.lit(None))
        .otherwise(digits)
    )


_NOT_WORDS = r"[0-9.,'’\s()+\-]+|(?<![a-z])k(?![a-z])"


def parse_amount(col: Column) -> Column:
    """Double from money text: currency symbols, spaces and apostrophes dropped, "1.234,56" and
    "1,234.56" both 1234.56, "52.000" and "52,000" both 52000 (three decimals are read as
    thousands), "52k" 52000, "(100)" and "-100" negative, "1.0E7" scientific; null otherwise,
    also for text with words other than a currency ("about 30k a year")."""

    def from_text(lowered: Column) -> Column:
        negative = lowered.rlike(r"^(-|\()") | lowered.rlike(r"-$")
        thousands = F.when(lowered.rlike(r"[0-9]\s*k(?![a-z])"), F.lit(1000.0)).otherwise(F.lit(1.0))
        number = _let(_decimal_text(F.regexp_replace(lowered, r"[^0-9.,]", "")),
                      lambda n: F.when(n.rlike(r"[0-9]"), n.try_cast("double") * thousands))
        signed = _let(number, lambda v: F.when(negative, -v).otherwise(v))
        only_money = _let(F.regexp_replace(lowered, _NOT_WORDS, ""), lambda w: (w == "") | _currency_code(w).isNotNull())
        scientific = lowered.rlike(r"^[+-]?[0-9]+(\.[0-9]+)?e[+-]?[0-9]+$")
        return F.when(scientific, lowered.try_cast("double")).when(only_money, signed)

    return _let(F.lower(clean_text(col)), from_text)


def _currency_code(key: Column) -> Column:
    symbols = _literal_map({row["symbol"].lower(): row["code"] for row in load_table("currencies.csv")})
    return _let(key, lambda k: F.coalesce(F.try_element_at(symbols, k), F.when(k.rlike(r"^[a-z]{3}$"), F.upper(k))))


def standardise_currency(col: Column) -> Column:
    """ISO 4217 code from a code or symbol ("eur" -> EUR, "zł" -> PLN, "£" -> GBP); null otherwise."""
    return _currency_code(F.lower(F.regexp_replace(clean_text(col), r"\s+", "")))


def currency_of_amount(col: Column) -> Column:
    """Currency written inside an amount ("€1.234,56" -> EUR, "52 000 zł" -> PLN); null if none."""
    return _currency_code(F.nullif(F.regexp_replace(F.lower(clean_text(col)), _NOT_WORDS, ""), F.lit("")))


# --------------------------------------------------------------------------- whole records

STAGED_ATTRIBUTES = (
    "honorific", "first_name", "middle_name", "last_name", "full_name", "gender", "email", "phone",
    "address_line1", "address_line2", "city", "postcode", "region", "country", "national_id",
    "marital_status", "income", "income_currency",
)  # fmt: skip
"""Raw text columns :func:`standardise_records` expects (null where a source lacks them)."""

STAGED_COLUMNS = (
    ("record_key", "string"), ("source", "string"), ("source_record_id", "string"),
    *[(name, "string") for name in STAGED_ATTRIBUTES],
    ("date_of_birth", "date"), ("_raw_date_of_birth", "string"),
    ("updated_at", "timestamp"), ("_raw_updated_at", "string"),
    ("_default_country", "string"), ("_phone_region", "string"),
    ("_batch_id", "string"), ("_row_hash", "string"), ("_ingested_at", "timestamp"),
)  # fmt: skip
"""The staged input of :func:`standardise_records`: raw text per attribute, dates already parsed
with each source's own formats (their raw text kept for the quality flags), per-source defaults."""

QUALITY_FLAGS = (
    "name_missing", "dob_unparseable", "dob_out_of_range", "gender_unknown", "email_invalid",
    "phone_invalid", "postcode_invalid", "country_unknown", "marital_status_unknown",
    "income_unparseable", "currency_unknown", "updated_at_unparseable",
)  # fmt: skip


def _missing_staged(df: DataFrame) -> list[str]:
    return [name for name, _ in STAGED_COLUMNS if name not in df.columns]


def standardise_records(staged: DataFrame) -> DataFrame:
    """Canonical, standardised records (:data:`RECORDS_COLUMNS`) from staged raw text (:data:`STAGED_COLUMNS`).

    A few projections, each computing a value once from columns of the one before (so no
    expression is copied into another), and two broadcast joins (countries, nicknames); no action.
    """
    missing = _missing_staged(staged)
    if missing:
        raise ValueError(f"standardise_records: staged frame lacks column(s) {missing}; build it as records.stage_source does")
    typed = [F.col(name).cast(dtype).alias(name) for name, dtype in STAGED_COLUMNS]
    df = staged.select(*typed).select(
        *[name for name, _ in STAGED_COLUMNS if name not in STAGED_ATTRIBUTES and not name.startswith("_raw_")],
        *[clean_text(F.col(name)).alias(name) for name in STAGED_ATTRIBUTES],
        clean_text(F.col("_raw_date_of_birth")).alias("_raw_date_of_birth"),
        clean_text(F.col("_raw_updated_at")).alias("_raw_updated_at"),
    )
    df = with_country_code(df.withColumnRenamed("country", "_raw_country"), "_raw_country", "country")
    df = df.withColumn("_home", F.coalesce(F.col("country"), F.col("_default_country")))
    # a national number is read in the record's country, else the phone mapping's or the source's
    # default region, else the country of the e-mail's domain
    phone_region = F.coalesce(
        F.col("country"), F.col("_phone_region"), F.col("_default_country"), email_country_hint(F.col("email"))
    )

    # 1. every attribute standardised once; names split into structs read by the next step
    col = F.col
    df = df.select(
        "*",
        strip_title(col("first_name")).alias("_first"),
        strip_suffix(col("last_name")).alias("_last"),
        split_full_name(col("full_name"), col("_home").isin(*TWO_SURNAME_COUNTRIES)).alias("_split"),
        standardise_gender(col("gender")).alias("_gender"),
        gender_unknown(col("gender")).alias("_f_gender_unknown"),
        standardise_email(col("email")).alias("_email"),
        standardise_phone(col("phone"), phone_region).alias("_phone"),
        standardise_postcode(col("postcode"), col("_home")).alias("_postcode"),
        standardise_national_id(col("national_id")).alias("_national_id"),
        standardise_marital_status(col("marital_status")).alias("_marital_status"),
        marital_status_unknown(col("marital_status")).alias("_f_marital_status_unknown"),
        parse_amount(col("income")).alias("_income"),
        standardise_currency(col("income_currency")).alias("_currency"),
        currency_of_amount(col("income")).alias("_income_symbol"),
        address_match_key(col("address_line1"), col("address_line2")).alias("address_std"),
    )

    # 2. names from the parts a source gives, or from its full name when it gives neither first nor last
    split = col("_first.rest").isNull() & col("_last.rest").isNull()
    df = df.select(
        "*",
        F.coalesce(standardise_honorific(col("honorific")), standardise_honorific(col("_first.title")),
                   col("_split.honorific")).alias("_honorific"),
        F.when(split, col("_split.first_name")).otherwise(display_case(_nullif_empty(col("_first.rest")))).alias("_first_name"),
        F.when(split, col("_split.middle_name")).otherwise(display_case(col("middle_name"))).alias("_middle_name"),
        F.when(split, col("_split.last_name")).otherwise(display_case(_nullif_empty(col("_last.rest")))).alias("_last_name"),
        F.coalesce(standardise_name_suffix(col("_last.suffix")), col("_split.name_suffix")).alias("name_suffix"),
        F.when(~dob_out_of_range(col("date_of_birth")), col("date_of_birth")).alias("_dob"),
        display_case(col("city")).alias("_city"),
    )
    full = F.concat_ws(" ", "_first_name", "_middle_name", "_last_name")
    df = df.select(
        "*",
        F.nullif(full, F.lit("")).alias("_full_name"),
        fold(col("_first_name")).alias("first_name_std"),
        fold(col("_last_name")).alias("last_name_std"),
        fold(full).alias("full_name_std"),
        F.year("_dob").alias("dob_year"),
        email_match_key(col("_email")).alias("email_std"),
        email_user(col("_email")).alias("email_user"),
        postcode_match_key(col("_postcode")).alias("postcode_std"),
        fold(col("_city")).alias("city_std"),
    )

    # 3. nicknames (broadcast join on the standardised gender)
    df = with_given_name_canonical(df, gender="_gender")

    # 4. display columns and the quality flags, comparing each cleaned input with its result
    flags = {
        "name_missing": col("_first_name").isNull() & col("_last_name").isNull(),
        "dob_unparseable": col("_raw_date_of_birth").isNotNull() & col("date_of_birth").isNull(),
        "dob_out_of_range": col("date_of_birth").isNotNull() & col("_dob").isNull(),
        "gender_unknown": col("_f_gender_unknown"),
        "email_invalid": col("email").isNotNull() & col("_email").isNull(),
        "phone_invalid": col("phone").isNotNull() & col("_phone.e164").isNull(),
        "postcode_invalid": compact_postcode(col("postcode")).isNotNull() & col("_postcode").isNull(),
        "country_unknown": col("_raw_country").isNotNull() & col("country").isNull(),
        "marital_status_unknown": col("_f_marital_status_unknown"),
        "income_unparseable": col("income").isNotNull() & col("_income").isNull(),
        "currency_unknown": col("income_currency").isNotNull() & col("_currency").isNull(),
        "updated_at_unparseable": col("_raw_updated_at").isNotNull() & col("updated_at").isNull(),
    }
    quality = F.array_compact(F.array(*[F.when(F.coalesce(flags[name], F.lit(False)), F.lit(name)) for name in QUALITY_FLAGS]))
    display = {
        "honorific": col("_honorific"),
        "first_name": col("_first_name"),
        "middle_name": col("_middle_name"),
        "last_name": col("_last_name"),
        "full_name": col("_full_name"),
        "date_of_birth": col("_dob"),
        "gender": col("_gender"),
        "email": col("_email"),
        "phone": col("_phone.international"),
        "phone_std": col("_phone.e164"),
        "city": col("_city"),
        "postcode": col("_postcode"),
        "national_id": col("_national_id"),
        "marital_status": col("_marital_status"),
        "income": col("_income"),
        "income_currency": F.coalesce(col("_currency"), col("_income_symbol")),
        "updated_at": F.coalesce(col("updated_at"), col("_ingested_at")),
        "quality_flags": quality,
    }
    return df.select(
        *[display.get(name, col(name)).cast(RECORDS_TYPES.get(name, "string")).alias(name) for name in RECORDS_COLUMNS]
    )
