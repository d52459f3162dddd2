"""Fixtures for the bronze tests: a throwaway PostgreSQL server and small source files.

The server is a fresh ``initdb`` cluster in a temporary folder, listening on a free port of
127.0.0.1 with password authentication, and is stopped and removed when the test session ends.
PostgreSQL refuses to run as root, so as root (CI) the server runs as the ``postgres`` user.

    from bronze_fixtures import postgres_server  # noqa: F401  (pytest finds the fixture)
"""

from __future__ import annotations

import glob
import json
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from cdi.config import CdiConfig


@dataclass(frozen=True)
class PgServer:
    host: str
    port: int
    user: str
    password: str
    database: str

    @property
    def dsn(self) -> str:
        return f"host={self.host} port={self.port} user={self.user} password={self.password} dbname={self.database}"

    @property
    def jdbc_url(self) -> str:
        return f"jdbc:postgresql://{self.host}:{self.port}/{self.database}"


def _pg_bin() -> str | None:
    found = shutil.which("initdb")
    if found:
        return os.path.dirname(found)
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return os.path.dirname(candidates[-1]) if candidates else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _as_server_user(cmd: list[str]) -> list[str]:
    """PostgreSQL will not run as root: run its tools as the ``postgres`` user then."""
    if os.geteuid() != 0:
        return cmd
    return ["runuser", "-u", "postgres", "--", *cmd]


def start_postgres(workdir: str, password: str = "cdi-secret") -> tuple[PgServer, str]:
    """initdb + pg_ctl start in ``workdir``; returns the server and its data directory."""
    bindir = _pg_bin()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to run the server as")
        os.chown(workdir, owner.pw_uid, owner.pw_gid)
    os.chmod(workdir, 0o700)
    pwfile = os.path.join(workdir, "pw")
    Path(pwfile).write_text(password + "\n")
    if os.geteuid() == 0:
        os.chown(pwfile, owner.pw_uid, owner.pw_gid)
    data = os.path.join(workdir, "data")
    subprocess.run(
        _as_server_user(
            [f"{bindir}/initdb", "-D", data, "-U", "cdi", "--auth=scram-sha-256", f"--pwfile={pwfile}", "-E", "UTF8"]
        ),
        check=True,
        capture_output=True,
    )
    port = _free_port()
    opts = f"-p {port} -k {workdir} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(
        _as_server_user([f"{bindir}/pg_ctl", "-D", data, "-o", opts, "-l", os.path.join(workdir, "log"), "-w", "start"]),
        check=True,
        capture_output=True,
    )
    server = PgServer("127.0.0.1", port, "cdi", password, "postgres")
    return server, data


def stop_postgres(data: str) -> None:
    bindir = _pg_bin()
    subprocess.run(
        _as_server_user([f"{bindir}/pg_ctl", "-D", data, "-m", "immediate", "stop"]), check=False, capture_output=True
    )


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PgServer]:
    workdir = tempfile.mkdtemp(prefix="cdi-pg-")
    data = None
    try:
        server, data = start_postgres(workdir)
        yield server
    finally:
        if data:
            stop_postgres(data)
        shutil.rmtree(workdir, ignore_errors=True)


def write_lines(path: Path, lines: list[str | bytes], newline: bytes = b"\n") -> Path:
    """Write lines byte for byte (str lines as UTF-8), so tests can plant invalid bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = newline.join(line if isinstance(line, bytes) else line.encode("utf-8") for line in lines) + newline
    path.write_bytes(raw)
    return path


def write_jsonl(path: Path, records: list[dict | str | bytes]) -> Path:
    """JSON lines; ``str``/``bytes`` records are written verbatim (for planting broken lines)."""
    return write_lines(path, [r if isinstance(r, (str, bytes)) else json.dumps(r, ensure_ascii=False) for r in records])


def bronze_config(lake_root, sources: list[dict], **ingest) -> CdiConfig:
    """A validated config with the given source entries (dicts as in a sources YAML file)."""
    from cdi.config import CdiConfig

    return CdiConfig(lake_root=str(lake_root), sources=sources, ingest=ingest or {})


def crm_source(path, **extra) -> dict:
    """A small CSV customer source ``crm`` (id, name, email, modified) at ``path``."""
    return {
        "name": "crm",
        "kind": "customers",
        "format": "csv",
        "path": str(path),
        "id_columns": ["id"],
        "updated_at": {"column": "modified", "formats": ["yyyy-MM-dd HH:mm:ss"]},
        "mapping": {"first_name": "name", "email": "email"},
        **extra,
    }


def bronze_rows(lake, source: str, *columns: str) -> list[tuple]:
    """A small bronze table's rows (selected columns) sorted, for exact comparisons."""
    return sorted(tuple(r) for r in lake.read(f"bronze/{source}").select(*columns).collect())


def quarantine_reasons(lake, source: str) -> dict[int | None, str]:
    """line -> reason code of a source's quarantined rows."""
    rows = lake.read("bronze/_quarantine").where(f"_source = '{source}'").select("_source_line", "_reason").collect()
    return {r[0]: r[1].split(":", 1)[0] for r in rows}
