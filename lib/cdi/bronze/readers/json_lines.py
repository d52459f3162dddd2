"""JSON lines: one object per line, read as lines and parsed with ``from_json``.

The schema is inferred over the batch's files with ``primitivesAsString``: every field is text,
nested objects become structs of strings, arrays arrays of them; a field that is an object in
some lines and a scalar in others becomes a string holding the object's JSON. Strings, booleans
(``"true"``) and integers (every digit, however long) are kept exactly. JSON *numbers with a
fraction or exponent* come out as Jackson prints the parsed double (``12.50`` -> ``"12.5"``,
``1e3`` -> ``"1000.0"``): the same value, but digits beyond a double's 15-17 significant ones
are lost. ``from_json`` has no exact-text mode (Spark's file JSON reader has, but gives no raw
line or line number); sources with such numbers should send them as JSON strings.

A line is ``invalid_json`` when it does not parse or is not an object. Single-quoted "JSON" is
invalid (``allowSingleQuotes`` is off unless the options turn it on).

A file's columns (for the drift check) are the keys present in at least one of its lines.

Options: ``encoding``, ``samplingRatio`` (schema inference) and any ``from_json`` option.

    >>> batch = read_json_lines(spark, source, files)  # doctest: +SKIP
"""

from __future__ import annotations

from collections import defaultdict

from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

from cdi.config import SourceConfig
from cdi.errors import SourceSchemaError

from .. import lineage as L
from ..files import SourceFile
from ..ledger import file_unit
from .batch import SourceBatch, option, text_options
from .lines import numbered_lines

CORRUPT = "_cdi_corrupt"
_HANDLED = ("encoding", "charset", "samplingRatio")


def read_json_lines(spark: SparkSession, source: SourceConfig, files: list[SourceFile]) -> SourceBatch:
    encoding = str(option(source, "encoding", "charset", default="UTF-8"))
    parse_options = {"allowSingleQuotes": "false", **text_options(source, _HANDLED)}
    reader = spark.read.options(**parse_options, primitivesAsString="true")
    if encoding.lower() not in ("utf-8", "utf8"):
        reader = reader.option("encoding", encoding)
    if "samplingRatio" in source.options:
        reader = reader.option("samplingRatio", str(source.options["samplingRatio"]))
    try:
        inferred = reader.json([f.path for f in files]).schema.fields
    except AnalysisException as exc:  # only empty files: nothing to infer from
        if "UNABLE_TO_INFER_SCHEMA" not in str(exc):
            raise
        inferred = []
    fields = [f for f in inferred if f.name != "_corrupt_record"]
    clash = sorted({f.name for f in fields} & L.RESERVED)
    if clash:
        raise SourceSchemaError(
            f"source '{source.name}': the files have field(s) {clash}, names reserved for lineage; rename them"
        )
    names = [f.name for f in fields]
    schema = StructType(fields + [StructField(CORRUPT, StringType())])

    parsed = F.from_json(
        F.col(L.RAW), schema, {**parse_options, "mode": "PERMISSIVE", "columnNameOfCorruptRecord": CORRUPT}
    )
    error = F.when(~F.col(L.RAW).rlike(r"^\s*\{"), F.lit("invalid_json: the line is not a JSON object")).when(
        parsed.getField(CORRUPT).isNotNull(),
        F.lit("invalid_json: the line does not parse as JSON (cut short, single-quoted or otherwise broken)"),
    )
    lines = numbered_lines(spark, files, encoding).df
    df = lines.select(
        *[parsed.getField(n).alias(n) for n in names],
        L.SOURCE_FILE,
        L.SOURCE_LINE,
        L.RAW,
        L.RAW_BYTES,
        error.alias(L.PARSE_ERROR),
    )
    return SourceBatch(
        df=df,
        columns=names,
        units=[file_unit(f) for f in files],
        columns_per_unit=_keys_per_file,
        raw=F.col(L.RAW),
    )


def _keys_per_file(checked: DataFrame) -> dict[str, list[str]]:
    """Top-level keys seen per file (bounded by files x keys)."""
    rows = (
        checked.where(F.col(L.PARSE_ERROR).isNull())
        .select(L.SOURCE_FILE, F.explode(F.json_object_keys(F.col(L.RAW))).alias("key"))
        .distinct()
        .collect()
    )
    out: dict[str, list[str]] = defaultdict(list)
    for r in rows:
        out[r[L.SOURCE_FILE]].append(r["key"])
    return dict(out)
