"""Fixtures for tests that need a real Spark cluster: a standalone master and two workers on free
loopback ports (one per test session, always stopped), and the ``--py-files`` zip of ``cdi``.

Import them into a test module: ``from tests.cluster_fixtures import standalone_cluster, pyfiles_zip``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cdi_cluster import ClusterError, StandaloneCluster, SubmitResult, package

__all__ = ["standalone_cluster", "pyfiles_zip", "require_success"]

WORKERS = 2


@pytest.fixture(scope="session")
def standalone_cluster(tmp_path_factory):
    """Master + two 1-core/2g workers; registration is awaited through the master's /json page."""
    cluster = StandaloneCluster(tmp_path_factory.mktemp("standalone"), workers=WORKERS, cores=1, memory="2g")
    try:
        cluster.start(timeout=180)
    except ClusterError as exc:
        pytest.fail(f"could not start a Spark standalone cluster:\n{exc}")
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def pyfiles_zip(tmp_path_factory) -> Path:
    """``cdi`` zipped from this working tree, as a user would ship it with --py-files."""
    return package(tmp_path_factory.mktemp("dist"))


def require_success(result: SubmitResult, cluster: StandaloneCluster) -> SubmitResult:
    """Fail the test with spark-submit's output and the cluster's daemon and executor logs."""
    if result.returncode != 0:
        pytest.fail(
            f"spark-submit exited with {result.returncode} after {result.seconds:.0f}s\n"
            f"command: {' '.join(result.command)}\n"
            f"--- driver stdout ---\n{result.stdout[-4000:]}\n"
            f"--- driver stderr (tail) ---\n{_tail(result.stderr, 120)}\n"
            f"--- cluster logs ---\n{cluster.logs()}"
        )
    return result


def _tail(text: str, lines: int) -> str:
    return "\n".join(text.splitlines()[-lines:])
