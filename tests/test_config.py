"""Config errors name the file, the key path and what was expected; they fail before Spark."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from cdi.config import ConfigError, load_config

SOURCE = """
sources:
  - name: crm
    kind: customers
    format: csv
    path: data/crm/*.csv
    id_columns: [contact_id]
    mapping:
      first_name: first_name
      date_of_birth: {column: dob, formats: ["yyyy-MM-dd"]}
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def env_file(tmp_path: Path, body: str) -> Path:
    write(tmp_path / "conf" / "sources" / "crm.yaml", SOURCE)
    return write(tmp_path / "conf" / "env.yaml", body)


def test_valid_config_merges_includes_and_resolves_paths(tmp_path, monkeypatch):
    monkeypatch.setenv("LAKE", "lakes/one")
    cfg = load_config(env_file(tmp_path, "include: [sources/crm.yaml]\nlake_root: ${LAKE}\n"))
    assert cfg.lake_root == str((tmp_path / "conf" / "lakes" / "one").resolve())
    crm = cfg.source("crm")
    assert crm.path == str((tmp_path / "conf" / "data" / "crm" / "*.csv").resolve())
    assert crm.column_spec("date_of_birth").formats == ["yyyy-MM-dd"]
    assert crm.column_spec("first_name").column == "first_name"
    assert crm.origin.endswith("crm.yaml")


def test_env_default_used_when_variable_unset(tmp_path, monkeypatch):
    monkeypatch.delenv("CDI_NOPE", raising=False)
    cfg = load_config(env_file(tmp_path, "lake_root: ${CDI_NOPE:-/x/lake}\n"))
    assert cfg.lake_root == "/x/lake"


def test_missing_environment_variable_names_file_and_key(tmp_path, monkeypatch):
    monkeypatch.delenv("CDI_SECRET_DSN", raising=False)
    path = env_file(tmp_path, "lake_root: /l\npropagation:\n  postgres:\n    dsn: ${CDI_SECRET_DSN}\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    msg = str(err.value)
    assert "env.yaml" in msg and "propagation.postgres.dsn" in msg and "CDI_SECRET_DSN" in msg


def test_unknown_key_names_file_and_key_path(tmp_path):
    path = env_file(tmp_path, "lake_root: /l\nlinkage:\n  bakcend: duckdb\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    msg = str(err.value)
    assert "env.yaml" in msg and "linkage.bakcend" in msg and "unknown key" in msg


def test_wrong_type_names_file_key_and_expectation(tmp_path):
    path = env_file(tmp_path, "lake_root: /l\nspark:\n  shuffle_partitions: lots\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    msg = str(err.value)
    assert "spark.shuffle_partitions" in msg and "integer" in msg and "'lots'" in msg


def test_missing_required_value(tmp_path):
    path = env_file(tmp_path, "name: x\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert "lake_root" in str(err.value) and "required" in str(err.value)


def test_error_in_included_source_names_the_included_file(tmp_path):
    write(tmp_path / "conf" / "sources" / "bad.yaml", SOURCE.replace("format: csv", "format: xlsx"))
    path = write(tmp_path / "conf" / "env.yaml", "include: [sources/bad.yaml]\nlake_root: /l\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    msg = str(err.value)
    assert "bad.yaml" in msg and "sources[0].format" in msg and "'xlsx'" in msg


def test_unknown_mapping_target_is_rejected(tmp_path):
    write(tmp_path / "conf" / "sources" / "crm.yaml", SOURCE.replace("first_name: first_name", "forename: first_name"))
    path = write(tmp_path / "conf" / "env.yaml", "include: [sources/crm.yaml]\nlake_root: /l\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert "forename" in str(err.value) and "crm.yaml" in str(err.value)


def test_fact_source_must_reference_a_customer_source(tmp_path):
    body = """
    lake_root: /l
    sources:
      - name: orders
        kind: orders
        format: json
        path: o.jsonl
        id_columns: [order_id]
        customer_ref: {column: account_id, source: webshop}
    """
    with pytest.raises(ConfigError) as err:
        load_config(env_file(tmp_path, body))
    assert "webshop" in str(err.value)


def test_include_cycle_and_missing_include_are_reported(tmp_path):
    write(tmp_path / "a.yaml", "include: [b.yaml]\nlake_root: /l\n")
    write(tmp_path / "b.yaml", "include: [a.yaml]\n")
    with pytest.raises(ConfigError, match="include cycle"):
        load_config(tmp_path / "a.yaml")
    write(tmp_path / "c.yaml", "include: [nope.yaml]\nlake_root: /l\n")
    with pytest.raises(ConfigError, match="nope.yaml.*not found.*c.yaml"):
        load_config(tmp_path / "c.yaml")


def test_invalid_yaml_names_the_file(tmp_path):
    path = write(tmp_path / "x.yaml", "lake_root: [unclosed\n")
    with pytest.raises(ConfigError, match="x.yaml: not valid YAML"):
        load_config(path)


def test_cli_config_error_exits_2_before_spark(tmp_path, capsys):
    from cdi.cli import main

    path = env_file(tmp_path, "lake_root: /l\nspark:\n  master: 3\n  bogus: 1\n")
    assert main(["ingest", "--conf", str(path)]) == 2
    err = capsys.readouterr().err
    assert "configuration error" in err and "spark.bogus" in err


def test_shipped_demo_config_is_valid_and_writes_outside_the_checkout(monkeypatch, tmp_path):
    for var in ("CDI_LAKE_ROOT", "CDI_DEMO_DATA", "CDI_OUTBOX_DIR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    repo = Path(__file__).resolve().parents[1]
    cfg = load_config(repo / "conf" / "demo.yaml")
    outputs = [cfg.lake_root, cfg.demo.out, cfg.propagation.outbox_dir, *(s.path for s in cfg.sources)]
    assert all(Path(p).is_relative_to(tmp_path / "cdi-demo") for p in outputs), outputs
    assert cfg.lake_root == str(tmp_path / "cdi-demo" / "lake")


def test_a_mapping_expression_that_does_not_parse_or_gives_two_ways_fails_at_load(tmp_path):
    for mapping, expected in [
        ("{expr: \"concat_ws(' ', a,\"}", r"mapping.first_name.*is not a Spark SQL expression"),
        ("{expr: 'select a from t'}", r"mapping.first_name.*not a query"),
        ("{column: a, expr: 'upper(b)'}", r"mapping.first_name.*exactly one of 'column', 'columns' or 'expr'"),
    ]:
        conf = tmp_path / "bad.yaml"
        conf.write_text(
            f"lake_root: {tmp_path / 'lake'}\nsources:\n  - name: crm\n    kind: customers\n    format: csv\n"
            f"    path: {tmp_path}/*.csv\n    id_columns: [id]\n    mapping:\n      first_name: {mapping}\n"
        )
        with pytest.raises(ConfigError, match=expected):
            load_config(conf)


def test_a_misspelt_reader_option_and_mapping_target_are_reported_together_with_did_you_mean(tmp_path):
    bad = SOURCE.replace("first_name: first_name", "frist_name: first_name").replace(
        "id_columns: [contact_id]", 'id_columns: [contact_id]\n    options: {delimeter: ";", header: true}'
    )
    write(tmp_path / "conf" / "sources" / "crm.yaml", bad)
    path = write(tmp_path / "conf" / "env.yaml", "include: [sources/crm.yaml]\nlake_root: /l\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    msg = str(err.value)
    assert "crm.yaml" in msg
    assert "unknown option 'delimeter' for format 'csv' (did you mean 'delimiter'?)" in msg, msg
    assert "unknown target 'frist_name'" in msg and "did you mean 'first_name'?" in msg, msg


@pytest.mark.parametrize(
    "fmt, options, expected",
    [
        ("csv", {"Delimiter": ";"}, "did you mean 'delimiter'?"),
        ("json", {"multiline": "true"}, "did you mean 'multiLine'?"),
        ("parquet", {"mergeSchema": "true"}, "known: pathGlobFilter, recursiveFileLookup"),
        ("delta", {"versionAsOf": 3}, "format 'delta' takes no options"),
    ],
)  # fmt: skip
def test_reader_options_are_typed_per_format(fmt, options, expected):
    from cdi.config import SourceConfig

    with pytest.raises(ValueError, match="unknown option") as err:
        SourceConfig(name="s", kind="customers", format=fmt, path="/data/s", options=options, id_columns=["id"])
    assert expected in str(err.value)
    # the options the shipped readers and Spark document pass, and JDBC passes any (driver properties)
    SourceConfig(name="s", kind="customers", format="csv", path="/d", id_columns=["id"],
                 options={"delimiter": ";", "header": True, "encoding": "UTF-8", "pathGlobFilter": "*.csv", "nullValue": "-"})
    SourceConfig(name="s", kind="customers", format="jdbc", jdbc={"url": "jdbc:postgresql://h/db", "table": "t"},
                 options={"fetchsize": 1000, "sslmode": "require"}, id_columns=["id"])


@pytest.mark.parametrize(
    ("references", "kind", "message"),
    [
        ("[{column: crm_id, source: nowhere}]", "customers", "references\\[\\].source 'nowhere' is not a customer source"),
        ("[{column: [a, b], source: crm}]", "customers", "gives 2 columns, source 'crm' has 1 id column"),
        ("[{column: crm_id, source: crm}]", "orders", "'references' link customer records to each other"),
    ],
)
def test_a_cross_reference_must_name_a_customer_source_and_fit_its_id(tmp_path, references, kind, message):
    fact = "customer_ref: {column: crm_id, source: crm}" if kind == "orders" else ""
    body = f"""
    lake_root: /l
    sources:
      - name: crm
        kind: customers
        format: csv
        path: crm.csv
        id_columns: [id]
        mapping: {{first_name: fn}}
      - name: billing
        kind: {kind}
        format: csv
        path: billing.csv
        id_columns: [id]
        references: {references}
        {fact}
    """
    with pytest.raises(ConfigError, match=message):
        load_config(env_file(tmp_path, body))
