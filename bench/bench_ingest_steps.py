"""Where ingest's time goes: the first ingest of the demo's sources into a new lake, with the
seconds of each step of ``ingest_source`` summed over the sources (reading and classifying,
counting, writing bronze, writing quarantine, counting back, the ledger commit, ...).

Run on demand (not a test): ``python bench/bench_ingest_steps.py [--persons N] [--systems crm,webshop]
[--out FILE]``. One session; a first ingest into a throw-away lake warms the JVM up (its first Delta
operations cost seconds that are not ingest's), then two timed ones run into new lakes, side by
side: the batch's count identity checked from the commits' file statistics (what ingest does), and
counted back from the tables (what it did before, and still does where statistics are missing).
Results go to ``bench/results/ingest_steps.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections import defaultdict
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def timed_steps(totals: dict[str, float]):
    """Wrap ingest's steps so that each call adds its seconds to ``totals[step]``."""
    from cdi.bronze import ingest, ledger
    from cdi.lake import Lake

    targets = [
        (ingest, "read_source", "read the source"),
        (ingest, "_count", "count by outcome"),
        (ingest, "write_quarantine", "write quarantine"),
        (ingest, "_verify", "count back"),
        (ingest, "_deletions", "snapshot deletions"),
        (ingest, "ensure_quarantine_table", "create quarantine"),
        (ledger.IngestLedger, "commit", "ledger commit"),
        (ledger.IngestLedger, "discard_unfinished", "discard unfinished"),
        (Lake, "write", "write (bronze)"),
        (Lake, "_create", "create tables"),
    ]
    saved = []
    for owner, name, label in targets:
        original = getattr(owner, name)
        saved.append((owner, name, original))

        def wrapper(*args, _original=original, _label=label, **kwargs):
            start = time.perf_counter()
            try:
                return _original(*args, **kwargs)
            finally:
                totals[_label] += time.perf_counter() - start

        setattr(owner, name, wrapper)
    try:
        yield
    finally:
        for owner, name, original in saved:
            setattr(owner, name, original)


def run(persons: int, systems: list[str], out: Path) -> dict:
    from cdi.bronze.ingest import run_ingest
    from cdi.config import load_config
    from cdi.lake import Lake
    from cdi.pipeline import demo_generator, open_session

    work = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    os.environ["CDI_DEMO_DATA"] = str(work / "data")
    demo_generator()(persons=persons, seed=42, out=str(work / "data"))
    figures: dict = {}
    for attempt in ("warm-up", "timed-statistics", "timed-count-back"):
        os.environ["CDI_LAKE_ROOT"] = str(work / attempt / "lake")
        cfg = load_config(ROOT / "conf" / "demo.yaml")
        # a small demo still gets the generator's fixed handful of malformed rows per source
        cfg = cfg.model_copy(update={"ingest": cfg.ingest.model_copy(update={"max_quarantine_share": 0.25})})
        spark = open_session(cfg)
        sources = [s.name for s in cfg.sources if s.name.split("_")[0] in systems]
        lake = Lake(spark, cfg.lake_root, job="bench", run_id=attempt)
        totals: dict[str, float] = defaultdict(float)
        start = time.perf_counter()
        count_back = attempt.endswith("count-back")
        rows_added = Lake.rows_added
        if count_back:
            Lake.rows_added = lambda self, table, version: None  # type: ignore[method-assign]
        try:
            with timed_steps(totals):
                results = run_ingest(spark, cfg, lake, attempt, sources=sources)
        finally:
            Lake.rows_added = rows_added  # type: ignore[method-assign]
        figures[attempt] = {
            "seconds": round(time.perf_counter() - start, 1),
            "sources": len(results),
            "rows_read": sum(r.rows_read for r in results),
            "steps": {k: round(v, 1) for k, v in sorted(totals.items(), key=lambda kv: -kv[1])},
        }
        print(attempt, json.dumps(figures[attempt], indent=1))
    report = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "persons": persons,
        "systems": systems,
        "note": "steps overlap where one calls another (a write inside the ledger commit, create inside write)",
        **figures,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=120)
    parser.add_argument("--systems", default="crm,webshop,billing")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "ingest_steps.json")
    args = parser.parse_args()
    run(args.persons, args.systems.split(","), args.out)


if __name__ == "__main__":
    main()
