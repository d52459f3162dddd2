"""Dates and timestamps from text in a source's own formats, ISO forms or epoch numbers."""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import Column
from pyspark.sql import functions as F

from .expr import let
from .text import clean_text

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
            return let(parsed, lambda d: F.when(d > F.current_date(), F.add_months(d, -1200)).otherwise(d))
        return parsed

    return let(
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

    return let(clean_text(col), read)


MIN_BIRTH_DATE = "1900-01-01"


def dob_out_of_range(dob: Column) -> Column:
    """True for a birth date before 1900 or after today."""
    return (dob < F.lit(MIN_BIRTH_DATE).cast("date")) | (dob > F.current_date())


def dod_out_of_range(dod: Column, dob: Column) -> Column:
    """True for a date of death before 1900, after today or before the record's birth date."""
    return dob_out_of_range(dod) | F.coalesce(dod < dob, F.lit(False))
