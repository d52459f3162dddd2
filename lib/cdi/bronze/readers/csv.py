"""Delimited text files, read as lines, joined into records and parsed with ``from_csv``.

Reading lines first gives each record its raw text and line numbers in the same pass as its
values. The header is each file's line 1 (files of one source may differ: drift), parsed on the
driver (one line per file). Values stay strings as written; an empty field is null (Spark's
``nullValue`` default). Quoting follows RFC 4180 unless the options say otherwise: ``quote``
``"``, ``escape`` the quote itself (a doubled quote inside a quoted field).

Records spanning lines (a quoted value holding a line break) are joined by quote balance: a line
with an odd number of (unescaped) quotes opens a record that the next such line closes. Only
files that have such lines (counted per file in the line-numbering pass) go through the join,
one window per file over its line numbers; the others pass straight through. This keeps, unlike
Spark's ``multiLine`` CSV reader, every record's raw text (its lines joined with ``\n``, the
line break a value holds) and its first and last line (``_source_line``, ``_source_line_end``),
and files without quoted line breaks stay splittable across tasks.

A record is ``malformed_csv`` when it does not split into the header's number of fields (Spark's
PERMISSIVE mode fills the corrupt record column), or when its quote is never closed: a quote
still open at the end of the file, or after ``max_record_lines`` lines (default 1000), is
reported on the line that opened it and the lines after it are read as records of their own,
so one stray quote never swallows the rest of a file. A joined record that does not split into
the header's fields is read again line by line (:func:`split_unparsed`): two stray quotes pair
up like a quoted line break, and only the lines holding them are rejected.

Options: ``delimiter`` (or ``sep``), ``quote``, ``escape``, ``header`` (default true; without a
header the columns are ``_c0``, ``_c1``, ...), ``encoding`` (see :mod:`.lines`),
``max_record_lines``; others go to ``from_csv``.

    >>> batch = read_csv(spark, source, files)  # doctest: +SKIP
"""

from __future__ import annotations

import csv
from functools import reduce

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from cdi.config import SourceConfig
from cdi.errors import SourceSchemaError
from cdi.sql import identifier

from .. import lineage as L
from ..files import SourceFile
from ..ledger import file_unit
from .batch import SourceBatch, option, text_options
from .lines import decoding, numbered_lines

CORRUPT = "_cdi_corrupt"
_HANDLED = ("delimiter", "sep", "quote", "escape", "header", "encoding", "charset", "max_record_lines")
_OPEN = "_cdi_open"  # the record's quote is never closed
_PARTS = "_cdi_parts"  # a joined record's lines, to read them one by one when the record does not parse
_PARTS_TYPE = f"array<struct<{L.SOURCE_LINE}: bigint, {L.RAW}: string, {L.RAW_BYTES}: binary>>"
MAX_RECORD_LINES = 1000


def _java_literal(text: str) -> str:
    return "\\Q" + text.replace("\\E", "\\E\\\\E\\Q") + "\\E"


def quote_count(text: Column, quote: str, escape: str) -> Column:
    """Number of quote characters in ``text`` that are not escaped (a doubled quote counts twice)."""
    if escape == quote:
        return F.length(text) - F.length(F.replace(text, F.lit(quote), F.lit("")))
    return F.regexp_count(text, F.lit(f"(?<!{_java_literal(escape)}){_java_literal(quote)}"))


