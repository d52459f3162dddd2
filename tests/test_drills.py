"""Drills a demanding user runs: ``cdi run`` killed with SIGKILL (its whole process group, JVM
included) right after a commit at each stage's boundary, then rerun; and two runs started on
one lake at once. After each, the lake must be exactly as after one clean run: nothing lost,
nothing doubled (bronze rows, id events, change rows, golden versions, outbox publications),
nothing left behind (temporary outbox files, half-saved models).

The clean run is the concurrent drill's winner; the killed runs read the same generated demo
sources (a small universe) into one lake, each healing the one before it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from tests.demo_subset import SYSTEMS, demo_subset_conf

from cdi.config import load_config
from cdi.lake import Lake
from cdi.pipeline import run
from cdi_cluster import write_run_conf
from cdi_demo import generate

pytestmark = pytest.mark.drills

PERSONS = 120
# each drill run is a subprocess with its own JVM: three of the demo's systems (demo_subset) have
# every stage and boundary at half the commits of the whole demo
SOURCES = SYSTEMS

# Runs the pipeline and kills its own process group right after the n-th commit to a table (or,
# for "outbox", right after the outbox file of the run is in place).
_KILLED_RUN = """
import os, signal, sys
import cdi.gold.propagation as propagation
import cdi.lake as lake_module
from cdi.config import load_config
from cdi.pipeline import run

conf, target, nth, run_id = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
seen = {"n": 0}

def hit():
    seen["n"] += 1
    if seen["n"] == nth:
        os.killpg(0, signal.SIGKILL)

if target == "outbox":
    publish_outbox = propagation.publish_outbox
    def killed_after_publishing(*args, **kwargs):
        out = publish_outbox(*args, **kwargs)
        hit()
        return out
    propagation.publish_outbox = killed_after_publishing
else:
    committed = lake_module.Lake._committed
    def killed_after_commit(self, table, result):
        out = committed(self, table, result)
        if table == target:
            hit()
        return out
    lake_module.Lake._committed = killed_after_commit
