"""Benchmark the link stage on standardised demo records with each Splink backend.

Run on demand (not a test)::

    python bench/bench_linkage.py [--records 100000 1000000] [--backends duckdb spark]
                                  [--work DIR] [--timeout 5400] [--out bench/results/linkage.json]

For each size the demo universe is generated (``cdi_demo.generate``) with enough persons for the
target number of source customer records, ingested and standardised into a fresh lake
(``silver/records``), and the candidate comparisons the default blocking rules generate are
counted exactly (DuckDB). Then the link stage runs once per backend in its own process, training
a new model (``force_retrain``) so that every step is timed: seconds per step, pairs, clusters,
and peak resident memory of the Python process (where DuckDB runs) and of the Spark driver JVM.
Pairwise precision and recall against the generator's truth are reported too.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))


def _peak_rss_mb(pid: int | str = "self") -> float | None:
    """Peak resident set size (VmHWM) of a process, in MB; Linux only."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def _config(lake: Path, data: Path, persons: int, backend: str = "auto"):
    from cdi.config import load_config

    os.environ["CDI_LAKE_ROOT"] = str(lake)
    os.environ["CDI_DEMO_DATA"] = str(data)
    os.environ.setdefault("CDI_OUTBOX_DIR", str(lake.parent / "outbox"))
    cfg = load_config(ROOT / "conf" / "demo.yaml")
    demo = cfg.demo.model_copy(update={"persons": persons, "generate_if_missing": False}) if cfg.demo else None
    spark_cfg = cfg.spark.model_copy(update={"driver_memory": os.environ.get("CDI_BENCH_DRIVER_MEMORY", "8g")})
    linkage = cfg.linkage.model_copy(update={"backend": backend, "max_local_records": 100_000_000})
    return cfg.model_copy(update={"demo": demo, "spark": spark_cfg, "linkage": linkage})


# ----------------------------------------------------------------------------- child steps


def child_prepare(lake: Path, data: Path, persons: int) -> dict:
    """Ingest and standardise the generated sources; count candidate comparisons on DuckDB."""
    from cdi.lake import Lake
    from cdi.pipeline import open_session, run
    from cdi.silver.records import write_records

    cfg = _config(lake, data, persons)
    spark = open_session(cfg)
    start = time.perf_counter()
    run(cfg, stages=["ingest"], spark=spark)
    ingest = time.perf_counter() - start
    lk = Lake(spark, cfg.lake_root, job="bench", run_id="bench-prepare")
    start = time.perf_counter()
    records = write_records(lk, cfg.customer_sources)
    standardise = time.perf_counter() - start
    comparisons = _count_comparisons(lk, cfg.linkage)
    return {"records": records, "ingest_seconds": round(ingest, 1), "standardise_seconds": round(standardise, 1),
            "candidate_comparisons": comparisons}


def _count_comparisons(lake, linkage) -> int:
    from splink.blocking_analysis import count_comparisons_from_blocking_rules

    from cdi.silver.linkage import blocking
    from cdi.silver.linkage.backends import DuckDBBackend
    from cdi.silver.linkage.stage import prepared_input

    backend = DuckDBBackend(lake.spark)
    try:
        sdf, _ = prepared_input(backend, lake, linkage)
        counts = count_comparisons_from_blocking_rules(
            sdf,
            blocking_rules=[blocking.rule_sql(r) for r in linkage.blocking_rules],
            link_type="dedupe_only",
            unique_id_column_name="record_key",
            record_sample_proportion=1.0,
        )
        return int(counts[-1]["cumulative_comparison_count"])
    finally:
        backend.close()


