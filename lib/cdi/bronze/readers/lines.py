"""Text files as numbered lines: the raw line, its decoded text and its 1-based line number.

Spark's text source splits large files into blocks read by different tasks, and has no row
number. Within one task a block's lines come in file order, and ``monotonically_increasing_id``
numbers a task's rows consecutively; so a line's number is its id minus the first id of its
block, plus the number of lines in the file's earlier blocks. The per-block counts are one small
aggregate (one row per block) joined back by broadcast: no Python touches the lines.

Decoding (:func:`decoding`): the text source hands over the line's bytes untouched.

* UTF-8 lines that are not valid UTF-8 are repaired with U+FFFD replacement characters (the
  check in :mod:`cdi.bronze.validation` quarantines them) and their original bytes are kept in
  ``_raw_bytes``.
* ``US-ASCII`` and ``ISO-8859-1`` are decoded with Spark's ``decode``.
* Every other single-byte encoding Python knows (``windows-1250``/``1252``, ``ISO-8859-2``..``16``,
  ``KOI8-R``, ...) is decoded as ISO-8859-1 and mapped byte for byte to its characters with
  ``translate`` (a 256-character table from Python's codec): Spark's ``decode`` accepts only the
  charsets above, and the legacy switch that widens it is session-wide. Bytes the encoding leaves
  undefined become U+FFFD, so the line is quarantined as ``invalid_encoding``.
* UTF-16 and UTF-32 cannot be split into lines as bytes (a line break is two or four bytes), so
  such files are read whole (``wholetext``: one file per task, at most 2 GB) and split after
  decoding; a byte-order mark picks the byte order.
* Multi-byte encodings other than these (Shift_JIS, GB18030, ...) fail the source, naming the
  encoding: convert the files to UTF-8.

Line ends may be ``\\n``, ``\\r\\n`` or ``\\r``. A byte-order mark is removed from line 1. Blank
lines are dropped (they hold no record), keeping the numbers of the other lines, unless the
caller keeps them (a quoted CSV value may hold an empty line).

    >>> numbered_lines(spark, files, "UTF-8").df.columns  # doctest: +SKIP
    ['_source_file', '_source_line', '_raw', '_raw_bytes']
"""

from __future__ import annotations

import codecs
import sys
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from cdi.errors import SourceReadError

from .. import lineage as L
from ..files import SourceFile

REPLACEMENT = "\ufffd"
BOM = "\ufeff"
LINE_BREAK = r"\r\n|\r|\n"
_NATIVE = {"utf-8": "UTF-8", "ascii": "US-ASCII", "iso8859-1": "ISO-8859-1"}
_WHOLE = {"utf-16": "UTF-16", "utf-16-le": "UTF-16LE", "utf-16-be": "UTF-16BE", "utf-32": "UTF-32"}
_LATIN1 = "".join(chr(i) for i in range(256))


@dataclass(frozen=True)
class Decoding:
    """How the bytes of one declared encoding become text in Spark."""

    name: str  # as declared
    kind: str  # "utf-8" | "native" (Spark's decode) | "table" (byte -> char table) | "whole" (UTF-16/32)
    charset: str  # Spark's name of the charset decoded with
    table: str = ""  # kind "table": the 256 characters of bytes 0..255

    def text(self, raw_bytes: Column) -> Column:
        """The decoded text of a binary column."""
        if self.kind == "utf-8":
            return F.make_valid_utf8(raw_bytes.cast("string"))
        if self.kind == "table":
            return F.translate(F.decode(raw_bytes, "ISO-8859-1"), _LATIN1, self.table)
        return F.decode(raw_bytes, self.charset)


def decoding(encoding: str, source: str = "?") -> Decoding:
    """The :class:`Decoding` of an encoding name (Java or Python spelling); unsupported -> SourceReadError."""
    try:
        info = codecs.lookup(encoding)
    except LookupError:
        raise SourceReadError(
            f"source '{source}': unknown encoding {encoding!r} in options.encoding; use a name such as "
            "UTF-8, windows-1252, ISO-8859-2 or UTF-16"
        ) from None
    if info.name in ("utf-8", "utf-8-sig"):
        return Decoding(encoding, "utf-8", "UTF-8")
    if info.name in _NATIVE:
        return Decoding(encoding, "native", _NATIVE[info.name])
    if info.name in _WHOLE:
        return Decoding(encoding, "whole", _WHOLE[info.name])
    codec = getattr(info.decode, "__self__", None)
    table = getattr(sys.modules.get(type(codec).__module__), "decoding_table", None) if codec is not None else None
    if isinstance(table, str) and len(table) == 256:
        return Decoding(encoding, "table", "ISO-8859-1", table.replace("\ufffe", REPLACEMENT))
    raise SourceReadError(
        f"source '{source}': encoding {encoding!r} is not supported for text files (supported: UTF-8, UTF-16, "
        "UTF-32 and single-byte encodings such as windows-1250, ISO-8859-2, KOI8-R); convert the files to UTF-8, "
        f"e.g. `iconv -f {encoding} -t UTF-8`"
    )


@dataclass
class NumberedLines:
    df: DataFrame  # _source_file, _source_line, _raw, _raw_bytes
    first_lines: dict[str, str]  # file URI -> its line 1, decoded (a CSV header)
    line_counts: dict[str, int]  # file URI -> number of lines, blank ones included
    flagged: dict[str, int] = field(default_factory=dict)  # file URI -> lines where ``flag`` held


