"""Steward decisions applied to the link stage's clusters, in every run, so a relink cannot undo them.

``steward/decisions`` is append-only; per record pair the newest decision that no ``revoke``
undid is in force: ``link`` (one customer) or ``separate`` (two). Splink's clusters are the
connected components of the pairs scored at or above the cluster threshold. The clusters that
hold a decided record are rebuilt here from those same edges, by union-find with two rules:

1. forced links are joined first (newest first), except one that would join two records a
   separation keeps apart (reported as a conflict: the separation stands);
2. then scored edges, most probable first, except one that would join two components a
   separation keeps apart (this is what splits a wrong merge, even one made through a chain).

Without separations the rebuilt components are exactly Splink's (the same edges, joined
without condition), so only what the stewards decided changes. Everything on the driver is of
human scale: the decisions, and the records and edges of the clusters they touch.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from cdi import schema

log = logging.getLogger(__name__)

STEWARD_CLUSTER_PREFIX = "steward:"


@dataclass
class StewardReport:
    """What the decisions did to this run's clusters."""

    links: int = 0  # link decisions in force on records present
    separations: int = 0
    clusters_rebuilt: int = 0
    records_moved: int = 0
    conflicts: list[str] = field(default_factory=list)  # forced links a separation overruled

    def as_dict(self) -> dict[str, Any]:
        return {"links": self.links, "separations": self.separations, "clusters_rebuilt": self.clusters_rebuilt,
                "records_moved": self.records_moved, "conflicts": list(self.conflicts)}  # fmt: skip


def decisions_in_force(decisions: DataFrame) -> DataFrame:
    """Per record pair the newest link/separate decision that no revoke undid:
    (record_key_l, record_key_r, action, decision_id, decided_at)."""
    revoked = decisions.where(F.col("action") == "revoke").select(F.col("revokes").alias("decision_id")).distinct()
    pairwise = decisions.where(F.col("action").isin("link", "separate")).join(revoked, "decision_id", "left_anti")
    newest = Window.partitionBy("record_key_l", "record_key_r").orderBy(F.desc("decided_at"), F.desc("decision_id"))
    return (
        pairwise.withColumn("_rank", F.row_number().over(newest))
        .where(F.col("_rank") == 1)
        .select("record_key_l", "record_key_r", "action", "decision_id", "decided_at")
    )


class _Components:
    """Union-find over record keys that refuses a join two separated records would suffer."""

    def __init__(self, keys: list[str], separations: set[tuple[str, str]]):
        self.parent = {k: k for k in keys}
        self.apart: dict[str, set[str]] = {k: set() for k in keys}  # root -> keys separated from its members
        members: dict[str, set[str]] = {k: {k} for k in keys}
        self.members = members
        for a, b in separations:
            if a in self.parent and b in self.parent:
                self.apart[a].add(b)
                self.apart[b].add(a)

    def find(self, k: str) -> str:
        while self.parent[k] != k:
            self.parent[k] = self.parent[self.parent[k]]
            k = self.parent[k]
        return k

    def join(self, a: str, b: str) -> bool | None:
        """Join the components of a and b: True if joined, None if already one, False if refused."""
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return None
        if self.apart[ra] & self.members[rb]:
            return False
        if len(self.members[ra]) < len(self.members[rb]):
            ra, rb = rb, ra
        self.parent[rb] = ra
        self.members[ra] |= self.members.pop(rb)
        self.apart[ra] |= self.apart.pop(rb)
        return True

    def components(self) -> dict[str, str]:
        """record key -> the smallest key of its component."""
        smallest = {root: min(keys) for root, keys in self.members.items()}
        return {k: smallest[self.find(k)] for k in self.parent}


