"""The linkage model follows the data: comparisons and rules from what the customer sources map."""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path

import duckdb
import pytest
import yaml

from cdi.config import ConfigError, LinkageConfig, derive_linkage, load_config
from cdi.lake import Lake
from cdi.silver.linkage import model, run_link
from linkage_fixtures import messy_records, records_frame, true_pairs

ROOT = Path(__file__).resolve().parents[1]
LINKAGE_YAML = ROOT / "conf" / "linkage.yaml"


def env(tmp_path: Path, mapping: dict[str, str], linkage: str = "") -> Path:
    """An environment with one customer source mapping ``mapping`` and conf/linkage.yaml."""
    lines = "".join(f"      {k}: {v}\n" for k, v in mapping.items())
    path = tmp_path / "env.yaml"
    path.write_text(
        f"include: [{LINKAGE_YAML}]\nlake_root: {tmp_path / 'lake'}\n"
        "sources:\n  - name: crm\n    kind: customers\n    format: csv\n    path: /data/crm.csv\n"
        f"    id_columns: [id]\n    mapping:\n{lines}" + linkage,
        encoding="utf-8",
    )
    return path


NAMES = {"first_name": "fn", "last_name": "ln"}


def columns_of(cfg: LinkageConfig) -> set[str]:
    return {col for c in cfg.comparisons for col in (c.column, c.second_column) if col}


def rule_columns(rules) -> set[str]:
    return {col for r in rules for col in (r if isinstance(r, list) else [r])}


def test_a_mapped_national_id_gets_a_comparison_a_blocking_rule_and_a_training_rule(tmp_path):
    cfg = load_config(env(tmp_path, {**NAMES, "national_id": "ssn", "date_of_birth": "dob"})).link_model

    nid = [c for c in cfg.comparisons if c.column == "national_id"]
    assert [c.kind for c in nid] == ["identifier"]
    assert ["national_id"] in cfg.blocking_rules
    assert ["national_id"] in cfg.training_blocking_rules
    assert cfg.attributes == ["date_of_birth", "first_name", "last_name", "national_id"]


def test_attributes_no_source_maps_get_no_comparison_and_no_rules(tmp_path, caplog):
    path = env(tmp_path, {**NAMES, "address_line1": "street", "postcode": "pc", "phone": "tel"})
    with caplog.at_level(logging.INFO, logger="cdi.config"):
        cfg = load_config(path).link_model

    assert columns_of(cfg) == {"first_name_std", "last_name_std", "address_std", "postcode_std", "phone_std"}
    used = rule_columns(cfg.blocking_rules + cfg.training_blocking_rules + cfg.deterministic_rules)
    assert not used & {"date_of_birth", "email_std", "email_user", "national_id", "city_std"}
    # the birth-date and e-mail training rules are dropped, logged; a phone rule makes the second
    assert cfg.training_blocking_rules == [["first_name_std", "last_name_std"], ["phone_std"]]
    assert "rule ['date_of_birth'] dropped" in caplog.text and "[phone_std] added" in caplog.text
    # an address without birth dates counts when the given names agree
    address = next(c for c in cfg.comparisons if c.kind == "address")
    assert address.date_of_birth_column is None and address.given_name_column == "first_name_std"


def test_the_derived_model_is_stable_when_derived_again(tmp_path):
    cfg = load_config(env(tmp_path, {**NAMES, "email": "mail", "date_of_birth": "dob"})).link_model
    again = derive_linkage(LinkageConfig(**cfg.model_dump()), cfg.attributes or [])
    assert again == cfg


def test_a_mapped_identifier_without_a_configured_comparison_gets_one():
    own = LinkageConfig(
        comparisons=[{"kind": "forename_surname", "column": "first_name_std", "second_column": "last_name_std"}],
        blocking_rules=[["last_name_std"]],
        training_blocking_rules=[["first_name_std"], ["last_name_std"]],
        deterministic_rules=[["first_name_std", "last_name_std"]],
    )
    cfg = derive_linkage(own, {"first_name", "last_name", "national_id"})
    assert [(c.name, c.kind) for c in cfg.comparisons][-1] == ("national_id", "identifier")
    assert cfg.blocking_rules == [["last_name_std"], ["national_id"]]


def test_derive_false_keeps_the_configured_model(tmp_path):
    cfg = load_config(env(tmp_path, NAMES, "linkage:\n  derive: false\n"))
    assert cfg.link_model == cfg.linkage and cfg.link_model.attributes is None


def test_sources_that_leave_too_few_training_rules_fail_at_load(tmp_path):
    own = (
        "linkage:\n  training_blocking_rules: [[date_of_birth], [email_std]]\n"
        "  deterministic_rules: [[email_std]]\n"
    )
    with pytest.raises(ConfigError, match="training_blocking_rules"):
        load_config(env(tmp_path, NAMES, own))


