"""Runs the medallion stages in order for one configuration: ingest -> standardise (records and
facts) + link -> gold (-> customer 360 and segments). The CLI and ``jobs/`` call these functions and nothing else.

    >>> result = run(load_config("conf/demo.yaml"), stages=("ingest", "link", "gold"))  # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cdi.bronze.files import check_source_paths
from cdi.bronze.ingest import IngestResult, run_ingest
from cdi.config import CdiConfig, check_run_id
from cdi.errors import ConfigError, InstallError, LeaseLostError, one_line
from cdi.gold.customer_360 import Customer360Result, run_customer_360
from cdi.gold.propagation import remove_partial_outbox_files
from cdi.gold.stage import GoldResult, publish_step, run_gold
from cdi.gold.survivorship import trust_ranks
from cdi.lake import Lake
from cdi.lake.lease import LAKE_COMMITTED, RUNNING, Lease
from cdi.lake.maintenance import MaintenanceReport
from cdi.lake.maintenance import maintain as maintain_tables
from cdi.lake.runs import COMMITTED, FAILED_ROLLED_BACK, RunJournal, rollback_scope
from cdi.privacy.retention import apply_retention
from cdi.progress import RunSummary
from cdi.run_inputs import InputsState, describe_difference, inputs_state, last_recorded, model_state
from cdi.silver.facts import write_facts
from cdi.silver.linkage import LinkResult, ModelStore, run_link
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
    """Generate the demo sources when the config asks for it and they are absent, or written by
    another version of the generator (the demo's source configs map the columns of this one)."""
    demo = cfg.demo
    if demo is None or not demo.generate_if_missing:
        return
    manifest = Path(demo.out) / "manifest.json"
    written_by = None
    if manifest.exists():
        try:
            written_by = json.loads(manifest.read_text(encoding="utf-8")).get("generator_version")
        except (OSError, ValueError):
            written_by = "unreadable"
    generate = demo_generator()
    from cdi_demo import GENERATOR_VERSION  # importable: demo_generator() checked

    if written_by == GENERATOR_VERSION:
        return
    if written_by is None:
        log.info("demo data absent at %s: generating %d persons (seed %d)", demo.out, demo.persons, demo.seed)
    else:
        log.warning("demo data at %s was written by generator %s, not %s: generating it again", demo.out, written_by, GENERATOR_VERSION)
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
    published: dict[str, Any] | None = None  # per outside target: runs and rows sent
    # the earlier run whose silver and gold this run found current (nothing changed since), else None
    up_to_date_since: str | None = None


def run(
    cfg: CdiConfig,
    stages: Sequence[str] = STAGES,
    run_id: str | None = None,
    spark=None,
    retrain: bool = False,
    sources: Sequence[str] | None = None,
    command: str = "cdi run",
    full: bool = False,
) -> PipelineResult:
    """Run the given stages in pipeline order with one run id and one summary.

    Silver and gold are skipped when nothing they depend on changed since the last run that
    wrote them, the same day (:mod:`cdi.run_inputs`); ``full`` (or ``retrain``) computes them
    regardless.

    The run holds the lake's lease (one writer at a time; a second run fails at once with
    :class:`LeaseHeldError`), first rolls back a run that died holding it, and is one unit from
    outside: if it fails, its silver and gold commits are rolled back before the error is
    raised, and outside targets hear of it only once every table is written (see
    :mod:`cdi.lake.runs`).
    """
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        raise ConfigError(f"unknown stage(s) {unknown}; known: {', '.join(STAGES)}")
    run_id = check_run_id(run_id) if run_id is not None else new_run_id()
    chosen = cfg.select_sources(sources, given_as="--source")  # before Spark starts, as the paths below
    if "ingest" in stages:
        ensure_demo_data(cfg)
        check_source_paths(chosen)
    spark = spark or open_session(cfg)
    summary = RunSummary(run_id=run_id)
    result = PipelineResult(run_id=run_id, summary=summary)
    log.info("run %s: stages %s, config %s, lake %s", run_id, list(stages), cfg.config_file, cfg.lake_root)
    lake = Lake(spark, cfg.lake_root, job="pipeline", run_id=run_id, engine=cfg.storage.engine)
    journal = RunJournal(lake)
    with held_lake(cfg, lake, run_id, command) as (lease, _, _):
        # a transaction left open outside any run (a library caller killed mid-way)
        recovered = lake.recover()
        if recovered:
            log.warning("rolled back what a dead writer left unfinished: %s", ", ".join(recovered))
        _finish_erasures(cfg, lake, lease)
        committed: dict[str, int] = {}
        inputs: Inputs | None = None
        try:
            for stage in STAGES:
                if stage in stages:
                    lease.check()
                    if stage != "ingest" and inputs is None:
                        inputs = _inputs_before(cfg, lake, recompute=full or retrain or cfg.linkage.retrain)
                    before = dict(lake.committed)
                    _run_stage(stage, cfg, lake.with_context(job=stage), result, retrain, sources,
                               inputs.kept_since if inputs else None)
                    committed.update({f"{stage}/{t}": v for t, v in lake.committed.items() if before.get(t) != v})
            if "gold" in stages:
                if any(rollback_scope(t) for t in lake.committed):  # else a roll back has nothing to undo
                    lease.mark(LAKE_COMMITTED)
                result.published = publish_step(lake.with_context(job="gold"), cfg.propagation, summary)
        except LeaseLostError:
            raise  # the lake is another run's now: it rolls this run back
        except BaseException as exc:
            if not _roll_back_failed(journal, run_id, command, list(stages), exc):
                lease.final_state = RUNNING  # the next run takes over and retries the roll back
            raise
        recorded = _inputs_after(cfg, lake, inputs) if {"link", "gold"} <= set(stages) else None
        journal.record(run_id, COMMITTED, command=command, stages=list(stages), tables=committed, inputs=recorded)
    result.up_to_date_since = inputs.kept_since if inputs else None
    return result


@dataclass(frozen=True)
class Inputs:
    """What silver and gold depend on as the run found it before its first silver stage (None:
    could not be taken), and the earlier run whose silver and gold are current (None: compute)."""

    before: InputsState | None
    kept_since: str | None = None


def _inputs_before(cfg: CdiConfig, lake: Lake, *, recompute: bool) -> Inputs:
    """Whether silver and gold are current: nothing they depend on changed since the last run
    that wrote them (see :mod:`cdi.run_inputs`). Any failure to tell means: compute."""
    try:
        now = inputs_state(lake, cfg)
        last = None if recompute else last_recorded(lake)
    except Exception:
        log.warning("could not tell whether anything changed since the last run: computing silver and gold", exc_info=True)
        return Inputs(None)
    if last is None:
        return Inputs(now)
    since, before = last
    if not now.same(before):
        log.info("silver and gold are computed: changed since run %s: %s", since, describe_difference(now, before))
        return Inputs(now)
    log.info("nothing changed since run %s: its silver and gold are current and are kept", since)
    return Inputs(now, kept_since=since)


def _inputs_after(cfg: CdiConfig, lake: Lake, inputs: Inputs | None) -> str | None:
    """The state the run leaves: what it found, moved on by its own commits and model only."""
    if inputs is None or inputs.before is None:
        return None
    try:
        return inputs.before.after_run(lake.committed, model_state(cfg)).to_json()
    except Exception:
        log.warning("could not record what silver and gold were computed from: the next run computes them", exc_info=True)
        return None


@contextmanager
def held_lake(
    cfg: CdiConfig, lake: Lake, run_id: str, command: str, *, heal: bool = True
) -> Iterator[tuple[Lease, list[str], list[str]]]:
    """Hold the lake's lease for one writing command, having first healed what dead writers
    left: the run of a dead lease holder (rolled back or completed) and orphaned files.
    Yields the lease, the runs healed and the orphans removed."""
    lease = Lease(lake, run_id, command, ttl=timedelta(seconds=cfg.storage.lease_ttl_seconds))
    with lease.held():
        runs = []
        if heal and lease.taken_over is not None:
            recovered = RunJournal(lake).recover(lease.taken_over)
            log.warning("%s", recovered)
            runs.append(str(recovered))
        yield lease, runs, remove_orphans(cfg) if heal else []


def remove_orphans(cfg: CdiConfig) -> list[str]:
    """Delete what killed writers left outside the tables: half-saved model versions and outbox
    temporary files (files a killed Delta write left inside a table are VACUUM's). Call while
    holding the lease."""
    removed = [str(p) for p in remove_partial_outbox_files(cfg.propagation.outbox_dir)] if cfg.propagation.outbox_dir else []
    removed += ModelStore(cfg.lake_root).remove_incomplete()
    if removed:
        log.warning("removed %d file(s) and folder(s) killed writers left: %s", len(removed), ", ".join(removed))
    return removed


def maintain(
    cfg: CdiConfig, retention_hours: float, *, optimize: bool = True, dry_run: bool = False, spark=None
) -> MaintenanceReport:
    """``cdi maintain`` under the lease: finish or roll back a dead run, remove orphans, then
    OPTIMIZE and VACUUM every table (see :mod:`cdi.lake.maintenance`)."""
    spark = spark or open_session(cfg)
    run_id = new_run_id()
    lake = Lake(spark, cfg.lake_root, job="maintain", run_id=run_id, engine=cfg.storage.engine)
    with held_lake(cfg, lake, run_id, "cdi maintain", heal=not dry_run) as (lease, recovered, orphans):
        if not dry_run:
            _finish_erasures(cfg, lake, lease)
        expired = {} if dry_run else apply_retention(lake, cfg.privacy)
        report = maintain_tables(lake, retention_hours=retention_hours, optimize=optimize, dry_run=dry_run)
    report.expired = {t: n for t, n in expired.items() if n}
    report.rolled_back = recovered + report.rolled_back
    report.orphans_removed = orphans
    return report


def erase(cfg: CdiConfig, selector: Any, reason: str, by: str, *, dry_run: bool = False, all_matches: bool = False,
          spark=None) -> Any:  # fmt: skip
    """``cdi erase`` under the lease (see :mod:`cdi.privacy.erasure`); the erasure report."""
    from cdi.privacy.erasure import erase_person

    spark = spark or open_session(cfg)
    run_id = new_run_id()
    lake = Lake(spark, cfg.lake_root, job="erase", run_id=run_id, engine=cfg.storage.engine)
    with held_lake(cfg, lake, run_id, "cdi erase") as (lease, _, _):
        recovered = lake.recover()  # a transaction a dead writer left open, before erasing under it
        if recovered:
            log.warning("rolled back what a dead writer left unfinished: %s", ", ".join(recovered))
        return erase_person(cfg, lake, lease, selector, reason, by, dry_run=dry_run, all_matches=all_matches)


def _finish_erasures(cfg: CdiConfig, lake: Lake, lease: Lease) -> None:
    """Finish erasures a dead process left, before anything else reads the lake; marked
    ``lake_committed`` meanwhile, so that dying here finishes them next time, never undoes them."""
    from cdi.privacy.erasure import finish_pending, pending_erasures

    if pending_erasures(lake):
        lease.mark(LAKE_COMMITTED)
        finish_pending(cfg, lake)
        lease.mark(RUNNING)


def _run_stage(stage: str, cfg: CdiConfig, lake: Lake, result: PipelineResult, retrain: bool,
               sources: Sequence[str] | None, kept_since: str | None) -> None:
    summary, run_id = result.summary, result.run_id
    if stage == "ingest":
        result.ingest = run_ingest(lake.spark, cfg, lake, run_id, summary=summary, sources=list(sources) if sources else None)
    elif kept_since is not None:
        with summary.step("silver" if stage == "link" else stage, "up to date") as step:
            step.details["since_run"] = kept_since
    elif stage == "link":
        with summary.step("silver", "standardise") as step:
            step.rows = write_records(lake, cfg.customer_sources)
        with summary.step("silver", "facts") as step:
            step.rows = write_facts(lake, cfg.fact_sources, cfg.customer_360)
        result.link = run_link(
            lake, cfg.link_model, run_id, summary=summary, force_retrain=retrain,
            cross_references=any(s.references for s in cfg.customer_sources),
        )
    elif stage == "gold":
        result.gold = run_gold(lake, cfg.survivorship, trust_ranks(cfg), run_id, summary=summary)
        result.customer_360 = run_customer_360(
            lake, cfg.customer_360, cfg.fact_sources, cfg.segments, run_id, summary=summary
        )


def _roll_back_failed(journal: RunJournal, run_id: str, command: str, stages: list[str], exc: BaseException) -> bool:
    """Undo a failed run's silver and gold commits; whether that worked. A failure to roll back
    is logged and never hides ``exc``."""
    try:
        restored = journal.roll_back(run_id)
        journal.record(run_id, FAILED_ROLLED_BACK, command=command, stages=stages, reason=one_line(exc), tables=restored)
    except Exception:
        log.exception("run %s failed, and rolling it back failed too: the next run retries the roll back", run_id)
        return False
    if restored:
        log.warning("run %s failed: rolled back %s", run_id, ", ".join(sorted(restored)))
    return True
