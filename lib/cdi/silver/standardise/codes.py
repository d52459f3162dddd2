"""Coded values: gender, marital status, deceased indicators and national ids, from codes in many languages."""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F

from .expr import let, literal_map
from .lookups import keyed
from .text import clean_text, fold


def _coded(col: Column, table: str, key: str, value: str) -> tuple[Column, Column]:
    """(canonical value or null, True when a value was given but is not in the table)."""
    mapping = literal_map(keyed(table, key, value))
    value_of = let(fold(clean_text(col)), lambda k: F.nullif(F.try_element_at(mapping, k), F.lit("")))
    unknown = let(fold(clean_text(col)), lambda k: k.isNotNull() & F.try_element_at(mapping, k).isNull())
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


def standardise_deceased(col: Column) -> Column:
    """True (the source says the person has died), False or null ("verstorben", "Y", "0")."""
    return _coded(col, "deceased_codes.csv", "code", "deceased")[0].cast("boolean")


def deceased_unknown(col: Column) -> Column:
    """True when a deceased indicator was given that no row of ``deceased_codes.csv`` knows."""
    return _coded(col, "deceased_codes.csv", "code", "deceased")[1]


def standardise_national_id(col: Column) -> Column:
    """Upper case, letters and digits only ("ab 12 34 56 c" -> "AB123456C")."""
    c = F.upper(F.regexp_replace(clean_text(col), r"[^0-9A-Za-z]", ""))
    return F.when(c != "", c)
