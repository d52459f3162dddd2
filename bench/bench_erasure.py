"""How long ``cdi erase`` takes on a real lake (run on demand, not a test)::

    python bench/bench_erasure.py --persons 3000        # builds a demo lake first (cdi run)
    python bench/bench_erasure.py --persons 430000      # ~1M source records

Erases the customer with the most source records (the most rows to find) and writes the
erasure's report, its wall time and the lake's size to ``bench/results/erasure.json`` (one entry
per lake size, newest kept).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "erasure.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--persons", type=int, default=3000)
    args = parser.parse_args()
    os.environ.setdefault("CDI_HASH_KEY", "bench-erasure-key-0123456789")
    sys.path.insert(0, str(ROOT / "bench"))
    from bench_service import build_lake
    from pyspark.sql import functions as F

    from cdi.config import load_config
    from cdi.lake import Lake
    from cdi.pipeline import erase, open_session
    from cdi.privacy.erasure import Selector

    root, build_seconds, persons = build_lake(args.persons)
    cfg = load_config(ROOT / "conf" / "demo.yaml")
    spark = open_session(cfg)
    lake = Lake(spark, root)
    records = lake.read("silver/records").count()
    biggest = (
        lake.read("gold/golden_records").where("is_current").orderBy(F.size("source_record_keys").desc(), "customer_id").first()
    )
    started = time.monotonic()
    report = erase(cfg, Selector("customer", biggest["customer_id"]), "benchmark", "bench", spark=spark)
    seconds = time.monotonic() - started
    entry = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "persons": persons,
        "source_records": records,
        "tables": len(lake.tables()),
        "build_seconds": round(build_seconds, 1),
        "erase_seconds": round(seconds, 1),
        "rows_removed": sum(report.rows_removed.values()),
        "tables_changed": len(report.rows_removed),
        "files_vacuumed": report.files_vacuumed,
        "customer_records": report.records,
        "customer_facts": report.facts,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results[str(persons)] = entry
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(entry, indent=2))


if __name__ == "__main__":
    main()
