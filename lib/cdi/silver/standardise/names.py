"""Names: titles and suffixes split off, full names split into parts, nicknames mapped to the
canonical given name (``nicknames.csv``, broadcast-joined)."""

from __future__ import annotations

import functools
import re

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from cdi.errors import LookupTableError

from .expr import let, literal_map
from .lookups import keyed, load_table
from .text import clean_text, display_case, fold, fold_text, nullif_empty

SURNAME_PARTICLES = "van|von|der|den|del|della|delle|di|da|das|dos|du|de|la|las|le|les|los|ten|ter|zu|zum|zur|vom|al|el|bin|ibn"
_ONE_SURNAME = rf"(?iu)^(.+?)\s+((?:(?:{SURNAME_PARTICLES})\s+)*\S+)$"
_TWO_SURNAMES = rf"(?iu)^(.+?)\s+((?:(?:{SURNAME_PARTICLES})\s+)*\S+\s+(?:(?:{SURNAME_PARTICLES}|y|i)\s+)*\S+)$"
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
    words = F.transform(F.split(fold(raw), " "), lambda w: F.try_element_at(literal_map(mapping), w))
    return F.nullif(F.array_join(words, " "), F.lit(""))


def _honorific_map(kind: str) -> dict[str, str]:
    return keyed("honorifics.csv", "token", "canonical", where=(("kind", kind),))


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


def split_full_name(full: Column, two_surnames: Column | None = None) -> Column:
    """struct<title, first_name, middle_name, last_name, suffix> of a full name.

    "Nowak, Anna Maria" and "Dr. Anna Maria Nowak" give first Anna, middle Maria, last Nowak;
    surname particles stay with the surname ("Ursula von der Leyen"); with ``two_surnames`` true
    (Spanish-speaking countries) the last two words are the surname ("José Luis García López").
    A single word is taken as the last name. Names follow :func:`display_case`; title and suffix
    stay as written ("Prof. Dr.", ", Jr.") for :func:`standardise_honorific` and
    :func:`standardise_name_suffix` to make canonical on the resulting column (they fold, and
    Spark runs no Python UDF inside the lambdas this parser is built from).
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
        return let(
            given,
            lambda g: F.struct(
                nullif_empty(title).alias("title"),
                display_case(nullif_empty(F.substring_index(g, " ", 1))).alias("first_name"),
                display_case(nullif_empty(F.regexp_extract(g, r"^\S+\s+(.*)$", 1))).alias("middle_name"),
                display_case(nullif_empty(last)).alias("last_name"),
                nullif_empty(suffix).alias("suffix"),
            ),
        )

    return let(
        clean_text(full),
        lambda text: let(
            F.trim(F.regexp_replace(text, suffix_re, "")),
            lambda unsuffixed: let(
                F.trim(F.regexp_replace(unsuffixed, title_re, "")),
                lambda body: from_body(text, unsuffixed, body),
            ),
        ),
    )


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
