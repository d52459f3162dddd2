"""The lake on each engine (delta-spark, the deltalake fallback) against plain Spark Parquet:
write and read 1M rows of 10 mixed columns, and MERGE 1% of them back (changed values).

Run on demand (not a test): ``python bench/bench_lake.py [--rows N] [--repeat K] [--out FILE]``.
Every side uses the same local[2] session and the same cached input, in one run, sides taking
turns; each timing is the median of ``--repeat`` runs after one warm-up. Reads are forced with
Spark's ``noop`` sink, which materialises every column without writing anything. Results go to
``bench/results/lake.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

AIM = 1.3


def mixed_rows(spark, rows: int):
    """10 columns of the kinds the pipeline stores: ids, names, numbers, money, dates, flags."""
    from pyspark.sql import functions as F

    base = spark.range(rows, numPartitions=4)
    return base.select(
        F.col("id"),
        F.concat(F.lit("name-"), (F.col("id") % 50_000).cast("string")).alias("name"),
        F.concat(F.lit("user"), F.col("id").cast("string"), F.lit("@example.com")).alias("email"),
        (F.rand(1) * 100).alias("score"),
        (F.col("id") % 100_000 / 100).cast("decimal(12,2)").alias("amount"),
        F.date_add(F.lit("1950-01-01").cast("date"), (F.col("id") % 25_000).cast("int")).alias("born"),
        F.timestamp_seconds(F.lit(1_600_000_000) + F.col("id")).alias("updated_at"),
        (F.col("id") % 3 == 0).alias("active"),
        F.element_at(F.array(*[F.lit(c) for c in ["GB", "DE", "FR", "ES", "IT"]]), (F.col("id") % 5 + 1).cast("int")).alias("country"),
        (F.col("id") % 1000).cast("int").alias("visits"),
    )


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run(rows: int, repeat: int, out: Path) -> dict:
    from pyspark.sql import functions as F

    from cdi.lake import Lake, MergeSpec
    from cdi.spark import SparkSettings, build_session

    spark = build_session(
        SparkSettings(master="local[2]", app_name="bench-lake", shuffle_partitions=2, conf={"spark.ui.enabled": "false"})
    )
    spark.sparkContext.setLogLevel("ERROR")
    work = Path(tempfile.mkdtemp(prefix="bench-lake-"))
    try:
        source = mixed_rows(spark, rows).cache()
        assert source.count() == rows
        lakes = {
            engine: Lake(spark, str(work / engine), job="bench", run_id="bench", engine=engine)
            for engine in ("delta-spark", "deltalake")
        }
        plain_root = work / "plain"
        changed = source.where(F.col("id") % 100 == 0).withColumn("visits", F.col("visits") + 1).cache()
        changed.count()
        spec = MergeSpec(keys=(("id", "id"),), update=(("visits", "s.visits"),))

        def sides(i: int):
            yield "plain", (
                lambda: source.write.mode("overwrite").parquet(str(plain_root / f"t{i}")),
                lambda: spark.read.parquet(str(plain_root / f"t{i}")).write.format("noop").mode("overwrite").save(),
                None,
            )
            for engine, lake in lakes.items():
                yield engine, (
                    lambda lake=lake: lake.write(f"t{i}", source, mode="overwrite"),
                    lambda lake=lake: lake.read(f"t{i}").write.format("noop").mode("overwrite").save(),
                    lambda lake=lake: lake.merge(f"t{i}", changed, spec),
                )

        load_before = os.getloadavg()[0]
        timings: dict[str, list[float]] = {}
        for i in range(repeat + 1):  # run 0 warms up the JVM and the Python workers
            # rotate which side goes first so none always gets the warmer caches
            order = list(sides(i))
            order = order[i % len(order):] + order[: i % len(order)]
            for name, (write, read, merge) in order:
                for op, fn in (("write", write), ("read", read), ("merge", merge)):
                    if fn is None:
                        continue
                    seconds = timed(fn)
                    if i:
                        timings.setdefault(f"{name}_{op}", []).append(seconds)
        medians = {k: statistics.median(v) for k, v in timings.items()}
        result = {
            "what": f"{rows:,} rows x 10 mixed columns, local[2], median of {repeat} runs after a warm-up; "
            f"merge updates {changed.count():,} rows",
            "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "spark": spark.version,
            "engines": {name: lake.engine.name for name, lake in lakes.items()},
            "rows": rows,
            "seconds": {k: round(v, 3) for k, v in sorted(medians.items())},
            "runs": {k: [round(x, 3) for x in v] for k, v in sorted(timings.items())},
            "ratio_to_plain": {
                f"{engine}_{op}": round(medians[f"{engine}_{op}"] / medians[f"plain_{op}"], 3)
                for engine in lakes
                for op in ("write", "read")
            },
            "aim": AIM,
            "load_average_1min": {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)},
            "parquet_files_per_write": {engine: len(lake.file_paths("t1")) for engine, lake in lakes.items()},
        }
        result["within_aim"] = all(v <= AIM for v in result["ratio_to_plain"].values())
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")
        return result
    finally:
        spark.stop()
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "lake.json")
    args = parser.parse_args()
    print(json.dumps(run(args.rows, args.repeat, args.out), indent=2))


if __name__ == "__main__":
    main()
