"""Steward decisions: applied to hand-built clusters (chispa), recorded without Spark, and kept
by every later link stage on messy records, a retrained relink included."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

import pytest
from chispa import assert_df_equality

from cdi import schema
from cdi.errors import NotFoundError
from cdi.lake import Lake
from cdi.service import stewardship
from cdi.service.snapshot import load_snapshot
from cdi.silver.linkage import run_link
from cdi.silver.steward import STEWARD_CLUSTER_PREFIX, apply_decisions, decisions_in_force
from linkage_fixtures import messy_records, records_frame
from test_linkage import entity_ids, env_config

CLUSTER_SCHEMA = "record_key string, source string, source_record_id string, cluster_id string"
PAIR_SCHEMA = "record_key_l string, record_key_r string, match_probability double"


def _clusters(spark, assignment: dict[str, str]):
    rows = [(k, k.split(":")[0], k.split(":")[1], c) for k, c in sorted(assignment.items())]
    return spark.createDataFrame(rows, CLUSTER_SCHEMA)


def _decisions(spark, rows: list[tuple]):
    """rows: (decision_id, action, l, r, revokes, minute)"""
    full = [
        {"decision_id": d, "action": a, "record_key_l": l, "record_key_r": r, "revokes": rv, "review": None,
         "match_probability": None, "customer_ids": [], "steward": "t", "reason": "test", "origin": "test",
         "decided_at": datetime(2026, 1, 1, 12, minute)}
        for d, a, l, r, rv, minute in rows
    ]  # fmt: skip
    return spark.createDataFrame(full, schema.STEWARD_DECISIONS_SCHEMA)


def _groups(df) -> list[list[str]]:
    by: dict[str, list[str]] = defaultdict(list)
    for r in df.collect():
        by[r["cluster_id"]].append(r["record_key"])
    return sorted(sorted(v) for v in by.values())


@pytest.fixture()
def chain(spark):
    """a-b-c one cluster through a chain (a and c never scored together), d alone, e-f a pair."""
    clusters = _clusters(spark, {"s:a": "K1", "s:b": "K1", "s:c": "K1", "s:d": "K2", "s:e": "K3", "s:f": "K3"})
    pairs = spark.createDataFrame(
        [("s:a", "s:b", 0.999), ("s:b", "s:c", 0.95), ("s:e", "s:f", 0.97), ("s:a", "s:d", 0.6)], PAIR_SCHEMA
    )
    return clusters, pairs


def test_without_decisions_the_clusters_are_splinks(spark, chain):
    clusters, pairs = chain
    out, report = apply_decisions(clusters, pairs, None, 0.9)
    assert_df_equality(out, clusters, ignore_row_order=True)
    assert report.records_moved == 0


def test_a_separation_splits_a_chain_at_its_weakest_link_and_leaves_other_clusters_alone(spark, chain):
    clusters, pairs = chain
    out, report = apply_decisions(clusters, pairs, _decisions(spark, [("d1", "separate", "s:a", "s:c", None, 0)]), 0.9)
    assert _groups(out) == [["s:a", "s:b"], ["s:c"], ["s:d"], ["s:e", "s:f"]]
    ids = {r["record_key"]: r["cluster_id"] for r in out.collect()}
    assert ids["s:d"] == "K2" and ids["s:e"] == ids["s:f"] == "K3"  # untouched clusters keep their ids
    assert ids["s:c"].startswith(STEWARD_CLUSTER_PREFIX)
    assert (report.separations, report.clusters_rebuilt, report.records_moved) == (1, 1, 3)


def test_a_link_joins_two_clusters_even_below_the_threshold(spark, chain):
    clusters, pairs = chain
    out, report = apply_decisions(clusters, pairs, _decisions(spark, [("d1", "link", "s:d", "s:e", None, 0)]), 0.9)
    assert _groups(out) == [["s:a", "s:b", "s:c"], ["s:d", "s:e", "s:f"]]
    assert report.links == 1 and not report.conflicts


def test_a_link_inside_one_cluster_changes_nothing_not_even_cluster_ids(spark, chain):
    clusters, pairs = chain
    out, report = apply_decisions(clusters, pairs, _decisions(spark, [("d1", "link", "s:a", "s:c", None, 0)]), 0.9)
    assert_df_equality(out, clusters, ignore_row_order=True)
    assert report.links == 1 and report.records_moved == 0


def test_the_newest_decision_on_a_pair_wins_and_a_revoked_one_is_gone(spark, chain):
    clusters, pairs = chain
    decisions = _decisions(
        spark,
        [("d1", "separate", "s:a", "s:b", None, 0), ("d2", "link", "s:a", "s:b", None, 5),  # link is newer
         ("d3", "separate", "s:b", "s:c", None, 1), ("d4", "revoke", None, None, "d3", 2)],  # separation revoked
    )  # fmt: skip
    assert [(r["decision_id"], r["action"]) for r in decisions_in_force(decisions).collect()] == [("d2", "link")]
    out, _ = apply_decisions(clusters, pairs, decisions, 0.9)
    assert _groups(out) == [["s:a", "s:b", "s:c"], ["s:d"], ["s:e", "s:f"]]


def test_a_link_that_keeps_an_other_link_is_kept_by_moving_the_scored_neighbour(spark, chain):
    clusters, pairs = chain
    # b is d, a is not d: Splink's a-b edge yields, so both decisions hold
    decisions = _decisions(spark, [("d1", "separate", "s:a", "s:d", None, 0), ("d2", "link", "s:b", "s:d", None, 1)])
    out, report = apply_decisions(clusters, pairs, decisions, 0.9)
    assert _groups(out) == [["s:a"], ["s:b", "s:c", "s:d"], ["s:e", "s:f"]]
    assert not report.conflicts


def test_links_that_contradict_a_separation_are_reported_and_the_separation_stands(spark, chain):
    clusters, pairs = chain
    decisions = _decisions(
        spark,
        [("d1", "separate", "s:a", "s:c", None, 0), ("d2", "link", "s:a", "s:d", None, 1), ("d3", "link", "s:c", "s:d", None, 2)],
    )
    out, report = apply_decisions(clusters, pairs, decisions, 0.9)
    assert _groups(out) == [["s:a", "s:b"], ["s:c", "s:d"], ["s:e", "s:f"]]
    assert len(report.conflicts) == 1 and "d2" in report.conflicts[0]  # the older link yields


def test_decisions_about_records_no_longer_in_the_sources_are_ignored(spark, chain):
    clusters, pairs = chain
    out, report = apply_decisions(clusters, pairs, _decisions(spark, [("d1", "link", "s:a", "s:gone", None, 0)]), 0.9)
    assert_df_equality(out, clusters, ignore_row_order=True)
    assert report.links == 0


# ------------------------------------------------------------------ recorded, then kept by every run


@pytest.fixture(scope="module")
def stewarded(spark, tmp_path_factory):
    base = tmp_path_factory.mktemp("stewarded")
    root = base / "lake"
    cfg = env_config(base, root, backend="duckdb", u_max_pairs=200000)
    rows, truth = messy_records(persons=80, seed=5)
    lake = Lake(spark, str(root), job="test", run_id="r0")
    lake.write(schema.RECORDS, records_frame(spark, rows), mode="overwrite")
    run_link(lake, cfg.linkage, "r1")
    return {"cfg": cfg, "lake": lake, "root": str(root)}


def test_decisions_recorded_by_a_steward_hold_in_every_later_link_run(stewarded):
    lake, root, linkage = stewarded["lake"], stewarded["root"], stewarded["cfg"].linkage
    before = entity_ids(lake)
    by_customer: dict[str, list[str]] = defaultdict(list)
    for key, customer in sorted(before.items()):
        by_customer[customer].append(key)
    big = next(keys for keys in by_customer.values() if len(keys) >= 3)
    one, other = [keys for keys in by_customer.values() if len(keys) >= 2 and keys != big][:2]
    snap = load_snapshot(root)
    moved = big[0]
    stewardship.unlink(snap, moved, steward="steward:ann", reason="a different person at the same address", origin="cli")
    stewardship.link(snap, before[one[0]], before[other[0]], steward="steward:ann", reason="same person, new name")

    for run_id, retrain in (("r2", False), ("r3", True)):  # a relink, and one with a retrained model
        figures = run_link(lake, linkage, run_id, force_retrain=retrain)
        after = entity_ids(lake)
        assert all(after[moved] != after[k] for k in big[1:]), run_id
        assert len({after[k] for k in one + other}) == 1, run_id
        assert figures.steward["separations"] == len(big) - 1 and figures.steward["links"] == len(one) * len(other)
    events = {(r["event_type"], r["run_id"]) for r in lake.read(schema.ID_HISTORY).collect()}
    assert ("merge", "r2") in events and ("split", "r2") in events
    decided = lake.read(schema.STEWARD_DECISIONS).collect()
    assert {r["steward"] for r in decided} == {"steward:ann"} and all(r["reason"] for r in decided)


def test_a_steward_request_that_cannot_apply_writes_nothing(stewarded):
    snap = load_snapshot(stewarded["root"])
    versions = snap.versions.get(schema.STEWARD_DECISIONS)
    with pytest.raises(NotFoundError, match="neither a source record key"):
        stewardship.link(snap, "crm:nobody", "crm:1", steward="s", reason="r")
    ids = entity_ids(stewarded["lake"])
    shared = next(k for k, c in sorted(ids.items()) if sum(1 for v in ids.values() if v == c) > 1)
    with pytest.raises(stewardship.StewardError, match="needs a reason"):
        stewardship.unlink(snap, shared, steward="s", reason=" ")
    assert load_snapshot(stewarded["root"]).versions.get(schema.STEWARD_DECISIONS) == versions


def test_the_cli_records_lists_and_revokes_decisions_without_spark(stewarded, tmp_path, capsys):
    from cdi.cli import main

    conf = tmp_path / "env.yaml"
    conf.write_text(f"lake_root: {stewarded['root']}\n", encoding="utf-8")
    ids = entity_ids(stewarded["lake"])
    a, b = sorted(set(ids.values()))[:2]
    assert main(["steward", "separate", a, b, "--reason", "checked by phone", "--as", "bob", "--conf", str(conf)]) == 0
    recorded = capsys.readouterr().out
    assert "recorded separate" in recorded and "by bob" in recorded
    decision_id = recorded.split()[2]
    assert main(["steward", "decisions", "--json", "--conf", str(conf)]) == 0
    listed = capsys.readouterr().out
    assert decision_id in listed and "checked by phone" in listed
    assert main(["steward", "revoke", decision_id, "--reason", "wrong customer", "--conf", str(conf)]) == 0
    assert main(["steward", "revoke", "no-such-id", "--reason", "x", "--conf", str(conf)]) == 1
    assert "no steward decision 'no-such-id'" in capsys.readouterr().err
