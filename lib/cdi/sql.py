"""The one place a value or a name becomes SQL text.

Prefer Column expressions; where SQL text is unavoidable (Delta predicates such as
``replace_where``, DuckDB queries, Splink's blocking rules, a JDBC source's subquery), every value
goes through :func:`literal` and every name through :func:`identifier`. The engines escape
differently: Spark SQL (also the dialect of every lake predicate, whichever Delta engine commits)
escapes quotes and backslashes with a backslash; DuckDB and standard SQL (``ansi``: PostgreSQL and
other databases read over JDBC) double quotes and take backslashes as written.

    >>> literal("O'Brien")
    "'O\\\\'Brien'"
    >>> literal("O'Brien", "duckdb")
    "'O''Brien'"
    >>> identifier("first name")
    '`first name`'
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import Literal

from cdi.errors import ConfigError

Dialect = Literal["spark", "duckdb", "ansi"]

_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def literal(value: object, dialect: Dialect = "spark") -> str:
    """``value`` as a SQL literal: NULL, true/false, a number, a timestamp, a date or a string.

    An aware datetime is written in UTC; a naive one as it is (Spark's session time zone is UTC).
    """
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} has no SQL literal")
        return repr(value)
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return f"TIMESTAMP '{value.strftime('%Y-%m-%d %H:%M:%S.%f')}'"
    if isinstance(value, date):
        return f"DATE '{value.isoformat()}'"
    text = str(value)
    if dialect == "spark":
        return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return "'" + text.replace("'", "''") + "'"


def literals(values: Iterable[object], dialect: Dialect = "spark") -> str:
    """Comma-separated literals, for ``IN (...)``."""
    return ", ".join(literal(v, dialect) for v in values)


def identifier(name: str, dialect: Dialect = "spark") -> str:
    """A column or table name quoted for ``dialect`` (names may hold dots, spaces or quotes)."""
    if dialect == "spark":
        return "`" + name.replace("`", "``") + "`"
    return '"' + name.replace('"', '""') + '"'


_SIDE_COLUMN = re.compile(r"\b[lr]\.`?([A-Za-z_][A-Za-z0-9_]*)`?")


def rule_columns(rule: str | list[str]) -> tuple[str, ...] | None:
    """The columns of a blocking rule given as a list or a single column name, or None for a raw
    SQL condition over ``l.`` and ``r.`` columns."""
    if isinstance(rule, list):
        if not rule:
            raise ConfigError("a blocking rule given as a list needs at least one column")
        return tuple(rule)
    if _PLAIN.match(rule.strip()):
        return (rule.strip(),)
    return None


def columns_read(rule: str | list[str]) -> set[str]:
    """Every input column a blocking rule reads (a raw SQL rule is scanned for ``l.x`` / ``r.x``)."""
    columns = rule_columns(rule)
    if columns is not None:
        return set(columns)
    return {m.group(1) for m in _SIDE_COLUMN.finditer(str(rule))}


def plain_identifier(name: str) -> str:
    """``name`` unquoted, checked to be letters, digits and underscores: text that DuckDB and Spark
    read alike, for SQL rendered once and run on either engine (Splink's blocking rules)."""
    if not _PLAIN.match(name):
        raise ConfigError(f"column name {name!r} is not a plain identifier (letters, digits, underscore)")
    return name


OUTSIDE_THE_ROW_FUNCTIONS = frozenset({"reflect", "java_method", "try_reflect"})
"""Spark SQL functions that call arbitrary JVM methods: refused in conditions that analysts,
stewards or configuration supply (segments, audiences)."""


def condition_columns(condition: str) -> set[str]:
    """The columns a row condition in Spark SQL reads, parsed without Spark (for config checks
    before a session starts). Raises ValueError saying what is wrong: text that does not parse,
    more than one statement, or what a row filter cannot hold (aggregates, windows, subqueries,
    :data:`OUTSIDE_THE_ROW_FUNCTIONS`)."""
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import ParseError

    try:
        parsed = [e for e in sqlglot.parse(condition, read="spark") if e is not None]
    except ParseError as exc:
        first = exc.errors[0] if exc.errors else {}
        where = f" at column {first['col']}" if first.get("col") else ""
        near = f" (near {first['highlight']!r})" if first.get("highlight") else ""
        raise ValueError(f"does not parse as Spark SQL{where}{near}") from None
    if len(parsed) != 1:
        raise ValueError(f"must be one condition, found {len(parsed) or 'no'} statement(s)")
    tree = parsed[0]
    for kind, what in ((exp.Query, "a subquery"), (exp.Window, "a window function"), (exp.AggFunc, "an aggregate")):
        found = tree if isinstance(tree, kind) else tree.find(kind)
        if found is not None:
            raise ValueError(f"holds {what} ({found.sql(dialect='spark')}); a condition is tested on one row at a time")
    for call in tree.find_all(exp.Anonymous):
        if str(call.name).lower() in OUTSIDE_THE_ROW_FUNCTIONS:
            raise ValueError(
                f"calls {call.name}(), which runs Java code on the cluster; a condition may only use "
                "the row's columns and Spark's built-in functions"
            )
    return {c.name for c in tree.find_all(exp.Column)}


def unknown_columns(condition: str, known: Iterable[str], table: str) -> None:
    """Raise ValueError when ``condition`` (see :func:`condition_columns`) reads a column not in
    ``known`` (case-insensitive, as Spark resolves them), naming each with a did-you-mean."""
    import difflib

    by_lower = {k.lower(): k for k in known}
    unknown = sorted(c for c in condition_columns(condition) if c.lower() not in by_lower)
    if not unknown:
        return
    hints = []
    for name in unknown:
        close = difflib.get_close_matches(name.lower(), list(by_lower), n=1)
        hints.append(f"{name!r}" + (f" (did you mean {by_lower[close[0]]!r}?)" if close else ""))
    raise ValueError(f"reads column(s) that {table} does not have: {', '.join(hints)}; `cdi tables` lists its columns")
