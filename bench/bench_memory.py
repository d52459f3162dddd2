"""Peak memory of a full run: the driver's JVM (in local mode also the executors) and the Python
process (which holds Splink's DuckDB when ``linkage.backend`` is duckdb), per stage.

Run on demand (not a test)::

    CDI_LAKE_ROOT=... CDI_DEMO_DATA=... CDI_OUTBOX_DIR=... \\
        python bench/bench_memory.py [--conf conf/demo.yaml] [--out FILE]

One ``cdi run --full`` in this process while a thread reads the resident set size (``VmRSS`` in
``/proc``) of this process and of its JVM every 0.2 s, and the JVM's used heap through py4j. Each
sample is charged to the step the run had started last (from the run's own ``[stage] step:
started`` log lines), so the peaks are per stage. The kernel's own high-water marks (``VmHWM``)
are reported beside them as a check on the sampling. Linux only. Results go to
``bench/results/memory.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_STARTED = re.compile(r"^\[(?P<stage>[^\]]+)\] (?P<step>.+): started$")
_MB = 1024.0


def _status_kb(pid: int, field: str) -> int:
    """A ``/proc/<pid>/status`` field in kB; 0 when the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def _jvm_pid() -> int:
    """The java process this Python process started for its Spark session."""
    me = str(os.getpid())
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if stat.rsplit(")", 1)[1].split()[1] == me and b"java" in cmdline:
            return int(proc.name)
    raise SystemExit("no JVM child process found: is the Spark session local?")


class _StepTracker(logging.Handler):
    """Remembers the step the run started last, from :mod:`cdi.progress`'s log lines."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.current = "session"

    def emit(self, record: logging.LogRecord) -> None:
        match = _STARTED.match(record.getMessage())
        if match:
            self.current = match["stage"]


def run(conf: Path, out: Path, interval: float = 0.2) -> dict:
    from cdi.config import load_config
    from cdi.pipeline import open_session
    from cdi.pipeline import run as run_pipeline

    cfg = load_config(conf)
    spark = open_session(cfg)
    spark.sparkContext.setLogLevel("ERROR")
    jvm_pid = _jvm_pid()
    runtime = spark.sparkContext._jvm.java.lang.Runtime.getRuntime()
    tracker = _StepTracker()
    progress_log = logging.getLogger("cdi")  # cdi.progress logs its steps as "cdi"
    progress_log.addHandler(tracker)
    progress_log.setLevel(logging.INFO)
    peaks: dict[str, dict[str, float]] = {}
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            py = _status_kb(os.getpid(), "VmRSS") / _MB
            jvm = _status_kb(jvm_pid, "VmRSS") / _MB
            heap = (runtime.totalMemory() - runtime.freeMemory()) / _MB / _MB
            stage = peaks.setdefault(tracker.current, {"python_rss_mb": 0.0, "jvm_rss_mb": 0.0, "jvm_heap_used_mb": 0.0, "sum_rss_mb": 0.0})
            for key, value in (("python_rss_mb", py), ("jvm_rss_mb", jvm), ("jvm_heap_used_mb", heap), ("sum_rss_mb", py + jvm)):
                stage[key] = max(stage[key], round(value, 1))
            stop.wait(interval)

    sampler = threading.Thread(target=sample, name="rss-sampler", daemon=True)
    try:
        records = spark.read.format("delta").load(f"{cfg.lake_root}/silver/records").count() if Path(f"{cfg.lake_root}/silver/records").exists() else None
        sampler.start()
        start = time.perf_counter()
        result = run_pipeline(cfg, spark=spark, full=True)
        seconds = round(time.perf_counter() - start, 1)
        stop.set()
        sampler.join()
        overall = {key: max(p[key] for p in peaks.values()) for key in ("python_rss_mb", "jvm_rss_mb", "jvm_heap_used_mb", "sum_rss_mb")}
        report = {
            "what": "peak memory of cdi run --full (local mode: the driver JVM is also the executor), per stage",
            "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": f"{os.cpu_count()} cores, {cfg.spark.master}",
            "spark_driver_memory": spark.conf.get("spark.driver.memory", "(default)"),
            "jvm_max_heap_mb": round(runtime.maxMemory() / _MB / _MB, 1),
            "linkage_backend": cfg.linkage.backend,
            "silver_records_before": records,
            "run_seconds": seconds,
            "peak": overall,
            "kernel_high_water_mb": {
                "python": round(_status_kb(os.getpid(), "VmHWM") / _MB, 1),
                "jvm": round(_status_kb(jvm_pid, "VmHWM") / _MB, 1),
            },
            "peak_per_stage": peaks,
            "stage_seconds": {st.stage: 0.0 for st in result.summary.steps},
        }
        for st in result.summary.steps:
            report["stage_seconds"][st.stage] = round(report["stage_seconds"][st.stage] + st.seconds, 1)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2) + "\n")
        return report
    finally:
        stop.set()
        progress_log.removeHandler(tracker)
        spark.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conf", type=Path, default=ROOT / "conf" / "demo.yaml")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "memory.json")
    args = parser.parse_args()
    print(json.dumps(run(args.conf, args.out), indent=2))


if __name__ == "__main__":
    main()
