"""A throwaway PostgreSQL server for tests: ``from pg_fixture import postgres_dsn``.

initdb into a fresh temporary directory, start on a free 127.0.0.1 port (socket dir in the same
directory), yield a libpq DSN, stop and delete in a finally. initdb refuses to run as root, so
as root the server runs as the ``postgres`` system user (via ``runuser``, or ``su`` where
runuser is missing); the data directory lives outside pytest's 0700 tmp tree so that user can
reach it. Skips when no PostgreSQL binaries (or no non-root user) are available.
"""

from __future__ import annotations

import glob
import os
import shlex
import shutil
import socket
import subprocess
import tempfile

import pytest


def _bindir() -> str | None:
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return os.path.dirname(os.path.realpath(found))
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    return os.path.dirname(candidates[0]) if candidates else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _runner(user: str | None):
    def run(args: list[str]) -> None:
        if user is None:
            cmd = args
        elif shutil.which("runuser"):
            cmd = ["runuser", "-u", user, "--", *args]
        else:
            cmd = ["su", user, "-s", "/bin/sh", "-c", shlex.join(args)]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
        if res.returncode != 0:
            raise RuntimeError(f"{shlex.join(cmd)} failed ({res.returncode}): {res.stderr or res.stdout}")

    return run


@pytest.fixture(scope="session")
def postgres_dsn():
    bindir = _bindir()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found")
    user = None
    root = tempfile.mkdtemp(prefix="cdi-pg-")
    if os.geteuid() == 0:
        import pwd

        try:
            pw = pwd.getpwnam("postgres")
        except KeyError:
            shutil.rmtree(root, ignore_errors=True)
            pytest.skip("running as root and there is no 'postgres' user to run the server")
        os.chown(root, pw.pw_uid, pw.pw_gid)
        user = "postgres"
    run = _runner(user)
    data = os.path.join(root, "data")
    port = _free_port()
    started = False
    try:
        run([os.path.join(bindir, "initdb"), "-D", data, "-A", "trust", "-U", "postgres", "-E", "UTF8",
             "--no-locale"])
        run([os.path.join(bindir, "pg_ctl"), "-D", data, "-l", os.path.join(root, "server.log"), "-w",
             "-t", "60", "-o", f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -F", "start"])
        started = True
        yield f"host=127.0.0.1 port={port} user=postgres dbname=postgres"
    finally:
        if started:
            try:
                run([os.path.join(bindir, "pg_ctl"), "-D", data, "-m", "fast", "-w", "stop"])
            except RuntimeError:
                pass
        shutil.rmtree(root, ignore_errors=True)
