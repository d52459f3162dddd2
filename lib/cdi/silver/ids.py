"""Stable customer ids: carry ids across runs while clusters change under them.

Splink's cluster labels are arbitrary per run; ``customer_id`` is what users keep. Given this
run's clusters and the previous ``silver/entity_map``:

* a cluster whose records already had one id keeps it (an unchanged re-run changes nothing and
  records no event);
* a **merge** (a cluster holding the records of several old ids) keeps the *oldest* id, by the
  time it was minted (``id_minted_at``), then by how many records it brings; the others are
  **retired** and point at the survivor;
* a **split** (an old id's records now in several clusters) keeps the id on the largest part
  (ties: the part whose smallest ``record_key`` sorts first) and the other parts get other ids;
* a brand-new cluster gets a **new** id.

New ids are opaque, ``C-`` plus 20 hex digits of SHA-256 over (seed, run id, the cluster's
smallest record_key): deterministic for a given run and seed, never derived from row order.
Everything is joins, aggregates and window functions, so it scales without collecting.

    >>> result = assign_customer_ids(clusters, previous_map, run_id="r2", at=now, seed=42)  # doctest: +SKIP
    >>> lake.write("silver/id_history", result.events)  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, StringType

ID_PREFIX = "C-"


@dataclass(frozen=True)
class IdAssignment:
    """This run's entity map (one row per record) and its id events (``silver/id_history``).

    Both derive from the same per-(cluster, old id) frame; :meth:`persist` caches it (and the
    per-cluster ids) so writing both tables computes the joins once.
    """

    entity_map: DataFrame
    events: DataFrame
    shared: tuple[DataFrame, ...] = ()

    def persist(self) -> IdAssignment:
        for df in self.shared:
            df.persist()
        return self

    def unpersist(self) -> None:
        for df in self.shared:
            df.unpersist()


def mint_id(anchor: Column, run_id: str, seed: int) -> Column:
    """An opaque new id for the cluster whose smallest record_key is ``anchor``."""
    digest = F.sha2(F.concat_ws("|", F.lit(str(seed)), F.lit(run_id), anchor), 256)
    return F.concat(F.lit(ID_PREFIX), F.upper(F.substring(digest, 1, 20)))


def _previous(previous: DataFrame) -> DataFrame:
    cols = set(previous.columns)
    minted_at = F.col("id_minted_at") if "id_minted_at" in cols else F.lit(None).cast("timestamp")
    first_run = F.col("id_first_seen_run") if "id_first_seen_run" in cols else F.col("run_id")
    return previous.select(
        "record_key",
        F.col("customer_id").alias("old_id"),
        minted_at.alias("old_minted_at"),
        first_run.alias("old_first_seen_run"),
    ).where(F.col("old_id").isNotNull())


def assign_customer_ids(
    clusters: DataFrame, previous: DataFrame, run_id: str, at: datetime, seed: int = 0
) -> IdAssignment:
    """Assign stable ids to ``clusters`` (record_key, source, source_record_id, cluster_id).

    ``previous`` is the last ``silver/entity_map`` (may be empty). Records that left the input
    simply drop out; an old id none of whose records remain is retired.
    """
    at_col = F.lit(at).cast("timestamp")
    current = clusters.select(
        "record_key", "source", "source_record_id", F.col("cluster_id").cast("string").alias("cluster_id")
    )
    prev = _previous(previous)

    # How this run's clusters are made of old ids (old_id null: records new to the map). One row
    # per (cluster, old id): everything below works on these few rows, not on records.
    by_cluster = Window.partitionBy("cluster_id")
    pieces = (
        current.join(prev, "record_key", "left")
        .groupBy("cluster_id", "old_id")
        .agg(
            F.count(F.lit(1)).alias("n"),
            F.min("record_key").alias("part_anchor"),
            F.min("old_minted_at").alias("old_minted_at"),
            F.min("old_first_seen_run").alias("old_first_seen_run"),
        )
        .withColumn("anchor", F.min("part_anchor").over(by_cluster))
        .withColumn("has_old", F.max(F.col("old_id").isNotNull()).over(by_cluster))
    )
    by_old = Window.partitionBy("old_id")
    parts = (
        pieces.where(F.col("old_id").isNotNull())
        .withColumn("keeper_rank", F.row_number().over(by_old.orderBy(F.desc("n"), F.asc("part_anchor"))))
        .withColumn("n_parts", F.count(F.lit(1)).over(by_old))
    )

    # An old id competes only for the cluster holding its largest part (its claim); among the
    # claims on a cluster the oldest id wins (pick 1). Non-claims sort after every claim.
    parts = parts.withColumn("claim", F.col("keeper_rank") == 1).withColumn(
        "pick",
        F.row_number().over(
            by_cluster.orderBy(
                F.desc("claim"), F.asc_nulls_first("old_minted_at"), F.desc("n"), F.asc("part_anchor")
            )
        ),
    )
    kept = parts.where(F.col("claim") & (F.col("pick") == 1)).select(
        "cluster_id",
        F.col("old_id").alias("kept_id"),
        F.col("old_minted_at").alias("kept_minted_at"),
        F.col("old_first_seen_run").alias("kept_first_seen_run"),
    )
    clusters_only = pieces.groupBy("cluster_id").agg(F.first("anchor").alias("anchor"), F.max("has_old").alias("has_old"))
    cluster_ids = clusters_only.join(kept, "cluster_id", "left").select(
        "cluster_id",
        F.coalesce("kept_id", mint_id(F.col("anchor"), run_id, seed)).alias("customer_id"),
        F.col("kept_id").isNull().alias("minted"),
        "has_old",
        F.when(F.col("kept_id").isNull(), at_col).otherwise(F.col("kept_minted_at")).alias("id_minted_at"),
        F.when(F.col("kept_id").isNull(), F.lit(run_id)).otherwise(F.col("kept_first_seen_run")).alias("id_first_seen_run"),
    )

    entity_map = current.join(cluster_ids, "cluster_id").select(
        "record_key",
        "source",
        "source_record_id",
        "customer_id",
        F.lit(run_id).alias("run_id"),
        "id_first_seen_run",
        "id_minted_at",
    )

    events = _events(parts, cluster_ids, prev, run_id, at_col)
    return IdAssignment(entity_map=entity_map, events=events, shared=(parts, cluster_ids))


def _events(parts, cluster_ids, prev, run_id: str, at_col: Column) -> DataFrame:
    """new / merge / retired / split events, aggregated from the (cluster, old id) parts."""
    ids = cluster_ids.select("cluster_id", "customer_id")
    placed = parts.join(ids, "cluster_id")
    lost_claim = F.col("claim") & (F.col("pick") > 1)
    none = F.array().cast(ArrayType(StringType(), True))

    # Per old id: merged into another cluster's id (retired), and/or spread over several clusters (split).
    per_old = placed.groupBy("old_id").agg(
        F.max(F.when(lost_claim, F.col("customer_id"))).alias("merged_into"),
        F.array_sort(
            F.collect_set(F.when(~F.col("claim") & (F.col("customer_id") != F.col("old_id")), F.col("customer_id")))
        ).alias("split_into"),
    )
    old_events = per_old.select(
        "old_id",
        F.explode(
            F.filter(
                F.array(
                    F.struct(
                        F.lit("retired").alias("event_type"),
                        F.when(F.col("merged_into").isNotNull(), F.array("merged_into")).alias("related"),
                    ),
                    F.struct(
                        F.lit("split").alias("event_type"),
                        F.when(F.size("split_into") > 0, F.col("split_into")).alias("related"),
                    ),
                ),
                lambda e: e["related"].isNotNull(),
            )
        ).alias("e"),
    ).select(F.col("e.event_type").alias("event_type"), F.col("old_id").alias("customer_id"), F.col("e.related").alias("related"))

    # Per surviving id: the ids it absorbed.
    merges = (
        placed.where(lost_claim)
        .groupBy("customer_id")
        .agg(F.array_sort(F.collect_set("old_id")).alias("related"))
        .select(F.lit("merge").alias("event_type"), "customer_id", "related")
    )
    new = cluster_ids.where(F.col("minted") & ~F.col("has_old")).select(
        F.lit("new").alias("event_type"), "customer_id", none.alias("related")
    )
    gone = (
        prev.select("old_id")
        .distinct()
        .join(parts.select("old_id"), "old_id", "left_anti")
        .select(F.lit("retired").alias("event_type"), F.col("old_id").alias("customer_id"), none.alias("related"))
    )
    return (
        new.unionByName(merges)
        .unionByName(old_events)
        .unionByName(gone)
        .select(
            "event_type",
            "customer_id",
            F.col("related").cast(ArrayType(StringType(), True)).alias("related_ids"),
            F.lit(run_id).alias("run_id"),
            at_col.alias("at"),
        )
    )
