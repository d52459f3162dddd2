"""The service desk's API over the lake of the three-run story (C3 has records in crm, shop and
pos; C2 was merged into C3; C1's e-mail changed; C1 has a birth date), and its snapshots'
choice of table versions on hand-made Delta tables (no Spark)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import CommitProperties, write_deltalake
from fastapi.testclient import TestClient

from cdi import schema
from cdi.config import CdiConfig, ServiceConfig, ServiceRole
from cdi.service.app import create_app
from cdi.service.desk import email_search_keys
from cdi.service.snapshot import SnapshotKeeper, load_snapshot, read_table, settled_version, settled_versions
from gold_fixtures import story  # noqa: F401  (fixture)
from service_fixtures import AUDITOR_TOKEN, STEWARD_TOKEN, steward_lake  # noqa: F401  (fixture)



def _service(**kwargs) -> ServiceConfig:
    roles = [
        ServiceRole(name="steward", token=STEWARD_TOKEN, unmasked=True, steward=True),
        ServiceRole(name="auditor", token=AUDITOR_TOKEN),
    ]
    return ServiceConfig(refresh_seconds=0, roles=roles, identity_header="X-Role", **kwargs)


@pytest.fixture(scope="module")
def client(story):
    cfg = CdiConfig(lake_root=str(story["cfg"].lake_root), service=_service())
    with TestClient(create_app(cfg)) as c:
        yield c


@pytest.mark.parametrize(
    "query, expected, how",
    [
        ("C3", ["C3"], "customer id"),
        ("C2", ["C2"], "customer id"),  # retired ids are still found
        ("shop:3", ["C3"], "record key"),
        ("BOB.RAY@Shop.Example", ["C3"], "e-mail"),
        ("bob.ray+news@shop.example", ["C3"], "e-mail"),  # silver's match key drops +tags
        ("+44 7700 900333", ["C3"], "phone"),
        ("07700 900333", ["C3"], "phone"),  # national form: matched by its trailing digits
        ("Bob Rai", ["C3"], "name"),  # a typo
        ("ann lee", ["C1"], "name"),
    ],
)
def test_search_finds_customers_by_every_kind_of_key(client, query, expected, how):
    hits = client.get("/api/search", params={"q": query}).json()["hits"]
    assert [h["customer_id"] for h in hits][: len(expected)] == expected
    assert hits[0]["matched_by"] == how


def test_search_for_nothing_known_finds_nobody(client):
    assert client.get("/api/search", params={"q": "nobody@example.com"}).json()["hits"] == []
    assert client.get("/api/search", params={"q": "zzzz qqqq"}).json()["hits"] == []


def test_a_name_shared_by_two_customers_finds_both(client):
    hits = client.get("/api/search", params={"q": "Dana Fox"}).json()["hits"]
    assert sorted(h["customer_id"] for h in hits[:2]) == ["C6", "C7"]


def test_the_page_has_golden_record_provenance_sources_history_and_changes(client):
    page = client.get("/api/customers/C3").json()
    assert (page["customer_id"], page["status"]) == ("C3", "current")
    assert page["golden"]["email"] == "bob@example.com"
    assert page["provenance"]["email"]["record_key"] == "crm:2"
    assert page["provenance"]["address_line1"]["source"] == "pos"
    assert [r["record_key"] for r in page["records"]] == ["crm:2", "crm:3", "pos:3", "shop:3"]
    assert not any(k.endswith("_std") or k.startswith("_") for r in page["records"] for k in r)
    assert [v["run_id"] for v in page["versions"]] == ["r1", "r2"]
    assert {"attribute": "email", "old_value": "bob.ray@shop.example", "new_value": "bob@example.com"} in page["versions"][1]["changed"]
    assert {c["change_type"] for c in page["changes"]} == {"new", "merged"}


def test_consent_on_the_page_names_the_fact_that_gave_each_answer_and_when():
    from cdi.service.desk import _consent

    at = datetime(2026, 5, 10)
    row = {"consent_email": False, "consent_email_from": "marketing:m2", "consent_email_at": at,
           "consent_sms": None, "consent_sms_from": None, "consent_sms_at": None, "responses": 2}  # fmt: skip
    assert _consent(row) == {
        "email": {"consent": False, "from": "marketing:m2", "at": at},
        "sms": {"consent": None, "from": None, "at": None},
    }
    assert _consent({}) == {}


def test_the_page_as_of_a_time_shows_the_version_valid_then_by_either_time(client):
    from datetime import timedelta

    today = client.get("/api/customers/C1").json()
    first, second = today["versions"][0], today["versions"][1]
    changed = {c["attribute"]: c for c in second["changed"]}
    between = datetime.fromisoformat(second["valid_from"]) - timedelta(seconds=1)
    then = client.get("/api/customers/C1", params={"as_of": between.isoformat()}).json()
    assert then["as_of"]["time"] == "recorded" and then["version"]["valid_from"] == first["valid_from"]
    for attribute, change in changed.items():
        assert then["golden"][attribute] == change["old_value"] and today["golden"][attribute] == change["new_value"]
    assert then["records"] == today["records"]  # sources stay today's
    before = datetime.fromisoformat(first["valid_from"]) - timedelta(days=1)
    unknown = client.get("/api/customers/C1", params={"as_of": before.isoformat()}).json()
    assert unknown["golden"] is None and unknown["version"] is None
    assert client.get("/api/customers/C1", params={"as_of": before.isoformat(), "time": "sometime"}).status_code == 422
    html = client.get("/customers/C1", params={"as_of": between.isoformat(), "time": "recorded"}).text
    assert 'id="as-of-banner"' in html and "the version valid then" in html
    assert client.get("/customers/C1", params={"as_of": "", "time": "recorded"}).status_code == 200  # the form left empty
    assert client.get("/customers/C1", params={"as_of": "yesterday"}).status_code == 400


def test_a_version_as_of_effective_time_falls_back_to_recorded_times_where_it_has_none():
    from cdi.service.desk import version_as_of

    v1 = {"valid_from": datetime(2026, 1, 10), "valid_to": datetime(2026, 2, 1), "effective_from": datetime(2025, 6, 1),
          "effective_to": datetime(2026, 1, 20)}  # fmt: skip
    v2 = {"valid_from": datetime(2026, 2, 1), "valid_to": None, "effective_from": datetime(2026, 1, 20), "effective_to": None}
    old = {"valid_from": datetime(2025, 1, 1), "valid_to": datetime(2025, 3, 1)}  # written before effective times
    versions = [old, v1, v2]
    assert version_as_of(versions, datetime(2025, 7, 1), "effective") is v1  # true at the source before the lake knew
    assert version_as_of(versions, datetime(2025, 7, 1), "recorded") is None
    assert version_as_of(versions, datetime(2026, 1, 25), "effective") is v2
    assert version_as_of(versions, datetime(2026, 1, 25), "recorded") is v1
    assert version_as_of(versions, datetime(2025, 2, 1, tzinfo=UTC), "effective") is old
    with pytest.raises(ValueError, match="time must be one of"):
        version_as_of(versions, datetime(2026, 1, 1), "sometime")


def test_a_retired_customer_names_the_one_its_records_went_to(client):
    page = client.get("/api/customers/C2").json()
    assert (page["status"], page["successor_ids"]) == ("retired", ["C3"])


def test_an_unknown_customer_is_404_with_where_it_looked(client, story):
    r = client.get("/api/customers/C404")
    assert r.status_code == 404 and str(story["cfg"].lake_root) in r.json()["detail"]


def test_viewers_see_birth_dates_and_national_ids_masked_and_unmasked_roles_in_clear(client):
    viewer = client.get("/api/customers/C1").json()
    assert viewer["golden"]["date_of_birth"] == "1980-**-**"
    assert [r["date_of_birth"] for r in viewer["records"] if r["record_key"] == "crm:1"] == ["1980-**-**"]
    assert viewer["masked"] == ["date_of_birth", "national_id"]
    new = next(c for c in viewer["changes"] if c["change_type"] == "new")
    assert {"attribute": "date_of_birth", "old_value": None, "new_value": "1980-**-**"} in new["changed_attributes"]

    steward = client.get("/api/customers/C1", headers={"Authorization": f"Bearer {STEWARD_TOKEN}"}).json()
    assert steward["golden"]["date_of_birth"] == "1980-02-03" and "masked" not in steward
    auditor = client.get("/api/customers/C1", headers={"Authorization": f"Bearer {AUDITOR_TOKEN}"}).json()
    assert auditor["golden"]["date_of_birth"] == "1980-**-**"
    by_proxy = client.get("/api/customers/C1", headers={"X-Role": "steward"}).json()
    assert by_proxy["golden"]["date_of_birth"] == "1980-02-03"


def test_an_unknown_token_is_401_and_an_unknown_role_403(client):
    assert client.get("/api/search", params={"q": "C3"}, headers={"Authorization": "Bearer nope"}).status_code == 401
    assert client.get("/api/search", params={"q": "C3"}, headers={"Authorization": "Basic abc"}).status_code == 401
    assert client.get("/api/customers/C1", headers={"X-Role": "admin"}).status_code == 403


def test_the_html_pages_show_search_results_and_the_customer(client):
    found = client.get("/", params={"q": "bob ray"})
    assert found.status_code == 200 and 'href="/customers/C3"' in found.text
    page = client.get("/customers/C3")
    assert page.status_code == 200 and "bob@example.com" in page.text and "crm:2" in page.text
    assert client.get("/customers/C404").status_code == 404


def test_the_openapi_description_lists_the_api(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/api/search", "/api/customers/{customer_id}", "/api/health"} <= set(paths)


def test_email_search_keys_follow_silvers_match_key():
    assert email_search_keys(" Bob.Ray+news@Shop.Example ") == ["bob.ray+news@shop.example", "bob.ray@shop.example"]
    assert email_search_keys("j.doe+x@googlemail.com") == ["j.doe+x@googlemail.com", "jdoe@gmail.com"]


def test_the_config_refuses_shared_tokens_and_unknown_masked_attributes():
    with pytest.raises(ValueError, match="share a token"):
        ServiceConfig(roles=[ServiceRole(name="a", token="x" * 16), ServiceRole(name="b", token="x" * 16)])
    with pytest.raises(ValueError, match="unknown attribute"):
        ServiceConfig(masked_attributes=["shoe_size"])


# ------------------------------------------------------------------ versions the service shows


def _commit(path, rows: list[dict], run_id: str | None, mode: str = "append", partition_by=None) -> None:
    meta = {"cdi.run_id": run_id} if run_id else {}
    write_deltalake(str(path), pa.Table.from_pylist(rows), mode=mode, partition_by=partition_by,
                    commit_properties=CommitProperties(custom_metadata=meta))  # fmt: skip


def _lease(lake, run_id: str, state: str) -> None:
    now = datetime.now(UTC)
    row = {"key": "lake", "token": "t", "holder": "h", "run_id": run_id, "command": "cdi run", "state": state,
           "acquired_at": now, "heartbeat_at": now, "expires_at": now}  # fmt: skip
    _commit(lake / schema.LEASE, [row], run_id, mode="overwrite")


def _golden(customer_id: str, email: str, current: bool = True) -> dict:
    return {"customer_id": customer_id, "first_name": "Ann", "last_name": "Lee", "email": email,
            "valid_from": datetime(2025, 1, 1, tzinfo=UTC), "valid_to": None, "is_current": current, "run_id": "r"}  # fmt: skip


def test_a_run_still_writing_is_invisible_until_the_lease_says_it_ended(tmp_path):
    lake = tmp_path / "lake"
    golden = lake / schema.GOLDEN_RECORDS
    _commit(golden, [_golden("C1", "ann@one.example")], "r1", partition_by=["is_current"])
    _lease(lake, "r1", "done")
    keeper = SnapshotKeeper(str(lake), refresh_seconds=0)
    assert keeper.current.versions == {schema.GOLDEN_RECORDS: 0}

    _lease(lake, "r2", "running")
    _commit(golden, [_golden("C2", "bob@two.example")], "r2")
    assert settled_version(str(golden), "r2") == 0
    assert keeper.refresh() is False  # r2 is still writing

    _lease(lake, "r2", "done")
    assert keeper.refresh() is True
    assert keeper.current.versions == {schema.GOLDEN_RECORDS: 1}
    ids = [r[0] for r in keeper.current.cursor().execute("SELECT customer_id FROM golden ORDER BY 1").fetchall()]
    assert ids == ["C1", "C2"]


def test_commits_outside_any_run_and_a_dead_runs_are_told_apart(tmp_path):
    lake = tmp_path / "lake"
    table = lake / schema.ENTITY_MAP
    _commit(table, [{"record_key": "crm:1", "customer_id": "C1"}], None)
    _lease(lake, "dead", "running")  # died mid-run: the next run rolls it back
    _commit(table, [{"record_key": "crm:2", "customer_id": "C2"}], "dead")
    assert settled_versions(str(lake)) == {schema.ENTITY_MAP: 0}


def test_partition_values_come_from_the_log_whether_or_not_the_files_repeat_them(tmp_path):
    path = tmp_path / "golden"
    _commit(path, [_golden("C1", "a@x.example", current=False), _golden("C1", "b@x.example")], "r1", partition_by=["is_current"])
    table = read_table(str(path))
    assert sorted(zip(table.column("email").to_pylist(), table.column("is_current").to_pylist(), strict=True)) == [
        ("a@x.example", False), ("b@x.example", True)
    ]  # fmt: skip
    assert table.schema.field("is_current").type == pa.bool_()


def test_a_lake_that_does_not_exist_is_a_clear_error(tmp_path):
    from cdi.errors import LakeError

    with pytest.raises(LakeError, match="no lake at"):
        SnapshotKeeper(str(tmp_path / "missing"), refresh_seconds=0)


def test_a_snapshot_of_an_empty_lake_serves_empty_answers(tmp_path):
    (tmp_path / "lake").mkdir()
    snap = load_snapshot(str(tmp_path / "lake"))
    assert snap.versions == {} and snap.names == []


# ------------------------------------------------------------------ stewards


@pytest.fixture()
def steward_client(steward_lake):
    cfg = CdiConfig(lake_root=str(steward_lake), service=_service(user_header="X-User", review_lower=0.5, review_upper=0.99))
    with TestClient(create_app(cfg)) as c:
        yield c


STEWARD = {"X-Role": "steward", "X-User": "ann"}  # as a trusted proxy says who it is


def test_a_viewer_or_a_reader_without_the_steward_role_gets_403_and_nothing_is_written(steward_client, steward_lake):
    body = {"a": "crm:6", "b": "shop:6", "reason": "same person"}
    assert steward_client.post("/api/steward/link", json=body).status_code == 403
    auditor = {"Authorization": f"Bearer {AUDITOR_TOKEN}"}
    assert steward_client.post("/api/steward/link", json=body, headers=auditor).status_code == 403
    assert steward_client.get("/api/review", headers=auditor).status_code == 403
    assert steward_client.get("/review").status_code == 403
    assert not (steward_lake / schema.STEWARD_DECISIONS).exists()


def test_the_review_queue_holds_the_uncertain_pairs_with_their_evidence_until_decided(steward_client):
    queue = steward_client.get("/api/review", headers=STEWARD).json()
    assert (queue["lower"], queue["upper"]) == (0.5, 0.99)
    assert [(i["record_key_l"], i["record_key_r"]) for i in queue["items"]] == [("crm:6", "shop:6")]
    item = queue["items"][0]
    assert (item["customer_l"], item["customer_r"], item["same_customer"]) == ("C6", "C7", False)
    assert item["weights"] == {"name": 8.5, "email": -4.1}

    done = steward_client.post(
        "/api/review/accept", json={"record_key_l": "crm:6", "record_key_r": "shop:6", "reason": "one Dana, two shops"}, headers=STEWARD
    ).json()
    assert done["action"] == "link" and "next link stage" in done["applies"]
    assert steward_client.get("/api/review", headers=STEWARD).json()["items"] == []
    decisions = steward_client.get("/api/steward/decisions", headers=STEWARD).json()["decisions"]
    newest = decisions[0]
    assert (newest["action"], newest["review"], newest["steward"], newest["reason"]) == ("link", "accepted", "steward:ann", "one Dana, two shops")
    assert newest["customer_ids"] == ["C6", "C7"]

    by_token = {"Authorization": f"Bearer {STEWARD_TOKEN}", "X-User": "mallory"}  # a user header beside a token is not believed
    other = steward_client.post("/api/steward/unlink", json={"record_key": "shop:1", "reason": "check"}, headers=by_token).json()
    listed = steward_client.get("/api/steward/decisions", headers=STEWARD).json()["decisions"]
    assert next(d["steward"] for d in listed if d["decision_id"] == other["decision_id"]) == "steward"

    revoked = steward_client.post("/api/steward/revoke", json={"decision_id": done["decision_id"], "reason": "asked the customer: two Danas"}, headers=STEWARD)
    assert revoked.status_code == 200
    assert len(steward_client.get("/api/review", headers=STEWARD).json()["items"]) == 1  # back in the queue


def test_unlink_and_separate_expand_to_record_pairs_and_bad_requests_are_explained(steward_client):
    out = steward_client.post("/api/steward/unlink", json={"record_key": "pos:3", "reason": "a namesake"}, headers=STEWARD).json()
    assert out["pairs"] == 3  # pos:3 from crm:2, crm:3 and shop:3
    out = steward_client.post("/api/steward/separate", json={"a": "C1", "b": "C3", "reason": "r"}, headers=STEWARD).json()
    assert out["pairs"] == 2 * 4
    bad = steward_client.post("/api/steward/link", json={"a": "C3", "b": "crm:2", "reason": "r"}, headers=STEWARD)
    assert bad.status_code == 400 and "one customer already" in bad.json()["detail"]
    missing = steward_client.post("/api/steward/unlink", json={"record_key": "crm:404", "reason": "r"}, headers=STEWARD)
    assert missing.status_code == 404
    no_reason = steward_client.post("/api/steward/link", json={"a": "C1", "b": "C6", "reason": ""}, headers=STEWARD)
    assert no_reason.status_code == 400 and "needs a reason" in no_reason.json()["detail"]


def test_a_link_after_a_separation_of_the_same_customers_overrides_it_pair_by_pair(steward_client, steward_lake):
    from cdi.service.snapshot import load_snapshot

    steward_client.post("/api/steward/separate", json={"a": "C3", "b": "C6", "reason": "r"}, headers=STEWARD)
    linked = steward_client.post("/api/steward/link", json={"a": "C6", "b": "C3", "reason": "they are one"}, headers=STEWARD).json()
    assert linked["pairs"] == 4 * 1  # C3's four records with C6's one
    snap = load_snapshot(str(steward_lake))
    newest = snap.cursor().execute(
        "SELECT action FROM decisions WHERE record_key_l = 'crm:2' AND record_key_r = 'crm:6' ORDER BY decided_at DESC LIMIT 1"
    ).fetchall()
    assert newest == [("link",)]


def test_a_form_from_another_site_or_a_redirect_off_the_service_is_refused(steward_client, steward_lake):
    steward_client.post("/login", data={"token": STEWARD_TOKEN})
    form = {"action": "unlink", "record_key": "shop:3", "reason": "r"}
    forged = steward_client.post("/steward", data=form, headers={"Origin": "https://evil.example"}, follow_redirects=False)
    assert forged.status_code == 403
    cross = steward_client.post("/steward", data=form, headers={"Sec-Fetch-Site": "cross-site"}, follow_redirects=False)
    assert cross.status_code == 403
    away = steward_client.post("/steward", data={**form, "back": "//evil.example/x"}, follow_redirects=False)
    assert away.status_code == 303 and away.headers["location"].startswith("/review?done=")
    steward_client.cookies.clear()


def test_a_viewer_cannot_find_a_customer_by_a_masked_identifier(story):
    from cdi.service.desk import hidden_columns, search
    from cdi.service.snapshot import load_snapshot

    snap = load_snapshot(str(story["cfg"].lake_root))
    assert search(snap, "+44 7700 900333")[0]["matched_by"] == "phone"
    assert search(snap, "+44 7700 900333", hidden=frozenset({"phone"})) == []
    assert {"dob_year", "date_of_birth"} <= hidden_columns(["date_of_birth"])


def test_signing_in_sets_a_cookie_that_opens_the_review_page(steward_client):
    assert steward_client.post("/login", data={"token": "wrong"}, follow_redirects=False).headers["location"].startswith("/login?error")
    signed = steward_client.post("/login", data={"token": STEWARD_TOKEN}, follow_redirects=False)
    assert signed.status_code == 303 and "httponly" in signed.headers["set-cookie"].lower()
    assert steward_client.get("/review").status_code == 200
    out = steward_client.post("/logout", follow_redirects=False)
    assert 'cdi_token=""' in out.headers["set-cookie"] and "Max-Age=0" in out.headers["set-cookie"]
    steward_client.cookies.clear()
    assert steward_client.get("/review").status_code == 403


# ------------------------------------------------------------------ records typed at a desk


def test_a_submitted_record_lands_as_a_file_that_ingest_takes_exactly_once(spark, tmp_path):
    from cdi.config import SourceConfig
    from cdi.lake import Lake
    from cdi.pipeline import run

    landing = tmp_path / "landing"
    source = SourceConfig(name="desk", kind="customers", format="json", path=str(landing / "*.jsonl"), id_columns=["id"],
                          mapping={"first_name": "first", "last_name": "last", "email": "email"})  # fmt: skip
    roles = [ServiceRole(name="desk", token="desk-token-0123456789", submit=True)]
    (tmp_path / "lake").mkdir()
    cfg = CdiConfig(lake_root=str(tmp_path / "lake"), sources=[source],
                    service=ServiceConfig(refresh_seconds=0, roles=roles, landing_source="desk"))  # fmt: skip
    desk = {"Authorization": "Bearer desk-token-0123456789"}
    with TestClient(create_app(cfg)) as c:
        assert c.post("/api/records", json={"record": {"id": "D1", "first": "Ann"}}).status_code == 403  # a viewer
        first = c.post("/api/records", json={"record": {"id": "D1", "first": "Ann", "last": "Lee", "email": "ann@x.example"}}, headers=desk)
        assert first.status_code == 202 and first.json()["record_key"] == "desk:D1"
        c.post("/api/records", json={"record": {"id": 2, "first": "Ébène", "last": "Noir"}}, headers=desk)
        no_id = c.post("/api/records", json={"record": {"first": "Bob"}}, headers=desk)
        assert no_id.status_code == 400 and "['id']" in no_id.json()["detail"]
        nested = c.post("/api/records", json={"record": {"id": "D3", "address": {"city": "York"}}}, headers=desk)
        assert nested.status_code == 400 and "'address'" in nested.json()["detail"]
    assert len(list(landing.glob("*.jsonl"))) == 2 and not list(landing.glob(".*"))

    run(cfg, stages=("ingest",), spark=spark)
    run(cfg, stages=("ingest",), spark=spark)  # the ledger takes each file once
    bronze = Lake(spark, cfg.lake_root).read(schema.bronze("desk"))
    rows = {r["_source_record_id"]: r["first"] for r in bronze.collect()}
    assert rows == {"D1": "Ann", "2": "Ébène"}


def test_a_landed_file_is_named_by_the_sources_pattern_and_lineage_names_are_refused(tmp_path):
    from cdi.config import SourceConfig
    from cdi.service.landing import LandingError, land_record

    source = SourceConfig(name="desk", kind="customers", format="json", path=str(tmp_path / "desk-*.json"), id_columns=["id"])
    landed = land_record(source, {"id": True, "name": "x"}, "t")
    assert Path(landed["file"]).name.startswith("desk-") and landed["file"].endswith(".json")
    assert landed["record_key"] == "desk:true"  # as ingest reads a JSON boolean
    for bad in ({"id": "1", "_raw": "x"}, {"id": "1", "Name": "a", "name": "b"}):
        with pytest.raises(LandingError):
            land_record(source, bad, "t")


def test_a_landing_source_must_be_a_local_json_customer_source():
    from cdi.config import SourceConfig

    gz = SourceConfig(name="desk", kind="customers", format="json", path="/data/desk/*.jsonl.gz", id_columns=["id"])
    with pytest.raises(ValueError, match="plain JSON lines"):
        CdiConfig(lake_root="/tmp/x", sources=[gz], service=ServiceConfig(landing_source="desk"))

    csv = SourceConfig(name="crm", kind="customers", format="csv", path="/data/crm/*.csv", id_columns=["id"])
    with pytest.raises(ValueError, match="must be a customer source of format json"):
        CdiConfig(lake_root="/tmp/x", sources=[csv], service=ServiceConfig(landing_source="crm"))
    with pytest.raises(ValueError, match="not a configured source"):
        CdiConfig(lake_root="/tmp/x", sources=[csv], service=ServiceConfig(landing_source="desk"))


def test_one_table_is_reloaded_in_place_indexes_and_all(tmp_path):
    lake = tmp_path / "lake"
    table = lake / schema.ENTITY_MAP
    _commit(table, [{"record_key": "crm:1", "customer_id": "C1"}], None)
    snap = load_snapshot(str(lake))
    _commit(table, [{"record_key": "crm:2", "customer_id": "C2"}], None)
    snap.reload(schema.ENTITY_MAP)
    assert snap.versions == {schema.ENTITY_MAP: 1}
    assert snap.cursor().execute("SELECT customer_id FROM entity_map WHERE record_key = 'crm:2'").fetchall() == [("C2",)]
