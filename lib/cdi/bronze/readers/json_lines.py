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

A file whose line 1 starts with ``[`` and whose whole text is one JSON array (pretty-printed or
not) is a *JSON array file*: each element is a row, ``_source_line`` is the element's 1-based
position in the array and ``_raw`` the element's JSON; its schema is inferred with Spark's
``multiLine`` JSON reader and merged with the lines' (a field that is an object in one and a
scalar in the other becomes a string). Such a file is read whole by one task. A file starting
with ``[`` that is not one valid array is read as lines, each quarantined as usual. A 0-byte
file, or an empty array, is zero rows.

A file's columns (for the drift check) are the keys present in at least one of its lines.

Options: ``encoding``, ``samplingRatio`` (schema inference) and any ``from_json`` option.

    >>> batch = read_json_lines(spark, source, files)  # doctest: +SKIP
"""

from __future__ import annotations

from collections import defaultdict

from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, DataType, StringType, StructField, StructType

from cdi.config import SourceConfig
from cdi.errors import SourceSchemaError

from .. import lineage as L
from ..files import SourceFile
from ..ledger import file_unit
from .batch import SourceBatch, option, text_options
from .lines import Decoding, decoding, numbered_lines, whole_files

CORRUPT = "_cdi_corrupt"
_HANDLED = ("encoding", "charset", "samplingRatio")


def _merge_type(a: DataType, b: DataType) -> DataType:
    if a == b:
        return a
    if isinstance(a, StructType) and isinstance(b, StructType):
        return StructType(_merge_fields(list(a.fields), list(b.fields)))
    if isinstance(a, ArrayType) and isinstance(b, ArrayType):
        return ArrayType(_merge_type(a.elementType, b.elementType))
    return StringType()  # an object in some rows and a scalar in others: its JSON text


def _merge_fields(a: list[StructField], b: list[StructField]) -> list[StructField]:
    """Fields of both inferred schemas, in first-seen order; differing types merged."""
    out = {f.name: f for f in a}
    for f in b:
        out[f.name] = StructField(f.name, _merge_type(out[f.name].dataType, f.dataType)) if f.name in out else f
    return list(out.values())


def _infer(reader, paths: list[str]) -> list[StructField]:
    if not paths:
        return []
    try:
        return [f for f in reader.json(paths).schema.fields if f.name != "_corrupt_record"]
    except AnalysisException as exc:  # only empty files: nothing to infer from
        if "UNABLE_TO_INFER_SCHEMA" not in str(exc):
            raise
        return []


def _array_files(spark: SparkSession, candidates: list[SourceFile], dec: Decoding) -> tuple[list[str], DataFrame | None]:
    """The candidates that are one JSON array each, and their elements as (file, _i, _raw)."""
    if not candidates:
        return [], None
    whole = whole_files(spark, candidates, dec).select(
        L.SOURCE_FILE, F.from_json(F.col("_text"), "array<string>").alias("_elements")
    )
    ok = [r[0] for r in whole.where(F.col("_elements").isNotNull()).select(L.SOURCE_FILE).collect()]  # one row per file
    elements = whole.where(F.col(L.SOURCE_FILE).isin(ok)).select(L.SOURCE_FILE, F.posexplode("_elements").alias("_i", L.RAW))
    return ok, elements if ok else None


def read_json_lines(spark: SparkSession, source: SourceConfig, files: list[SourceFile]) -> SourceBatch:
    dec = decoding(str(option(source, "encoding", "charset", default="UTF-8")), source.name)
    parse_options = {"allowSingleQuotes": "false", **text_options(source, _HANDLED)}

    def reader(multi_line: bool):
        out = spark.read.options(**parse_options, primitivesAsString="true", multiLine=str(multi_line).lower())
        if dec.kind != "utf-8":
            out = out.option("encoding", dec.charset if dec.kind != "table" else dec.name)
        if "samplingRatio" in source.options:
            out = out.option("samplingRatio", str(source.options["samplingRatio"]))
        return out

    numbered = numbered_lines(spark, files, dec)
    candidates = [f for f in files if numbered.first_lines.get(f.uri, "").lstrip().startswith("[")]
    array_uris, elements = _array_files(spark, candidates, dec)
    array_files = [f for f in files if f.uri in array_uris]
    line_files = [f for f in files if f.uri not in array_uris]
    fields = _merge_fields(
        _infer(reader(False), [f.path for f in line_files]), _infer(reader(True), [f.path for f in array_files])
    )
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
    lines = numbered.df.where(~F.col(L.SOURCE_FILE).isin(array_uris))
    if elements is not None:
        elements = elements.select(
            L.SOURCE_FILE,
            (F.col("_i") + 1).cast("long").alias(L.SOURCE_LINE),
            L.RAW,
            F.lit(None).cast("binary").alias(L.RAW_BYTES),
        )
        lines = lines.unionByName(elements)
    df = lines.select(
        *[parsed.getField(n).alias(n) for n in names],
        L.SOURCE_FILE,
        L.SOURCE_LINE,
        F.col(L.SOURCE_LINE).alias(L.SOURCE_LINE_END),
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
