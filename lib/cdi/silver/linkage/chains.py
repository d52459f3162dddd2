"""Weak chains: a cluster that holds together through one link between two groups.

Clustering at a threshold is transitive: records A1-A2 (one person) and B1-B2 (her sister) end
in one cluster when a single pair A2-B1 scores above the threshold (a shared e-mail and a
mistyped given name). Such a pair is a *bridge* of the cluster's graph of links: removing it
splits the cluster. It is a *weak chain* when both sides hold at least two records and most
pairs across the two sides are not even scored as more likely the same than not (below
``predict_threshold``, so absent from ``silver/pairs``): were the groups one person, their
records would resemble each other across the bridge as they do within each side. That is a
property of the pairs the model scored, not a tuned threshold; a cross-reference (deterministic
evidence) is never cut.

``linkage.weak_chains`` says what happens to them: ``split`` (the default) cuts every weak
bridge and each side becomes a cluster of its own, ``flag`` keeps the clusters, and both list
them in the run summary with the bridging pair for ``cdi explain``; ``off`` skips the check.
Only clusters of four or more records with fewer scored pairs than a complete graph less
``size - 2`` can hold one, so most clusters are passed over before any Python runs; the rest go
to networkx's bridge search one cluster at a time (a grouped Arrow UDF, on executors).

    >>> found = weak_chains(clusters, pairs, 0.99).persist()  # doctest: +SKIP
    >>> clusters = split_at(clusters, found)  # doctest: +SKIP
"""

from __future__ import annotations

import math
from typing import Any

import networkx as nx
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from .crossref import FLAG_COLUMN

CHAIN_CLUSTER_PREFIX = "chain:"
"""Cluster id of a part cut from a weak chain: the prefix and the part's smallest record key."""

BRIDGES_SCHEMA = (
    "cluster_id string, record_key_l string, record_key_r string, match_probability double, "
    "side_l int, side_r int, cross_pairs int, cross_scored int, part_l string, part_r string"
)
"""One row per weak bridge; ``part_l``/``part_r`` are the smallest record key of each side."""



