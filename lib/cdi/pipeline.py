"""Runs the medallion stages in order for one configuration: ingest -> standardise (records and
facts) + link -> gold (-> customer 360 and segments). The CLI and ``jobs/`` call these functions and nothing else.

    >>> result = run(load_config("conf/demo.yaml"), stages=("ingest", "link", "gold"))  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cdi.bronze.ingest import IngestResult, run_ingest
from cdi.config import CdiConfig, check_run_id
from cdi.errors import ConfigError, InstallError
from cdi.gold.customer_360 import Customer360Result, run_customer_360
from cdi.gold.stage import GoldResult, run_gold
from cdi.lake import Lake
from cdi.progress import RunSummary
from cdi.silver.facts import write_facts
from cdi.silver.linkage import LinkResult, run_link
from cdi.silver.records import write_records

log = logging.getLogger(__name__)

STAGES = ("ingest", "link", "gold")


def new_run_id() -> str:
    """Sortable and unique: UTC time plus a random suffix (never derived from data)."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def spark_settings(cfg: CdiConfig):
    from cdi.spark import SparkSettings

    s = cfg.spark
    return SparkSettings(
        master=s.master,
        app_name=s.app_name,
        shuffle_partitions=s.shuffle_partitions,
        driver_memory=s.driver_memory,
        checkpoint_dir=s.checkpoint_dir,
        conf=_with_jdbc_jars(cfg, dict(s.conf)),
        storage_engine=cfg.storage.engine,
    )


def _with_jdbc_jars(cfg: CdiConfig, conf: dict[str, str]) -> dict[str, str]:
    """JDBC drivers named by sources must be on the classpath when the session starts."""
    jars = [s.jdbc.jar for s in cfg.sources if s.jdbc and s.jdbc.jar]
    if jars:
        existing = [j for j in conf.get("spark.jars", "").split(",") if j]
        conf["spark.jars"] = ",".join(dict.fromkeys(existing + jars))
    return conf


def open_session(cfg: CdiConfig):
    from cdi.spark import build_session

    return build_session(spark_settings(cfg))


def ensure_demo_data(cfg: CdiConfig) -> None:
    """Generate the demo sources when the config asks for it and they are absent."""
    demo = cfg.demo
    if demo is None or not demo.generate_if_missing:
        return
    if (Path(demo.out) / "manifest.json").exists():
        return
    generate = demo_generator()
    log.info("demo data absent at %s: generating %d persons (seed %d)", demo.out, demo.persons, demo.seed)
    generate(persons=demo.persons, seed=demo.seed, out=demo.out)


def demo_generator() -> Callable[..., Any]:
    """``cdi_demo.generate``. The generator is its own package next to ``cdi``, imported only when a
    config asks for demo data, so the runtime never depends on it."""
    try:
        from cdi_demo import generate
    except ImportError as exc:
        raise InstallError(
            f"the demo generator (package cdi_demo) is not installed: {exc}; install cdi from its source tree"
        ) from exc
    return generate


@dataclass
class PipelineResult:
    """One run: its id, its summary, and each stage's result (None for a stage not run)."""

    run_id: str
    summary: RunSummary
    ingest: list[IngestResult] | None = None
    link: LinkResult | None = None
    gold: GoldResult | None = None
    customer_360: Customer360Result | None = None


def run(
    cfg: CdiConfig,
    stages: Sequence[str] = STAGES,
    run_id: str | None = None,
    spark=None,
    retrain: bool = False,
    sources: Sequence[str] | None = None,
) -> PipelineResult:
    """Run the given stages in pipeline order with one run id and one summary."""
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        raise ConfigError(f"unknown stage(s) {unknown}; known: {', '.join(STAGES)}")
    run_id = check_run_id(run_id) if run_id is not None else new_run_id()
    if "ingest" in stages:
        ensure_demo_data(cfg)
    spark = spark or open_session(cfg)
    summary = RunSummary(run_id=run_id)
    result = PipelineResult(run_id=run_id, summary=summary)
    log.info("run %s: stages %s, config %s, lake %s", run_id, list(stages), cfg.config_file, cfg.lake_root)
    # a run that died mid-transaction is rolled back before any stage reads its tables
    recovered = Lake(spark, cfg.lake_root, job="recover", run_id=run_id, engine=cfg.storage.engine).recover()
    if recovered:
        log.warning("rolled back what a dead run left unfinished: %s", ", ".join(recovered))
    for stage in STAGES:
        if stage not in stages:
            continue
        lake = Lake(spark, cfg.lake_root, job=stage, run_id=run_id, engine=cfg.storage.engine)
        if stage == "ingest":
            result.ingest = run_ingest(spark, cfg, lake, run_id, summary=summary, sources=list(sources) if sources else None)
        elif stage == "link":
            with summary.step("silver", "standardise") as step:
                step.rows = write_records(spark, cfg, lake)
            with summary.step("silver", "facts") as step:
                step.rows = write_facts(lake, cfg.fact_sources, cfg.customer_360)
            result.link = run_link(spark, cfg, lake, run_id, summary=summary, force_retrain=retrain)
        elif stage == "gold":
            result.gold = run_gold(spark, cfg, lake, run_id, summary=summary)
            result.customer_360 = run_customer_360(spark, cfg, lake, run_id, summary=summary)
    return result
