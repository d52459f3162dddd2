"""What a run with nothing new costs: ``cdi run`` on a lake whose sources delivered nothing since
its last run (silver and gold kept, :mod:`cdi.run_inputs`) against ``cdi run --full`` on the same
lake (everything computed again, the previous behaviour), side by side in one session.

Run on demand (not a test)::

    CDI_LAKE_ROOT=... CDI_DEMO_DATA=... CDI_OUTBOX_DIR=... \\
        python bench/bench_unchanged_run.py [--conf conf/demo.yaml] [--repeat K] [--out FILE]

First one ``cdi run`` in its own process brings the lake up to date (it computes what changed and
records what silver and gold were computed from). Then, in one new session: one unchanged run
right after the session is up (a cold JVM: what a scheduled ``spark-submit`` pays), then
``--repeat`` pairs of a full run and an unchanged run taking turns (warm JVM). Seconds are from
the call to the end of the run, the Spark session already up. Results go to
``bench/results/unchanged_run.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _steps(result) -> dict[str, float]:
    """Seconds per stage of one run's summary."""
    out: dict[str, float] = {}
    for st in result.summary.steps:
        out[st.stage] = round(out.get(st.stage, 0.0) + st.seconds, 2)
    return out


def run(conf: Path, repeat: int, out: Path) -> dict:
    prime = subprocess.run([sys.executable, "-m", "cdi.cli", "-q", "run", "--conf", str(conf)], capture_output=True, text=True)
    if prime.returncode != 0:
        raise SystemExit(f"the priming run failed:\n{prime.stderr[-3000:]}")

    from cdi.config import load_config
    from cdi.pipeline import open_session
    from cdi.pipeline import run as run_pipeline

    cfg = load_config(conf)
    spark = open_session(cfg)
    spark.sparkContext.setLogLevel("ERROR")
    try:
        records = spark.read.format("delta").load(f"{cfg.lake_root}/silver/records").count()
        load_before = os.getloadavg()[0]

        def timed(**kwargs):
            start = time.perf_counter()
            result = run_pipeline(cfg, spark=spark, **kwargs)
            return round(time.perf_counter() - start, 2), result

        cold_seconds, cold = timed()
        if cold.up_to_date_since is None:
            raise SystemExit("the lake was not up to date after the priming run: nothing to measure")
        unchanged: list[float] = []
        full: list[float] = []
        stages: dict[str, dict[str, float]] = {"cold_unchanged": _steps(cold)}
        for _ in range(repeat):
            seconds, result = timed(full=True)
            full.append(seconds)
            stages["full"] = _steps(result)
            seconds, result = timed()
            assert result.up_to_date_since is not None, "a run after a full run found something changed"
            unchanged.append(seconds)
            stages["warm_unchanged"] = _steps(result)
        report = {
            "what": "cdi run with nothing new (silver and gold kept) against cdi run --full, one session, sides taking turns",
            "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": f"{os.cpu_count()} cores, {cfg.spark.master}",
            "silver_records": records,
            "seconds": {
                "unchanged_cold_jvm": cold_seconds,
                "unchanged_warm_median": round(statistics.median(unchanged), 2),
                "full_median": round(statistics.median(full), 2),
            },
            "runs": {"unchanged_warm": unchanged, "full": full},
            "seconds_per_stage_last_run": stages,
            "load_average_1min": {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)},
        }
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2) + "\n")
        return report
    finally:
        spark.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conf", type=Path, default=ROOT / "conf" / "demo.yaml")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "unchanged_run.json")
    args = parser.parse_args()
    print(json.dumps(run(args.conf, args.repeat, args.out), indent=2))


if __name__ == "__main__":
    main()