def apply_decisions(
    clusters: DataFrame, pairs: DataFrame, decisions: DataFrame | None, cluster_threshold: float
) -> tuple[DataFrame, StewardReport]:
    """``clusters`` (record_key, source, source_record_id, cluster_id) with the decisions in force;
    ``pairs`` are this run's scored pairs (record_key_l, record_key_r, match_probability)."""
    report = StewardReport()
    if decisions is None:
        return clusters, report
    present = clusters.select("record_key")
    in_force = (
        decisions_in_force(decisions)
        .join(present.withColumnRenamed("record_key", "record_key_l"), "record_key_l", "left_semi")
        .join(present.withColumnRenamed("record_key", "record_key_r"), "record_key_r", "left_semi")
        .collect()  # steward decisions: of human scale
    )
    if not in_force:
        return clusters, report
    links = [
        r for r in sorted(in_force, key=lambda r: (r["decided_at"], r["decision_id"]), reverse=True) if r["action"] == "link"
    ]
    separations = {(r["record_key_l"], r["record_key_r"]) for r in in_force if r["action"] == "separate"}
    report.links, report.separations = len(links), len(separations)
    decided = sorted({k for r in in_force for k in (r["record_key_l"], r["record_key_r"])})

    spark = clusters.sparkSession
    touched = clusters.join(F.broadcast(spark.createDataFrame([(k,) for k in decided], "record_key string")), "record_key")
    touched_clusters = touched.select("cluster_id").distinct()
    members = clusters.join(F.broadcast(touched_clusters), "cluster_id").select("record_key", "cluster_id").collect()
    old_cluster = {r["record_key"]: r["cluster_id"] for r in members}
    keys = sorted(old_cluster)
    key_df = F.broadcast(spark.createDataFrame([(k,) for k in keys], "record_key string"))
    edges = (
        pairs.where(F.col("match_probability") >= F.lit(cluster_threshold))
        .join(key_df.withColumnRenamed("record_key", "record_key_l"), "record_key_l", "left_semi")
        .join(key_df.withColumnRenamed("record_key", "record_key_r"), "record_key_r", "left_semi")
        .select("record_key_l", "record_key_r", "match_probability")
        .collect()  # the edges inside the clusters the decisions touch
    )
    components = _Components(keys, separations)
    for r in links:
        if components.join(r["record_key_l"], r["record_key_r"]) is False:
            report.conflicts.append(
                f"link {r['decision_id']} of {r['record_key_l']} and {r['record_key_r']} would join records a separation keeps apart"
            )
    for e in sorted(edges, key=lambda e: (-e["match_probability"], e["record_key_l"], e["record_key_r"])):
        components.join(e["record_key_l"], e["record_key_r"])

    new_of = components.components()
    # a component keeps its Splink cluster id when it is all of one old cluster and nothing else
    parts: dict[str, set[str]] = {}
    for key, anchor in new_of.items():
        parts.setdefault(anchor, set()).add(key)
    sizes: dict[str, int] = {}
    for cluster_id in old_cluster.values():
        sizes[cluster_id] = sizes.get(cluster_id, 0) + 1
    mapping = []
    for anchor, part in parts.items():
        olds = {old_cluster[k] for k in part}
        unchanged = len(olds) == 1 and sizes[next(iter(olds))] == len(part)
        new_id = next(iter(olds)) if unchanged else STEWARD_CLUSTER_PREFIX + anchor
        mapping += [(k, new_id) for k in part]
        report.records_moved += 0 if unchanged else len(part)
    report.clusters_rebuilt = len({old_cluster[k] for k in keys})
    if report.conflicts:
        for c in report.conflicts:
            log.warning("steward: %s; the separation stands", c)
    moved = F.broadcast(spark.createDataFrame(mapping, "record_key string, steward_cluster string"))
    out = (
        clusters.join(moved, "record_key", "left")
        .withColumn("cluster_id", F.coalesce("steward_cluster", "cluster_id"))
        .drop("steward_cluster")
        .select(*clusters.columns)
    )
    log.info(
        "steward: %s link(s) and %s separation(s) in force; %s cluster(s) rebuilt, %s record(s) regrouped",
        report.links, report.separations, report.clusters_rebuilt, report.records_moved,
    )  # fmt: skip
    return out, report


def read_decisions(lake) -> DataFrame | None:
    """``steward/decisions`` of the lake, or None before any steward decided anything."""
    return lake.read(schema.STEWARD_DECISIONS) if lake.exists(schema.STEWARD_DECISIONS) else None