def join_records(lines: DataFrame, odd: Column, files: list[str], max_lines: int) -> DataFrame:
    """Physical lines -> records: ``_source_line`` (first), ``_source_line_end``, ``_raw`` (lines joined
    with ``\\n``), ``_raw_bytes``, ``_cdi_open`` (a quote opened here is never closed) and, for a
    record of several lines, ``_cdi_parts`` (its lines, see :func:`split_unparsed`).

    ``odd`` is true for a line with an odd number of quotes. Only lines of ``files`` are joined
    (one window per file over its line numbers); lines of the others are records of their own.
    Blank lines are kept inside a record, dropped between records.
    """
    single = lines.where(~F.col(L.SOURCE_FILE).isin(files)).select(
        L.SOURCE_FILE,
        L.SOURCE_LINE,
        F.col(L.SOURCE_LINE).alias(L.SOURCE_LINE_END),
        L.RAW,
        L.RAW_BYTES,
        F.lit(False).alias(_OPEN),
        F.lit(None).cast(_PARTS_TYPE).alias(_PARTS),
    )
    if not files:
        return single.where(~F.col(L.RAW).rlike(r"^\s*$"))
    flagged = lines.where(F.col(L.SOURCE_FILE).isin(files)).withColumn("_odd", odd.cast("int"))
    in_file = Window.partitionBy(L.SOURCE_FILE)
    ordered = in_file.orderBy(L.SOURCE_LINE)
    before = F.coalesce(F.sum("_odd").over(ordered.rowsBetween(Window.unboundedPreceding, -1)), F.lit(0))
    starts = flagged.withColumn("_starts", before % 2 == 0).withColumn(
        "_start", F.max(F.when(F.col("_starts"), F.col(L.SOURCE_LINE))).over(ordered.rowsBetween(Window.unboundedPreceding, 0))
    )
    record = Window.partitionBy(L.SOURCE_FILE, "_start")  # a sub-partitioning of the file: no new shuffle
    sized = starts.select(
        "*",
        F.count("*").over(record).alias("_n"),
        (F.sum("_odd").over(in_file) % 2 == 1).alias("_file_open"),
        F.max("_start").over(in_file).alias("_last_start"),
    )
    # a quote still open at the end of the file, or spanning too many lines: each line on its own
    broken = (F.col("_file_open") & (F.col("_start") == F.col("_last_start"))) | (F.col("_n") > max_lines)
    alone = sized.where(broken).select(
        L.SOURCE_FILE,
        L.SOURCE_LINE,
        F.col(L.SOURCE_LINE).alias(L.SOURCE_LINE_END),
        L.RAW,
        L.RAW_BYTES,
        (F.col("_odd") == 1).alias(_OPEN),
        F.lit(None).cast(_PARTS_TYPE).alias(_PARTS),
    )
    newline = F.lit(bytearray(b"\n"))
    parts = F.sort_array(F.collect_list(F.struct(L.SOURCE_LINE, L.RAW, L.RAW_BYTES)))
    joined = (
        sized.where(~broken)
        .groupBy(L.SOURCE_FILE, "_start")
        .agg(parts.alias("_parts"), F.max(L.SOURCE_LINE).alias(L.SOURCE_LINE_END))
        .select(
            L.SOURCE_FILE,
            F.col("_start").alias(L.SOURCE_LINE),
            L.SOURCE_LINE_END,
            F.array_join(F.transform("_parts", lambda p: p[L.RAW]), "\n").alias(L.RAW),
            F.when(
                F.exists("_parts", lambda p: p[L.RAW_BYTES].isNotNull()),
                F.aggregate(
                    F.transform(
                        "_parts",
                        lambda p, i: F.concat(
                            F.when(i > 0, newline).otherwise(F.lit(bytearray())),
                            F.coalesce(p[L.RAW_BYTES], F.encode(p[L.RAW], "UTF-8")),
                        ),
                    ),
                    F.lit(bytearray()),
                    lambda acc, b: F.concat(acc, b),
                ),
            ).alias(L.RAW_BYTES),
            F.lit(False).alias(_OPEN),
            F.col("_parts").alias(_PARTS),
        )
    )
    records = single.unionByName(alone).unionByName(joined)
    return records.where((F.col(L.SOURCE_LINE_END) > F.col(L.SOURCE_LINE)) | ~F.col(L.RAW).rlike(r"^\s*$"))


