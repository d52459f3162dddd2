"""Real-time matching (``POST /api/match``) on a small linked lake: a record typed at a desk is
standardised by the batch's own plan and scored with the saved model against every record; the
answer names the customer its person's records belong to, explains the score per comparison,
masks what a viewer may not see, and refuses records it cannot read."""

from __future__ import annotations

from datetime import date

import pytest
from fastapi.testclient import TestClient

from cdi import schema
from cdi.config import CdiConfig, ServiceConfig, ServiceRole
from cdi.lake import Lake
from cdi.service.app import create_app
from cdi.service.matching import Matcher
from cdi.silver.linkage.stage import run_link
from linkage_fixtures import messy_records, records_frame
from test_linkage import env_config

STEWARD = "match-steward-token-0123456789"


@pytest.fixture(scope="module")
def matched(spark, tmp_path_factory):
    base = tmp_path_factory.mktemp("match")
    root = base / "lake"
    cfg = env_config(base, root, backend="duckdb", u_max_pairs=300000)
    rows, truth = messy_records(persons=160, seed=11)
    lake = Lake(spark, str(root), job="test", run_id="r0")
    lake.write("silver/records", records_frame(spark, rows), mode="overwrite")
    run_link(lake, cfg.linkage, "r1")
    owners = {r["record_key"]: r["customer_id"] for r in lake.read("silver/entity_map").collect()}
    roles = [ServiceRole(name="steward", token=STEWARD, unmasked=True, steward=True)]
    app_cfg = CdiConfig(lake_root=str(root), linkage=cfg.linkage, service=ServiceConfig(refresh_seconds=0, roles=roles, match_on_start=False))
    matcher = Matcher(app_cfg, spark_factory=lambda: spark)
    with TestClient(create_app(app_cfg, matcher=matcher)) as client:
        yield {"client": client, "rows": rows, "truth": truth, "owners": owners, "matcher": matcher, "lake": lake}


def _typed_at_a_desk(row: dict) -> dict:
    """What a clerk types for the person of ``row``: names in capitals, the rest as written."""
    dob = row["date_of_birth"]
    return {
        "first_name": row["first_name"].upper(), "last_name": row["last_name"].upper(),
        "date_of_birth": dob.isoformat() if isinstance(dob, date) else None,
        "email": row["email"], "phone": row["phone"], "address_line1": row["address_line1"], "city": row["city"],
        "postcode": row["postcode"], "country": "United Kingdom",
    }  # fmt: skip


def test_a_known_person_is_matched_to_the_customer_holding_their_records(matched):
    client, owners = matched["client"], matched["owners"]
    complete = [r for r in matched["rows"] if r["email"] and r["date_of_birth"] and "@" in r["email"]][:5]
    assert len(complete) == 5
    for row in complete:
        answer = client.post("/api/match", json={"record": _typed_at_a_desk(row)}, headers={"Authorization": f"Bearer {STEWARD}"})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        top = body["candidates"][0]
        assert top["customer_id"] == owners[row["record_key"]], (row, body["candidates"][:3])
        assert body["decision"] == "match" and top["match_probability"] >= body["thresholds"]["match"]
        assert body["record"]["first_name"] == row["first_name"] and body["record"]["country"] == "GB"  # standardised
        levels = {e["comparison"]: e for e in top["explanation"]}
        assert levels["email"]["level"] == "Exact e-mail" and levels["email"]["match_weight"] > 0
        assert sum(e["match_weight"] for e in levels.values()) > 0
        assert body["seconds"]["standardise"] > 0 and body["model_version"] >= 1


def test_nobody_like_the_record_is_a_new_customer(matched):
    answer = matched["client"].post(
        "/api/match", json={"record": {"first_name": "Zebulon", "last_name": "Quixotically", "date_of_birth": "1901-01-01"}}
    ).json()
    assert answer["decision"] == "new customer"
    assert all(c["match_probability"] < answer["thresholds"]["review"] for c in answer["candidates"])


def test_a_viewer_cannot_match_on_what_is_masked_for_them(matched):
    """Matching on a birth date the viewer may not see would tell, through the date comparison's
    level, whether a guess was right: the attribute is left out and the answer says so."""
    row = next(r for r in matched["rows"] if r["date_of_birth"] and r["email"])
    body = matched["client"].post("/api/match", json={"record": _typed_at_a_desk(row)}).json()
    assert body["ignored"]["attributes"] == ["date_of_birth"]
    assert body["record"]["date_of_birth"] is None and body["record"]["dob_year"] is None
    dob = [e for c in body["candidates"] for e in c["explanation"] if e["comparison"] == "date_of_birth"]
    assert all(e["match_weight"] == 0 for e in dob)
    steward = matched["client"].post("/api/match", json={"record": _typed_at_a_desk(row)}, headers={"Authorization": f"Bearer {STEWARD}"})
    assert "ignored" not in steward.json() and steward.json()["record"]["date_of_birth"] == row["date_of_birth"].isoformat()


