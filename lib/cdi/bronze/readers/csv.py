"""Delimited text files, read as lines and parsed with ``from_csv`` into string columns.

Reading lines first gives each record its raw text and line number in the same pass as its
values. The header is each file's line 1 (files of one source may differ: drift), parsed on the
driver (one line per file). Values stay strings as written; an empty field is null (Spark's
``nullValue`` default). Quoting follows RFC 4180 unless the options say otherwise: ``quote``
``"``, ``escape`` the quote itself (a doubled quote inside a quoted field).

A line is ``malformed_csv`` when its quotes do not balance (RFC 4180 quoting only) or when it
does not split into the header's number of fields (Spark's PERMISSIVE mode fills the corrupt
record column). Records spanning lines (quoted line breaks) are not supported: their pieces are
quarantined as malformed lines, never lost.

Options: ``delimiter`` (or ``sep``), ``quote``, ``escape``, ``header`` (default true; without a
header the columns are ``_c0``, ``_c1``, ...), ``encoding``; others go to ``from_csv``.

    >>> batch = read_csv(spark, source, files)  # doctest: +SKIP
"""

from __future__ import annotations

import csv
from functools import reduce

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from cdi.config import SourceConfig
from cdi.errors import SourceSchemaError
from cdi.sql import identifier

from .. import lineage as L
from ..files import SourceFile
from ..ledger import file_unit
from .batch import SourceBatch, option, text_options
from .lines import numbered_lines

CORRUPT = "_cdi_corrupt"
_HANDLED = ("delimiter", "sep", "quote", "escape", "header", "encoding", "charset")


def _header_fields(line: str, sep: str, quote: str, escape: str) -> list[str]:
    if escape == quote:
        reader = csv.reader([line], delimiter=sep, quotechar=quote, doublequote=True)
    else:
        reader = csv.reader([line], delimiter=sep, quotechar=quote, doublequote=False, escapechar=escape)
    return next(reader, [])


def _column_names(source: SourceConfig, file: str, fields: list[str], header: bool) -> list[str]:
    if not header:
        return [f"_c{i}" for i in range(len(fields))]
    names = [name if name != "" else f"_c{i}" for i, name in enumerate(fields)]
    lowered = [n.lower() for n in names]  # Spark resolves column names case-insensitively
    twice = sorted({n for n in names if lowered.count(n.lower()) > 1})
    if twice:
        raise SourceSchemaError(
            f"source '{source.name}': file {file} has duplicate header column(s) {twice}; "
            "rename them in the file so every column can be kept"
        )
    clash = sorted(set(names) & L.RESERVED)
    if clash:
        raise SourceSchemaError(
            f"source '{source.name}': file {file} has column(s) {clash}, names reserved for lineage; rename them"
        )
    return names


def read_csv(spark: SparkSession, source: SourceConfig, files: list[SourceFile]) -> SourceBatch:
    sep = str(option(source, "delimiter", "sep", default=","))
    quote = str(option(source, "quote", default='"'))
    escape = str(option(source, "escape", default=quote))
    header = bool(option(source, "header", default=True))
    encoding = str(option(source, "encoding", "charset", default="UTF-8"))
    parse_options = {
        **text_options(source, _HANDLED),
        "sep": sep,
        "quote": quote,
        "escape": escape,
        "mode": "PERMISSIVE",
        "columnNameOfCorruptRecord": CORRUPT,
    }

    numbered = numbered_lines(spark, files, encoding)
    lines = numbered.df
    # line 1 of each file: the header (or, without one, the first record, to count the fields)
    per_file: dict[str, list[str]] = {}
    for f in files:
        first = numbered.first_lines.get(f.uri, "")
        if first.strip():
            per_file[f.uri] = _column_names(source, f.uri, _header_fields(first, sep, quote, escape), header)
        elif numbered.line_counts.get(f.uri, 0) > 1:
            raise SourceSchemaError(
                f"source '{source.name}': file {f.uri} has an empty line 1 but more lines after it; "
                "line 1 must be the header (or set header: false)"
            )
    if header:
        lines = lines.where(F.col(L.SOURCE_LINE) > 1)

    groups: dict[tuple[str, ...], list[str]] = {}
    for uri, header_names in per_file.items():
        groups.setdefault(tuple(header_names), []).append(uri)

    raw = F.col(L.RAW)
    if escape == quote:
        quotes = F.length(raw) - F.length(F.replace(raw, F.lit(quote), F.lit("")))
        unbalanced = quotes % 2 == 1
    else:
        unbalanced = F.lit(False)

    parts: list[DataFrame] = []
    order: list[str] = []
    for names, uris in groups.items():
        ddl = ", ".join(f"{identifier(n)} STRING" for n in names) + f", {CORRUPT} STRING"
        parsed = F.from_csv(raw, ddl, parse_options)
        error = (
            F.when(unbalanced, F.lit(f"malformed_csv: unbalanced quotes ({quote})"))
            .when(
                parsed.getField(CORRUPT).isNotNull(),
                F.lit(f"malformed_csv: the line does not split into the header's {len(names)} fields"),
            )
        )
        part = lines.where(F.col(L.SOURCE_FILE).isin(uris)).select(
            *[parsed.getField(n).alias(n) for n in names],
            L.SOURCE_FILE,
            L.SOURCE_LINE,
            L.RAW,
            L.RAW_BYTES,
            error.alias(L.PARSE_ERROR),
        )
        parts.append(part)
        order.extend(n for n in names if n not in order)

    if not parts:  # only empty files: nothing to parse
        empty = spark.createDataFrame(
            [], f"{L.SOURCE_FILE} string, {L.SOURCE_LINE} long, {L.RAW} string, {L.RAW_BYTES} binary, {L.PARSE_ERROR} string"
        )
        parts = [empty]
    df = reduce(lambda a, b: a.unionByName(b, allowMissingColumns=True), parts)
    df = df.select(*[identifier(n) for n in order], L.SOURCE_FILE, L.SOURCE_LINE, L.RAW, L.RAW_BYTES, L.PARSE_ERROR)
    return SourceBatch(
        df=df,
        columns=order,
        units=[file_unit(f) for f in files],
        columns_per_unit=per_file,
        raw=F.col(L.RAW),
    )
