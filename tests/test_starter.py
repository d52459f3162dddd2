"""`cdi init DIR` writes a starter project from templates inside the package, and the built
wheel, installed into a fresh virtual environment, can init and run one."""

from __future__ import annotations

import filecmp
import json
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from cdi.cli import main
from cdi.config import load_config
from cdi.starter import ENV_FILE, init_project

ROOT = Path(__file__).resolve().parents[1]


def test_init_writes_a_project_whose_config_loads_and_links_the_repository_files(tmp_path, capsys):
    project = tmp_path / "proj"
    assert main(["init", str(project)]) == 0
    assert f"cdi run --conf {ENV_FILE}" in capsys.readouterr().out
    cfg = load_config(project / ENV_FILE)
    assert [s.name for s in cfg.sources] == ["shop"]
    assert Path(cfg.sources[0].path) == project / "data" / "customers.csv" and Path(cfg.sources[0].path).is_file()
    assert Path(cfg.lake_root) == project / "lake"
    assert Path(cfg.propagation.outbox_dir or "") == project / "outbox"
    assert cfg.segments and cfg.linkage.comparisons
    # the shared files are the repository's own (linked in the source tree, copied into the wheel)
    for shared in ("conf/linkage.yaml", "conf/survivorship.yaml", "conf/analytics.yaml", "jobs/_entry.py"):
        assert filecmp.cmp(project / shared, ROOT / shared, shallow=False), shared
    cells = json.loads((project / "notebooks" / "segmentation.ipynb").read_text(encoding="utf-8"))["cells"]
    parameters = "".join(next(c for c in cells if "parameters" in c["metadata"].get("tags", []))["source"])
    assert 'CONF_PATH = "../conf/project.yaml"' in parameters
    assert not [c for c in cells if "conf/demo.yaml" in "".join(c["source"])]


def test_init_refuses_a_folder_with_files_unless_forced_and_then_keeps_them(tmp_path, capsys):
    project = tmp_path / "proj"
    project.mkdir()
    (project / "mine.txt").write_text("keep me", encoding="utf-8")
    assert main(["init", str(project)]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert "is not empty" in last and "--force" in last, last
    assert sorted(p.name for p in project.iterdir()) == ["mine.txt"]
    written = init_project(project, force=True)
    assert (project / ENV_FILE) in written and (project / "mine.txt").read_text(encoding="utf-8") == "keep me"
    (tmp_path / "a-file").write_text("", encoding="utf-8")
    assert main(["init", str(tmp_path / "a-file")]) == 2


@pytest.mark.e2e
def test_the_wheel_in_a_fresh_venv_inits_and_runs_a_project(tmp_path):
    """Built from a copy of the sources (no stale build folder), installed without its
    dependencies into a venv that sees this interpreter's packages (no index needed)."""
    src = tmp_path / "src"
    for part in ("lib", "conf", "jobs", "notebooks"):
        shutil.copytree(ROOT / part, src / part, symlinks=True, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for part in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / part, src / part)
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(dist), str(src)],
        check=True, capture_output=True, text=True, cwd=tmp_path,
    )  # fmt: skip
    wheel = next(dist.glob("cdi-*.whl"))
    env_dir = tmp_path / "venv"
    venv.create(env_dir, system_site_packages=True, with_pip=False)
    python = env_dir / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHONPATH", "PYSPARK_GATEWAY", "SPARK_SUBMIT", "CDI_"))}
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", "--no-index", str(wheel)],
        check=True, capture_output=True, text=True, env=env,
    )  # fmt: skip
    where = subprocess.run([python, "-c", "import cdi; print(cdi.__file__)"], capture_output=True, text=True, env=env, check=True)
    assert where.stdout.strip().startswith(str(env_dir)), where.stdout

    cdi = env_dir / "bin" / "cdi"
    project = tmp_path / "project"
    subprocess.run([cdi, "init", str(project)], check=True, capture_output=True, text=True, env=env, cwd=tmp_path)
    done = subprocess.run(
        [cdi, "-q", "run", "--conf", str(project / ENV_FILE)], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=900
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "publish" in done.stdout and "total" in done.stdout, done.stdout
    assert (project / "lake" / "gold" / "golden_records" / "_delta_log").is_dir()
    assert list((project / "outbox").glob("run_id=*.jsonl"))