def _levels(c) -> list[str]:
    levels = model.comparison(c).create_comparison_dict("duckdb")["comparison_levels"]
    return ["true" if lv["sql_condition"] == "ELSE" else lv["sql_condition"] for lv in levels]


@pytest.mark.parametrize(
    ("left", "right", "level"),
    [
        ("AB 12-34-56 C", "ab123456c", 1),  # the same id written with spaces, dashes, lower case
        ("1234567", "1234667", 2),  # one typo
        ("1234567", "1243567", 2),  # two adjacent digits swapped
        ("1234567", "7654321", 3),  # another person's id
        (None, "1234567", 0),  # a source without national ids is neutral (null level)
    ],
)
def test_national_ids_are_normalised_and_compared_exact_one_typo_or_different(spark, left, right, level):
    from cdi.silver.standardise import standardise_national_id

    df = spark.createDataFrame([(left, right)], "l string, r string")
    row = df.select(standardise_national_id(df.l).alias("l"), standardise_national_id(df.r).alias("r")).first()
    nid = next(c for c in LinkageConfig(**yaml.safe_load(LINKAGE_YAML.read_text())["linkage"]).comparisons if c.column == "national_id")
    con = duckdb.connect()
    matched = [
        i
        for i, cond in enumerate(_levels(nid))
        if con.execute(f"select {cond} from (select ?::varchar as national_id_l, ?::varchar as national_id_r)", [row.l, row.r]).fetchone()[0]
    ]
    assert matched[0] == level


SOURCE_WITHOUT_DATES = "web"


def test_a_record_missing_birth_date_and_email_links_to_its_true_duplicate(spark, tmp_path):
    """One source has no birth dates or e-mails: its records still join their duplicates elsewhere."""
    rows, truth = messy_records(persons=160, seed=5)
    for r in rows:
        if r["source"] == SOURCE_WITHOUT_DATES:
            r.update(date_of_birth=None, dob_year=None, email=None, email_std=None, email_user=None)
    anna = {
        "first_name": "Anna", "last_name": "Kowalczyk", "full_name": "Anna Kowalczyk", "first_name_std": "anna",
        "last_name_std": "kowalczyk", "full_name_std": "anna kowalczyk", "given_name_canonical": "anna",
        "gender": "F", "phone": "+447700900123", "phone_std": "+447700900123", "address_line1": "12 Elm Road",
        "address_std": "12 elm road", "city": "Leeds", "city_std": "leeds", "postcode": "LS1 4AB", "postcode_std": "ls14ab",
        "country": "GB",
    }  # fmt: skip
    full = dict(anna, record_key="crm:anna", source="crm", source_record_id="anna", date_of_birth=date(1984, 3, 9),
                dob_year=1984, email="anna.k@example.com", email_std="anna.k@example.com", email_user="anna.k")  # fmt: skip
    sparse = dict(anna, record_key=f"{SOURCE_WITHOUT_DATES}:anna", source=SOURCE_WITHOUT_DATES, source_record_id="anna")
    sparse.update(first_name="Ana", first_name_std="ana", full_name_std="ana kowalczyk", address_std="12 elm rd")
    rows += [full, sparse]
    truth.update({full["record_key"]: "anna", sparse["record_key"]: "anna"})

    attributes = {"first_name", "last_name", "date_of_birth", "gender", "email", "phone", "address_line1", "city", "postcode"}
    base = LinkageConfig(**yaml.safe_load(LINKAGE_YAML.read_text())["linkage"])
    cfg = derive_linkage(base.model_copy(update={"backend": "duckdb", "u_max_pairs": 300000}), attributes)
    lake = Lake(spark, str(tmp_path / "lake"), job="test", run_id="r0")
    lake.write("silver/records", records_frame(spark, rows), mode="overwrite")
    run_link(lake, cfg, "r1")

    ids = {r["record_key"]: r["customer_id"] for r in lake.read("silver/entity_map").collect()}
    assert ids["crm:anna"] == ids[f"{SOURCE_WITHOUT_DATES}:anna"]
    involving = {p for p in true_pairs(truth) if SOURCE_WITHOUT_DATES in (p[0].split(":")[0], p[1].split(":")[0])}
    found = {p for p in involving if ids[p[0]] == ids[p[1]]}
    assert len(found) / len(involving) >= 0.85

    # the saved model says what it was built from; other attributes retrain it
    saved = model.ModelStore(str(tmp_path / "lake")).latest()
    assert saved is not None and saved.meta["attributes"] == sorted(attributes)
    assert run_link(lake, cfg, "r2").trained is False
    assert run_link(lake, derive_linkage(cfg, attributes | {"region"}), "r3").trained is True
