"""Score an entity map (record -> predicted customer) against ground truth (record -> person).

Everything is computed with Spark aggregates over the contingency table of
(predicted cluster, true person) cell sizes ``n_ij``; pairs are counted as ``n(n-1)/2`` per
group and never enumerated. Only the final figures (one row, the per-source-pair counts being columns of it) and the members of the ``worst_n`` over-merged clusters (capped per
cluster) are collected to the driver.

Definitions (records = records present in both the entity map and the truth):

* pairwise: TP = Σ_ij C(n_ij, 2); predicted pairs = Σ_i C(a_i, 2) over cluster sizes a_i;
  true pairs = Σ_j C(b_j, 2) over person sizes b_j; FP = predicted - TP; FN = true - TP.
  precision = TP / predicted (1.0 when nothing was merged), recall = TP / true (1.0 when no
  person has two records), F1 = harmonic mean (0.0 when both are 0).
* B-cubed: per record, precision = n_ij / a_i and recall = n_ij / b_j, averaged over records:
  P = Σ_ij n_ij² / a_i / N, R = Σ_ij n_ij² / b_j / N.
* exactly resolved person: all of the person's records in one cluster holding nothing else.
* over-merged cluster: holds records of more than one person; split person: records in more
  than one cluster.
* by source pair (a <= b, alphabetical): the same pair counts restricted to pairs with one
  record from source a and one from source b (a == b: pairs within one source, i.e. duplicates).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from cdi.errors import EvaluationError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

KEY = ["source", "source_record_id"]
MIN_OVERLAP = 0.01


@dataclass
class PairScores:
    tp: int
    fp: int
    fn: int
    predicted_pairs: int
    true_pairs: int
    precision: float
    recall: float
    f1: float


@dataclass
class SourcePairScore:
    source_a: str
    source_b: str
    tp: int
    fp: int
    fn: int
    precision: float
    recall: float
    f1: float


@dataclass
class ClusterDetail:
    customer_id: str
    records: int
    persons: int
    wrong_pairs: int
    members: list[dict] = field(default_factory=list)  # {source, source_record_id, person_id}
    members_truncated: bool = False


@dataclass
class EvaluationReport:
    records_scored: int
    records_in_map: int
    records_in_truth: int
    records_only_in_map: int
    records_only_in_truth: int
    clusters: int
    persons: int
    pairwise: PairScores
    bcubed_precision: float
    bcubed_recall: float
    bcubed_f1: float
    persons_exact: int
    persons_exact_share: float
    overmerged_clusters: int
    split_persons: int
    by_source_pair: list[SourcePairScore] = field(default_factory=list)
    worst_clusters: list[ClusterDetail] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    def format_table(self) -> str:
        lines = []
        lines.append(
            f"Entity resolution quality: {self.records_scored:,} records scored "
            f"({self.records_only_in_map:,} only in the entity map, "
            f"{self.records_only_in_truth:,} only in the truth)"
        )
        lines.append("")
        lines.append(f"{'':<10}{'precision':>11}{'recall':>9}{'F1':>9}")
        pw = self.pairwise
        lines.append(f"{'pairwise':<10}{pw.precision:>11.4f}{pw.recall:>9.4f}{pw.f1:>9.4f}")
        lines.append(f"{'B-cubed':<10}{self.bcubed_precision:>11.4f}{self.bcubed_recall:>9.4f}"
                     f"{self.bcubed_f1:>9.4f}")
        lines.append("")
        lines.append(f"pairs: TP {pw.tp:,}  FP {pw.fp:,}  FN {pw.fn:,}  "
                     f"(predicted {pw.predicted_pairs:,}, true {pw.true_pairs:,})")
        lines.append(f"clusters {self.clusters:,}   persons {self.persons:,}   "
                     f"exactly resolved persons {self.persons_exact:,} ({self.persons_exact_share:.2%})")
        lines.append(f"over-merged clusters {self.overmerged_clusters:,}   "
                     f"split persons {self.split_persons:,}")
        if self.by_source_pair:
            lines.append("")
            lines.append("by source pair:")
            lines.append(f"  {'pair':<22}{'TP':>10}{'FP':>10}{'FN':>10}{'precision':>11}{'recall':>9}{'F1':>9}")
            for s in self.by_source_pair:
                name = f"{s.source_a}-{s.source_b}"
                lines.append(f"  {name:<22}{s.tp:>10,}{s.fp:>10,}{s.fn:>10,}{s.precision:>11.4f}"
                             f"{s.recall:>9.4f}{s.f1:>9.4f}")
        if self.worst_clusters:
            lines.append("")
            lines.append("worst over-merged clusters (`cdi explain KEY_A KEY_B --conf F` shows why two records matched):")
            for c in self.worst_clusters:
                lines.append(f"  {c.customer_id}: {c.records} records, {c.persons} persons, "
                             f"{c.wrong_pairs} wrong pairs")
                for m in c.members:
                    lines.append(f"      {m['person_id']:<14}{m['source']}:{m['source_record_id']}")
                if c.members_truncated:
                    lines.append("      ...")
        return "\n".join(lines)


def _ratio(num: int, den: int, empty: float = 1.0) -> float:
    return float(num) / float(den) if den else empty


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if (p + r) > 0 else 0.0


def _check_columns(df, needed: list[str], what: str) -> None:
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise EvaluationError(f"{what} lacks column(s) {missing}; it has {df.columns}")


def _describe(df) -> str:
    try:
        files = df.inputFiles()
    except Exception:  # pragma: no cover - non-file DataFrames
        files = []
    return ", ".join(files[:3]) if files else "<in-memory DataFrame>"


def read_truth(spark, path) -> DataFrame:
    """Read a truth.csv (source, source_record_id, person_id) with string columns."""
    return spark.read.csv(
        str(path), header=True, schema="source STRING, source_record_id STRING, person_id STRING",
        mode="FAILFAST",
    )


MAX_SOURCES_FOR_PAIRS = 40  # above this the by-source-pair breakdown is skipped


def evaluate(entity_map, truth, worst_n: int = 10, max_members: int = 50) -> EvaluationReport:
    """Score ``entity_map`` (source, source_record_id, customer_id) against ``truth``
    (source, source_record_id, person_id). Raises :class:`EvaluationError` when the two hardly
    overlap (< 1% of the truth records) or a record is mapped to two clusters/persons.

    Three Spark actions: the overlap counts, one aggregate for every figure (the per-source
    counts are columns, so source-pair counts are column expressions at cell, cluster and
    person level: no self-joins, whatever the cluster sizes), and the worst clusters."""
    from pyspark import StorageLevel
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    _check_columns(entity_map, ["source", "source_record_id", "customer_id"], "the entity map")
    _check_columns(truth, ["source", "source_record_id", "person_id"], "the truth")
    em = entity_map.select(*(F.col(c).cast("string").alias(c) for c in ["source", "source_record_id", "customer_id"]))
    tr = truth.select(*(F.col(c).cast("string").alias(c) for c in ["source", "source_record_id", "person_id"]))

    em_k = em.groupBy(*KEY).agg(F.min("customer_id").alias("customer_id"),
                                F.countDistinct("customer_id").alias("_nc"))
    tr_k = tr.groupBy(*KEY).agg(F.min("person_id").alias("person_id"),
                                F.countDistinct("person_id").alias("_np"))
    joined = em_k.withColumn("_m", F.lit(1)).join(tr_k.withColumn("_t", F.lit(1)), KEY, "full_outer")
    joined = joined.persist(StorageLevel.MEMORY_AND_DISK)
    cached = [joined]
    try:
        in_both = F.col("_m").isNotNull() & F.col("_t").isNotNull()
        c = joined.agg(
            F.sum(F.coalesce("_m", F.lit(0))).alias("in_map"),
            F.sum(F.coalesce("_t", F.lit(0))).alias("in_truth"),
            F.sum(F.when(in_both, 1).otherwise(0)).alias("both"),
            F.sum(F.when(F.col("_nc") > 1, 1).otherwise(0)).alias("multi_cluster"),
            F.sum(F.when(F.col("_np") > 1, 1).otherwise(0)).alias("multi_person"),
            F.collect_set(F.when(in_both, F.col("source"))).alias("sources"),
        ).first()
        in_map, in_truth, both = int(c["in_map"] or 0), int(c["in_truth"] or 0), int(c["both"] or 0)
        if c["multi_cluster"]:
            raise EvaluationError(f"{c['multi_cluster']} record(s) appear in the entity map with more than "
                                  "one customer_id; an entity map assigns each record to one cluster")
        if c["multi_person"]:
            raise EvaluationError(f"{c['multi_person']} record(s) appear in the truth with more than one person_id")
        if both == 0 or both < MIN_OVERLAP * in_truth:
            raise EvaluationError(
                f"no source_record_id in the entity map matches the truth file {_describe(truth)} "
                f"— wrong truth file or lake? ({both:,} of {in_truth:,} truth records and "
                f"{in_map:,} entity-map records match on (source, source_record_id))"
            )
        sources = sorted(c["sources"] or [])
        if len(sources) > MAX_SOURCES_FOR_PAIRS:
            sources = []
        k = len(sources)
        pair_idx = [(i, j) for i in range(k) for j in range(i, k)]

        scored = joined.where(in_both).select(*KEY, "customer_id", "person_id")
        n_ = F.col("n")
        cells = scored.groupBy("customer_id", "person_id").agg(
            F.count(F.lit(1)).alias("n"),
            *(F.sum(F.when(F.col("source") == s, 1).otherwise(0)).cast("long").alias(f"_c{i}")
              for i, s in enumerate(sources)),
        ).persist(StorageLevel.MEMORY_AND_DISK)
        cached.append(cells)
        src_sums = [F.sum(f"_c{i}").alias(f"_c{i}") for i in range(k)]
        clusters = cells.groupBy("customer_id").agg(
            F.sum("n").alias("a"), F.count(F.lit(1)).alias("k"),
            F.sum(F.expr("(n * (n - 1)) div 2")).alias("tp_i"), F.sum(n_ * n_).alias("sq"), *src_sums)
        persons = cells.groupBy("person_id").agg(
            F.sum("n").alias("b"), F.count(F.lit(1)).alias("k"), F.sum(n_ * n_).alias("sq"),
            F.min("customer_id").alias("customer_id"), *src_sums)

        def pair_cols(prefix: str, on: bool):
            out = []
            for i, j in pair_idx:
                if not on:
                    v = F.lit(0).cast("long")
                elif i == j:
                    v = F.expr(f"(_c{i} * (_c{i} - 1)) div 2")
                else:
                    v = F.col(f"_c{i}") * F.col(f"_c{j}")
                out.append(v.alias(f"{prefix}_{i}_{j}"))
            return out

        zero, zero_d, one = F.lit(0).cast("long"), F.lit(0.0).cast("double"), F.lit(1).cast("long")
        flag = lambda cond: F.when(cond, 1).otherwise(0).cast("long")  # noqa: E731
        # one row per cluster, per person and per cell; each level fills its own columns
        cl = clusters.select(
            one.alias("n_clusters"), F.expr("(a * (a - 1)) div 2").alias("pred"), F.col("tp_i").alias("tp"),
            (F.col("sq") / F.col("a")).alias("b3p"), flag(F.col("k") > 1).alias("over"),
            zero.alias("n_persons"), zero.alias("true_pairs"), zero_d.alias("b3r"), zero.alias("split"),
            zero.alias("exact"), *pair_cols("pred", True), *pair_cols("true", False), *pair_cols("tp", False))
        pe = persons.join(clusters.select("customer_id", F.col("k").alias("ck")), "customer_id").select(
            zero.alias("n_clusters"), zero.alias("pred"), zero.alias("tp"), zero_d.alias("b3p"), zero.alias("over"),
            one.alias("n_persons"), F.expr("(b * (b - 1)) div 2").alias("true_pairs"),
            (F.col("sq") / F.col("b")).alias("b3r"), flag(F.col("k") > 1).alias("split"),
            flag((F.col("k") == 1) & (F.col("ck") == 1)).alias("exact"),
            *pair_cols("pred", False), *pair_cols("true", True), *pair_cols("tp", False))
        ce = cells.select(
            zero.alias("n_clusters"), zero.alias("pred"), zero.alias("tp"), zero_d.alias("b3p"), zero.alias("over"),
            zero.alias("n_persons"), zero.alias("true_pairs"), zero_d.alias("b3r"), zero.alias("split"),
            zero.alias("exact"), *pair_cols("pred", False), *pair_cols("true", False), *pair_cols("tp", True))
        tot = cl.unionByName(pe).unionByName(ce).agg(*(F.sum(x).alias(x) for x in cl.columns)).first()

        tp, pred, true = int(tot["tp"] or 0), int(tot["pred"] or 0), int(tot["true_pairs"] or 0)
        p, r = _ratio(tp, pred), _ratio(tp, true)
        pairwise = PairScores(tp=tp, fp=pred - tp, fn=true - tp, predicted_pairs=pred, true_pairs=true,
                              precision=p, recall=r, f1=_f1(p, r))
        b3p = float(tot["b3p"]) / both
        b3r = float(tot["b3r"]) / both
        n_persons = int(tot["n_persons"])
        exact = int(tot["exact"] or 0)
        by_pair = []
        for i, j in pair_idx:
            t_, pr, tr_ = (int(tot[f"{x}_{i}_{j}"] or 0) for x in ("tp", "pred", "true"))
            if pr == 0 and tr_ == 0:
                continue
            pp, rr = _ratio(t_, pr), _ratio(t_, tr_)
            by_pair.append(SourcePairScore(sources[i], sources[j], tp=t_, fp=pr - t_, fn=tr_ - t_,
                                           precision=pp, recall=rr, f1=_f1(pp, rr)))
        worst = _worst_clusters(scored, clusters, worst_n, max_members, F, Window) if tot["over"] else []
        return EvaluationReport(
            records_scored=both, records_in_map=in_map, records_in_truth=in_truth,
            records_only_in_map=in_map - both, records_only_in_truth=in_truth - both,
            clusters=int(tot["n_clusters"]), persons=n_persons, pairwise=pairwise,
            bcubed_precision=b3p, bcubed_recall=b3r, bcubed_f1=_f1(b3p, b3r),
            persons_exact=exact, persons_exact_share=_ratio(exact, n_persons, 0.0),
            overmerged_clusters=int(tot["over"]), split_persons=int(tot["split"]),
            by_source_pair=by_pair, worst_clusters=worst,
        )
    finally:
        for df in cached:
            df.unpersist()


def _worst_clusters(scored, clusters, worst_n: int, max_members: int, F, Window) -> list[ClusterDetail]:
    if worst_n <= 0:
        return []
    worst = clusters.where("k > 1").select(
        "customer_id", F.col("a").alias("records"), F.col("k").alias("persons"),
        (F.expr("(a * (a - 1)) div 2") - F.col("tp_i")).alias("wrong_pairs"),
    ).orderBy(F.desc("persons"), F.desc("wrong_pairs"), F.desc("records"), "customer_id").limit(worst_n)
    w = Window.partitionBy("customer_id").orderBy("person_id", "source", "source_record_id")
    members = scored.join(F.broadcast(worst), "customer_id") \
        .withColumn("_rn", F.row_number().over(w)).where(F.col("_rn") <= max_members) \
        .select("customer_id", "records", "persons", "wrong_pairs", "source", "source_record_id",
                "person_id", "_rn").collect()
    by_id: dict[str, list] = {}
    for m in members:
        by_id.setdefault(m["customer_id"], []).append(m)
    order = sorted(by_id, key=lambda c: (-by_id[c][0]["persons"], -by_id[c][0]["wrong_pairs"],
                                         -by_id[c][0]["records"], c))
    out = []
    for cid in order:
        ms = sorted(by_id[cid], key=lambda m: m["_rn"])
        head = ms[0]
        out.append(ClusterDetail(
            customer_id=cid, records=int(head["records"]), persons=int(head["persons"]),
            wrong_pairs=int(head["wrong_pairs"]),
            members=[{"source": m["source"], "source_record_id": m["source_record_id"],
                      "person_id": m["person_id"]} for m in ms],
            members_truncated=int(head["records"]) > len(ms),
        ))
    return out


def write_report(report: EvaluationReport, path) -> Path:
    """Write the report as JSON (UTF-8, indented); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(report.to_dict(), fh, indent=2, ensure_ascii=False)
        fh.write("\n")
    return path
