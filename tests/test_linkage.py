"""Entity resolution: settings from config, blocking caps, model files, backends, accuracy, explain."""

from __future__ import annotations

import json
import logging
import shutil
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest
import yaml

from cdi import schema
from cdi.config import LinkageConfig, SourceConfig, load_config
from cdi.lake import Lake
from cdi.silver.explain import explain_pair
from cdi.silver.linkage import ModelStore, choose_backend, run_link, settings_creator
from cdi.silver.linkage.backends import DuckDBBackend
from cdi.silver.linkage.stage import prepared_input, train, train_or_load
from linkage_fixtures import PLACEHOLDER_EMAIL, cluster_pairs, messy_records, records_frame, true_pairs

ROOT = Path(__file__).resolve().parents[1]
LINKAGE_YAML = ROOT / "conf" / "linkage.yaml"


def env_config(tmp_path: Path, lake_root: Path, **linkage):
    """An environment file that includes conf/linkage.yaml, as conf/demo.yaml does."""
    overrides = "".join(f"  {k}: {json.dumps(v)}\n" for k, v in linkage.items())
    env = tmp_path / "env.yaml"
    env.write_text(f"include: [{LINKAGE_YAML}]\nlake_root: {lake_root}\nlinkage:\n{overrides}", encoding="utf-8")
    return load_config(env)


def default_linkage() -> LinkageConfig:
    return LinkageConfig(**yaml.safe_load(LINKAGE_YAML.read_text())["linkage"])


def with_backend(cfg, backend: str):
    return cfg.model_copy(update={"linkage": cfg.linkage.model_copy(update={"backend": backend})})


def entity_ids(lake) -> dict[str, str]:
    return {r["record_key"]: r["customer_id"] for r in lake.read("silver/entity_map").collect()}


def scored_pairs(lake) -> dict[tuple[str, str], float]:
    pairs = lake.read("silver/pairs")
    types = {f.name: f.dataType.simpleString() for f in pairs.schema.fields}
    assert {c: types[c] for c in schema.PAIRS_KEY_COLUMNS} == {c: schema.PAIRS_TYPES.get(c, "string") for c in schema.PAIRS_KEY_COLUMNS}
    rows = pairs.select("record_key_l", "record_key_r", "match_probability").collect()
    return {(r[0], r[1]): r[2] for r in rows}


@pytest.fixture(scope="module")
def linked(spark, tmp_path_factory):
    """A lake with messy records from three sources, linked once on DuckDB (run r1)."""
    base = tmp_path_factory.mktemp("linked")
    root = base / "lake"
    cfg = env_config(base, root, backend="duckdb", u_max_pairs=300000)
    rows, truth = messy_records(persons=160, seed=11)
    lake = Lake(spark, str(root), job="test", run_id="r0")
    lake.write("silver/records", records_frame(spark, rows), mode="overwrite")
    figures = run_link(lake, cfg.linkage, "r1")
    return {"cfg": cfg, "lake": lake, "root": root, "truth": truth, "figures": figures, "base": base}


def copy_of(linked, spark, name: str):
    root = linked["base"] / name
    shutil.copytree(linked["root"], root)
    cfg = linked["cfg"].model_copy(update={"lake_root": str(root)})
    return cfg, Lake(spark, str(root), job="test")


# --------------------------------------------------------------------------- settings


def test_settings_are_built_from_the_linkage_config():
    cfg = default_linkage()
    settings = settings_creator(cfg).create_settings_dict("duckdb")

    assert settings["link_type"] == "dedupe_only"
    assert settings["unique_id_column_name"] == "record_key"
    assert [c["output_column_name"] for c in settings["comparisons"]] == [
        "name", "date_of_birth", "email", "phone", "address", "city", "national_id", "middle_name", "gender",
    ]
    tf_columns = {
        level.get("tf_adjustment_column")
        for comp in settings["comparisons"]
        for level in comp["comparison_levels"]
        if level.get("tf_adjustment_column")
    }
    assert {"first_name_std_last_name_std_concat", "last_name_std", "city_std", "email_std"} <= tf_columns
    rules = [r["blocking_rule"] for r in settings["blocking_rules_to_generate_predictions"]]
    assert "l.email_std = r.email_std and l.email_std_block is not null and r.email_std_block is not null" in rules
    assert any("l.first_name_std = r.last_name_std" in r for r in rules)
    dob_levels = {lv["label_for_charts"]: lv for lv in settings["comparisons"][1]["comparison_levels"]}
    twin = dob_levels["Exact date of birth, given name differs"]
    assert twin["m_probability"] == twin["u_probability"] and twin["fix_m_probability"] and twin["fix_u_probability"]
    assert "Day and month transposed" in dob_levels


