"""Standardisers: raw source text -> canonical display values and folded match keys.

Each standardiser is a pure column transformation (``Column -> Column``) built from Spark's own
functions, so it composes without actions and is tested on a two-row DataFrame. One module per
concern: :mod:`.text` (cleaning, folding, casing), :mod:`.names`, :mod:`.contacts` (e-mail,
phone), :mod:`.dates`, :mod:`.places` (postcodes, addresses, countries), :mod:`.money` (amounts,
currencies), :mod:`.codes` (gender, marital status, national ids); :mod:`.record` applies them all
to a staged record, and :mod:`.lookups` reads the shipped vocabularies. Facts
(:mod:`cdi.silver.facts`) use the same functions, so an amount or a date reads alike everywhere. Closed
vocabularies (gender codes, honorifics, street types, marital statuses, currency symbols, postcode
rules) are read once from the CSV tables shipped in ``cdi/data`` and inlined as literal maps or
CASE chains; the open-ended tables (nicknames, country names, ISO 3166-2 regions from
``pycountry``) are broadcast-joined (:func:`with_country_code`, :func:`with_given_name_canonical`,
:func:`with_region`). The one Python UDF is the phone
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
``income_unparseable``, ``currency_unknown``, ``updated_at_unparseable``, ``deceased_unknown``,
``date_of_death_unparseable``, ``date_of_death_out_of_range``. No standardiser raises on
data and no row is dropped.

    >>> df.select(fold(F.col("city")).alias("city_std"))  # doctest: +SKIP
    >>> standardise_records(staged)  # doctest: +SKIP
"""

from __future__ import annotations

from .codes import (
    deceased_unknown,
    gender_unknown,
    marital_status_unknown,
    standardise_deceased,
    standardise_gender,
    standardise_marital_status,
    standardise_national_id,
)
from .contacts import (
    email_country_hint,
    email_invalid,
    email_match_key,
    email_user,
    format_phone,
    standardise_email,
    standardise_phone,
)
from .dates import (
    DEFAULT_DATE_FORMATS,
    MIN_BIRTH_DATE,
    dob_out_of_range,
    dod_out_of_range,
    parse_date,
    parse_timestamp,
)
from .lookups import (
    load_table,
)
from .money import (
    currency_of_amount,
    parse_amount,
    standardise_currency,
)
from .names import (
    TWO_SURNAME_COUNTRIES,
    nickname_lookup,
    nickname_rows,
    split_full_name,
    standardise_honorific,
    standardise_name_suffix,
    strip_suffix,
    strip_title,
    with_given_name_canonical,
)
from .places import (
    address_match_key,
    compact_postcode,
    country_lookup,
    postcode_invalid,
    postcode_match_key,
    standardise_postcode,
    with_country_code,
)
from .record import (
    QUALITY_FLAGS,
    STAGED_ATTRIBUTES,
    STAGED_COLUMNS,
    standardise_records,
)
from .regions import region_lookup, with_region
from .text import (
    clean_text,
    display_case,
    fold,
    fold_map,
    fold_table,
    fold_text,
    has_control_characters,
    nullif_empty,
)

__all__ = [
    "DEFAULT_DATE_FORMATS",
    "MIN_BIRTH_DATE",
    "QUALITY_FLAGS",
    "STAGED_ATTRIBUTES",
    "STAGED_COLUMNS",
    "TWO_SURNAME_COUNTRIES",
    "address_match_key",
    "clean_text",
    "compact_postcode",
    "country_lookup",
    "currency_of_amount",
    "deceased_unknown",
    "display_case",
    "dob_out_of_range",
    "dod_out_of_range",
    "email_country_hint",
    "email_invalid",
    "email_match_key",
    "email_user",
    "fold",
    "fold_map",
    "fold_table",
    "fold_text",
    "format_phone",
    "gender_unknown",
    "has_control_characters",
    "load_table",
    "marital_status_unknown",
    "nickname_lookup",
    "nickname_rows",
    "nullif_empty",
    "parse_amount",
    "parse_date",
    "parse_timestamp",
    "postcode_invalid",
    "postcode_match_key",
    "region_lookup",
    "split_full_name",
    "standardise_currency",
    "standardise_deceased",
    "standardise_email",
    "standardise_gender",
    "standardise_honorific",
    "standardise_marital_status",
    "standardise_name_suffix",
    "standardise_national_id",
    "standardise_phone",
    "standardise_postcode",
    "standardise_records",
    "strip_suffix",
    "strip_title",
    "with_country_code",
    "with_given_name_canonical",
    "with_region",
]
