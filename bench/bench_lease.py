"""What one writer at a time and atomic runs cost a run: the lease's commits (acquire,
``lake_committed``, release) and the run's row in ``_cdi/runs``, against one plain small commit
(the unit delta-spark pays per commit), on delta-spark with a warm JVM.

Run on demand (not a test): ``python bench/bench_lease.py [--repeat K] [--out FILE]``. Each timing
is the median of ``--repeat`` runs after one warm-up, all in one session, sides taking turns.
Results go to ``bench/results/lease.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path


def run(repeat: int, out: Path) -> dict:
    from cdi.lake import Lake
    from cdi.lake.lease import LAKE_COMMITTED, Lease
    from cdi.lake.runs import COMMITTED, RunJournal
    from cdi.spark import SparkSettings, build_session

    spark = build_session(
        SparkSettings(master="local[2]", app_name="bench-lease", shuffle_partitions=2, conf={"spark.ui.enabled": "false"})
    )
    spark.sparkContext.setLogLevel("ERROR")
    work = Path(tempfile.mkdtemp(prefix="bench-lease-"))
    try:
        lake = Lake(spark, str(work / "lake"), job="bench", run_id="bench", engine="delta-spark")
        row = spark.createDataFrame([(1, "a")], "id long, grp string")
        timings: dict[str, list[float]] = {}

        def timed(name: str, fn, i: int) -> None:
            start = time.perf_counter()
            fn()
            if i:
                timings.setdefault(name, []).append(time.perf_counter() - start)

        load_before = os.getloadavg()[0]
        for i in range(repeat + 1):  # run 0 creates the tables and warms the JVM
            lease = Lease(lake, f"bench-{i}", "bench")
            steps = [
                ("plain_append_commit", lambda: lake.write("scratch", row)),
                ("lease_acquire", lease.acquire),
                ("lease_mark_lake_committed", lambda lease=lease: lease.mark(LAKE_COMMITTED)),
                ("runs_record", lambda i=i: RunJournal(lake).record(f"bench-{i}", COMMITTED, command="bench")),
                ("lease_release", lease.release),
            ]
            for name, fn in steps:
                timed(name, fn, i)
        medians = {k: round(statistics.median(v), 3) for k, v in timings.items()}
        per_run = round(sum(v for k, v in medians.items() if k != "plain_append_commit"), 3)
        result = {
            "what": f"delta-spark, local[2], warm JVM, median of {repeat} runs after a warm-up",
            "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "spark": spark.version,
            "seconds": medians,
            "added_per_run_seconds": per_run,
            "runs": {k: [round(x, 3) for x in v] for k, v in sorted(timings.items())},
            "load_average_1min": {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)},
        }
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")
        return result
    finally:
        spark.stop()
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "lease.json")
    args = parser.parse_args()
    print(json.dumps(run(args.repeat, args.out), indent=2))


if __name__ == "__main__":
    main()
