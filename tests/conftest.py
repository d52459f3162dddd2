"""Shared fixtures: one session-scoped SparkSession (local[2], few partitions, UI off, UTC)
and a fresh temporary lake root per test."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)


@pytest.fixture(scope="session")
def spark(tmp_path_factory):
    from cdi.spark import SparkSettings, build_session

    warehouse = tmp_path_factory.mktemp("warehouse")
    session = build_session(
        SparkSettings(
            master="local[2]",
            app_name="cdi-tests",
            shuffle_partitions=2,
            checkpoint_dir=str(tmp_path_factory.mktemp("checkpoints")),
            conf={
                "spark.ui.enabled": "false",
                "spark.sql.warehouse.dir": str(warehouse),
                "spark.default.parallelism": "2",
                "spark.driver.memory": "3g",
                "spark.sql.adaptive.enabled": "false",
            },
        )
    )
    yield session
    session.stop()


@pytest.fixture()
def lake_root(tmp_path) -> Path:
    root = tmp_path / "lake"
    root.mkdir()
    return root
