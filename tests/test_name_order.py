"""Which way round a source writes names, decided from its data: full names written surname
first without a comma, and first/last-name columns the wrong way round, are put given name
first for the whole source; a source too small or too unclear to tell is left as it is."""

from __future__ import annotations

from pyspark.sql import functions as F

from cdi.config import SourceConfig
from cdi.silver.name_order import GIVEN_FIRST, SURNAME_FIRST, NameOrderEvidence, decide_name_orders, put_given_names_first
from cdi.silver.standardise.names import split_full_name

GIVEN = ["Anna", "Jan", "Maria", "John", "William", "Robert", "Piotr", "Katarzyna", "Hans", "Giulia", "Pierre", "Lucía"]
FAMILY = ["Kowalski", "Nowak", "Smith", "Müller", "Rossi", "Dubois", "García", "van der Berg", "Wiśniewska", "O'Brien"]


def _source(name: str, **kwargs) -> SourceConfig:
    mapping = kwargs.pop("mapping", {"full_name": "name"})
    return SourceConfig(name=name, kind="customers", format="csv", path=f"/in/{name}.csv", id_columns=["id"], mapping=mapping, **kwargs)


def _given_first(staged, sources):
    return put_given_names_first(staged, decide_name_orders(staged, sources))


def _staged(spark, rows: list[tuple]):
    return spark.createDataFrame(rows, "source string, record string, first_name string, last_name string, full_name string")


def _full_rows(source: str, n: int, surname_first: bool) -> list[tuple]:
    rows = []
    for i in range(n):
        given, family = GIVEN[i % len(GIVEN)], FAMILY[i % len(FAMILY)]
        rows.append((source, f"{source}{i}", None, None, f"{family} {given}" if surname_first else f"{given} {family}"))
    return rows


def test_full_names_written_surname_first_are_turned_round_for_the_whole_source(spark):
    rows = _full_rows("registry", 30, surname_first=True) + _full_rows("shop", 30, surname_first=False)
    rows += [("registry", "r-comma", None, None, "Kowalski, Jan"), ("registry", "r-three", None, None, "Nowak Anna Maria"),
             ("registry", "r-particle", None, None, "van der Berg Jan"), ("shop", "s-ambiguous", None, None, "Thomas James")]  # fmt: skip
    sources = [_source("registry"), _source("shop")]
    out = {r.record: r.full_name for r in _given_first(_staged(spark, rows), sources).collect()}
    assert out["registry0"] == "Anna Kowalski" and out["registry7"] == "Katarzyna van der Berg"
    assert out["r-three"] == "Anna Maria Nowak" and out["r-particle"] == "Jan van der Berg"
    assert out["r-comma"] == "Kowalski, Jan"  # a comma already says which part is the surname
    assert out["shop0"] == "Anna Kowalski" and out["s-ambiguous"] == "Thomas James"
    parts = _staged(spark, [("registry", "x", None, None, out["r-three"])]).select(split_full_name(F.col("full_name")).alias("p"))
    assert parts.select("p.first_name", "p.middle_name", "p.last_name").first() == ("Anna", "Maria", "Nowak")


def test_swapped_name_columns_are_swapped_back(spark):
    cols = {"first_name": "fn", "last_name": "ln"}
    rows = [("swapped", f"w{i}", FAMILY[i % len(FAMILY)], GIVEN[i % len(GIVEN)], None) for i in range(25)]
    rows += [("right", f"r{i}", GIVEN[i % len(GIVEN)], FAMILY[i % len(FAMILY)], None) for i in range(25)]
    out = {r.record: (r.first_name, r.last_name) for r in _given_first(
        _staged(spark, rows), [_source("swapped", mapping=cols), _source("right", mapping=cols)]).collect()}  # fmt: skip
    assert out["w0"] == ("Anna", "Kowalski") and out["r0"] == ("Anna", "Kowalski")


def test_a_small_or_unclear_source_is_left_given_name_first_and_config_overrides(spark):
    few = _full_rows("few", 5, surname_first=True)
    # half one way, half the other: not clear enough to turn every name round
    mixed = _full_rows("mixed", 20, surname_first=True) + [(s, r + "b", f, la, n) for s, r, f, la, n in _full_rows("mixed", 20, surname_first=False)]
    told = _full_rows("told", 3, surname_first=True)
    sources = [_source("few"), _source("mixed"), _source("told", name_order="surname_first")]
    out = {r.record: r.full_name for r in _given_first(_staged(spark, few + mixed + told), sources).collect()}
    assert out["few0"] == "Kowalski Anna" and out["mixed0"] == "Kowalski Anna"
    assert out["told0"] == "Anna Kowalski"


def test_the_decision_rule():
    assert NameOrderEvidence(100, 10, 60).order() == SURNAME_FIRST
    assert NameOrderEvidence(100, 35, 60).order() == GIVEN_FIRST  # not twice as often
    assert NameOrderEvidence(100, 2, 15).order() == GIVEN_FIRST  # too few hits to be sure
    assert NameOrderEvidence(10, 0, 10).order() == GIVEN_FIRST  # too few names