Flag = Callable[[Column], Column]


def numbered_lines(
    spark: SparkSession,
    files: list[SourceFile],
    encoding: str | Decoding = "UTF-8",
    *,
    keep_blank: bool = False,
    flag: Flag | None = None,
) -> NumberedLines:
    """The files' lines; ``flag`` (a condition on a line's text) is counted per file on the way."""
    dec = encoding if isinstance(encoding, Decoding) else decoding(encoding)
    if dec.kind == "whole":
        return _whole_file_lines(spark, files, dec, keep_blank, flag)
    scan = spark.read.text([f.path for f in files]).select(
        F.col("value"),
        F.col("_metadata.file_path").alias(L.SOURCE_FILE),
        F.col("_metadata.file_block_start").alias("_block"),
        F.monotonically_increasing_id().alias("_pos"),
    )
    raw_bytes = F.col("value").cast("binary")
    text = dec.text(raw_bytes)
    undecodable = ~F.is_valid_utf8("value") if dec.kind == "utf-8" else text.contains(REPLACEMENT)
    flagged = flag(text) if flag is not None else F.lit(False)
    # one row per file block (a handful per file), with the block's first line
    blocks = (
        scan.groupBy(L.SOURCE_FILE, "_block")
        .agg(
            F.min("_pos").alias("first"),
            F.count("*").alias("n"),
            F.min_by(text, F.col("_pos")).alias("line"),
            F.sum(flagged.cast("int")).alias("flagged"),
        )
        .collect()
    )
    by_file: dict[str, list] = defaultdict(list)
    for b in blocks:
        by_file[b[L.SOURCE_FILE]].append(b)
    offsets = []
    first_lines = {}
    line_counts = {}
    flags: dict[str, int] = {}
    for file, parts in by_file.items():
        parts.sort(key=lambda r: r["_block"])
        first_lines[file] = (parts[0]["line"] or "").removeprefix(BOM)
        line = 1
        for b in parts:
            offsets.append((file, b["_block"], line - b["first"]))
            line += b["n"]
        line_counts[file] = line - 1
        flags[file] = sum(b["flagged"] or 0 for b in parts)
    offset_df = spark.createDataFrame(offsets, f"{L.SOURCE_FILE} string, _block long, _offset long")
    number = F.col("_pos") + F.col("_offset")
    # a byte-order mark belongs to the file, not to its first line
    text = F.when(number == 1, F.regexp_replace(text, "^" + BOM, "")).otherwise(text)
    df = scan.join(F.broadcast(offset_df), [L.SOURCE_FILE, "_block"]).select(
        L.SOURCE_FILE, number.alias(L.SOURCE_LINE), text.alias(L.RAW), F.when(undecodable, raw_bytes).alias(L.RAW_BYTES)
    )
    if not keep_blank:
        df = df.where(~F.col(L.RAW).rlike(r"^\s*$"))
    return NumberedLines(df, first_lines, line_counts, flags)


def whole_files(spark: SparkSession, files: list[SourceFile], dec: Decoding) -> DataFrame:
    """One row per file: ``_source_file`` and its decoded text ``_text`` without a byte-order mark."""
    scan = spark.read.text([f.path for f in files], wholetext=True)
    text = dec.text(F.col("value").cast("binary"))
    return scan.select(
        F.col("_metadata.file_path").alias(L.SOURCE_FILE), F.regexp_replace(text, "^" + BOM, "").alias("_text")
    )


def _whole_file_lines(
    spark: SparkSession, files: list[SourceFile], dec: Decoding, keep_blank: bool, flag: Flag | None
) -> NumberedLines:
    """Lines of files decoded whole (UTF-16/32): split after decoding, numbered by position."""
    whole = whole_files(spark, files, dec)
    split = F.split(F.regexp_replace(F.col("_text"), "(" + LINE_BREAK + ")$", ""), LINE_BREAK)
    lines = whole.select(L.SOURCE_FILE, F.posexplode(split).alias("_i", L.RAW)).where(
        ~((F.col("_i") == 0) & (F.col(L.RAW) == ""))  # a 0-byte file has no line
    )
    flagged = flag(F.col(L.RAW)) if flag is not None else F.lit(False)
    stats = (
        lines.groupBy(L.SOURCE_FILE)
        .agg(
            F.count("*").alias("n"),
            F.min_by(F.col(L.RAW), F.col("_i")).alias("line"),
            F.sum(flagged.cast("int")).alias("flagged"),
        )
        .collect()
    )  # one row per file
    df = lines.select(
        L.SOURCE_FILE, (F.col("_i") + 1).cast("long").alias(L.SOURCE_LINE), L.RAW, F.lit(None).cast("binary").alias(L.RAW_BYTES)
    )
    if not keep_blank:
        df = df.where(~F.col(L.RAW).rlike(r"^\s*$"))
    return NumberedLines(
        df,
        {r[L.SOURCE_FILE]: r["line"] or "" for r in stats},
        {r[L.SOURCE_FILE]: r["n"] for r in stats},
        {r[L.SOURCE_FILE]: r["flagged"] or 0 for r in stats},
    )
