"""Secrets scan: a password or DSN never appears in an error or a log line; errors name the key.

Every test uses a password with a space and a recognisable marker, and looks for the marker in
the exception text, stderr and every captured log record.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import textwrap

import psycopg
import pytest
from bronze_fixtures import start_postgres, stop_postgres
from cdi import errors
from cdi.cli import main
from cdi.config import PostgresTarget, load_config
from cdi.gold.propagation import connect, conninfo
from cdi.redaction import Redactor, is_secret_name

MARKER = "MARK3R-x9q"
PASSWORD = f"pa ss '{MARKER}' \\end"


def write_conf(tmp_path, body: str):
    path = tmp_path / "env.yaml"
    path.write_text(f"lake_root: {tmp_path / 'lake'}\n" + textwrap.dedent(body), encoding="utf-8")
    return str(path)


def scanned(*texts: str, caplog) -> None:
    logged = [r.getMessage() + (r.exc_text or "") for r in caplog.records]
    for text in [*texts, *logged]:
        assert MARKER not in text and "pa ss" not in text, text


def test_secret_names_cover_keys_and_variables():
    assert all(map(is_secret_name, ["password", "CDI_PG_DSN", "api_key", "AWS_SECRET_ACCESS_KEY", "token"]))
    assert not any(map(is_secret_name, ["table", "host", "lake_root", "CDI_PG_HOST", "bypass"]))
    assert Redactor([PASSWORD]).text(f"login {PASSWORD} refused") == "login *** refused"


def test_a_dsn_that_does_not_parse_is_named_not_echoed(tmp_path, monkeypatch, capsys, caplog):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("CDI_PG_DSN", f"host=db.internal user=cdi password={PASSWORD}")
    conf = write_conf(tmp_path, "propagation:\n  postgres:\n    dsn: ${CDI_PG_DSN}\n")
    with pytest.raises(errors.ConfigError) as raised:
        load_config(conf)
    assert "propagation.postgres.dsn" in str(raised.value) and "not a valid libpq connection string" in str(raised.value)
    assert main(["-v", "gold", "--conf", conf]) == 2
    err = capsys.readouterr().err
    assert "propagation.postgres.dsn" in err
    scanned(str(raised.value), err, caplog=caplog)


@pytest.mark.parametrize(
    "body",
    [
        "spark:\n  shuffle_partitions: ${CDI_TEST_TOKEN}\n",  # a secret variable in a key that is not secret
        "propagation:\n  postgres:\n    host: db\n    password: ${CDI_TEST_TOKEN}\n    port: ${CDI_TEST_TOKEN}\n",
        "sources:\n  - name: crm\n    kind: customers\n    format: jdbc\n    id_columns: [id]\n"
        "    jdbc: {url: 'jdbc:postgresql://db/crm?user=cdi&password=${CDI_TEST_TOKEN}', table: t}\n",
    ],
    ids=["wrong-type", "port", "jdbc-url"],
)
def test_config_errors_never_show_a_secret_value(tmp_path, monkeypatch, capsys, caplog, body):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("CDI_TEST_TOKEN", PASSWORD)
    conf = write_conf(tmp_path, body)
    with pytest.raises(errors.ConfigError) as raised:
        load_config(conf)
    assert main(["-v", "ingest", "--conf", conf]) == 2
    err = capsys.readouterr().err
    assert "invalid configuration" in err
    scanned(str(raised.value), err, caplog=caplog)


def test_a_jdbc_url_with_a_password_is_refused_naming_the_key(tmp_path):
    conf = write_conf(
        tmp_path,
        "sources:\n  - name: crm\n    kind: customers\n    format: jdbc\n    id_columns: [id]\n"
        "    jdbc: {url: 'jdbc:postgresql://cdi:hunter2@db/crm', table: t}\n",
    )
    with pytest.raises(errors.ConfigError, match=r"sources\[0\]\.jdbc\.url: .*give it as jdbc.password") as raised:
        load_config(conf)
    assert "hunter2" not in str(raised.value)


def test_a_failing_run_masks_secrets_in_its_message_and_logs(tmp_path, monkeypatch, capsys, caplog):
    """A driver that echoes its connection string: the CLI and the debug traceback mask it."""
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("CDI_CRM_JDBC_PASSWORD", PASSWORD)
    conf = write_conf(
        tmp_path,
        "sources:\n  - name: crm\n    kind: customers\n    format: jdbc\n    id_columns: [id]\n"
        "    jdbc: {url: 'jdbc:postgresql://127.0.0.1:1/crm', table: t, user: cdi,"
        " password: '${CDI_CRM_JDBC_PASSWORD}'}\n",
    )

    def failing_run(cfg, **kwargs):
        logging.getLogger("cdi.bronze").info("connecting with password=%s", cfg.sources[0].jdbc.password)
        raise errors.SourceReadError(f"source 'crm': driver refused user=cdi password={cfg.sources[0].jdbc.password}")

    monkeypatch.setattr("cdi.pipeline.run", failing_run)
    assert main(["-v", "ingest", "--conf", conf]) == 1
    err = capsys.readouterr().err
    assert err.startswith("cdi: ingest failed: source 'crm': driver refused user=cdi password=***"), err
    assert any("password=***" in r.getMessage() for r in caplog.records)
    assert any("SourceReadError" in (r.exc_text or "") for r in caplog.records)
    scanned(err, caplog=caplog)
    assert "pa ss" not in repr(load_config(conf))


def test_an_unreachable_server_is_reported_without_the_password(caplog):
    caplog.set_level(logging.DEBUG)
    target = PostgresTarget(host="127.0.0.1", port=1, user="cdi", password=PASSWORD, dbname="postgres")
    with pytest.raises(errors.PropagationError, match=r"propagation\.postgres: cannot connect") as raised:
        connect(target)
    scanned(str(raised.value), repr(target), caplog=caplog)


def test_parameters_are_quoted_by_the_driver_and_win_over_the_dsn():
    target = PostgresTarget(dsn="host=db.internal dbname=crm user=other", user="cdi", password=PASSWORD)
    parsed = psycopg.conninfo.conninfo_to_dict(conninfo(target))
    assert parsed == {"host": "db.internal", "dbname": "crm", "user": "cdi", "password": PASSWORD}
    assert not PostgresTarget().enabled and PostgresTarget(host="db").enabled and target.enabled


@pytest.fixture(scope="module")
def server_with_spaced_password():
    workdir = tempfile.mkdtemp(prefix="cdi-pg-secret-")
    data = None
    try:
        server, data = start_postgres(workdir, password=PASSWORD)
        yield server
    finally:
        if data:
            stop_postgres(data)
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.mark.postgres
def test_a_password_with_spaces_and_quotes_connects(server_with_spaced_password, tmp_path, monkeypatch, caplog):
    server = server_with_spaced_password
    monkeypatch.setenv("CDI_PG_DSN", f"host={server.host} port={server.port} dbname={server.database}")
    monkeypatch.setenv("CDI_PG_PASSWORD", server.password)
    conf = write_conf(
        tmp_path, "propagation:\n  postgres:\n    dsn: ${CDI_PG_DSN}\n    user: cdi\n    password: ${CDI_PG_PASSWORD}\n"
    )
    target = load_config(conf).propagation.postgres
    assert target is not None
    with connect(target) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("cdi",)

    wrong = target.model_copy(update={"password": PASSWORD + " wrong"})
    with pytest.raises(errors.PropagationError, match="password authentication failed") as raised:
        connect(wrong)
    scanned(str(raised.value), caplog=caplog)