def child_link(lake: Path, data: Path, persons: int, backend: str) -> dict:
    """One link stage run with a freshly trained model on ``backend``; figures, memory, accuracy."""
    from cdi.lake import Lake
    from cdi.pipeline import open_session
    from cdi.quality.evaluate import evaluate, read_truth
    from cdi.silver.linkage import run_link

    cfg = _config(lake, data, persons, backend)
    spark = open_session(cfg)
    run_id = f"bench-{backend}"
    lk = Lake(spark, cfg.lake_root, job="bench", run_id=run_id)
    start = time.perf_counter()
    figures = run_link(lk, cfg.linkage, run_id, force_retrain=True)
    total = time.perf_counter() - start
    jvm_pid = spark.sparkContext._gateway.proc.pid if spark.sparkContext._gateway.proc else None
    out = {
        "backend": figures.backend,
        "records": figures.records,
        "pairs_above_floor": figures.pairs,
        "clusters": figures.clusters,
        "seconds": figures.seconds,
        "seconds_total": round(total, 1),
        "peak_rss_mb_python": _peak_rss_mb(),
        "peak_rss_mb_spark_driver": _peak_rss_mb(jvm_pid) if jvm_pid else None,
    }
    report = evaluate(lk.read("silver/entity_map"), read_truth(spark, data / "truth.csv"))
    pairwise = report.to_dict()["pairwise"]
    out["pairwise"] = {k: pairwise[k] for k in ("precision", "recall", "f1") if k in pairwise}
    return out


# ----------------------------------------------------------------------------- driver


def _run_child(args: list[str], timeout: int) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), *args]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout}s"}
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def _records_per_person(work: Path) -> float:
    from cdi_demo import generate

    manifest = generate(persons=2000, seed=1, out=str(work / "calibrate"))
    return manifest["customer_records_total"] / 2000


def _summary(entry: dict) -> dict:
    """The issue's two targets: silver (standardise + link) in seconds with the backend ``auto``
    picks in local mode (DuckDB below linkage.max_local_records), and Spark's link time over DuckDB's."""
    links = {name: r.get("seconds_total") for name, r in entry["backends"].items() if "error" not in r}
    out: dict = {}
    if "standardise_seconds" in entry and links.get("duckdb") is not None:
        out["silver_seconds_auto"] = round(entry["standardise_seconds"] + links["duckdb"], 1)
    if links.get("duckdb") and links.get("spark") is not None:
        out["spark_over_duckdb"] = round(links["spark"] / links["duckdb"], 2)
    return out


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--backends", nargs="+", default=["duckdb", "spark"], choices=["duckdb", "spark"])
    parser.add_argument("--work", default=None, help="working folder (default: a temporary one, removed)")
    parser.add_argument("--timeout", type=int, default=5400, help="seconds allowed per child step")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "linkage.json"))
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        kind, lake, data, persons = args.child[:4]
        if kind == "prepare":
            result = child_prepare(Path(lake), Path(data), int(persons))
        else:
            result = child_link(Path(lake), Path(data), int(persons), args.child[4])
        print(json.dumps(result, default=str))
        return result

    from cdi_demo import generate

    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="cdi-bench-linkage-"))
    work.mkdir(parents=True, exist_ok=True)
    per_person = _records_per_person(work)
    results = []
    try:
        for target in args.records:
            persons = max(10, round(target / per_person))
            base = work / f"r{target}"
            data, lake = base / "data", base / "lake"
            start = time.perf_counter()
            generate(persons=persons, seed=1, out=str(data))
            entry = {"target_records": target, "persons": persons, "generate_seconds": round(time.perf_counter() - start, 1)}
            entry.update(_run_child(["--child", "prepare", str(lake), str(data), str(persons)], args.timeout))
            entry["backends"] = {}
            for backend in args.backends:
                print(f"[bench] {target:,} records on {backend} ...", file=sys.stderr, flush=True)
                entry["backends"][backend] = _run_child(
                    ["--child", "link", str(lake), str(data), str(persons), backend], args.timeout
                )
            entry["summary"] = _summary(entry)
            results.append(entry)
            print(json.dumps(entry, indent=2), file=sys.stderr, flush=True)
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)

    report = {
        "benchmark": "linkage",
        "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "config": "conf/demo.yaml (conf/linkage.yaml defaults), force_retrain, linkage.max_local_records raised so "
        "each backend runs at every size",
        "sizes": results,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load_average_1m": os.getloadavg()[0]},
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    return report


if __name__ == "__main__":
    main()
