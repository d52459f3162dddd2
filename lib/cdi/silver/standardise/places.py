"""Places: postcodes laid out per country, address match keys, country names to ISO codes."""

from __future__ import annotations

import functools

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from .expr import let, literal_map
from .lookups import keyed, load_table
from .text import clean_text, fold


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
    rules = {field: literal_map(values) for field, values in _postcode_rules().items()}

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

    return let(compact_postcode(col), lambda compact: let(country, lambda ctry: laid_out(compact, ctry)))


def postcode_invalid(col: Column, country: Column) -> Column:
    return compact_postcode(col).isNotNull() & standardise_postcode(col, country).isNull()


def postcode_match_key(postcode: Column) -> Column:
    """Postcode without spaces or dashes: "SW1A 1AA" -> "SW1A1AA"."""
    return compact_postcode(postcode)


@functools.cache
def _street_maps() -> tuple[dict[str, str], dict[str, str]]:
    anywhere = keyed("street_types.csv", "token", "canonical", where=(("position", "any"),))
    first = keyed("street_types.csv", "token", "canonical", where=(("position", "first"),))
    return anywhere, first


def address_match_key(*lines: Column) -> Column:
    """Folded address lines with street types canonical: "ul. Długa 5/3" -> "ulica dluga 5 3",
    "12 Baker St" -> "12 baker street", "Avda. de América 4" -> "avenue de america 4"."""
    anywhere, first = _street_maps()
    any_map, first_map = literal_map(anywhere), literal_map(first)

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

    return let(fold(F.concat_ws(" ", *[clean_text(line) for line in lines])), canonical)


def country_lookup(spark: SparkSession) -> DataFrame:
    """Folded country alias -> ISO alpha-2, from ``countries.csv`` (names in many languages)."""
    mapping = keyed("countries.csv", "alias", "alpha2")
    return spark.createDataFrame(sorted(mapping.items()), "alias string, alpha2 string")


def with_country_code(df: DataFrame, raw: str, out: str = "country") -> DataFrame:
    """Add ``out``: the ISO alpha-2 code of the country written in column ``raw`` ("Polska",
    "Deutschland", "UK", "ESP" -> PL, DE, GB, ES), by a broadcast join; null when unknown."""
    spark = df.sparkSession
    lookup = F.broadcast(country_lookup(spark).withColumnRenamed("alpha2", out).withColumnRenamed("alias", "_country_alias"))
    keyed = df.withColumn("_country_key", fold(clean_text(F.col(raw))))
    return keyed.join(lookup, keyed["_country_key"] == lookup["_country_alias"], "left").drop("_country_key", "_country_alias")