def test_a_newer_version_of_another_table_does_not_prepare_the_model_input_again(matched):
    client, matcher = matched["client"], matched["matcher"]
    assert client.post("/api/match", json={"record": {"first_name": "Ann"}}).status_code == 200
    prepared, snapshot = matcher._prepared, client.app.state.keeper.current
    snapshot.versions = {**snapshot.versions, schema.PAIRS: 99}  # as a steward decision's reload of its table does
    assert client.post("/api/match", json={"record": {"first_name": "Bob"}}).status_code == 200
    assert matcher._prepared is prepared


@pytest.mark.parametrize(
    "record, message",
    [
        ({"first_nam": "Ann"}, "unknown attribute"),
        ({}, "JSON object"),
        ({"first_name": {"nested": 1}}, "give text"),
        ({"first_name": None}, "no values"),
    ],
)
def test_a_record_that_cannot_be_read_is_400_naming_the_field(matched, record, message):
    answer = matched["client"].post("/api/match", json={"record": record})
    assert answer.status_code == 400 and message in answer.json()["detail"]


def test_without_a_trained_model_matching_is_503_saying_what_to_do(tmp_path):
    import pyarrow as pa
    from deltalake import write_deltalake

    write_deltalake(str(tmp_path / "lake" / "silver" / "records"), pa.table({"record_key": ["crm:1"], "first_name": ["Ann"]}))
    cfg = CdiConfig(lake_root=str(tmp_path / "lake"), service=ServiceConfig(refresh_seconds=0, match_on_start=False))
    with TestClient(create_app(cfg)) as client:
        answer = client.post("/api/match", json={"record": {"first_name": "Ann"}})
    assert answer.status_code == 503 and "cdi run" in answer.json()["detail"]


def test_scoring_only_the_records_a_rule_pairs_gives_the_pairs_of_scoring_all(matched):
    """Also: the kept statements of predict_between (the first call per threshold keeps them,
    later calls replay them) give the pairs of calling it afresh, every column alike."""
    matcher = matched["matcher"]
    assert matched["client"].post("/api/match", json={"record": {"first_name": "Ann"}}).status_code == 200
    prepared = matcher._prepared
    assert prepared is not None
    for row in matched["rows"][:8]:
        silver = matcher._standardise(_typed_at_a_desk(row), "desk:match-check")
        fast = {(p["record_key_l"], round(p["match_probability"], 9)) for p in matcher._score(prepared, silver, 0.0)}
        full = {(p["record_key_l"], round(p["match_probability"], 9)) for p in matcher._score(prepared, silver, 0.0, prefilter=False)}
        assert fast == full and fast
        for threshold in (0.0, 0.5):
            replayed = sorted(matcher._score(prepared, silver, threshold), key=lambda p: p["record_key_l"])
            afresh = sorted(matcher._score(prepared, silver, threshold, compiled=False), key=lambda p: p["record_key_l"])
            assert replayed == afresh
    assert set(prepared.compiled) >= {0.0, 0.5}


# --------------------------------------------------------------------------- the sizing plan (cdi plan)


def test_the_plan_counts_each_rules_new_pairs_exactly_and_extrapolates_by_its_growth(matched):
    import duckdb

    from cdi.silver.linkage import blocking
    from cdi.silver.linkage.model import ModelStore
    from cdi.silver.linkage.plan import comparison_plan, extrapolate, plan_table

    lake = matched["lake"]
    plan = comparison_plan(lake, lake.root, sample_share=0.5, targets=[10_000, 1_000_000])
    # every pair some rule makes, counted by hand on the records, rule by rule (each pair once)
    cfg = ModelStore(lake.root).latest().linkage_config()
    records = lake.read("silver/records").toPandas()
    con = duckdb.connect()
    con.register("records", records)
    keys = blocking.block_keys([cfg.blocking_rules])
    con.execute("create table r as select *, " + ", ".join(f"{k.value_sql()} as {k.name}" for k in keys) + " from records")
    seen: set[tuple[str, str]] = set()
    for rule, counted in zip(cfg.blocking_rules, plan.rules, strict=True):
        pairs = set(con.execute(f"select l.record_key, r.record_key from r l join r r on {blocking.rule_sql(rule)} "
                                "where l.record_key < r.record_key").fetchall())  # fmt: skip
        assert counted.pairs == len(pairs - seen), counted.rule
        seen |= pairs
    assert plan.records == len(records) and 0 < plan.records_in_sample < plan.records and plan.pairs == len(seen) > 0
    for r in plan.rules:
        assert r.pairs_in_sample <= r.pairs
        if r.growth_exponent is not None:
            assert 1.0 <= r.growth_exponent <= 2.0, r
        assert r.pairs_at[1_000_000] == extrapolate(r.pairs, plan.records, r.growth_exponent, 1_000_000) >= r.pairs_at[10_000]
    text = plan_table(plan)
    assert "email_std" in text and f"{plan.pairs:,}" in text and "pairs at 1,000,000" in text


def test_the_plan_command_refuses_unreadable_targets_before_spark(tmp_path, capsys):
    from cdi.cli import main

    conf = tmp_path / "env.yaml"
    conf.write_text(f"lake_root: {tmp_path / 'lake'}\n")
    assert main(["plan", "--conf", str(conf), "--targets", "ten million"]) == 2
    assert "--targets" in capsys.readouterr().err
    assert main(["plan", "--conf", str(conf), "--sample-share", "1.5"]) == 2
