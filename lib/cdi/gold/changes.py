"""The change feed ``gold/changes``: one row per customer whose golden record changed in a run.

Columns: ``customer_id``, ``change_type``, ``changed_attributes`` (array of {attribute,
old_value, new_value}, values as strings; ``source_record_keys`` appears as a pseudo-attribute
when the records behind the customer changed), ``retired_ids`` (ids absorbed by a merge),
``related_ids`` (the other customers involved: absorbed ids for a merge, the customer(s) a split
came from or went to, the customer(s) that took a retired id's records), ``run_id``,
``changed_at`` (the run time, equal to the new version's ``valid_from``).

``change_type`` follows the records' lineage between the old and the new current versions:

- ``retired``: the id has no current version any more;
- ``merged``: the customer took records of ids retired in this run (also those silver's
  ``silver/id_history`` lists as merged into it);
- ``split``: the customer is new or changed and records moved between it and a customer that
  still exists;
- ``new``: a new id whose records belonged to nobody;
- ``updated``: anything else that changed (values, or records added or removed).

Unchanged customers get no row, so a re-run with no new input writes nothing.

    >>> feed = build_changes(diff, id_history, run_id, run_at)  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from datetime import datetime

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from cdi.lake import Lake
from cdi.schema import CHANGES as CHANGES_TABLE
from cdi.schema import CHANGES_SCHEMA
from cdi.sql import literal

from .history import CHANGED, NEW, RETIRED, GoldenDiff, utc
from .survivorship import GOLDEN_ATTRIBUTES

log = logging.getLogger(__name__)

CHANGE_TYPES = ("new", "updated", "merged", "split", "retired")


def _value(side: str, attr: str) -> Column:
    if attr == "source_record_keys":
        return F.array_join(F.col(f"{side}.{attr}"), ",")
    return F.col(f"{side}.{attr}").cast("string")


def changed_attributes() -> Column:
    """Null-safe differences between ``old`` and ``new`` (a missing side counts as all nulls)."""
    entries = []
    for attr in [*GOLDEN_ATTRIBUTES, "source_record_keys"]:
        old, new = _value("old", attr), _value("new", attr)
        entries.append(
            F.struct(
                F.lit(attr).alias("attribute"),
                old.alias("old_value"),
                new.alias("new_value"),
                old.eqNullSafe(new).alias("same"),
            )
        )
    differing = F.filter(F.array(*entries), lambda e: ~e["same"])
    return F.transform(
        differing,
        lambda e: F.struct(
            e["attribute"].alias("attribute"), e["old_value"].alias("old_value"), e["new_value"].alias("new_value")
        ),
    )


def _sorted_set(col: Column) -> Column:
    return F.array_sort(F.array_distinct(F.coalesce(col, F.array().cast("array<string>"))))


def build_changes(diff: GoldenDiff, id_history: DataFrame | None, run_id: str, run_at: datetime) -> DataFrame:
    """The change-feed rows of one run (empty when nothing changed)."""
    rows = diff.rows
    old_keys = rows.where(F.col("old").isNotNull()).select(
        F.col("customer_id").alias("old_id"),
        F.explode("old.source_record_keys").alias("record_key"),
        (F.col("status") == RETIRED).alias("old_retired"),
    )
    new_keys = rows.where(F.col("new").isNotNull()).select(
        F.col("customer_id").alias("new_id"), F.explode("new.source_record_keys").alias("record_key")
    )
    moves = old_keys.join(new_keys, "record_key").where(F.col("old_id") != F.col("new_id"))
    moves = moves.select("old_id", "new_id", "old_retired").distinct()
    gained = moves.groupBy(F.col("new_id").alias("customer_id")).agg(
        F.collect_set(F.when(F.col("old_retired"), F.col("old_id"))).alias("absorbed"),
        F.collect_set(F.when(~F.col("old_retired"), F.col("old_id"))).alias("split_from"),
    )
    lost = moves.groupBy(F.col("old_id").alias("customer_id")).agg(F.collect_set("new_id").alias("lost_to"))

    feed = rows.join(gained, "customer_id", "left").join(lost, "customer_id", "left")
    if id_history is not None:
        feed = feed.join(_merged_per_history(id_history, rows), "customer_id", "left")
    else:
        feed = feed.withColumn("history_absorbed", F.lit(None).cast("array<string>"))

    absorbed = _sorted_set(F.array_union(_sorted_set(F.col("absorbed")), _sorted_set(F.col("history_absorbed"))))
    split_from, lost_to = _sorted_set(F.col("split_from")), _sorted_set(F.col("lost_to"))
    is_split = (F.size(split_from) > 0) | ((F.col("status") == CHANGED) & (F.size(lost_to) > 0))
    change_type = (
        F.when(F.col("status") == RETIRED, F.lit("retired"))
        .when(F.size(absorbed) > 0, F.lit("merged"))
        .when(is_split, F.lit("split"))
        .when(F.col("status") == NEW, F.lit("new"))
        .otherwise(F.lit("updated"))
    )
    related = (
        F.when(F.col("status") == RETIRED, lost_to)
        .when(F.size(absorbed) > 0, absorbed)
        .otherwise(_sorted_set(F.array_union(split_from, lost_to)))
    )
    return feed.select(
        "customer_id",
        change_type.alias("change_type"),
        changed_attributes().alias("changed_attributes"),
        F.when(F.col("status") == RETIRED, F.array().cast("array<string>")).otherwise(absorbed).alias("retired_ids"),
        related.alias("related_ids"),
        F.lit(run_id).alias("run_id"),
        F.lit(utc(run_at)).cast("timestamp").alias("changed_at"),
    )


def _merged_per_history(id_history: DataFrame, rows: DataFrame) -> DataFrame:
    """Ids silver recorded as merged into a customer, kept only if they are retired in this run."""
    retired = rows.where(F.col("status") == RETIRED).select(F.col("customer_id").alias("rid"))
    events = id_history.where(F.col("event_type") == "merge").select(
        "customer_id", F.explode(F.coalesce(F.col("related_ids"), F.array().cast("array<string>"))).alias("rid")
    )
    return (
        events.join(retired, "rid")
        .where(F.col("rid") != F.col("customer_id"))
        .groupBy("customer_id")
        .agg(F.collect_set("rid").alias("history_absorbed"))
    )


def write_changes(lake: Lake, changes: DataFrame, run_id: str) -> None:
    """Write one run's changes, replacing that run's earlier rows (a retried run does not duplicate)."""
    lake.write(
        CHANGES_TABLE,
        changes.select(*CHANGES_SCHEMA.fieldNames()),
        mode="overwrite",
        replace_where=f"run_id = {literal(run_id)}",
        operation="CHANGE FEED",
    )


def count_by_type(changes: DataFrame) -> dict[str, int]:
    counts = dict.fromkeys(CHANGE_TYPES, 0)
    for row in changes.groupBy("change_type").count().collect():  # at most five rows
        counts[row["change_type"]] = row["count"]
    return counts
