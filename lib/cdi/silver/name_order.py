"""Which way round a source writes names, decided from its data, not guessed per record.

Some systems write full names surname first without a comma ("Kowalski Jan", "NAKAMURA Yuki"),
some exports have their first- and last-name columns the wrong way round. One record cannot
tell ("Thomas James"), but a source can: among its names with two or more words, count how
often the first word and how often the last word is a known given name (``given_names.csv``
and every name and nickname of ``nicknames.csv``, folded). A source that writes given names first has many more
hits on the first word; one that writes surnames first, on the last. The source is taken as
surname first only when the last word is a known given name at least twice as often as the
first *and* in at least a fifth of its names; with fewer than :data:`MIN_NAMES` names, or
anything less clear, it stays given name first (the common case, and the safe one: a wrong
swap would turn every name round). ``name_order:`` in the source's config overrides the
decision.

The decision is one aggregate over the staged records of all sources that map a full name or
both name columns (a stage boundary decision), logged per source with its counts.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from cdi.config import SourceConfig
from cdi.silver.standardise.lookups import load_table
from cdi.silver.standardise.names import SURNAME_PARTICLES, nickname_rows
from cdi.silver.standardise.text import fold, fold_text

log = logging.getLogger(__name__)

GIVEN_FIRST, SURNAME_FIRST = "given_first", "surname_first"
MIN_NAMES = 20
# "Kowalski Jan Maria" -> surname "Kowalski"; "van der Berg Jan" -> surname "van der Berg"
_SURNAME_FIRST = rf"(?iu)^((?:(?:{SURNAME_PARTICLES})\s+)*[^\s,]+)\s+([^,]+)$"


@functools.cache
def given_names() -> tuple[str, ...]:
    """Every folded given name the shipped vocabularies know: ``given_names.csv`` and every name
    and nickname of ``nicknames.csv``."""
    names = {n for row in nickname_rows() for n in row if n}
    names |= {key for key in (fold_text(row["name"]) for row in load_table("given_names.csv")) if key}
    return tuple(sorted(names))


@dataclass(frozen=True)
class NameOrderEvidence:
    """Counts behind a source's decision (names with two or more words only)."""

    names: int
    first_word_given: int
    last_word_given: int

    def order(self) -> str:
        if self.names < MIN_NAMES:
            return GIVEN_FIRST
        clear = self.last_word_given >= 2 * self.first_word_given and self.last_word_given >= 0.2 * self.names
        return SURNAME_FIRST if clear else GIVEN_FIRST


def _words(text: Column) -> Column:
    return F.split(F.trim(fold(text)), " ")


def evidence_by_source(staged: DataFrame) -> dict[str, tuple[NameOrderEvidence, NameOrderEvidence]]:
    """Per source (one aggregate over all of them): how its full names of two or more words
    (records without name parts or a comma) begin and end, and how often each name column
    holds a known given name (records with both columns).

    Each record yields its (kind, word) candidates, which meet the given names in a broadcast
    join: an ``isin`` of the ~800 names would make Catalyst spend seconds on every plan."""
    full = F.col("first_name").isNull() & F.col("last_name").isNull() & ~F.col("full_name").contains(",")
    words = _words(F.col("full_name"))
    multi = full & (F.size(words) >= 2)
    both = F.col("first_name").isNotNull() & F.col("last_name").isNotNull()
    candidates = {
        "full_first": (multi, words[0]),
        "full_last": (multi, F.element_at(words, -1)),
        "cols_first": (both, _words(F.col("first_name"))[0]),
        "cols_last": (both, _words(F.col("last_name"))[0]),
    }
    pairs = F.filter(
        F.array(*[F.when(cond, F.struct(F.lit(kind).alias("kind"), word.alias("word"))) for kind, (cond, word) in candidates.items()]),
        lambda p: p.isNotNull(),
    )
    spark = staged.sparkSession
    known = spark.createDataFrame([(n,) for n in given_names()], "word string").withColumn("_given", F.lit(1))
    rows = (
        staged.select("source", F.explode(pairs).alias("p"))
        .select("source", "p.kind", "p.word")
        .join(F.broadcast(known), "word", "left")
        .groupBy("source", "kind")
        .agg(F.count(F.lit(1)).alias("n"), F.count("_given").alias("given"))
        .collect()
    )  # at most four rows per source
    counts = {(r["source"], r["kind"]): (r["n"], r["given"]) for r in rows}

    def evidence(source: str, prefix: str) -> NameOrderEvidence:
        n, first = counts.get((source, f"{prefix}_first"), (0, 0))
        _, last = counts.get((source, f"{prefix}_last"), (0, 0))
        return NameOrderEvidence(n, first, last)

    return {source: (evidence(source, "full"), evidence(source, "cols")) for source in {r["source"] for r in rows}}


