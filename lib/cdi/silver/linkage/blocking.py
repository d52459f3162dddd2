"""Blocking rules from config, and the cap on blocking keys that are too common.

A rule in YAML is either a list of columns (``[email_std]``, ``[last_name_std, date_of_birth]``),
a single column name, or a raw SQL condition over ``l.`` and ``r.`` columns. Column rules get a
*block key*: a copy of the column (or a composite of the columns) that is nulled for values shared
by more than ``blocking_key_cap`` records, so one placeholder e-mail or a company switchboard
number cannot turn into a cartesian product. The Splink rule then joins on the real columns and
requires the key on both sides::

    l.email_std = r.email_std and l.email_std_block is not null and r.email_std_block is not null

Keeping the real columns in the rule matters: Splink reads them to know which comparisons a
training rule "uses up" and to adjust the prior. Raw SQL rules are passed through uncapped.

Everything here is plain SQL that DuckDB and Spark SQL both run, so the prepared input (and
therefore the pairs) is the same whichever backend runs.

    >>> rule_sql(["email_std"])
    'l.email_std = r.email_std and l.email_std_block is not null and r.email_std_block is not null'
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from cdi.sql import columns_read, plain_identifier, rule_columns

Rule = str | list[str]


@dataclass(frozen=True)
class BlockKey:
    """The capped key column of one column rule."""

    name: str
    columns: tuple[str, ...]

    def value_sql(self) -> str:
        """The uncapped key: the column itself, or a composite string that is null if any part is."""
        if len(self.columns) == 1:
            return plain_identifier(self.columns[0])
        not_null = " and ".join(f"{plain_identifier(c)} is not null" for c in self.columns)
        parts = ", ".join(f"cast({plain_identifier(c)} as string)" for c in self.columns)
        return f"case when {not_null} then concat_ws('|', {parts}) end"


def block_key(columns: tuple[str, ...]) -> BlockKey:
    return BlockKey(name="_".join(columns) + "_block", columns=columns)


def rule_sql(rule: Rule) -> str:
    """The Splink blocking condition of one configured rule."""
    columns = rule_columns(rule)
    if columns is None:
        return str(rule)
    key = block_key(columns)
    equal = " and ".join(f"l.{plain_identifier(c)} = r.{plain_identifier(c)}" for c in columns)
    return f"{equal} and l.{key.name} is not null and r.{key.name} is not null"


def block_keys(rule_sets: Iterable[Iterable[Rule]]) -> list[BlockKey]:
    """Every distinct block key the configured rules need, in first-seen order."""
    seen: dict[str, BlockKey] = {}
    for rules in rule_sets:
        for rule in rules:
            columns = rule_columns(rule)
            if columns is not None:
                key = block_key(columns)
                seen.setdefault(key.name, key)
    return list(seen.values())


def columns_used(rule_sets: Iterable[Iterable[Rule]]) -> set[str]:
    """Input columns the rules read (raw SQL rules are scanned for ``l.x`` / ``r.x``)."""
    out: set[str] = set()
    for rules in rule_sets:
        for rule in rules:
            out.update(columns_read(rule))
    return out


def capped_values_sql(source: str, keys: list[BlockKey], cap: int) -> str:
    """Every block key value shared by more than ``cap`` records: (block_key, value, value_hash, records).

    One aggregate over all keys at once (a UNION ALL feeding a single GROUP BY), so Spark
    shuffles once however many rules there are. The result is small: a key can have at most
    records / cap values over the cap. ``value_hash`` (md5 of the value as text, the same in
    DuckDB and Spark) is what the input joins on, so no value is ever quoted into SQL.
    """
    if not keys:
        return (
            "select cast(null as string) as block_key, cast(null as string) as value, "
            "cast(null as string) as value_hash, cast(0 as bigint) as records where 1 = 0"
        )
    parts = [f"select '{plain_identifier(k.name)}' as block_key, cast({k.value_sql()} as string) as value from {source}" for k in keys]
    union = "\n  union all\n  ".join(parts)
    return (
        "select block_key, value, md5(value) as value_hash, count(*) as records\n"
        f"from (\n  {union}\n) keys\nwhere value is not null\n"
        f"group by block_key, value\nhaving count(*) > {int(cap)}"
    )


def capped_input_sql(source: str, select: dict[str, str], keys: list[BlockKey], capped_table: str) -> str:
    """SELECT over ``source``: the ``select`` columns (output name -> SQL expression) plus one
    block key column per key, null where ``capped_table`` (see :func:`capped_values_sql`) lists
    the value. The capped table is tiny, so each join is a broadcast/hash lookup, not a shuffle.
    """
    items = [f"{expr} as {plain_identifier(name)}" for name, expr in select.items()]
    items += [f"{k.value_sql()} as __v{i}" for i, k in enumerate(keys)]
    outer = [f"s.{plain_identifier(name)}" for name in select]
    joins = []
    for i, k in enumerate(keys):
        outer.append(f"case when c{i}.value_hash is null then s.__v{i} end as {k.name}")
        joins.append(
            f"left join {capped_table} c{i} on c{i}.block_key = '{plain_identifier(k.name)}' "
            f"and c{i}.value_hash = md5(cast(s.__v{i} as string))"
        )
    inner = ",\n    ".join(items)
    return (
        f"select\n  {', '.join(outer)}\nfrom (\n  select\n    {inner}\n  from {source}\n) s\n" + "\n".join(joins)
    )
