"""Regions as ISO 3166-2 subdivisions, from ``pycountry`` (the iso-codes database and its
translations): within the record's country, "NY", "new york", "Nowy Jork" and "US-NY" are all
``New York`` (US-NY); "mazowieckie", "Masowien" and "PL-14" are ``Mazowieckie`` (PL-14);
"Bavaria" is ``Bayern`` (DE-BY). Text that names no subdivision of the country (a marketing
region such as "Greater London", or a region of another country) stays as the source wrote it,
so nothing is lost; its ISO code is then null.

A written form can name two subdivisions of one country (a county and a district of the same
name): the subdivision's own name wins over its code, which wins over a translation, and a
higher level wins over a lower one; a form that is still ambiguous is not used.
"""

from __future__ import annotations

import functools
import gettext
import re

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from .text import clean_text, fold, fold_text

# translations read for aliases: languages written in Latin script, which folding keeps readable;
# others would fold to transliterations no source writes
_LANGUAGES = ("en", "de", "fr", "es", "it", "pt", "nl", "pl", "sv", "da", "nb", "fi", "cs", "ro", "hu", "tr")
_BRACKETED = re.compile(r"\s*\[[^\]]*\]")
_CODE_WORD = re.compile(r"\b[A-Z]{2}-[0-9A-Z]{1,3}\b")
_NAME, _CODE, _TRANSLATION = 0, 1, 2


def _plain(name: str) -> str:
    """An iso-codes name without its bracketed alternatives: "Wales [Cymru GB-CYM]" -> "Wales"."""
    return _BRACKETED.sub("", name).strip()


def _written_forms(name: str) -> set[str]:
    """How a source may write a subdivision's name: as it is, its bracketed other name
    ("Catalunya [Cataluña]", "Wales [Cymru GB-CYM]" without the code), each part of "A / B",
    and an inverted "Murcia, Región de" also as "Región de Murcia" (not as "Murcia" alone:
    "London, City of" is not London)."""
    forms = set()
    others = [_CODE_WORD.sub("", inner).strip() for inner in re.findall(r"\[([^\]]*)\]", name)]
    for part in [_plain(name), *_plain(name).split(" / "), *others]:
        forms.add(part)
        if ", " in part:
            head, tail = part.split(", ", 1)
            forms.add(f"{tail} {head}")
    return {f for f in forms if f}


@functools.cache
def region_aliases() -> tuple[tuple[str, str, str, str], ...]:
    """(country alpha-2, folded written form, ISO 3166-2 code, name) for every unambiguous form."""
    import pycountry

    translations = [gettext.translation("iso3166-2", pycountry.LOCALES_DIR, languages=[lang], fallback=True) for lang in _LANGUAGES]
    candidates: dict[tuple[str, str], set[tuple[int, int, str, str]]] = {}
    for sub in pycountry.subdivisions:
        name, level = _plain(sub.name), 0 if sub.parent_code is None else 1

        def add(form: str, rank: int, sub=sub, name=name, level=level) -> None:
            key = fold_text(form)
            if key:
                candidates.setdefault((sub.country_code, key), set()).add((rank, level, sub.code, name))

        add(sub.code, _CODE)
        add(sub.code.split("-", 1)[1], _CODE)
        for form in _written_forms(sub.name):
            add(form, _NAME)
        for translation in translations:
            translated = translation.gettext(sub.name)
            if translated != sub.name:
                for form in _written_forms(translated):
                    add(form, _TRANSLATION)
    aliases = []
    for (country, key), found in sorted(candidates.items()):
        ranked = sorted(found)
        best = [c for c in ranked if c[:2] == ranked[0][:2]]
        if len({c[2] for c in best}) == 1:
            aliases.append((country, key, best[0][2], best[0][3]))
    return tuple(aliases)


def region_lookup(spark: SparkSession) -> DataFrame:
    """:func:`region_aliases` as a DataFrame (``_region_country``, ``_region_key``, ``_region_code``, ``_region_name``)."""
    return spark.createDataFrame(
        list(region_aliases()), "_region_country string, _region_key string, _region_code string, _region_name string"
    )


def with_region(df: DataFrame, region: str, country: str, code: str | None = None) -> DataFrame:
    """``region`` replaced by its subdivision's ISO name where it names one of ``country``'s
    subdivisions (a broadcast join), else kept as written (cleaned); with ``code``, that column
    gets the ISO 3166-2 code (null when none)."""
    lookup = F.broadcast(region_lookup(df.sparkSession))
    cleaned = clean_text(F.col(region))
    keyed = df.withColumn("_region_written", cleaned).withColumn("_region_fold", fold(cleaned))
    on = (keyed["_region_fold"] == lookup["_region_key"]) & (keyed[country] == lookup["_region_country"])
    joined = keyed.join(lookup, on, "left").withColumn(region, F.coalesce(F.col("_region_name"), F.col("_region_written")))
    if code:
        joined = joined.withColumn(code, F.col("_region_code"))
    return joined.drop("_region_written", "_region_fold", "_region_country", "_region_key", "_region_code", "_region_name")
