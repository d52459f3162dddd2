"""Weak chains: two groups of records joined by one pair the rest of the groups do not support
are cut apart; groups that resemble each other across the pair, a lone record hanging on one
link, and a cross-reference stay joined (cdi.silver.linkage.chains)."""

from __future__ import annotations

import math

from cdi.silver.linkage import chains

THRESHOLD = 0.99


def _frames(spark, clusters: dict[str, list[str]], pairs: list[tuple[str, str, float, bool]]):
    rows = [(k, k.split(":")[0], k.split(":")[1], cid) for cid, keys in clusters.items() for k in keys]
    c = spark.createDataFrame(rows, "record_key string, source string, source_record_id string, cluster_id string")
    ordered = [(min(a, b), max(a, b), p, math.log2(p / (1 - p)) if p < 1 else None, x) for a, b, p, x in pairs]
    p = spark.createDataFrame(
        ordered,
        "record_key_l string, record_key_r string, match_probability double, match_weight double, cross_reference boolean",
    )
    return c, p


def _result(spark, clusters, pairs):
    c, p = _frames(spark, clusters, pairs)
    found = chains.weak_chains(c, p, THRESHOLD).persist()
    bridges = [r.asDict() for r in chains.bridges(found).collect()]
    after = {r["record_key"]: r["cluster_id"] for r in chains.split_at(c, found).collect()}
    groups: dict[str, set[str]] = {}
    for key, cid in after.items():
        groups.setdefault(cid, set()).add(key)
    return bridges, sorted(sorted(g) for g in groups.values())


# a mother (two records) and her daughter (two records) share an e-mail: one pair across them
# clears the threshold, the other three are not even scored as likely
FAMILY = {"c1": ["crm:M1", "shop:M2", "crm:D1", "shop:D2"], "c9": ["crm:X1", "shop:X2"]}
FAMILY_PAIRS = [
    ("crm:M1", "shop:M2", 0.9999, False),
    ("crm:D1", "shop:D2", 0.9998, False),
    ("shop:M2", "crm:D1", 0.995, False),
    ("crm:X1", "shop:X2", 0.9999, False),
]


def test_two_groups_joined_by_one_unsupported_pair_are_split_at_it(spark):
    bridges, groups = _result(spark, FAMILY, FAMILY_PAIRS)
    assert groups == [["crm:D1", "shop:D2"], ["crm:M1", "shop:M2"], ["crm:X1", "shop:X2"]]
    assert [(b["record_key_l"], b["record_key_r"], b["side_l"], b["side_r"], b["cross_scored"], b["cross_pairs"])
            for b in bridges] == [("crm:D1", "shop:M2", 2, 2, 1, 4)]  # fmt: skip


def test_groups_that_resemble_each_other_across_the_pair_stay_one_customer(spark):
    # the same person: most cross pairs are scored as likely, just below the cluster threshold
    supported = [*FAMILY_PAIRS, ("crm:M1", "crm:D1", 0.9, False), ("shop:M2", "shop:D2", 0.8, False)]
    bridges, groups = _result(spark, FAMILY, supported)
    assert bridges == []
    assert groups == [["crm:D1", "crm:M1", "shop:D2", "shop:M2"], ["crm:X1", "shop:X2"]]


def test_a_lone_record_on_one_link_and_a_cross_reference_are_never_cut(spark):
    # three records of one person and a fourth that only one of them links to (few fields)
    lone = {"c1": ["crm:A1", "shop:A2", "pos:A3", "support:A4"]}
    pairs = [("crm:A1", "shop:A2", 0.9999, False), ("shop:A2", "pos:A3", 0.9999, False),
             ("crm:A1", "pos:A3", 0.9999, False), ("pos:A3", "support:A4", 0.991, False)]  # fmt: skip
    assert _result(spark, lone, pairs) == ([], [["crm:A1", "pos:A3", "shop:A2", "support:A4"]])
    # the family again, but the daughter's billing record carries the mother's CRM id
    referenced = [p if p[:2] != ("shop:M2", "crm:D1") else ("shop:M2", "crm:D1", 1.0, True) for p in FAMILY_PAIRS]
    assert _result(spark, FAMILY, referenced)[0] == []


def test_a_chain_of_three_groups_is_cut_into_three(spark):
    keys = ["a:1", "a:2", "b:1", "b:2", "c:1", "c:2"]
    pairs = [("a:1", "a:2", 0.9999, False), ("b:1", "b:2", 0.9999, False), ("c:1", "c:2", 0.9999, False),
             ("a:2", "b:1", 0.995, False), ("b:2", "c:1", 0.995, False)]  # fmt: skip
    bridges, groups = _result(spark, {"c": keys}, pairs)
    assert groups == [["a:1", "a:2"], ["b:1", "b:2"], ["c:1", "c:2"]] and len(bridges) == 2


def test_the_summary_line_names_the_bridging_pair_and_what_was_done():
    shown = [{"record_key_l": "crm:D1", "record_key_r": "shop:M2", "match_probability": 0.995, "side_l": 2,
              "side_r": 2, "cross_scored": 1, "cross_pairs": 4}]  # fmt: skip
    line = chains.chains_message(1, shown, "split")
    assert "crm:D1 ~ shop:M2 (p=0.9950, 2+2 records, 1 of 4 cross pairs scored)" in line and "split at the bridge" in line
    assert "kept (linkage.weak_chains: flag)" in chains.chains_message(1, shown, "flag")


def test_a_bridge_as_strong_as_the_groups_own_links_is_kept(spark):
    # one person whose records fall in two groups that blocking rarely compares across, joined by
    # a pair that agrees on everything: the missing cross pairs are not evidence of two people
    strong = [(a, b, 0.9999 if (a, b) == ("shop:M2", "crm:D1") else p, x) for a, b, p, x in FAMILY_PAIRS]
    bridges, groups = _result(spark, FAMILY, strong)
    assert bridges == [] and groups[0] == ["crm:D1", "crm:M1", "shop:D2", "shop:M2"]