def split_unparsed(records: DataFrame, parsed: Column, odd) -> DataFrame:
    """Records of several lines whose joined text does not parse go back to their lines, each a
    record of its own (a line with an odd number of quotes then says ``unbalanced quotes``).

    Two stray quotes in unquoted fields (``"1985-07-07,M,...``) pair up like a quoted line break
    and would swallow every good line between them; read one by one, only the broken lines are
    quarantined.
    """
    several = F.col(L.SOURCE_LINE_END) > F.col(L.SOURCE_LINE)
    failed = several & parsed.getField(CORRUPT).isNotNull()
    kept = records.where(~failed)
    lines = (
        records.where(failed)
        .select(L.SOURCE_FILE, F.explode(_PARTS).alias("_line"))
        .select(
            L.SOURCE_FILE,
            F.col("_line").getField(L.SOURCE_LINE).alias(L.SOURCE_LINE),
            F.col("_line").getField(L.SOURCE_LINE).alias(L.SOURCE_LINE_END),
            F.col("_line").getField(L.RAW).alias(L.RAW),
            F.col("_line").getField(L.RAW_BYTES).alias(L.RAW_BYTES),
            odd(F.col("_line").getField(L.RAW)).alias(_OPEN),
            F.lit(None).cast(_PARTS_TYPE).alias(_PARTS),
        )
        .where(~F.col(L.RAW).rlike(r"^\s*$"))
    )
    return kept.unionByName(lines)


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
    encoding = decoding(str(option(source, "encoding", "charset", default="UTF-8")), source.name)
    max_lines = int(option(source, "max_record_lines", default=MAX_RECORD_LINES))
    parse_options = {
        **text_options(source, _HANDLED),
        "sep": sep,
        "quote": quote,
        "escape": escape,
        "mode": "PERMISSIVE",
        "columnNameOfCorruptRecord": CORRUPT,
    }

    odd = lambda text: quote_count(text, quote, escape) % 2 == 1  # noqa: E731
    numbered = numbered_lines(spark, files, encoding, keep_blank=True, flag=odd)
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
    spanning = sorted(uri for uri, n in numbered.flagged.items() if n)
    records = join_records(lines, odd(F.col(L.RAW)), spanning, max_lines)

    groups: dict[tuple[str, ...], list[str]] = {}
    for uri, header_names in per_file.items():
        groups.setdefault(tuple(header_names), []).append(uri)

    raw = F.col(L.RAW)
    unbalanced = F.col(_OPEN)
    parts: list[DataFrame] = []
    order: list[str] = []
    for names, uris in groups.items():
        ddl = ", ".join(f"{identifier(n)} STRING" for n in names) + f", {CORRUPT} STRING"
        parsed = F.from_csv(raw, ddl, parse_options)
        in_files = split_unparsed(records.where(F.col(L.SOURCE_FILE).isin(uris)), parsed, odd)
        error = (
            F.when(unbalanced, F.lit(f"malformed_csv: unbalanced quotes ({quote})"))
            .when(
                parsed.getField(CORRUPT).isNotNull(),
                F.lit(f"malformed_csv: the line does not split into the header's {len(names)} fields"),
            )
        )
        part = in_files.select(
            *[parsed.getField(n).alias(n) for n in names],
            L.SOURCE_FILE,
            L.SOURCE_LINE,
            L.SOURCE_LINE_END,
            L.RAW,
            L.RAW_BYTES,
            error.alias(L.PARSE_ERROR),
        )
        parts.append(part)
        order.extend(n for n in names if n not in order)

    if not parts:  # only empty files: nothing to parse
        empty = spark.createDataFrame(
            [],
            f"{L.SOURCE_FILE} string, {L.SOURCE_LINE} long, {L.SOURCE_LINE_END} long, {L.RAW} string, "
            f"{L.RAW_BYTES} binary, {L.PARSE_ERROR} string",
        )
        parts = [empty]
    df = reduce(lambda a, b: a.unionByName(b, allowMissingColumns=True), parts)
    df = df.select(
        *[identifier(n) for n in order], L.SOURCE_FILE, L.SOURCE_LINE, L.SOURCE_LINE_END, L.RAW, L.RAW_BYTES, L.PARSE_ERROR
    )
    return SourceBatch(
        df=df,
        columns=order,
        units=[file_unit(f) for f in files],
        columns_per_unit=per_file,
        raw=F.col(L.RAW),
    )
