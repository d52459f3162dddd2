"""conf/demo.yaml with only some of the demo's systems: for tests that run the whole pipeline
in subprocesses or on a cluster, where every source costs commits and jobs in each run."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
# three of the demo's six systems (with their fact sources): every stage and kind of source is
# there (CSV, JSON lines and Parquet; customers and facts) at half the commits of the whole demo
SYSTEMS = ("crm", "webshop", "billing")


def demo_subset_conf(folder: Path, systems: Sequence[str] = SYSTEMS) -> Path:
    """Write conf/demo.yaml with only ``systems`` into ``folder`` and return its path."""
    demo = yaml.safe_load((ROOT / "conf" / "demo.yaml").read_text())
    conf = ROOT / "conf"
    demo["include"] = [str(conf / "sources" / f"{s}.yaml") for s in systems] + [
        str(conf / f) for f in ("linkage.yaml", "survivorship.yaml", "analytics.yaml")
    ]
    folder.mkdir(parents=True, exist_ok=True)
    base = folder / "demo-subset.yaml"
    base.write_text(yaml.safe_dump(demo, sort_keys=False), encoding="utf-8")
    return base
