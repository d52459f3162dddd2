"""Money: amounts written in any regional style, and currencies from codes, symbols or the
amount text itself. Facts and customer records are read with these same functions."""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F

from .expr import let, literal_map
from .lookups import load_table
from .text import clean_text


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
        number = let(_decimal_text(F.regexp_replace(lowered, r"[^0-9.,]", "")),
                      lambda n: F.when(n.rlike(r"[0-9]"), n.try_cast("double") * thousands))
        signed = let(number, lambda v: F.when(negative, -v).otherwise(v))
        only_money = let(F.regexp_replace(lowered, _NOT_WORDS, ""), lambda w: (w == "") | _currency_code(w).isNotNull())
        scientific = lowered.rlike(r"^[+-]?[0-9]+(\.[0-9]+)?e[+-]?[0-9]+$")
        return F.when(scientific, lowered.try_cast("double")).when(only_money, signed)

    return let(F.lower(clean_text(col)), from_text)


def _currency_code(key: Column) -> Column:
    symbols = literal_map({row["symbol"].lower(): row["code"] for row in load_table("currencies.csv")})
    return let(key, lambda k: F.coalesce(F.try_element_at(symbols, k), F.when(k.rlike(r"^[a-z]{3}$"), F.upper(k))))


def standardise_currency(col: Column) -> Column:
    """ISO 4217 code from a code or symbol ("eur" -> EUR, "zł" -> PLN, "£" -> GBP); null otherwise."""
    return _currency_code(F.lower(F.regexp_replace(clean_text(col), r"\s+", "")))


def currency_of_amount(col: Column) -> Column:
    """Currency written inside an amount ("€1.234,56" -> EUR, "52 000 zł" -> PLN); null if none."""
    return _currency_code(F.nullif(F.regexp_replace(F.lower(clean_text(col)), _NOT_WORDS, ""), F.lit("")))
