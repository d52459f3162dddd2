"""The linkage scorer on small hand-made clusterings whose answers were worked out by hand.

Truth used throughout (6 records, 3 persons):
    P1: crm C1, webshop W1, pos S1      P2: crm C2, webshop W2      P3: crm C3
true pairs = C(3,2) + C(2,2) = 4.
"""

from __future__ import annotations

import json
import random
from itertools import combinations

import pytest

from cdi.quality.evaluate import EvaluationError, evaluate, read_truth, write_report

TRUTH = [
    ("crm", "C1", "P1"), ("webshop", "W1", "P1"), ("pos", "S1", "P1"),
    ("crm", "C2", "P2"), ("webshop", "W2", "P2"),
    ("crm", "C3", "P3"),
]


def _truth(spark, rows=TRUTH):
    return spark.createDataFrame(rows, "source string, source_record_id string, person_id string")


def _map(spark, clusters: dict[str, list[tuple[str, str]]]):
    rows = [(s, r, cid) for cid, recs in clusters.items() for s, r in recs]
    return spark.createDataFrame(rows, "source string, source_record_id string, customer_id string")


P1 = [("crm", "C1"), ("webshop", "W1"), ("pos", "S1")]
P2 = [("crm", "C2"), ("webshop", "W2")]
P3 = [("crm", "C3")]


def test_perfect(spark):
    rep = evaluate(_map(spark, {"K1": P1, "K2": P2, "K3": P3}), _truth(spark))
    assert (rep.pairwise.tp, rep.pairwise.fp, rep.pairwise.fn) == (4, 0, 0)
    assert rep.pairwise.precision == rep.pairwise.recall == rep.pairwise.f1 == 1.0
    assert rep.bcubed_precision == pytest.approx(1.0) and rep.bcubed_recall == pytest.approx(1.0)
    assert rep.persons_exact == 3 and rep.persons_exact_share == 1.0
    assert rep.overmerged_clusters == 0 and rep.split_persons == 0
    assert rep.worst_clusters == []
    assert (rep.records_scored, rep.clusters, rep.persons) == (6, 3, 3)


def test_all_merged(spark):
    rep = evaluate(_map(spark, {"K": P1 + P2 + P3}), _truth(spark))
    # 15 predicted pairs, 4 of them true
    assert (rep.pairwise.tp, rep.pairwise.fp, rep.pairwise.fn) == (4, 11, 0)
    assert rep.pairwise.precision == pytest.approx(4 / 15)
    assert rep.pairwise.recall == 1.0
    assert rep.pairwise.f1 == pytest.approx(8 / 19)
    # B-cubed precision = (3²+2²+1²)/6 / 6 = 14/36
    assert rep.bcubed_precision == pytest.approx(7 / 18)
    assert rep.bcubed_recall == pytest.approx(1.0)
    assert rep.bcubed_f1 == pytest.approx(2 * (7 / 18) / (7 / 18 + 1))
    assert rep.persons_exact == 0 and rep.overmerged_clusters == 1 and rep.split_persons == 0
    assert rep.worst_clusters[0].persons == 3 and rep.worst_clusters[0].wrong_pairs == 11


def test_all_split(spark):
    recs = P1 + P2 + P3
    rep = evaluate(_map(spark, {f"K{i}": [r] for i, r in enumerate(recs)}), _truth(spark))
    assert (rep.pairwise.tp, rep.pairwise.fp, rep.pairwise.fn) == (0, 0, 4)
    assert rep.pairwise.precision == 1.0  # nothing merged, nothing wrongly merged
    assert rep.pairwise.recall == 0.0 and rep.pairwise.f1 == 0.0
    # B-cubed recall = (3·1/3 + 2·1/2 + 1·1)/6 = 0.5
    assert rep.bcubed_precision == pytest.approx(1.0)
    assert rep.bcubed_recall == pytest.approx(0.5)
    assert rep.persons_exact == 1  # P3, a singleton, is resolved exactly
    assert rep.persons_exact_share == pytest.approx(1 / 3)
    assert rep.split_persons == 2 and rep.overmerged_clusters == 0


