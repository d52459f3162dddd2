"""Cross-references: a record that carries another record's id is the same customer.

A customer source may declare ``references`` (see :class:`cdi.config.CrossReference`): billing
rows that hold the CRM contact id, a loyalty number printed on POS receipts, a CRM's own
"duplicate of" column. ``silver/records.reference_keys`` holds the record keys they name. Each
one that names a record present in ``silver/records`` is a pair of probability 1 with
``cross_reference`` true, joined to the model's pairs before clustering (so the two always share
a customer unless a steward separates them), written to ``silver/pairs`` and shown as such by
``cdi explain``. A reference that names no present record is counted per source pair and
reported: it usually means the referenced source was not ingested or the ids are written
differently (leading zeros, a prefix).

    >>> pairs, dangling = cross_reference_pairs(lake.read("silver/records"))  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

REFERENCES_COLUMN = "reference_keys"
FLAG_COLUMN = "cross_reference"


def cross_reference_pairs(records: DataFrame) -> tuple[DataFrame, DataFrame]:
    """``(pairs, dangling)`` from ``silver/records``, no action.

    ``pairs``: distinct (record_key_l, record_key_r), l < r as Splink orders a dedupe pair, of
    records where one names the other. ``dangling``: per referencing source and referenced source
    the references that name no present record, with an example (source, referenced_source,
    references, example)."""
    if REFERENCES_COLUMN not in records.columns:
        empty_pairs = records.sparkSession.createDataFrame([], "record_key_l string, record_key_r string")
        empty = records.sparkSession.createDataFrame(
            [], "source string, referenced_source string, references long, example string"
        )
        return empty_pairs, empty
    named = records.where(F.col(REFERENCES_COLUMN).isNotNull()).select(
        "record_key", "source", F.explode(REFERENCES_COLUMN).alias("referenced")
    )
    present = records.select(F.col("record_key").alias("referenced"))
    found = named.join(present, "referenced", "left_semi").where(F.col("record_key") != F.col("referenced"))
    pairs = found.select(
        F.least("record_key", "referenced").alias("record_key_l"),
        F.greatest("record_key", "referenced").alias("record_key_r"),
    ).distinct()
    dangling = (
        named.join(present, "referenced", "left_anti")
        .groupBy("source", F.substring_index("referenced", ":", 1).alias("referenced_source"))
        .agg(
            F.count(F.lit(1)).alias("references"),
            F.min(F.concat_ws(" -> ", "record_key", "referenced")).alias("example"),
        )
    )
    return pairs, dangling


def with_cross_references(scored: DataFrame, pairs: DataFrame, columns: list[str]) -> DataFrame:
    """The model's scored pairs with the cross-referenced ones: a cross-referenced pair has
    probability 1 and ``cross_reference`` true, and keeps the model's per-comparison weights
    where the model scored it too (null where blocking never paired it)."""
    flagged = pairs.select("record_key_l", "record_key_r", F.lit(True).alias("_xref"))
    joined = scored.join(flagged, ["record_key_l", "record_key_r"], "full")
    is_xref = F.coalesce(F.col("_xref"), F.lit(False))
    out = joined.withColumn(FLAG_COLUMN, is_xref).withColumn(
        "match_probability", F.when(is_xref, F.lit(1.0)).otherwise(F.col("match_probability"))
    )
    return out.select(*columns, FLAG_COLUMN)


def dangling_message(rows: list[dict[str, Any]]) -> str:
    """One summary line for the references that name no present record."""
    parts = [
        f"{r['references']:,} from {r['source']} to {r['referenced_source']} (e.g. {r['example']})" for r in rows
    ]
    return (
        "link: cross-references name records that are not in silver/records: " + "; ".join(parts) + ". Check that "
        "the referenced source is ingested and that the column holds its ids exactly as its id columns do"
    )