def _cluster_bridges(group: pd.DataFrame, cluster_threshold: float) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The weak bridges of one cluster's pairs, and each record's part once they are cut
    (record key -> smallest key of its part)."""
    cluster_id = group["cluster_id"].iat[0]
    strong: nx.Graph[str] = nx.Graph()
    scored: set[tuple[str, str]] = set()
    for left, right, probability, weight, xref in zip(
        group["record_key_l"], group["record_key_r"], group["match_probability"], group["match_weight"],
        group[FLAG_COLUMN], strict=True,
    ):
        scored.add((left, right) if left < right else (right, left))
        xref = bool(xref)
        if xref or (probability is not None and probability >= cluster_threshold):
            # a cross-reference the model did not score is as strong as a link can be
            strength = math.inf if xref or weight is None or math.isnan(weight) else float(weight)
            strong.add_edge(left, right, probability=float(probability or 1.0), weight=strength, xref=xref)
    found = []
    while (cut := _weakest_unsupported_bridge(strong, scored)) is not None:
        u, v, side_u, side_v, cross = cut
        left, right = (u, v) if u < v else (v, u)
        side_l, side_r = (side_u, side_v) if left == u else (side_v, side_u)
        found.append(
            {
                "cluster_id": cluster_id, "record_key_l": left, "record_key_r": right,
                "match_probability": strong.edges[u, v]["probability"], "side_l": len(side_l), "side_r": len(side_r),
                "cross_pairs": len(side_l) * len(side_r), "cross_scored": cross,
                "part_l": min(side_l), "part_r": min(side_r),
            }
        )  # fmt: skip
        strong.remove_edge(u, v)
    parts: dict[str, str] = {}
    if found:
        for component in nx.connected_components(strong):
            anchor = min(component)
            parts.update(dict.fromkeys(component, anchor))
    return found, parts


def _weakest_unsupported_bridge(
    strong: nx.Graph, scored: set[tuple[str, str]]
) -> tuple[str, str, set[str], set[str], int] | None:
    """The weakest bridge (lowest match weight; never a cross-reference) whose two sides both
    hold two or more records, whose two ends each hold to their own side by a stronger link than
    the bridge, and whose sides have fewer than half their cross pairs scored; with its sides and
    the scored count, or None.
    Taken one at a time, weakest first, because in a chain of groups every link is a bridge,
    those inside a group too: cutting the weakest first and looking again leaves each group
    whole. A bridge as strong as its ends' links into their groups (agreement on identifiers) is
    kept: the unscored cross pairs are then more likely pairs blocking never compared than
    other people."""
    ordered = sorted(
        ((u, v) if u < v else (v, u) for u, v in nx.bridges(strong) if not strong.edges[u, v]["xref"]),
        key=lambda e: (strong.edges[e]["weight"], e),
    )
    for u, v in ordered:
        edge = strong.edges[u, v]
        strong.remove_edge(u, v)
        side_u, side_v = nx.node_connected_component(strong, u), nx.node_connected_component(strong, v)
        strong.add_edge(u, v, **edge)
        if len(side_u) < 2 or len(side_v) < 2:
            continue
        # each end holds to its own side more strongly than to the other end (it has a link there)
        hold_u = max(float(strong.edges[u, b]["weight"]) for b in strong.neighbors(u) if b != v)
        hold_v = max(float(strong.edges[v, b]["weight"]) for b in strong.neighbors(v) if b != u)
        if edge["weight"] >= min(hold_u, hold_v):
            continue
        cross = sum(1 for a in side_u for b in side_v if ((a, b) if a < b else (b, a)) in scored)
        if 2 * cross < len(side_u) * len(side_v):
            return u, v, side_u, side_v, cross
    return None


def _candidate_pairs(clusters: DataFrame, pairs: DataFrame) -> DataFrame:
    """The scored pairs inside clusters that can hold a weak chain: four or more records, and at
    least ``size - 1`` pairs short of every pair scored (two sides of a and b records, a, b >= 2,
    leave more than a*b/2 >= size - 2 cross pairs unscored)."""
    keyed = clusters.select("record_key", "cluster_id")
    inside = (
        pairs.select("record_key_l", "record_key_r", "match_probability", "match_weight", FLAG_COLUMN)
        .join(keyed.withColumnRenamed("record_key", "record_key_l"), "record_key_l")
        .join(
            keyed.withColumnRenamed("record_key", "record_key_r").withColumnRenamed("cluster_id", "_cluster_r"),
            "record_key_r",
        )
        .where(F.col("cluster_id") == F.col("_cluster_r"))
        .drop("_cluster_r")
    )
    size = keyed.groupBy("cluster_id").agg(F.count(F.lit(1)).alias("size")).where(F.col("size") >= 4)
    density = inside.groupBy("cluster_id").agg(F.count(F.lit(1)).alias("scored"))
    sparse = (
        size.join(density, "cluster_id")
        .where(F.col("scored") <= F.col("size") * (F.col("size") - 1) / 2 - (F.col("size") - 1))
        .select("cluster_id")
    )
    return inside.join(sparse, "cluster_id", "left_semi")


FOUND_SCHEMA = f"kind string, record_key string, part string, {BRIDGES_SCHEMA}"
"""What :func:`weak_chains` finds in one pass: ``kind`` 'bridge' rows (the bridge columns) and
'part' rows (cluster_id, record_key, part) for every record of a cluster that has one."""


def weak_chains(clusters: DataFrame, pairs: DataFrame, cluster_threshold: float) -> DataFrame:
    """The clusters' weak chains as :data:`FOUND_SCHEMA` rows, no action (persist it: both
    :func:`bridges` and :func:`split_at` read it). ``pairs`` are this run's scored pairs with
    ``cross_reference``."""
    columns = [c.split()[0] for c in FOUND_SCHEMA.split(", ")]

    def found_in(group: pd.DataFrame) -> pd.DataFrame:
        found, parts = _cluster_bridges(group, cluster_threshold)
        cluster_id = group["cluster_id"].iat[0]
        rows = [{"kind": "bridge", **b} for b in found]
        rows += [{"kind": "part", "cluster_id": cluster_id, "record_key": k, "part": p} for k, p in parts.items()]
        return pd.DataFrame(rows, columns=columns)

    return _candidate_pairs(clusters, pairs).groupBy("cluster_id").applyInPandas(found_in, FOUND_SCHEMA)


def bridges(found: DataFrame) -> DataFrame:
    """The weak bridges of :func:`weak_chains`' result (:data:`BRIDGES_SCHEMA`)."""
    return found.where(F.col("kind") == "bridge").select(*[c.split()[0] for c in BRIDGES_SCHEMA.split(", ")])


def split_at(clusters: DataFrame, found: DataFrame) -> DataFrame:
    """``clusters`` with each part of a weak chain (:func:`weak_chains`) as a cluster of its own
    (``chain:<smallest key>``); every other record keeps its cluster id."""
    moved = found.where(F.col("kind") == "part").select("record_key", F.concat(F.lit(CHAIN_CLUSTER_PREFIX), "part").alias("_part"))
    return (
        clusters.join(moved, "record_key", "left")
        .withColumn("cluster_id", F.coalesce("_part", "cluster_id"))
        .drop("_part")
        .select(*clusters.columns)
    )


def chains_message(total: int, shown: list[dict[str, Any]], mode: str) -> str:
    """One summary line: how many weak chains, what was done, and the bridging pairs to explain."""
    examples = "; ".join(
        f"{b['record_key_l']} ~ {b['record_key_r']} (p={b['match_probability']:.4f}, "
        f"{b['side_l']}+{b['side_r']} records, {b['cross_scored']} of {b['cross_pairs']} cross pairs scored)"
        for b in shown
    )
    done = "split at the bridge" if mode == "split" else "kept (linkage.weak_chains: flag)"
    return (
        f"link: {total:,} cluster(s) joined two groups of records through one pair the rest of the groups "
        f"do not support, {done}: {examples}. `cdi explain` on a bridging pair shows its evidence"
    )
