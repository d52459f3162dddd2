"""The demo pipeline (``cdi run --conf conf/demo.yaml``) on each storage engine, side by side.

Run on demand (not a test): ``python bench/bench_pipeline_engines.py [--persons N] [--out FILE]``.
One local[2] Spark session (delta-spark's jars loaded) runs the whole pipeline into a fresh lake
per engine, the engines taking turns; the demo sources are generated once. Seconds per stage
and step go to ``bench/results/pipeline_engines.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENGINES = ("delta-spark", "deltalake")


def run(persons: int, repeat: int, out: Path) -> dict:
    from cdi.config import load_config
    from cdi.pipeline import ensure_demo_data, open_session
    from cdi.pipeline import run as run_pipeline

    work = Path(tempfile.mkdtemp(prefix="bench-engines-"))
    os.environ["CDI_DEMO_DATA"] = str(work / "demo")
    try:
        base = load_config(ROOT / "conf" / "demo.yaml")
        base = base.model_copy(update={"demo": base.demo.model_copy(update={"persons": persons})}) if base.demo else base
        ensure_demo_data(base)
        spark = open_session(base)
        spark.sparkContext.setLogLevel("ERROR")
        results: dict[str, list[dict]] = defaultdict(list)
        load_before = os.getloadavg()[0]
        for i in range(repeat):
            order = ENGINES if i % 2 == 0 else tuple(reversed(ENGINES))
            for engine in order:
                cfg = base.model_copy(
                    update={
                        "lake_root": str(work / f"lake-{engine}-{i}"),
                        "storage": base.storage.model_copy(update={"engine": engine}),
                        "propagation": base.propagation.model_copy(update={"outbox_dir": str(work / f"outbox-{engine}-{i}")}),
                    }
                )
                started = time.perf_counter()
                result = run_pipeline(cfg, spark=spark)
                seconds = time.perf_counter() - started
                by_stage: dict[str, float] = defaultdict(float)
                for st in result.summary.steps:
                    by_stage[st.stage] += st.seconds
                results[engine].append(
                    {
                        "total_seconds": round(seconds, 1),
                        "stage_seconds": {k: round(v, 1) for k, v in by_stage.items()},
                        "step_seconds": {f"{s.stage}/{s.name}": round(s.seconds, 1) for s in result.summary.steps},
                    }
                )
                print(engine, round(seconds, 1), dict(by_stage), flush=True)
        report = {
            "what": f"demo pipeline, {persons} persons, local[2], one session, engines taking turns, {repeat} run(s) each",
            "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "spark": spark.version,
            "runs": results,
            "load_average_1min": {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)},
        }
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2) + "\n")
        spark.stop()
        return report
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "pipeline_engines.json")
    args = parser.parse_args()
    print(json.dumps(run(args.persons, args.repeat, args.out), indent=2))


if __name__ == "__main__":
    main()