@dataclass(frozen=True)
class NameOrders:
    """The sources whose full names are turned round and whose name columns are swapped."""

    turn_full_names: tuple[str, ...] = ()
    swap_name_columns: tuple[str, ...] = ()


def _decides(source: SourceConfig) -> tuple[bool, bool]:
    """Whether the source's data decides its full-name order, and its name-column order."""
    auto = source.name_order == "auto"
    return auto and "full_name" in source.mapping, auto and {"first_name", "last_name"} <= set(source.mapping)


def decide_name_orders(staged: DataFrame, sources: Sequence[SourceConfig]) -> NameOrders:
    """Which sources write names surname first: their ``name_order``, else
    :class:`NameOrderEvidence` from their staged rows (one aggregate, logged per source)."""
    auto = [s.name for s in sources if any(_decides(s))]
    evidence = evidence_by_source(staged.where(F.col("source").isin(*auto))) if auto else {}
    nothing = (NameOrderEvidence(0, 0, 0), NameOrderEvidence(0, 0, 0))
    turn_full, swap_columns = [], []
    for source in sources:
        full_order: str = source.name_order
        columns_order: str = source.name_order
        decide_full, decide_columns = _decides(source)
        full_ev, cols_ev = evidence.get(source.name, nothing)
        if source.name_order == "auto":
            full_order, columns_order = full_ev.order(), cols_ev.order()
        if decide_full:
            _log(source, "full names", full_ev, full_order)
        if decide_columns:
            _log(source, "first_name/last_name columns", cols_ev, columns_order)
        if full_order == SURNAME_FIRST:
            turn_full.append(source.name)
        if columns_order == SURNAME_FIRST:
            swap_columns.append(source.name)
    return NameOrders(tuple(turn_full), tuple(swap_columns))


def put_given_names_first(staged: DataFrame, orders: NameOrders) -> DataFrame:
    """The staged records with names given first: full names without a comma turned round
    ("Kowalski Jan Maria" -> "Jan Maria Kowalski") and name columns swapped for the sources
    :func:`decide_name_orders` named. No action."""
    turn_full, swap_columns = orders.turn_full_names, orders.swap_name_columns
    out = staged
    if turn_full:
        full = F.col("full_name")
        turned = F.regexp_replace(F.trim(full), _SURNAME_FIRST, "$2 $1")
        out = out.withColumn("full_name", F.when(F.col("source").isin(*turn_full) & ~full.contains(","), turned).otherwise(full))
    if swap_columns:
        swap = F.col("source").isin(*swap_columns)
        first, last = F.col("first_name"), F.col("last_name")
        out = out.select(
            *[c for c in out.columns if c not in ("first_name", "last_name")],
            F.when(swap, last).otherwise(first).alias("first_name"),
            F.when(swap, first).otherwise(last).alias("last_name"),
        ).select(*out.columns)
    return out


def _log(source: SourceConfig, what: str, evidence: NameOrderEvidence, order: str) -> None:
    level = logging.WARNING if order == SURNAME_FIRST else logging.INFO
    log.log(
        level,
        "source %s writes %s %s: of %d names, %d begin and %d end with a known given name%s",
        source.name,
        what,
        order.replace("_", " "),
        evidence.names,
        evidence.first_word_given,
        evidence.last_word_given,
        " (set name_order: given_first in its config if that is wrong)" if order == SURNAME_FIRST else "",
    )
