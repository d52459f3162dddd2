"""Peak memory of a full run: the driver's JVM (in local mode also the executors), PySpark's Python
workers (pandas UDFs) and the Python process (which holds Splink's DuckDB when the run links on
DuckDB), per stage.

Run on demand (not a test)::

    CDI_LAKE_ROOT=... CDI_DEMO_DATA=... CDI_OUTBOX_DIR=... \\
        python bench/bench_memory.py [--conf conf/demo.yaml] [--out FILE]

One ``cdi run --full`` in this process while a thread reads, every 0.2 s, the resident set size
(``VmRSS`` in ``/proc``) of this process and of its JVM, the proportional set size of the JVM's
descendants (the Python workers: forks of one daemon that share most of their pages), the JVM's
heap in use, and its heap in use after the last collection (what the live data needs; garbage
not yet collected counts only in the former). Each sample is charged to the stage the run had
started last (from the run's own ``[stage] step: started`` log lines). The kernel's own
high-water marks (``VmHWM``) are reported beside them as a check on the sampling.
Sizes are MiB. Linux only. Results go to ``bench/results/memory.json``.
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


def _pss_kb(pid: int) -> int:
    """Proportional set size in kB: pages shared with other processes counted by share (the
    Python workers are forks of one daemon and share most of their pages); 0 when gone."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return 0


def _parents() -> dict[int, int]:
    """Every process's parent pid."""
    out = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                out[int(proc.name)] = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    return out


def _descendants(pid: int) -> list[int]:
    parents = _parents()
    found, frontier = [], [pid]
    while frontier:
        children = [p for p, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


def _jvm_pid() -> int:
    """The java process this Python process started for its Spark session."""
    for pid in _descendants(os.getpid()):
        try:
            if b"java" in Path(f"/proc/{pid}/cmdline").read_bytes():
                return pid
        except OSError:
            continue
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
    jvm = spark.sparkContext._jvm
    runtime = jvm.java.lang.Runtime.getRuntime()
    heap_pools = [p for p in jvm.java.lang.management.ManagementFactory.getMemoryPoolMXBeans() if str(p.getType()) == "Heap memory"]
    tracker = _StepTracker()
    progress_log = logging.getLogger("cdi")  # cdi.progress logs its steps as "cdi"
    progress_log.addHandler(tracker)
    progress_log.setLevel(logging.INFO)
    keys = ("python_rss_mb", "jvm_rss_mb", "python_workers_pss_mb", "sum_rss_mb", "jvm_heap_used_mb", "jvm_heap_after_gc_mb")
    peaks: dict[str, dict[str, float]] = {}
    errors: list[str] = []
    stop = threading.Event()

    def after_gc() -> float:
        used = 0
        for pool in heap_pools:
            usage = pool.getCollectionUsage()
            used += usage.getUsed() if usage is not None else 0
        return used / _MB / _MB

    def sample() -> None:
        try:
            while not stop.is_set():
                py = _status_kb(os.getpid(), "VmRSS") / _MB
                jvm_rss = _status_kb(jvm_pid, "VmRSS") / _MB
                workers = sum(_pss_kb(pid) for pid in _descendants(jvm_pid)) / _MB
                heap = (runtime.totalMemory() - runtime.freeMemory()) / _MB / _MB
                values = (py, jvm_rss, workers, py + jvm_rss + workers, heap, after_gc())
                stage = peaks.setdefault(tracker.current, dict.fromkeys(keys, 0.0))
                for key, value in zip(keys, values, strict=True):
                    stage[key] = max(stage[key], round(value, 1))
                stop.wait(interval)
        except Exception as exc:  # reported: peaks after this point are missing
            errors.append(f"sampling stopped: {exc!r}")

    sampler = threading.Thread(target=sample, name="rss-sampler", daemon=True)
    try:
        records = spark.read.format("delta").load(f"{cfg.lake_root}/silver/records").count() if Path(f"{cfg.lake_root}/silver/records").exists() else None
        sampler.start()
        start = time.perf_counter()
        result = run_pipeline(cfg, spark=spark, full=True)
        seconds = round(time.perf_counter() - start, 1)
        stop.set()
        sampler.join()
        overall = {key: max(p[key] for p in peaks.values()) for key in keys}
        report = {
            "what": "peak memory of cdi run --full (local mode: the driver JVM is also the executor), per stage",
            "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": f"{os.cpu_count()} cores, {cfg.spark.master}",
            "spark_driver_memory": spark.conf.get("spark.driver.memory", "(default)"),
            "jvm_max_heap_mb": round(runtime.maxMemory() / _MB / _MB, 1),
            "linkage_backend": result.link.backend if result.link else None,
            "sampling_errors": errors,
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
        if sampler.is_alive():
            sampler.join()
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
