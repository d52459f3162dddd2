"""Latency of real-time matching (``POST /api/match``) over a real lake, through HTTP on loopback.

Run on demand (not a test)::

    python bench/bench_match.py --lake /tmp/bench-service-xxxx/lake   # a lake built by bench_service.py

Records are drawn from the lake's own ``silver/records`` (seeded) and typed as a clerk would:
names in capitals, and in half of them one letter of the surname changed. One client sends them
one at a time. Results (p50, p95, max; the median of each phase; the share whose best candidate
is the customer holding the drawn record; the preparation time; peak RSS) go to
``bench/results/match.json``.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import socket
import statistics
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TYPED = ("first_name", "last_name", "date_of_birth", "email", "phone", "address_line1", "postcode", "city", "country")


def _typo(rng: random.Random, text: str) -> str:
    i = rng.randrange(len(text))
    return text[:i] + rng.choice("aeiounrst") + text[i + 1 :]


def main() -> None:
    import httpx
    import uvicorn

    from cdi.config import CdiConfig, ServiceConfig
    from cdi.service.app import create_app
    from cdi.service.matching import Matcher
    from cdi.service.snapshot import SnapshotKeeper

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lake", required=True)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "match.json")
    args = parser.parse_args()

    keeper = SnapshotKeeper(args.lake, refresh_seconds=0)
    snap = keeper.current
    cur = snap.cursor()
    rng = random.Random(args.seed)
    columns = ", ".join(TYPED)
    drawn = cur.execute(
        f"SELECT r.record_key, m.customer_id, {columns} FROM records r JOIN entity_map m USING (record_key) "
        f"WHERE r.last_name IS NOT NULL USING SAMPLE {args.requests + 20} ROWS"
    ).fetchall()
    records = cur.execute("SELECT count(*) FROM records").fetchone()[0]

    cfg = CdiConfig(lake_root=args.lake, service=ServiceConfig(refresh_seconds=0, match_on_start=False))
    matcher = Matcher(cfg)
    started = time.monotonic()
    matcher.warm(snap)
    prepare_seconds = time.monotonic() - started

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(cfg, keeper, matcher), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    samples, phases, found, typos = [], {"standardise": [], "score": [], "customers": []}, 0, 0
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
        for i, row in enumerate(drawn):
            _, owner, *values = row
            record = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in zip(TYPED, values, strict=True) if v is not None}
            record["first_name"] = str(record.get("first_name", "")).upper() or None
            if rng.random() < 0.5 and len(record["last_name"]) > 3:
                record["last_name"] = _typo(rng, record["last_name"])
                typos += 1 if i >= 20 else 0
            t0 = time.perf_counter()
            r = client.post("/api/match", json={"record": {k: v for k, v in record.items() if v}})
            elapsed = time.perf_counter() - t0
            assert r.status_code == 200, (record, r.status_code, r.text[:300])
            if i < 20:  # warm-up
                continue
            body = r.json()
            samples.append(elapsed)
            for k in phases:
                phases[k].append(body["seconds"][k])
            found += bool(body["candidates"]) and body["candidates"][0]["customer_id"] == owner
    server.should_exit = True
    thread.join(timeout=10)
    ordered = sorted(samples)
    out = {
        "what": f"POST /api/match over HTTP on loopback, one client, {len(samples)} records drawn from silver/records "
        f"(names in capitals, {typos} with a surname typo)",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "lake": args.lake,
        "records": records,
        "prepare_seconds": round(prepare_seconds, 1),
        "latency": {
            "p50_ms": round(statistics.median(ordered) * 1000, 1),
            "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))] * 1000, 1),
            "max_ms": round(ordered[-1] * 1000, 1),
            "requests": len(ordered),
        },
        "phase_median_ms": {k: round(statistics.median(v) * 1000, 1) for k, v in phases.items()},
        "best_candidate_is_the_records_customer": round(found / len(samples), 4),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "target_ms_p95": 500,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
