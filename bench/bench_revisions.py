"""The demo pipeline at two code revisions, side by side: the before/after figure of a change.

Run on demand (not a test)::

    python bench/bench_revisions.py BEFORE [AFTER] [--persons N] [--repeat K] [--out FILE]

BEFORE and AFTER are git revisions (AFTER defaults to the working tree, uncommitted changes
included). Each revision is checked out once into a temporary worktree; the demo sources are
generated once and shared. Every run is a fresh process (its own JVM, local[2], delta-spark)
writing a fresh lake, and the revisions take turns (A B B A ...) so the shared machine's noise
falls on both. Wall seconds per run and seconds per stage and step go to
``bench/results/revisions.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORKING_TREE = "WORKTREE"

_ONE_RUN = """
import json, sys, time
from collections import defaultdict
from cdi.config import load_config
from cdi.pipeline import ensure_demo_data, open_session, run
conf, lake, outbox, persons = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
base = load_config(conf)
cfg = base.model_copy(update={
    "lake_root": lake,
    "demo": base.demo.model_copy(update={"persons": persons}),
    "propagation": base.propagation.model_copy(update={"outbox_dir": outbox}),
})
ensure_demo_data(cfg)
started = time.perf_counter()
spark = open_session(cfg)
session = time.perf_counter() - started
result = run(cfg, spark=spark)
total = time.perf_counter() - started
stages = defaultdict(float)
for st in result.summary.steps:
    stages[st.stage] += st.seconds
print("RESULT " + json.dumps({
    "total_seconds": round(total, 1),
    "session_seconds": round(session, 1),
    "stage_seconds": {k: round(v, 1) for k, v in stages.items()},
    "step_seconds": {f"{s.stage}/{s.name}": round(s.seconds, 1) for s in result.summary.steps},
}))
"""


def _checkout(rev: str, into: Path) -> Path:
    if rev == WORKING_TREE:
        return ROOT
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-f", str(into), rev], check=True, capture_output=True)
    return into


def _one_run(tree: Path, work: Path, tag: str, persons: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree / "lib"), "CDI_DEMO_DATA": str(work / "demo")}
    lake, outbox = work / f"lake-{tag}", work / f"outbox-{tag}"
    proc = subprocess.run(
        [sys.executable, "-c", _ONE_RUN, str(tree / "conf" / "demo.yaml"), str(lake), str(outbox), str(persons)],
        env=env, capture_output=True, text=True, cwd=tree,
    )  # fmt: skip
    shutil.rmtree(lake, ignore_errors=True)
    shutil.rmtree(outbox, ignore_errors=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"run {tag} in {tree} failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    return json.loads(lines[-1][len("RESULT ") :])


def run(before: str, after: str, persons: int, repeat: int, out: Path) -> dict:
    work = Path(tempfile.mkdtemp(prefix="bench-revisions-"))
    trees: dict[str, Path] = {}
    try:
        for label, rev in (("before", before), ("after", after)):
            trees[label] = _checkout(rev, work / f"tree-{label}")
        results: dict[str, list[dict]] = {"before": [], "after": []}
        load_before = os.getloadavg()[0]
        for i in range(repeat):
            order = ("before", "after") if i % 2 == 0 else ("after", "before")
            for label in order:
                res = _one_run(trees[label], work, f"{label}-{i}", persons)
                results[label].append(res)
                print(label, res["total_seconds"], res["stage_seconds"], flush=True)
        report = {
            "what": f"demo pipeline, {persons} persons, local[2], a fresh process and lake per run, "
            f"revisions taking turns, {repeat} run(s) each",
            "before": before,
            "after": after,
            "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "median_total_seconds": {k: statistics.median(r["total_seconds"] for r in v) for k, v in results.items()},
            "runs": results,
            "load_average_1min": {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)},
        }
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2) + "\n")
        return report
    finally:
        for tree in trees.values():
            if tree != ROOT:
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", help="git revision of the 'before' side")
    parser.add_argument("after", nargs="?", default=WORKING_TREE, help="git revision (default: the working tree)")
    parser.add_argument("--persons", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "revisions.json")
    args = parser.parse_args()
    report = run(args.before, args.after, args.persons, args.repeat, args.out)
    print(json.dumps(report["median_total_seconds"]))


if __name__ == "__main__":
    main()
