"""Contact points: e-mail addresses (display form and match key) and phone numbers (E.164 via
libphonenumber, the one Python UDF: a pandas UDF with a per-worker cache)."""

from __future__ import annotations

import functools

import pandas as pd
import phonenumbers
from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql.functions import pandas_udf
from pyspark.sql.types import StringType, StructField, StructType

from .expr import let
from .text import clean_text

_EMAIL = (
    r"^[\p{L}\p{N}!#$%&'*+/=?^_`{|}~-]+(\.[\p{L}\p{N}!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[\p{L}\p{N}](?:[\p{L}\p{N}-]*[\p{L}\p{N}])?\.)+\p{L}{2,}$"
)
_GMAIL_DOMAINS = ("gmail.com", "googlemail.com")


def standardise_email(col: Column) -> Column:
    """Lower-cased, trimmed address without "mailto:" or inner spaces; null when not an address."""
    c = F.regexp_replace(F.lower(F.regexp_replace(clean_text(col), r"\s+", "")), r"^mailto:", "")
    return let(c, lambda e: F.when(e.rlike(_EMAIL), e))


def email_invalid(col: Column) -> Column:
    return clean_text(col).isNotNull() & standardise_email(col).isNull()


def email_user(email: Column) -> Column:
    """Local part of the match key: "+tag" removed, gmail dots removed ("j.doe+x@gmail.com" -> "jdoe")."""

    def user(e: Column) -> Column:
        local = F.regexp_replace(F.substring_index(e, "@", 1), r"\+.*$", "")
        return F.when(F.substring_index(e, "@", -1).isin(*_GMAIL_DOMAINS), F.regexp_replace(local, r"\.", "")).otherwise(local)

    return let(email, user)


def email_match_key(email: Column) -> Column:
    """Match key of a standardised address: :func:`email_user` @ domain (googlemail.com -> gmail.com)."""

    def key(e: Column) -> Column:
        domain = F.regexp_replace(F.substring_index(e, "@", -1), r"^googlemail\.com$", "gmail.com")
        return F.concat(email_user(e), F.lit("@"), domain)

    return let(email, key)


# country-code domains that are mostly used for other reasons (.io, .co, .tv, .me ...)
_VANITY_DOMAINS = ("io", "co", "tv", "me", "ai", "ly", "fm", "gg", "cc", "ws", "to", "la", "eu", "su", "ac")


def email_country_hint(email: Column) -> Column:
    """ISO alpha-2 guessed from an address's country-code domain ("x@web.de" -> DE, "y@bt.co.uk" ->
    GB); null for generic (.com) and vanity (.io, .co) domains. Only a last-resort phone region."""
    tld = F.lower(F.regexp_extract(email, r"\.([A-Za-z]{2})$", 1))
    return F.when(tld == "uk", F.lit("GB")).when((tld != "") & ~tld.isin(*_VANITY_DOMAINS), F.upper(tld))


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
    except Exception:
        return None, None


@pandas_udf(_PHONE_SCHEMA)  # type: ignore[call-overload]  # pyspark's stubs omit the StructType form
def _phone_udf(raw: pd.Series, region: pd.Series) -> pd.DataFrame:
    out = [
        format_phone(r, g if isinstance(g, str) else None) if isinstance(r, str) else (None, None)
        for r, g in zip(raw, region, strict=True)
    ]
    return pd.DataFrame(out, columns=["e164", "international"], dtype=object)


def standardise_phone(col: Column, region: Column) -> Column:
    """struct<e164, international> of a phone number read with ``region`` (ISO alpha-2) as its
    home country when it has no "+"/"00" prefix; both null when it is not a valid number."""
    return _phone_udf(clean_text(col), region)
