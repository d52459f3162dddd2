"""Benchmark the demo data generator: ~1M source customer records (plus their facts).

    python bench/bench_demo_data.py [--records 1000000] [--seed 1] [--out DIR] [--keep]

A small calibration run measures customer records per person; the main run generates enough
persons for the target and is timed end to end (persons, sources, facts, all files written).
Writes bench/results/demo_data.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))

from cdi_demo import GENERATOR_VERSION, generate  # noqa: E402

BUDGET_SECONDS = 180


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--records", type=int, default=1_000_000, help="target source customer records")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default=None, help="output directory (default: a temporary one)")
    ap.add_argument("--keep", action="store_true", help="keep the generated files")
    ap.add_argument("--result", default=str(ROOT / "bench" / "results" / "demo_data.json"))
    args = ap.parse_args(argv)

    work = Path(args.out or tempfile.mkdtemp(prefix="cdi-demo-bench-"))
    try:
        calib = generate(20_000, args.seed, work / "calibration")
        per_person = calib["customer_records_total"] / calib["persons"]
        shutil.rmtree(work / "calibration")
        persons = int(round(args.records / per_person))

        t0 = time.perf_counter()
        m = generate(persons, args.seed, work / "data")
        seconds = time.perf_counter() - t0

        size = sum(p.stat().st_size for p in (work / "data").rglob("*") if p.is_file())
        rows = {path: info["rows"] for path, info in m["files"].items()}
        result = {
            "benchmark": "demo_data",
            "generator_version": GENERATOR_VERSION,
            "seed": args.seed,
            "persons": persons,
            "customer_records_total": m["customer_records_total"],
            "customer_records_per_source": {s: v["records"] for s, v in m["customer_records"].items()},
            "file_rows": rows,
            "file_rows_total": sum(rows.values()),
            "output_bytes": size,
            "seconds": round(seconds, 1),
            "records_per_second": round(m["customer_records_total"] / seconds),
            "budget_seconds": BUDGET_SECONDS,
            "within_budget": seconds <= BUDGET_SECONDS * m["customer_records_total"] / 1_000_000,
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                        "load_average_1m": round(os.getloadavg()[0], 1)},
        }
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    out = Path(args.result)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
