"""Text cleaning and folding: the match form of any text, and how display text is cased.

:func:`fold` lower-cases, transliterates letters of every script in the Basic Multilingual Plane
as ``unidecode`` does (ł -> l, ß -> ss, ж -> zh, محمد -> mhmd, דוד -> dvd, 张伟 -> zhang wei,
さくら -> sakura), deletes zero-width characters and apostrophes and turns every other
non-alphanumeric run into one space; :func:`fold_text` is the same in Python (used for the lookup
tables' keys). ASCII text, most of any customer file, is folded by built-in functions; only
values holding other characters go to Python, through one vectorised (Arrow) UDF that applies
one table indexed by code point (:func:`fold_table`, built from unidecode once per worker): the
same cost for a Chinese name as for a Polish one, and no 65,536-entry constant in every plan
(which made planning each action seconds slower, whatever the data's size). Because Spark runs
no Python UDF inside a lambda, :func:`fold` must not be called on a lambda variable; fold the
column first and pass the folded column in. Characters beyond the BMP stay as they are.

:func:`clean_text` removes control characters (NUL and the other C0/C1 codes that are not
whitespace) and invisible format characters, but keeps the zero-width joiner and non-joiner,
which belong to the letters around them (Persian, Indic names, emoji sequences);
:func:`has_control_characters` tells which values held such characters (a quality flag).

    >>> df.select(fold(F.col("city")).alias("city_std"))  # doctest: +SKIP
"""

from __future__ import annotations

import functools
import re
import unicodedata

import pandas as pd
from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql.functions import pandas_udf
from pyspark.sql.types import StringType
from unidecode import unidecode

from .expr import let

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


def _fold_char(ch: str, latin: dict[str, str]) -> str | None:
    """One character's fold, None where it stays itself (ASCII, punctuation, symbols, spaces)."""
    if ch in latin:
        return latin[ch]
    if ch in _APOSTROPHES:
        return None
    category = unicodedata.category(ch)
    if category == "Cf":  # zero-width joiners, marks: nothing in the match form, and no word break
        return ""
    if category[0] not in "LMN":
        return None
    folded = re.sub(r"[^a-z0-9]+", " ", re.sub(r"['`]", "", unidecode(ch).lower()))
    return None if folded == ch else folded


@functools.cache
def fold_table() -> tuple[str | None, ...]:
    """Code point (0..0xFFFF) -> its fold (None: the character itself), from unidecode once.

    Latin, Greek and Cyrillic letters keep letters only (``fold_map``); letters of other scripts
    keep unidecode's spaces between syllables (CJK: 张伟 -> "zhang wei").
    """
    latin = fold_map()
    return tuple(None if cp < 0x80 or 0xD800 <= cp <= 0xDFFF else _fold_char(chr(cp), latin) for cp in range(0x10000))


@functools.cache
def _python_fold_table() -> dict[int, str]:
    table = {cp: v for cp, v in enumerate(fold_table()) if v is not None}
    table.update({ord(c): "" for c in _APOSTROPHES})
    return table


_NON_ALNUM = re.compile(r"[^a-z0-9]+")


def fold_text(value: str | None) -> str | None:
    """Python twin of :func:`fold` (for lookup keys and tests): "Łukasz O'Brien" -> "lukasz obrien"."""
    if value is None:
        return None
    folded = _NON_ALNUM.sub(" ", value.lower().translate(_python_fold_table())).strip()
    return folded or None


_NON_ASCII = r"[^\x00-\x7F]"


@pandas_udf(StringType())  # type: ignore[call-overload]
def _fold_udf(values: pd.Series) -> pd.Series:
    return values.map(fold_text, na_action="ignore")


def fold(col: Column) -> Column:
    """Match form of text: lower case, transliterated, apostrophes dropped, punctuation -> one space.

    ASCII values never leave the JVM: the UDF is given null for them, and the built-in form
    (which removes every non-ASCII character) serves. For a value with other characters both
    agree wherever the UDF's result is null (nothing but punctuation), so ``coalesce`` is exact."""
    ascii_form = F.regexp_replace(F.regexp_replace(F.lower(col), "[" + _APOSTROPHES + "]", ""), "[^a-z0-9]+", " ")
    return F.coalesce(_fold_udf(F.when(col.rlike(_NON_ASCII), col)), F.nullif(F.trim(ascii_form), F.lit("")))


_PLACEHOLDER = r"(?i)^(?:null|none|nan|n/a|#n/a|-+|\?+|nil)$"


CONTROL_CHARACTERS = r"[\x00-\x08\x0E-\x1F\x7F-\x84\x86-\x9F]"
"""C0 and C1 control characters that are not whitespace (NUL, BEL, ESC, ...), as a Java regex class."""
_INVISIBLE = r"[\p{Cf}&&[^\u200C\u200D]]"  # format characters except the zero-width (non-)joiner


def has_control_characters(col: Column) -> Column:
    """True where the text holds a control character :func:`clean_text` removes (null stays null)."""
    return col.cast("string").rlike(CONTROL_CHARACTERS)


def clean_text(col: Column) -> Column:
    """Trimmed text with inner whitespace runs as one space; empty and placeholders ("NULL", "N/A") -> null.

    Control characters and invisible format characters are removed; zero-width joiners stay."""
    c = F.regexp_replace(col.cast("string"), CONTROL_CHARACTERS + "|" + _INVISIBLE, "")
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

    return let(col, recase)


def nullif_empty(col: Column) -> Column:
    return F.nullif(F.trim(col), F.lit(""))
