"""Text files as numbered lines: the raw line, its decoded text and its 1-based line number.

Spark's text source splits large files into blocks read by different tasks, and has no row
number. Within one task a block's lines come in file order, and ``monotonically_increasing_id``
numbers a task's rows consecutively; so a line's number is its id minus the first id of its
block, plus the number of lines in the file's earlier blocks. The per-block counts are one small
aggregate (one row per block) joined back by broadcast: no Python touches the lines.

Decoding: the text source hands over the line's bytes untouched. UTF-8 lines that are not valid
UTF-8 are repaired with U+FFFD replacement characters (the check in :mod:`cdi.bronze.validation`
quarantines them) and their original bytes are kept in ``_raw_bytes``. Other single-byte or
ASCII-compatible encodings (``options.encoding``, e.g. ``ISO-8859-1``, ``windows-1252``) are
decoded with Spark's ``decode``. Line ends may be ``\\n``, ``\\r\\n`` or ``\\r``. Blank lines are
dropped (they hold no record), keeping the numbers of the other lines.

    >>> numbered_lines(spark, files, "UTF-8").columns  # doctest: +SKIP
    ['_source_file', '_source_line', '_raw', '_raw_bytes']
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from .. import lineage as L
from ..files import SourceFile

_UTF8 = {"utf-8", "utf8"}
REPLACEMENT = "\ufffd"
BOM = "\ufeff"


@dataclass
class NumberedLines:
    df: DataFrame  # _source_file, _source_line, _raw, _raw_bytes (blank lines dropped)
    first_lines: dict[str, str]  # file URI -> its line 1, decoded (a CSV header)
    line_counts: dict[str, int]  # file URI -> number of lines, blank ones included


def numbered_lines(spark: SparkSession, files: list[SourceFile], encoding: str = "UTF-8") -> NumberedLines:
    scan = spark.read.text([f.path for f in files]).select(
        F.col("value"),
        F.col("_metadata.file_path").alias(L.SOURCE_FILE),
        F.col("_metadata.file_block_start").alias("_block"),
        F.monotonically_increasing_id().alias("_pos"),
    )
    raw_bytes = F.col("value").cast("binary")
    if encoding.lower() in _UTF8:
        text = F.make_valid_utf8("value")
        undecodable = ~F.is_valid_utf8("value")
    else:
        text = F.decode(raw_bytes, encoding)
        undecodable = text.contains(REPLACEMENT)
    # one row per file block (a handful per file), with the block's first line
    blocks = (
        scan.groupBy(L.SOURCE_FILE, "_block")
        .agg(F.min("_pos").alias("first"), F.count("*").alias("n"), F.min_by(text, F.col("_pos")).alias("line"))
        .collect()
    )
    by_file: dict[str, list] = defaultdict(list)
    for b in blocks:
        by_file[b[L.SOURCE_FILE]].append(b)
    offsets = []
    first_lines = {}
    line_counts = {}
    for file, parts in by_file.items():
        parts.sort(key=lambda r: r["_block"])
        first_lines[file] = (parts[0]["line"] or "").removeprefix(BOM)
        line = 1
        for b in parts:
            offsets.append((file, b["_block"], line - b["first"]))
            line += b["n"]
        line_counts[file] = line - 1
    offset_df = spark.createDataFrame(offsets, f"{L.SOURCE_FILE} string, _block long, _offset long")
    number = F.col("_pos") + F.col("_offset")
    # a byte-order mark belongs to the file, not to its first line
    text = F.when(number == 1, F.regexp_replace(text, "^" + BOM, "")).otherwise(text)
    df = (
        scan.join(F.broadcast(offset_df), [L.SOURCE_FILE, "_block"])
        .select(L.SOURCE_FILE, number.alias(L.SOURCE_LINE), text.alias(L.RAW), F.when(undecodable, raw_bytes).alias(L.RAW_BYTES))
        .where(~F.col(L.RAW).rlike(r"^\s*$"))
    )
    return NumberedLines(df, first_lines, line_counts)
