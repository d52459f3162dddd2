"""Text cleaning and folding: the match form of any text, and how display text is cased.

:func:`fold` lower-cases, transliterates Latin, Greek and Cyrillic letters as ``unidecode`` does
(ł -> l, ß -> ss, ø -> o, ж -> zh), drops apostrophes and turns every other non-alphanumeric run
into one space; :func:`fold_text` is the same in Python (used for the lookup tables' keys).

    >>> df.select(fold(F.col("city")).alias("city_std"))  # doctest: +SKIP
"""

from __future__ import annotations

import functools
import re

from pyspark.sql import Column
from pyspark.sql import functions as F
from unidecode import unidecode

from .expr import let, literal_map

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
    chars = literal_map(fold_map())

    def transliterate(lowered: Column) -> Column:
        letters = F.transform(F.split(lowered, ""), lambda ch: F.coalesce(F.try_element_at(chars, ch), ch))
        # most values are ASCII: skip the per-character lookup for them (CASE evaluates one branch)
        return F.when(lowered.rlike(r"[^\x00-\x7F]"), F.array_join(letters, "")).otherwise(lowered)

    c = F.regexp_replace(F.regexp_replace(let(F.lower(col), transliterate), "[" + _APOSTROPHES + "]", ""), "[^a-z0-9]+", " ")
    return F.nullif(F.trim(c), F.lit(""))



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

    return let(col, recase)


def nullif_empty(col: Column) -> Column:
    return F.nullif(F.trim(col), F.lit(""))
