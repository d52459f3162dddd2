"""The demo pipeline on a Spark standalone cluster versus local mode, on the same generated input.

Run on demand (not a test): ``python bench/bench_cluster.py [--persons N] [--workers 2] [--out FILE]``.
Starts a master and ``--workers`` workers (1 core, 2g each) on loopback from the installed
PySpark, generates the demo sources once, then submits ``jobs/pipeline.py`` twice with
``spark-submit``: to the cluster (with ``cdi`` shipped as a --py-files zip) and with
``--master local[2]``. Both runs get the same driver memory and the same total of two cores.
Times are wall-clock of the whole ``spark-submit`` (JVM start to exit). The two lakes are
compared with :func:`cdi_cluster.run_differences` (entity map partition, golden records).
Results go to ``bench/results/cluster.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PIPELINE_JOB = ROOT / "jobs" / "pipeline.py"
BASE_CONF = ROOT / "conf" / "demo.yaml"


def _log_facts(log_text: str) -> dict:
    """What the driver log says about the run: master, storage engine, linkage backend, summary."""
    master = re.search(r"spark session: master=(\S+?),", log_text)
    engine = re.search(r"storage engine=([^\n]+)", log_text)
    backend = re.search(r"link: backend (\w+)", log_text)
    model = re.search(r"link: (training a new linkage model|reusing linkage model)[^\n]*", log_text)
    summary = log_text[log_text.find("\nrun ") + 1 :].splitlines() if "\nrun " in log_text else []
    return {
        "master": master.group(1) if master else None,
        "storage_engine": engine.group(1).strip() if engine else None,
        "linkage_backend": backend.group(1) if backend else None,
        "linkage_model": model.group(0).removeprefix("link: ") if model else None,
        "summary": [line for line in summary if line.strip()][:40],
    }


def run(persons: int, workers: int, driver_memory: str, out: Path, timeout: float, keep: bool = False) -> dict:
    # the generator adds a fixed handful of malformed rows per source: a small demo needs a looser limit
    overrides = {"ingest": {"max_quarantine_share": 0.25}} if persons < 1000 else {}
    from cdi_cluster import StandaloneCluster, clean_env, package, run_differences, run_submit, submit_command, write_run_conf
    from cdi.config import load_config
    from cdi.lake import Lake
    from cdi.pipeline import ensure_demo_data
    from cdi.spark import SparkSettings, build_session, delta_package

    work = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    load_before = os.getloadavg()
    try:
        demo_out = work / "demo"
        confs = {
            mode: write_run_conf(
                work / f"{mode}.yaml",
                BASE_CONF,
                lake_root=str(work / mode / "lake"),
                demo_out=str(demo_out),
                persons=persons,
                checkpoint_dir=str(work / mode / "checkpoints"),
                overrides={"propagation": {"outbox_dir": str(work / mode / "outbox")}, **overrides},
            )
            for mode in ("cluster", "local")
        }
        started = time.perf_counter()
        os.environ["CDI_DEMO_DATA"] = str(demo_out)  # the demo sources' paths name this variable
        ensure_demo_data(load_config(confs["local"]))
        generate_seconds = time.perf_counter() - started
        zip_path = package(work / "dist")
        env = clean_env({"CDI_DEMO_DATA": str(demo_out)})

        runs = {}
        started = time.perf_counter()
        with StandaloneCluster(work / "standalone", workers=workers, cores=1, memory="2g") as cluster:
            startup_seconds = time.perf_counter() - started
            result = cluster.submit(
                PIPELINE_JOB,
                ["--conf", str(confs["cluster"])],
                py_files=[zip_path],
                packages=[delta_package()],
                driver_memory=driver_memory,
                timeout=timeout,
                cwd=work,
                env=env,
                log_dir=work / "cluster" / "submit",
            )
            runs["cluster"] = {"seconds": round(result.seconds, 1), "returncode": result.returncode, **_log_facts(result.stdout)}
            if result.returncode != 0:
                runs["cluster"]["error"] = result.stdout[-3000:] + "\n" + cluster.logs(20)
        local_cmd = submit_command(
            PIPELINE_JOB,
            ["--conf", str(confs["local"])],
            master="local[2]",
            driver_memory=driver_memory,
            packages=[delta_package()],
            conf={"spark.ui.enabled": "false"},
        )
        result = run_submit(local_cmd, env=env, cwd=work, timeout=timeout, log_dir=work / "local" / "submit")
        runs["local"] = {"seconds": round(result.seconds, 1), "returncode": result.returncode, **_log_facts(result.stdout)}
        if result.returncode != 0:
            runs["local"]["error"] = result.stdout[-3000:]

        differences = None
        records = None
        if all(r["returncode"] == 0 for r in runs.values()):
            spark = build_session(SparkSettings(master="local[2]", app_name="bench-cluster-compare", conf={"spark.ui.enabled": "false"}))
            spark.sparkContext.setLogLevel("ERROR")
            cluster_lake, local_lake = Lake(spark, str(work / "cluster" / "lake")), Lake(spark, str(work / "local" / "lake"))
            differences = run_differences(cluster_lake, local_lake)
            records = local_lake.read("silver/records").count()
            spark.stop()
        report = {
            "benchmark": "demo pipeline (cdi run) on a Spark standalone cluster vs local mode",
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "persons": persons,
            "silver_records": records,
            "machine": {"cpus": os.cpu_count(), "load_average_before": [round(x, 1) for x in load_before]},
            "setup": {
                "cluster": f"standalone master + {workers} workers x 1 core / 2g on loopback, cdi via --py-files",
                "local": "spark-submit --master local[2]",
                "driver_memory": driver_memory,
                "demo_data_generation_seconds": round(generate_seconds, 1),
                "cluster_startup_seconds": round(startup_seconds, 1),
            },
            "runs": runs,
            "cluster_over_local": round(runs["cluster"]["seconds"] / runs["local"]["seconds"], 2),
            "results_equal": differences == [] if differences is not None else None,
            "differences": differences,
        }
        report["machine"]["load_average_after"] = [round(x, 1) for x in os.getloadavg()]
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        return report
    finally:
        if keep:
            print(f"kept the work folder {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=3000, help="demo persons (conf/demo.yaml ships 3000)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--driver-memory", default="2g")
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "cluster.json")
    parser.add_argument("--keep", action="store_true", help="keep the lakes and logs (printed path)")
    args = parser.parse_args()
    report = run(args.persons, args.workers, args.driver_memory, args.out, args.timeout, args.keep)
    brief = {k: report[k] for k in ("persons", "silver_records", "cluster_over_local", "results_equal")}
    brief.update({f"{m}_seconds": r["seconds"] for m, r in report["runs"].items()})
    brief.update({f"{m}_backend": r["linkage_backend"] for m, r in report["runs"].items()})
    print(json.dumps(brief, indent=2))
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