def test_one_wrong_merge_and_source_pairs(spark):
    rep = evaluate(_map(spark, {"K1": P1, "K2": P2 + P3}), _truth(spark))
    pw = rep.pairwise
    assert (pw.tp, pw.fp, pw.fn, pw.predicted_pairs, pw.true_pairs) == (4, 2, 0, 6, 4)
    assert pw.precision == pytest.approx(2 / 3) and pw.recall == 1.0
    assert pw.f1 == pytest.approx(0.8)
    # B-cubed precision = (9/3 + (4+1)/3) / 6 = 7/9
    assert rep.bcubed_precision == pytest.approx(7 / 9)
    assert rep.bcubed_recall == pytest.approx(1.0)
    assert rep.bcubed_f1 == pytest.approx(0.875)
    assert rep.persons_exact == 1 and rep.overmerged_clusters == 1 and rep.split_persons == 0

    by = {(s.source_a, s.source_b): s for s in rep.by_source_pair}
    assert set(by) == {("crm", "crm"), ("crm", "pos"), ("crm", "webshop"), ("pos", "webshop")}
    assert (by["crm", "crm"].tp, by["crm", "crm"].fp, by["crm", "crm"].fn) == (0, 1, 0)
    assert by["crm", "crm"].precision == 0.0
    assert (by["crm", "webshop"].tp, by["crm", "webshop"].fp, by["crm", "webshop"].fn) == (2, 1, 0)
    assert by["crm", "webshop"].precision == pytest.approx(2 / 3)
    assert (by["crm", "pos"].tp, by["crm", "pos"].fp, by["crm", "pos"].fn) == (1, 0, 0)
    assert (by["pos", "webshop"].tp, by["pos", "webshop"].fp) == (1, 0)

    (worst,) = rep.worst_clusters
    assert (worst.customer_id, worst.records, worst.persons, worst.wrong_pairs) == ("K2", 3, 2, 2)
    assert [m["source_record_id"] for m in worst.members] == ["C2", "W2", "C3"]

    d = rep.to_dict()
    assert json.loads(json.dumps(d))["pairwise"]["tp"] == 4
    table = rep.format_table()
    assert "pairwise" in table and "B-cubed" in table and "crm-webshop" in table and "K2" in table
    assert "crm:C2" in table and "webshop:W2" in table  # record keys as `cdi explain` takes them


def test_records_on_one_side_only_are_counted_not_scored(spark):
    clusters = {"K1": P1 + [("crm", "X9")], "K2": P2}  # C3 missing from the map, X9 not in truth
    rep = evaluate(_map(spark, clusters), _truth(spark))
    assert rep.records_scored == 5
    assert rep.records_only_in_map == 1 and rep.records_only_in_truth == 1
    assert rep.pairwise.precision == 1.0 and rep.pairwise.recall == 1.0


def test_empty_overlap_raises(spark):
    em = _map(spark, {"K1": [("crm", "nope1"), ("crm", "nope2")]})
    with pytest.raises(EvaluationError, match="wrong truth file or lake"):
        evaluate(em, _truth(spark))


def test_record_in_two_clusters_raises(spark):
    em = _map(spark, {"K1": P1, "K2": P2 + P3 + [("crm", "C1")]})
    with pytest.raises(EvaluationError, match="more than one customer_id"):
        evaluate(em, _truth(spark))


def test_random_clustering_matches_brute_force(spark):
    rnd = random.Random(5)
    truth = [(rnd.choice(["crm", "pos", "webshop"]), f"R{i}", f"P{rnd.randrange(40)}") for i in range(150)]
    pred = {(s, r): f"K{rnd.randrange(45)}" if rnd.random() < 0.6 else f"P{p}" for s, r, p in truth}
    em = spark.createDataFrame([(s, r, k) for (s, r), k in pred.items()],
                               "source string, source_record_id string, customer_id string")
    rep = evaluate(em, _truth(spark, truth), worst_n=3)
    person = {(s, r): p for s, r, p in truth}
    tp = fp = fn = 0
    pair = {}
    for a, b in combinations(list(person), 2):
        same_p, same_k = person[a] == person[b], pred[a] == pred[b]
        key = tuple(sorted((a[0], b[0])))
        t = pair.setdefault(key, [0, 0, 0])
        tp += same_p and same_k
        fp += same_k and not same_p
        fn += same_p and not same_k
        t[0] += same_p and same_k
        t[1] += same_k and not same_p
        t[2] += same_p and not same_k
    assert (rep.pairwise.tp, rep.pairwise.fp, rep.pairwise.fn) == (tp, fp, fn)
    got = {(s.source_a, s.source_b): [s.tp, s.fp, s.fn] for s in rep.by_source_pair}
    assert got == {k: v for k, v in pair.items() if any(v)}
    # B-cubed by brute force
    recs = list(person)
    b3p = sum(sum(1 for o in recs if pred[o] == pred[r] and person[o] == person[r])
              / sum(1 for o in recs if pred[o] == pred[r]) for r in recs) / len(recs)
    b3r = sum(sum(1 for o in recs if pred[o] == pred[r] and person[o] == person[r])
              / sum(1 for o in recs if person[o] == person[r]) for r in recs) / len(recs)
    assert rep.bcubed_precision == pytest.approx(b3p) and rep.bcubed_recall == pytest.approx(b3r)
    assert len(rep.worst_clusters) == 3
    assert rep.worst_clusters[0].persons >= rep.worst_clusters[-1].persons


def test_read_truth_and_write_report(spark, tmp_path):
    path = tmp_path / "truth.csv"
    path.write_text("source,source_record_id,person_id\n" + "".join(f"{s},{r},{p}\n" for s, r, p in TRUTH))
    truth = read_truth(spark, path)
    assert dict(truth.dtypes) == {"source": "string", "source_record_id": "string", "person_id": "string"}
    rep = evaluate(_map(spark, {"K1": P1, "K2": P2, "K3": P3}), truth)
    out = write_report(rep, tmp_path / "reports" / "quality.json")
    assert json.loads(out.read_text())["pairwise"]["f1"] == 1.0
    with pytest.raises(EvaluationError, match=str(path.name)):
        evaluate(_map(spark, {"K": [("crm", "zzz")]}), truth)