def test_settings_render_each_backends_similarity_functions():
    cfg = default_linkage()
    duck = json.dumps(settings_creator(cfg).create_settings_dict("duckdb"))
    spark_sql = json.dumps(settings_creator(cfg).create_settings_dict("spark"))
    assert "jaro_winkler_similarity(" in duck
    assert "jaro_winkler(" in spark_sql and "jaro_winkler_similarity(" not in spark_sql


def test_linkage_yaml_is_includable_by_an_environment_file(tmp_path):
    cfg = env_config(tmp_path, tmp_path / "lake", backend="duckdb")
    assert cfg.linkage.backend == "duckdb"
    assert len(cfg.linkage.comparisons) == 9 and len(cfg.linkage.training_blocking_rules) >= 2


# --------------------------------------------------------------------------- backend choice


@pytest.mark.parametrize(
    ("backend", "master", "records", "expected"),
    [
        ("auto", "local[2]", 1_000, "duckdb"),
        ("auto", "local[*]", 5_000_000, "spark"),
        ("auto", "yarn", 1_000, "spark"),
        ("auto", "spark://head:7077", 1_000, "spark"),
        ("spark", "local[2]", 10, "spark"),
        ("duckdb", "yarn", 10, "duckdb"),
    ],
)
def test_backend_choice(backend, master, records, expected):
    cfg = LinkageConfig(backend=backend, max_local_records=3_000_000)
    chosen, reason = choose_backend(cfg, master, records)
    assert chosen == expected
    assert reason


# --------------------------------------------------------------------------- blocking cap


def test_blocking_cap_nulls_a_too_common_key_and_logs_it(spark, tmp_path, caplog):
    rows, _ = messy_records(persons=12, seed=3)
    for row in rows[:6]:
        row["email_std"], row["email_user"] = PLACEHOLDER_EMAIL, "noemail"
    for row in rows[6:]:
        if row["email_std"] == PLACEHOLDER_EMAIL:
            row["email_std"] = None
    lake = Lake(spark, str(tmp_path / "lake"), job="test")
    lake.write("silver/records", records_frame(spark, rows), mode="overwrite")
    cfg = default_linkage().model_copy(
        update={"blocking_key_cap": 5}
    )
    backend = DuckDBBackend(spark)
    try:
        with caplog.at_level(logging.WARNING, logger="cdi.silver.linkage.stage"):
            prepared = prepared_input(backend, lake, cfg)
            input_sdf, capped = prepared.table, prepared.capped
        got = backend.query(
            f"select email_std, email_std_block, email_user_date_of_birth_block from {input_sdf.physical_name}"
        )
    finally:
        backend.close()
    assert {"block_key": "email_std_block", "value": PLACEHOLDER_EMAIL, "records": 6} in capped
    placeholder = [r for r in got if r["email_std"] == PLACEHOLDER_EMAIL]
    others = [r for r in got if r["email_std"] not in (None, PLACEHOLDER_EMAIL)]
    assert len(placeholder) == 6 and all(r["email_std_block"] is None for r in placeholder)
    assert others and all(r["email_std_block"] == r["email_std"] for r in others)
    assert "email_std_block" in caplog.text and PLACEHOLDER_EMAIL in caplog.text


# --------------------------------------------------------------------------- the stage on DuckDB


