"""Latency of the service desk (``cdi serve``) over a real lake, through HTTP on loopback.

Run on demand (not a test)::

    python bench/bench_service.py --persons 430000            # builds a demo lake first (cdi run)
    python bench/bench_service.py --lake ~/cdi-demo/lake       # or serves an existing one

The app runs under uvicorn in this process; one client sends, one at a time, ``--requests``
requests of each kind: a customer page by id, a search by source record key, by e-mail, and a
fuzzy name search with one letter changed. Keys are drawn from the lake itself (seeded). Results
(p50, p95, max per kind; snapshot load seconds; peak RSS) go to ``bench/results/service.json``.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import socket
import statistics
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def build_lake(persons: int) -> tuple[str, float, int]:
    """A demo lake of ``persons`` (conf/demo.yaml, fresh folders); its root, seconds, records."""
    import os

    from cdi.config import load_config
    from cdi.pipeline import run

    work = Path(tempfile.mkdtemp(prefix="bench-service-"))
    os.environ.update(CDI_LAKE_ROOT=str(work / "lake"), CDI_DEMO_DATA=str(work / "data"), CDI_OUTBOX_DIR=str(work / "outbox"))
    cfg = load_config(ROOT / "conf" / "demo.yaml")
    cfg = cfg.model_copy(update={"demo": cfg.demo.model_copy(update={"persons": persons})})
    started = time.monotonic()
    run(cfg)
    return str(work / "lake"), time.monotonic() - started, persons


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 1),
        "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))] * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
        "requests": len(ordered),
    }


def _typo(rng: random.Random, name: str) -> str:
    i = rng.randrange(len(name))
    return name[:i] + rng.choice("aeiounrst") + name[i + 1 :]


def measure(lake_root: str, requests: int, seed: int) -> dict:
    import httpx
    import uvicorn

    from cdi.config import CdiConfig, ServiceConfig
    from cdi.service.app import create_app
    from cdi.service.snapshot import SnapshotKeeper

    started = time.monotonic()
    keeper = SnapshotKeeper(lake_root, refresh_seconds=0)
    load_seconds = time.monotonic() - started
    snap = keeper.current
    cur = snap.cursor()
    rng = random.Random(seed)
    ids = [r[0] for r in cur.execute("SELECT customer_id FROM golden WHERE is_current USING SAMPLE 2000 ROWS").fetchall()]
    keys = [r[0] for r in cur.execute("SELECT record_key FROM entity_map USING SAMPLE 2000 ROWS").fetchall()]
    emails = [r[0] for r in cur.execute("SELECT email FROM records WHERE email IS NOT NULL USING SAMPLE 2000 ROWS").fetchall()]
    names = [n for n in rng.sample(snap.names, min(2000, len(snap.names))) if len(n) > 4]
    counts = {t: cur.execute(f"SELECT count(*) FROM {n}").fetchone()[0] for t, n in (("records", "records"), ("customers", "golden"))}

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = CdiConfig(lake_root=lake_root, service=ServiceConfig(refresh_seconds=0))
    server = uvicorn.Server(uvicorn.Config(create_app(cfg, keeper), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    base = f"http://127.0.0.1:{port}"
    kinds = {
        "customer page by id": lambda: f"/api/customers/{rng.choice(ids)}",
        "search by record key": lambda: f"/api/search?q={rng.choice(keys)}",
        "search by e-mail": lambda: f"/api/search?q={rng.choice(emails)}",
        "fuzzy name search (one typo)": lambda: f"/api/search?q={_typo(rng, rng.choice(names))}",
    }
    results = {}
    with httpx.Client(base_url=base, timeout=30) as client:
        for _ in range(20):  # warm up
            client.get(kinds["customer page by id"]())
        for kind, path in kinds.items():
            samples = []
            for _ in range(requests):
                url = path()
                t0 = time.perf_counter()
                r = client.get(url)
                samples.append(time.perf_counter() - t0)
                assert r.status_code == 200, (url, r.status_code, r.text[:300])
            results[kind] = _percentiles(samples)
    server.should_exit = True
    thread.join(timeout=10)
    return {
        "records": counts["records"],
        "golden_rows": counts["customers"],
        "searchable_customers": len(snap.names),
        "snapshot_load_seconds": round(load_seconds, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "latency": results,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lake", help="serve this lake (else build a demo lake of --persons)")
    parser.add_argument("--persons", type=int, default=430_000)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "service.json")
    args = parser.parse_args()
    build = None
    lake = args.lake
    if lake is None:
        lake, seconds, persons = build_lake(args.persons)
        build = {"persons": persons, "pipeline_seconds": round(seconds, 1)}
    figures = measure(lake, args.requests, args.seed)
    out = {
        "what": f"cdi serve over HTTP on loopback, one client, {args.requests} requests per kind",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "lake": lake,
        "build": build,
        **figures,
        "targets_ms_p95": {"lookup by key": 100, "fuzzy name search": 300},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