run(load_config(conf), run_id=run_id)
"""


def _env(demo_out: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYSPARK_GATEWAY", "SPARK_SUBMIT"))}
    env["CDI_DEMO_DATA"] = str(demo_out)  # the demo sources' paths name this variable
    return env


def _conf(tmp: Path, name: str, demo_out: Path) -> Path:
    return write_run_conf(
        tmp / f"{name}.yaml",
        demo_subset_conf(tmp),
        lake_root=str(tmp / name / "lake"),
        demo_out=str(demo_out),
        persons=PERSONS,
        checkpoint_dir=str(tmp / name / "checkpoints"),
        overrides={
            # a tiny demo still gets the generator's fixed handful of malformed rows per source
            "ingest": {"max_quarantine_share": 0.25},
            "propagation": {"outbox_dir": str(tmp / name / "outbox")},
            "spark": {"master": "local[1]", "driver_memory": "2g"},
        },
    )


def _cdi(conf: Path, env: dict[str, str], *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "cdi.cli", "run", "--conf", str(conf), *args],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )


def _lease_taken(lake_root: Path) -> bool:
    return (lake_root / "_cdi" / "lease" / "_delta_log").is_dir() and any(
        p.suffix == ".json" and p.stem != "00000000000000000000" for p in (lake_root / "_cdi" / "lease" / "_delta_log").iterdir()
    )


@pytest.fixture(scope="module")
def demo_out(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("drill-data") / "demo"
    generate(persons=PERSONS, seed=7, out=str(out))
    return out


@pytest.fixture(scope="module")
def clean_run(demo_out, tmp_path_factory, spark):
    """Two `cdi run` on one lake at once: the second fails at once naming the first, which completes."""
    tmp = tmp_path_factory.mktemp("drill-clean")
    conf = _conf(tmp, "clean", demo_out)
    env = _env(demo_out)
    first = _cdi(conf, env)
    deadline = time.monotonic() + 300
    while not _lease_taken(tmp / "clean" / "lake"):
        assert first.poll() is None, first.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "the first run never took the lease"
        time.sleep(0.2)
    second = _cdi(conf, env)
    second_out, second_err = second.communicate(timeout=300)
    first_out, first_err = first.communicate(timeout=900)
    cfg = load_config(conf)
    return {
        "cfg": cfg,
        "lake": Lake(spark, cfg.lake_root),
        "first": (first.returncode, first_err),
        "second": (second.returncode, second_err),
        "figures": figures(Lake(spark, cfg.lake_root), cfg),
    }


def figures(lake: Lake, cfg) -> dict:
    """What one clean run leaves, in counts that a lost or doubled write would change."""
    outbox = Path(cfg.propagation.outbox_dir)
    published = [json.loads(line) for f in sorted(outbox.glob("run_id=*.jsonl")) for line in f.read_text().splitlines()]
    changes = lake.read("gold/changes")
    golden = lake.read("gold/golden_records")
    id_history = lake.read("silver/id_history")
    models = sorted((Path(cfg.lake_root) / "models" / "linkage").iterdir())
    return {
        "bronze": {s: lake.read(f"bronze/{s}").count() for s in SOURCES},
        "quarantine": lake.read("bronze/_quarantine").count(),
        "records": lake.read("silver/records").count(),
        "facts": lake.read("silver/facts").count(),
        "entity_map": lake.read("silver/entity_map").count(),
        "customers": lake.read("silver/entity_map").select("customer_id").distinct().count(),
        "id_events": dict(Counter(r["event_type"] for r in id_history.select("event_type").collect())),
        "changes": dict(Counter(r["change_type"] for r in changes.select("change_type").collect())),
        "customers_changed_twice": changes.groupBy("customer_id").count().where("count > 1").count(),
        "golden_current": golden.where("is_current").count(),
        "golden_versions": golden.count(),
        "customers_with_two_current": golden.where("is_current").groupBy("customer_id").count().where("count > 1").count(),
        "customer_360": lake.read("gold/customer_360").count(),
        "published": len(published),
        "published_twice": sum(1 for n in Counter(p["customer_id"] for p in published).values() if n > 1),
        "outbox_temp_files": len(list(outbox.glob(".*.tmp"))),
        "models": [(m.name, (m / "meta.json").exists()) for m in models],
    }


def test_of_two_runs_started_together_one_fails_at_once_naming_the_other(clean_run):
    code, err = clean_run["first"]
    assert code == 0, err[-3000:]
    code, err = clean_run["second"]
    assert code == 2, err[-3000:]
    last = err.strip().splitlines()[-1]
    assert "is in use by run" in last and "one writer at a time" in last, last
    fig = clean_run["figures"]
    assert fig["published"] == fig["customers"] == fig["golden_current"] == fig["changes"]["new"]
    assert fig["customers_changed_twice"] == fig["published_twice"] == 0
    assert fig["models"] == [("v0001", True)]
    runs = clean_run["lake"].read("_cdi/runs").select("outcome").collect()
    assert [r["outcome"] for r in runs] == ["committed"]


# (table, n-th commit to it): each stage's boundaries where a kill used to lose or double work
BOUNDARIES = [
    ("bronze/webshop", 1),  # ingest: after a bronze commit, before its ledger entry
    ("silver/id_history", 1),  # link: after the id events, before the entity map they describe
    ("gold/changes", 1),  # gold: after the change feed, before the golden history
    ("gold/customer_360", 1),  # gold: after the customer 360, before publishing
    ("outbox", 1),  # publish: after the run's outbox file, before the run is marked done
]


def test_a_run_killed_at_each_commit_boundary_is_healed_by_the_next_run(clean_run, demo_out, tmp_path, spark, monkeypatch):
    """One lake, one killed run per boundary: each run first heals the one killed before it (a
    run per boundary from a fresh lake would cost a whole pipeline each); the last rerun must
    leave exactly what a clean run leaves."""
    conf = _conf(tmp_path, "drill", demo_out)
    for i, (target, nth) in enumerate(BOUNDARIES):
        killed = subprocess.run(
            [sys.executable, "-c", _KILLED_RUN, str(conf), target, str(nth), f"dead-{i}"],
            env=_env(demo_out), capture_output=True, text=True, timeout=900, start_new_session=True,
        )
        assert killed.returncode == -signal.SIGKILL, (target, killed.stderr[-3000:])

    monkeypatch.setenv("CDI_DEMO_DATA", str(demo_out))
    cfg = load_config(conf)
    rerun = run(cfg, spark=spark)
    lake = Lake(spark, cfg.lake_root)

    assert figures(lake, cfg) == clean_run["figures"]
    outcomes = {r["run_id"]: r["outcome"] for r in lake.read("_cdi/runs").select("run_id", "outcome").collect()}
    expected = {f"dead-{i}": "died_rolled_back" for i in range(len(BOUNDARIES) - 1)}
    assert outcomes == {**expected, f"dead-{len(BOUNDARIES) - 1}": "completed", rerun.run_id: "committed"}


@pytest.fixture()
def small_disk(tmp_path):
    """A 48 MB tmpfs for a lake; skipped (with the reason) where this process cannot mount one."""
    mount = tmp_path / "small-disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(mount)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or 'mount failed'}): the disk-full drill needs one")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_fails_the_run_naming_path_and_cause_and_the_rerun_loses_and_doubles_nothing(small_disk, tmp_path, spark):
    from cdi.config import CdiConfig, SourceConfig, StorageConfig
    from cdi.errors import IngestError

    data = tmp_path / "crm"
    data.mkdir()
    rows = [f"{i},Name {i},City {i % 97}" for i in range(20_000)]
    (data / "contacts.csv").write_text("id,name,city\n" + "\n".join(rows) + "\n", encoding="utf-8")
    source = SourceConfig(name="crm", kind="customers", format="csv", path=str(data / "*.csv"), id_columns=["id"])
    # a short lease: giving it back fails on the full disk too, so the rerun waits for it to expire
    cfg = CdiConfig(lake_root=str(small_disk / "lake"), sources=[source], storage=StorageConfig(lease_ttl_seconds=10))
    filler = small_disk / "filler"
    with open(filler, "wb") as fh:  # leave about 200 KB: the lake's first files fit, the batch does not
        free = os.statvfs(small_disk).f_bavail * os.statvfs(small_disk).f_frsize
        fh.write(b"\0" * max(0, free - 200_000))

    with pytest.raises(IngestError) as err:
        run(cfg, stages=("ingest",), spark=spark)
    last = str(err.value).strip().splitlines()[-1]
    assert "source 'crm'" in last and str(small_disk) in last and "No space left on device" in last, last

    filler.unlink()
    time.sleep(11)
    run(cfg, stages=("ingest",), spark=spark)
    lake = Lake(spark, cfg.lake_root)
    bronze = lake.read("bronze/crm")
    assert bronze.count() == len(rows) and bronze.select("_source_record_id").distinct().count() == len(rows)
    assert not lake.exists("bronze/_quarantine") or lake.read("bronze/_quarantine").count() == 0