def test_first_run_trains_and_saves_a_versioned_model_with_charts(linked):
    figures = linked["figures"]
    assert figures.backend == "duckdb" and figures.trained and figures.model_version == 1
    assert figures.records > 300 and figures.pairs > 0 and 0 < figures.clusters < figures.records
    assert set(figures.seconds) >= {"model", "predict", "cluster", "stable ids"}
    folder = Path(linked["root"]) / "models" / "linkage" / "v0001"
    model_json = json.loads((folder / "model.json").read_text())
    meta = json.loads((folder / "meta.json").read_text())
    # the prior comes from the deterministic rules, not Splink's default of 1e-4
    assert model_json["probability_two_random_records_match"] != pytest.approx(0.0001)
    assert meta["records"] == figures.records and meta["backend"] == "duckdb" and meta["version"] == 1
    assert "<html" in (folder / "match_weights.html").read_text().lower()
    summary = (folder / "parameters.md").read_text()
    assert "| name | Exact given name and surname |" in summary and "prior" in summary


def test_household_aware_levels_carry_the_u_of_the_whole_agreement(linked):
    """'Exact date of birth, given name agrees' must weigh the shared birth date only: its u is the
    share of random pairs with the same birth date, not of those with the same date *and* a
    fitting given name (the name comparison weighs the name; counting it here again is what
    over-merged namesakes sharing a postcode at a million records)."""
    records = linked["lake"].read("silver/records").select("date_of_birth").collect()
    dobs = [r[0] for r in records if r[0] is not None]
    same = sum(n * (n - 1) // 2 for n in Counter(dobs).values())
    share = same / (len(dobs) * (len(dobs) - 1) // 2)  # the u sample covers every pair here
    saved = json.loads((Path(linked["root"]) / "models" / "linkage" / "v0001" / "model.json").read_text())
    dob = next(c for c in saved["comparisons"] if c["output_column_name"] == "date_of_birth")
    levels = {lv.get("label_for_charts"): lv for lv in dob["comparison_levels"]}
    fits = levels["Exact date of birth, given name agrees or national_id agrees"]
    assert fits["u_probability"] == pytest.approx(share, rel=1e-6)
    assert levels["Exact date of birth, given name differs"]["u_probability"] == 0.01  # neutral, fixed


def test_rerun_reuses_the_saved_model_and_keeps_every_customer_id(linked, spark):
    lake = linked["lake"]
    before = entity_ids(lake)
    figures = run_link(lake, linked["cfg"].linkage, "r2")
    assert figures.trained is False and figures.model_version == 1
    assert entity_ids(lake) == before
    assert figures.id_events == {}
    history_runs = {r["run_id"] for r in lake.read("silver/id_history").select("run_id").distinct().collect()}
    assert history_runs == {"r1"}
    assert ModelStore(str(linked["root"])).versions() == [1]


def test_retraining_when_asked_writes_the_next_model_version(linked, spark):
    cfg, lake = copy_of(linked, spark, "retrain")
    backend = DuckDBBackend(spark)
    try:
        input_sdf = prepared_input(backend, lake, cfg.linkage).table
        _, saved, trained = train_or_load(backend, input_sdf, cfg.linkage, cfg.lake_root, 100, "r9", True, datetime(2024, 5, 1))
    finally:
        backend.close()
    assert trained and saved.version == 2
    assert ModelStore(cfg.lake_root).versions() == [1, 2]


PROBABILITY_KEYS = ("m_probability", "u_probability")


def _probabilities(splink_model: dict) -> list[float]:
    return [
        level.get(k, -1.0) for c in splink_model["comparisons"] for level in c["comparison_levels"] for k in PROBABILITY_KEYS
    ]


def _without_probabilities(splink_model: dict) -> list[dict]:
    return [
        {k: v for k, v in level.items() if k not in PROBABILITY_KEYS}
        for c in splink_model["comparisons"]
        for level in c["comparison_levels"]
    ]


def test_data_without_emails_trains_the_model_it_would_without_the_email_rule(spark, tmp_path, caplog):
    """A source set with no e-mail gives the e-mail training rule no pairs. Skipping it must give
    the same model as not configuring it (Splink takes the rule's comparisons out of the model, and
    changes the prior, while it trains), and that model scores and is reused like any other."""
    rows, truth = messy_records(persons=120, seed=5)
    for row in rows:
        row["email"] = row["email_std"] = row["email_user"] = None
    models = {}
    for name, rules in (("with", None), ("without", [["first_name_std", "last_name_std"], ["date_of_birth"]])):
        root = tmp_path / name / "lake"
        extra = {"training_blocking_rules": rules} if rules else {}
        (tmp_path / name).mkdir()
        cfg = env_config(tmp_path / name, root, backend="duckdb", u_max_pairs=200000, **extra)
        lake = Lake(spark, str(root), job="test", run_id="r0")
        lake.write("silver/records", records_frame(spark, rows), mode="overwrite")
        with caplog.at_level(logging.WARNING, logger="cdi.silver.linkage.stage"):
            figures = run_link(lake, cfg.linkage, "r1")
        models[name] = json.loads((root / "models" / "linkage" / "v0001" / "model.json").read_text())
        if name == "with":
            assert "training blocking rule ['email_std'] skipped" in caplog.text
            assert figures.trained and figures.pairs > 0
            found, expected = cluster_pairs(entity_ids(lake)), true_pairs(truth)
            assert len(found & expected) / len(found) >= 0.9
            again = run_link(lake, cfg.linkage, "r2")
            assert again.trained is False and again.id_events == {}
    assert [c["output_column_name"] for c in models["with"]["comparisons"]] == [c.name for c in cfg.linkage.comparisons]
    # the same up to float summation order (DuckDB aggregates in parallel)
    assert _without_probabilities(models["with"]) == _without_probabilities(models["without"])
    assert _probabilities(models["with"]) == pytest.approx(_probabilities(models["without"]), rel=1e-9)
    assert models["with"]["probability_two_random_records_match"] == pytest.approx(
        models["without"]["probability_two_random_records_match"]
    )


def test_a_model_from_an_older_training_procedure_is_retrained_once(linked, spark, caplog):
    cfg, lake = copy_of(linked, spark, "old_procedure")
    meta_path = Path(cfg.lake_root) / "models" / "linkage" / "v0001" / "meta.json"
    meta = json.loads(meta_path.read_text())
    assert meta["training_procedure"] >= 2
    del meta["training_procedure"]  # as written before the procedure was versioned
    meta_path.write_text(json.dumps(meta))
    backend = DuckDBBackend(spark)
    try:
        input_sdf = prepared_input(backend, lake, cfg.linkage).table
        with caplog.at_level(logging.INFO, logger="cdi.silver.linkage.stage"):
            _, saved, trained = train_or_load(backend, input_sdf, cfg.linkage, cfg.lake_root, 100, "r7", False, datetime(2024, 5, 1))
        _, again, retrained = train_or_load(backend, input_sdf, cfg.linkage, cfg.lake_root, 100, "r8", False, datetime(2024, 5, 2))
    finally:
        backend.close()
    assert trained and saved.version == 2 and "older procedure" in caplog.text
    assert not retrained and again.version == 2


def test_em_trains_on_a_sample_of_the_pairs_when_a_rule_pairs_more_than_em_max_pairs(linked, spark):
    cfg, lake = copy_of(linked, spark, "em_sample")
    # below the config's minimum (model_copy does not validate): the test data's rules pair a few hundred
    # the records carry no national ids, so that rule would be skipped (and the linker whose EM
    # sessions are read here rebuilt); derived from the sources' mappings, it would not be there
    rules = [r for r in cfg.linkage.training_blocking_rules if r != ["national_id"]]
    small = cfg.model_copy(
        update={"linkage": cfg.linkage.model_copy(update={"em_max_pairs": 50, "training_blocking_rules": rules})}
    )
    backend = DuckDBBackend(spark)
    try:
        input_sdf = prepared_input(backend, lake, small.linkage).table
        linker = train(input_sdf, small.linkage, records=lake.read("silver/records").count(), dialect=backend.dialect)
        sessions = linker._em_training_sessions
        assert len(sessions) == len(small.linkage.training_blocking_rules)
        sampled = [s._sample_info for s in sessions]
        assert any(info["sampling_applied"] for info in sampled), sampled
        assert all(info["max_pairs"] == 50 for info in sampled)
        applied = [info for info in sampled if info["sampling_applied"]]
        assert all(info["expected_pairs_after_sampling"] <= 60 for info in applied), applied
    finally:
        backend.close()


def test_linkage_finds_messy_matches_but_keeps_twins_and_generations_apart(linked):
    found = cluster_pairs(entity_ids(linked["lake"]))
    truth = true_pairs(linked["truth"])
    precision = len(found & truth) / len(found)
    recall = len(found & truth) / len(truth)
    assert precision >= 0.95, precision
    assert recall >= 0.9, recall


def test_explain_writes_the_waterfall_of_a_pair(linked, tmp_path):
    lake = linked["lake"]
    pair = lake.read("silver/pairs").orderBy("match_probability").first()
    out = tmp_path / "why" / "pair.html"
    result = explain_pair(linked["cfg"], lake, pair["record_key_l"], pair["record_key_r"], out)
    html = out.read_text()
    assert str(result) == str(out)
    assert "Final score" in html and "Prior" in html and "date_of_birth" in html
    assert result.match_probability == pytest.approx(pair["match_probability"], abs=1e-9)
    with pytest.raises(KeyError, match="nope:1"):
        explain_pair(linked["cfg"], lake, pair["record_key_l"], "nope:1", tmp_path / "x.html")


def test_explain_scores_a_pair_whose_record_lacks_a_birth_date_email_and_phone(linked, spark, tmp_path):
    """Most scored pairs have a side without a birth date; Splink once got it as an untyped NULL."""
    from pyspark.sql import functions as F

    cfg, lake = copy_of(linked, spark, "explain-nulls")
    pair = lake.read("silver/pairs").orderBy(F.desc("match_probability")).first()
    records = lake.read("silver/records")
    blank = F.col("record_key") == pair["record_key_l"]
    records = records.select(
        *[F.when(blank, F.lit(None).cast(records.schema[c].dataType)).otherwise(F.col(c)).alias(c)
          if c in ("date_of_birth", "email", "phone") else F.col(c) for c in records.columns]
    ).localCheckpoint()
    lake.write("silver/records", records, mode="overwrite")
    result = explain_pair(cfg, lake, pair["record_key_l"], pair["record_key_r"], tmp_path / "pair.html")
    assert 0 < result.match_probability < 1
    assert result.match_weight < pair["match_weight"]  # three agreements fewer than the run saw
    assert "date_of_birth" in (tmp_path / "pair.html").read_text()


# --------------------------------------------------------------------------- Spark parity


def test_spark_scores_the_same_pairs_as_duckdb_with_the_same_model(linked, spark):
    cfg, lake = copy_of(linked, spark, "parity")
    duck_pairs, duck_ids = scored_pairs(lake), entity_ids(lake)
    figures = run_link(lake, with_backend(cfg, "spark").linkage, "r3")
    assert figures.backend == "spark" and figures.trained is False
    spark_pairs = scored_pairs(lake)
    assert set(spark_pairs) == set(duck_pairs)
    assert max(abs(spark_pairs[k] - duck_pairs[k]) for k in duck_pairs) < 1e-6
    assert entity_ids(lake) == duck_ids  # same clusters, so every customer keeps its id


_KILLED_LINK = """
import os, signal, sys
from cdi.config import load_config
from cdi.lake import Lake
from cdi.spark import SparkSettings, build_session
import cdi.silver.linkage.stage as stage

cfg = load_config(sys.argv[1])
spark = build_session(SparkSettings(master="local[1]", shuffle_partitions=2, conf={"spark.ui.enabled": "false"}))
# the id events have landed; die before the entity map they describe is written
stage.write_entity_map = lambda tx, entity_map: os.kill(os.getpid(), signal.SIGKILL)
stage.run_link(Lake(spark, cfg.lake_root, job="link", run_id="dead-run"), cfg.linkage, "dead-run")
"""


def test_a_link_run_killed_between_id_events_and_entity_map_is_rolled_back_by_the_next_run(linked, spark, tmp_path):
    import subprocess
    import sys

    root = tmp_path / "lake"
    shutil.copytree(linked["root"], root)
    cfg = env_config(tmp_path, root, backend="duckdb", u_max_pairs=300000)
    lake = Lake(spark, str(root), job="test")
    records = lake.read("silver/records")
    # a fifth of the records leave the sources: their customers retire, so the run has id events
    lake.write("silver/records", records.where("hash(record_key) % 5 != 0"), mode="overwrite")
    map_before = entity_ids(lake)

    done = subprocess.run([sys.executable, "-c", _KILLED_LINK, str(cfg.config_file)], capture_output=True, text=True, timeout=600)
    assert done.returncode == -9, done.stderr[-3000:]
    assert lake.read("silver/id_history").where("run_id = 'dead-run'").count() > 0  # half landed
    assert entity_ids(lake) == map_before

    figures = run_link(lake, cfg.linkage, "r3")

    history = lake.read("silver/id_history")
    assert history.where("run_id = 'dead-run'").count() == 0
    assert figures.id_events.get("retired", 0) > 0
    assert history.where("run_id = 'r3'").count() == sum(figures.id_events.values())
    assert set(entity_ids(lake)) == {r["record_key"] for r in lake.read("silver/records").select("record_key").collect()}
    markers = lake.read("_cdi/transactions").where("state = 'rolled_back'").select("run_id").collect()
    assert [m["run_id"] for m in markers] == ["dead-run"]


def test_clusters_above_the_configured_size_are_counted_and_listed_with_examples(spark):
    from cdi.progress import RunSummary
    from cdi.silver.linkage.stage import oversized_clusters

    sizes = {"c1": 4, "c2": 2, "c3": 7}
    rows = [(f"{c}:{i}", c) for c, n in sizes.items() for i in range(n)]
    clusters = spark.createDataFrame(rows, "record_key string, cluster_id string")
    total, largest = oversized_clusters(clusters, max_size=3, listed=1)
    assert total == 2
    assert largest == [{"cluster_id": "c3", "size": 7, "examples": ["c3:0", "c3:1", "c3:2", "c3:3", "c3:4"]}]
    assert oversized_clusters(clusters, max_size=7) == (0, [])

    summary = RunSummary(run_id="r1")
    summary.warn("link: 2 cluster(s) hold more than linkage.max_cluster_size=3 records")
    assert summary.format().splitlines()[-1] == "warning: link: 2 cluster(s) hold more than linkage.max_cluster_size=3 records"


# --------------------------------------------------------------------------- cross-references


def test_a_cross_reference_joins_records_the_model_cannot_and_a_steward_separation_still_wins(linked, spark):
    from cdi.progress import RunSummary
    from cdi.silver.steward import apply_decisions

    cfg, lake = copy_of(linked, spark, "xref")
    rows = [r.asDict() for r in lake.read("silver/records").collect()]
    target = sorted(k for k in linked["truth"] if k.startswith("crm:"))[0]
    # billing knows only an account holder's surname-less company contact: no model evidence at all
    billing = [
        {"record_key": "billing:B1", "source": "billing", "source_record_id": "B1", "first_name": "Accounts",
         "first_name_std": "accounts", "last_name": "Payable", "last_name_std": "payable",
         "reference_keys": [target]},
        {"record_key": "billing:B2", "source": "billing", "source_record_id": "B2", "first_name": "Zed",
         "first_name_std": "zed", "last_name": "Nobody", "last_name_std": "nobody", "reference_keys": ["crm:NO-SUCH"]},
    ]  # fmt: skip
    lake.write("silver/records", records_frame(spark, rows + billing), mode="overwrite", allow_new_columns=True)
    summary = RunSummary(run_id="x1")
    figures = run_link(lake, cfg.linkage, "x1", summary=summary)

    ids = entity_ids(lake)
    assert ids["billing:B1"] == ids[target]
    assert ids["billing:B2"] not in {ids[k] for k in ids if k != "billing:B2"}
    assert (figures.cross_references, figures.dangling_references) == (1, 1)
    assert any("1 from billing to crm (e.g. billing:B2 -> crm:NO-SUCH)" in w for w in summary.warnings)
    pairs = lake.read("silver/pairs")
    pair = tuple(sorted(["billing:B1", target]))
    flagged = pairs.where("cross_reference").select("record_key_l", "record_key_r", "match_probability").collect()
    assert [tuple(r) for r in flagged] == [(*pair, 1.0)]
    assert pairs.where("not cross_reference").count() == figures.pairs  # the model's own pairs, unchanged

    # a steward who says the two are different people overrules the reference
    decisions = spark.createDataFrame(
        [("d1", "separate", *pair, None, None, None, None, "steward", "not the same", "cli", datetime(2026, 1, 1))],
        schema.STEWARD_DECISIONS_SCHEMA,
    )
    clusters = lake.read("silver/entity_map").selectExpr("record_key", "source", "source_record_id", "customer_id as cluster_id")
    separated, report = apply_decisions(clusters, pairs, decisions, cfg.linkage.cluster_threshold)
    after = {r["record_key"]: r["cluster_id"] for r in separated.collect()}
    assert report.separations == 1 and after["billing:B1"] != after[target]


def test_explain_says_when_a_cross_reference_links_the_pair(linked, spark, tmp_path):
    cfg, lake = copy_of(linked, spark, "xref_explain")
    rows = [r.asDict() for r in lake.read("silver/records").collect()]
    target = sorted(k for k in linked["truth"] if k.startswith("shop:"))[0]
    extra = {"record_key": "billing:B9", "source": "billing", "source_record_id": "B9", "first_name": "Ann",
             "first_name_std": "ann", "reference_keys": [target]}  # fmt: skip
    lake.write("silver/records", records_frame(spark, [*rows, extra]), mode="overwrite", allow_new_columns=True)
    billing = {"name": "billing", "kind": "customers", "format": "csv", "path": "/in/billing", "id_columns": ["id"],
               "references": [{"column": "shop_customer", "source": "shop"}], "mapping": {"first_name": "fn"}}  # fmt: skip
    shop = {"name": "shop", "kind": "customers", "format": "csv", "path": "/in/shop", "id_columns": ["id"],
            "mapping": {"first_name": "fn"}}  # fmt: skip
    cfg = cfg.model_copy(update={"sources": [SourceConfig(**s) for s in (shop, billing)]})
    out = explain_pair(cfg, lake, "billing:B9", target, tmp_path / "x.html")
    assert out.cross_reference == f"billing:B9 carries the id of {target} (source billing, column shop_customer)"
    assert "Linked by cross-reference" in (tmp_path / "x.html").read_text()
    plain = explain_pair(cfg, lake, target, sorted(k for k in linked["truth"] if k.startswith("crm:"))[0], tmp_path / "y.html")
    assert plain.cross_reference is None


def test_a_training_rule_whose_em_drives_a_probability_to_zero_is_skipped_not_fatal(spark, tmp_path, caplog):
    """On this data EM over the e-mail rule sets a level's m to 0, which Splink refuses: the run
    drops that rule's estimates with a warning and the other rules train the model."""
    root = tmp_path / "lake"
    cfg = env_config(tmp_path, root, backend="duckdb", u_max_pairs=300000)
    rows, truth = messy_records(persons=160, seed=23)
    lake = Lake(spark, str(root), job="test", run_id="r0")
    lake.write("silver/records", records_frame(spark, rows), mode="overwrite")
    with caplog.at_level(logging.WARNING, logger="cdi.silver.linkage.stage"):
        figures = run_link(lake, cfg.linkage, "r1")
    assert "expectation maximisation over its pairs failed" in caplog.text
    found, expected = cluster_pairs(entity_ids(lake)), true_pairs(truth)
    assert figures.trained and len(found & expected) / len(found) >= 0.9 and len(found & expected) / len(expected) >= 0.8
