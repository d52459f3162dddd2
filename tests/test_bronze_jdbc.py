"""JDBC sources against a real, throwaway PostgreSQL server read with Debian's driver."""

from __future__ import annotations

import textwrap

import psycopg
import pytest
from bronze_fixtures import bronze_rows, postgres_server  # noqa: F401  (fixture)
from cdi.bronze import LEDGER_TABLE, QUARANTINE_TABLE, run_ingest
from cdi.config import load_config
from cdi.lake import Lake

pytestmark = pytest.mark.postgres


def execute(server, *statements: str) -> None:
    with psycopg.connect(server.dsn) as conn:
        for statement in statements:
            conn.execute(statement)
        conn.commit()


def jdbc_config(tmp_path, relation: str, watermark: str | None = None):
    """A config file whose password comes from the environment, as in production."""
    path = tmp_path / "env.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            lake_root: {tmp_path / 'lake'}
            ingest: {{max_quarantine_share: 0.5}}
            sources:
              - name: accounts
                kind: customers
                format: jdbc
                jdbc:
                  url: ${{TEST_PG_URL}}
                  {relation}
                  user: cdi
                  password: ${{TEST_PG_PASSWORD}}
                  watermark_column: {watermark or 'null'}
                id_columns: [id]
            """
        )
    )
    return load_config(path)


def test_full_reread_adds_only_new_and_changed_rows(spark, tmp_path, postgres_server, monkeypatch):  # noqa: F811  (fixture)
    monkeypatch.setenv("TEST_PG_URL", postgres_server.jdbc_url)
    monkeypatch.setenv("TEST_PG_PASSWORD", postgres_server.password)
    execute(
        postgres_server,
        "DROP TABLE IF EXISTS full_accounts",
        "CREATE TABLE full_accounts (id integer, name text, balance numeric(10,2))",
        "INSERT INTO full_accounts VALUES (1, 'Ann', 10.50), (2, 'Bob', 0), (3, 'Cy', NULL), (NULL, 'No id', 1)",
    )
    cfg = jdbc_config(tmp_path, "table: full_accounts")
    lake = Lake(spark, cfg.lake_root, job="ingest")
    first = run_ingest(spark, cfg, lake, "r1")
    assert [(r.rows_read, r.rows_bronze, r.rows_quarantined) for r in first] == [(4, 3, 1)]
    bronze = lake.read("bronze/accounts")
    assert bronze.schema["balance"].dataType.simpleString() == "decimal(10,2)"
    assert bronze.select("_source_file").first()[0] == f"{postgres_server.jdbc_url}#full_accounts"

    execute(postgres_server, "UPDATE full_accounts SET name = 'Robert' WHERE id = 2", "INSERT INTO full_accounts VALUES (4, 'Di', 2)")
    second = run_ingest(spark, cfg, lake, "r2")
    assert [(r.rows_read, r.rows_bronze, r.rows_quarantined, r.rows_unchanged) for r in second] == [(5, 2, 0, 3)]
    assert bronze_rows(lake, "accounts", "id", "name") == [(1, "Ann"), (2, "Bob"), (2, "Robert"), (3, "Cy"), (4, "Di")]
    assert lake.read(QUARANTINE_TABLE).count() == 1


def test_incremental_read_starts_at_the_high_watermark(spark, tmp_path, postgres_server, monkeypatch):  # noqa: F811  (fixture)
    monkeypatch.setenv("TEST_PG_URL", postgres_server.jdbc_url)
    monkeypatch.setenv("TEST_PG_PASSWORD", postgres_server.password)
    execute(
        postgres_server,
        "DROP TABLE IF EXISTS inc_accounts",
        "CREATE TABLE inc_accounts (id integer, name text, modified timestamp(6))",
        "INSERT INTO inc_accounts VALUES (1, 'Ann', '2024-01-01 10:00:00'), (2, 'Bob', '2024-01-02 10:00:00'),"
        " (3, 'Cy', '2024-01-03 10:00:00.123456')",
    )
    cfg = jdbc_config(tmp_path, 'query: "SELECT id, name, modified FROM inc_accounts"', watermark="modified")
    lake = Lake(spark, cfg.lake_root, job="ingest")
    first = run_ingest(spark, cfg, lake, "r1")
    assert [(r.rows_read, r.rows_bronze, r.watermark) for r in first] == [(3, 3, "2024-01-03 10:00:00.123456")]
    assert lake.read("bronze/accounts").schema["modified"].dataType.simpleString() == "timestamp"
    assert lake.read("bronze/accounts").select("_source_file").first()[0] == f"{postgres_server.jdbc_url}#query"

    execute(
        postgres_server,
        # committed late with the same timestamp as the last row read: must not be missed
        "INSERT INTO inc_accounts VALUES (4, 'Di', '2024-01-03 10:00:00.123456'), (5, 'Ed', '2024-01-04 08:00:00')",
        # an old row changed without touching the watermark column: outside an incremental read
        "UPDATE inc_accounts SET name = 'Annie' WHERE id = 1",
    )
    second = run_ingest(spark, cfg, lake, "r2")
    assert [(r.rows_read, r.rows_bronze, r.rows_unchanged, r.watermark) for r in second] == [
        (3, 2, 1, "2024-01-04 08:00:00")
    ]
    assert bronze_rows(lake, "accounts", "id", "name") == [(1, "Ann"), (2, "Bob"), (3, "Cy"), (4, "Di"), (5, "Ed")]
    third = run_ingest(spark, cfg, lake, "r3")
    assert [(r.rows_read, r.rows_bronze, r.rows_unchanged) for r in third] == [(1, 0, 1)]
    watermarks = [r[0] for r in lake.read(LEDGER_TABLE).orderBy("ingested_at").select("watermark").collect()]
    assert watermarks == ["2024-01-03 10:00:00.123456", "2024-01-04 08:00:00", "2024-01-04 08:00:00"]


def test_the_watermark_subquery_quotes_values_and_checks_the_column():
    from cdi.bronze.readers.jdbc import relation
    from cdi.config import JdbcConfig
    from cdi.errors import ConfigError

    jdbc = JdbcConfig(url="jdbc:postgresql://db/crm", table="accounts", watermark_column="updated_at")
    sql = relation(jdbc, "2024-01-05 10:00:00' OR '1'='1")
    assert sql.endswith("WHERE s.updated_at >= '2024-01-05 10:00:00'' OR ''1''=''1') cdi_src")
    bad = jdbc.model_copy(update={"watermark_column": "updated_at; DROP TABLE accounts"})
    with pytest.raises(ConfigError, match="not a plain identifier"):
        relation(bad, None)
