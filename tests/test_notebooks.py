"""The notebooks run top to bottom on a small hand-built lake and show the right figures; the
committed notebooks carry no outputs.

Each executed notebook starts its own Spark session (a second JVM, local[1]) in a Jupyter
kernel running this interpreter; parameters are injected after the cell tagged ``parameters``
as papermill does.
"""

from __future__ import annotations

import csv
import json
import re
import sys
from pathlib import Path

import nbformat
import pytest
from customer_360_fixtures import shared_lake

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
CELL_TIMEOUT = 300


def _kernel_manager(tmp_path: Path):
    """A kernel spec for this interpreter in a private folder (no system kernelspec needed)."""
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    folder = tmp_path / "kernels" / "cdi-test"
    folder.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "cdi tests",
        "language": "python",
    }
    (folder / "kernel.json").write_text(json.dumps(spec), encoding="utf-8")
    specs = KernelSpecManager(kernel_dirs=[str(folder.parent)])
    return KernelManager(kernel_name="cdi-test", kernel_spec_manager=specs)


def execute(name: str, parameters: dict, tmp_path: Path) -> nbformat.NotebookNode:
    from nbclient import NotebookClient

    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    index = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    source = "\n".join(f"{k} = {v!r}" for k, v in parameters.items())
    injected = nbformat.v4.new_code_cell(source, metadata={"tags": ["injected-parameters"]})
    nb.cells.insert(index + 1, injected)
    client = NotebookClient(
        nb,
        km=_kernel_manager(tmp_path),
        timeout=CELL_TIMEOUT,
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    client.execute()
    nbformat.write(nb, tmp_path / f"{name}.executed.ipynb")  # kept for debugging a failure
    return nb


def tagged_text(nb, tag: str) -> str:
    cell = next(c for c in nb.cells if tag in c.metadata.get("tags", []))
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")


def all_outputs(nb) -> list:
    return [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]


def test_committed_notebooks_have_no_outputs():
    paths = sorted(NOTEBOOKS.glob("*.ipynb"))
    assert {p.name for p in paths} >= {"segmentation.ipynb", "match_quality.ipynb", "life_events.ipynb"}
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count)]
        assert not dirty, (
            f"{path.name}: cells {dirty} carry outputs; strip them before committing: "
            f"jupyter nbconvert --clear-output --inplace {path}"
        )
        tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1, f"{path.name}: exactly one cell must be tagged 'parameters'"


@pytest.mark.notebooks
def test_segmentation_notebook_shows_segments_and_exports_the_consented_audience(spark, tmp_path_factory, tmp_path):
    shared = shared_lake(spark, tmp_path_factory)
    out = tmp_path / "audiences"
    nb = execute(
        "segmentation",
        {"CONF_PATH": str(shared["conf_path"]), "SEGMENT": "mid_income", "CHANNEL": "email", "OUTPUT_DIR": str(out)},
        tmp_path,
    )
    coverage = tagged_text(nb, "coverage")  # shown first; C3 has no birth date, income or marital status
    assert re.search(r"^age_band\s+3\s+1\s+0\s+0\.75\s*$", coverage, re.M), coverage
    assert re.search(r"^region\s+4\s+0\s+0\s+1\.00\s*$", coverage, re.M), coverage
    table = tagged_text(nb, "segment-table")
    for segment, customers in {"mid_income": 2, "women": 1, "gb_buyers": 1}.items():
        assert re.search(rf"^\s*{segment}\s+{customers}\s", table, re.M), table
    assert "nobody" not in table  # a segment without members has no profile row
    images = [o for o in all_outputs(nb) if "image/png" in o.get("data", {})]
    assert len(images) >= 4  # sizes, revenue by age x gender, income x region heat map, RFM
    files = sorted((out / "mid_income_email").glob("part-*.csv"))
    assert len(files) == 1
    with files[0].open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    # mid_income is C1 and C2; only C2 consented to e-mail (C1's latest answer was N)
    # the notebook's default output leaves contact points masked
    assert [(r["customer_id"], r["email"]) for r in rows] == [("C2", "b***@example.com")]
    assert "1 consented customers (email, contact points masked)" in tagged_text(nb, "export")


@pytest.mark.notebooks
def test_match_quality_notebook_shows_clusters_weights_model_and_scores(spark, tmp_path_factory, tmp_path):
    shared = shared_lake(spark, tmp_path_factory)
    model_dir = Path(shared["lake"].root) / "models" / "linkage" / "v0001"
    model_dir.mkdir(parents=True, exist_ok=True)
    levels = [
        {"comparison": "email", "level": "exact", "m_probability": 0.9, "u_probability": 0.001},
        {"comparison": "email", "level": "else", "m_probability": 0.1, "u_probability": 0.999},
    ]
    (model_dir / "model.json").write_text(json.dumps({"comparisons": []}), encoding="utf-8")
    (model_dir / "parameters.json").write_text(json.dumps({"levels": levels}), encoding="utf-8")
    (model_dir / "match_weights.html").write_text("<div id='chart-marker-7'>weights</div>", encoding="utf-8")
    (model_dir / "meta.json").write_text(json.dumps({"version": 1}), encoding="utf-8")
    truth = tmp_path / "truth.csv"
    # P1 = crm:1 + crm:5 (linked), P2 = crm:2 + crm:4 (not linked): pairwise precision 1, recall 0.5
    truth.write_text(
        "source,source_record_id,person_id\ncrm,1,P1\ncrm,5,P1\ncrm,2,P2\ncrm,4,P2\ncrm,3,P3\ncrm,9,P9\n",
        encoding="utf-8",
    )
    nb = execute("match_quality", {"CONF_PATH": str(shared["conf_path"]), "TRUTH_PATH": str(truth)}, tmp_path)

    sizes = tagged_text(nb, "cluster-sizes")
    assert re.search(r"^\s*1\s+4\s+4\s*$", sizes, re.M), sizes  # C2, C3, C4, C9 have one record
    assert re.search(r"^\s*2\s+1\s+2\s*$", sizes, re.M), sizes  # C1 has two
    weights = tagged_text(nb, "match-weights")
    for start in ("-6.0", "-3.0", "9.0"):
        assert re.search(rf"^\s*{re.escape(start)}\s+\S+\s+1\s", weights, re.M), weights
    html = "".join(str(o.get("data", {}).get("text/html", "")) for o in all_outputs(nb))
    assert "chart-marker-7" in html and "u_probability" in html
    scores = tagged_text(nb, "evaluation")
    assert re.search(r"pairwise\.precision\s+1\.0\b", scores), scores
    assert re.search(r"pairwise\.recall\s+0\.5\b", scores), scores


@pytest.mark.notebooks
def test_life_events_notebook_shows_events_risers_movers_and_a_consented_offer(spark, tmp_path_factory, tmp_path):
    import shutil
    from datetime import datetime

    from customer_360_fixtures import write_config
    from pyspark.sql import functions as F

    from cdi import schema
    from cdi.lake import Lake

    shared = shared_lake(spark, tmp_path_factory)
    root = tmp_path / "lake"
    shutil.copytree(shared["lake"].root, root)
    lake = Lake(spark, str(root), job="test", run_id="r-life")
    # C1 and C2 moved in March 2026, C2's income rose by 20% (C2 alone consented to e-mail)
    events = spark.createDataFrame(
        [("C1", "moved_home", datetime(2026, 3, 2), datetime(2026, 3, 5), "a", "b", None, None, None, "crm", "crm:1", "r2"),
         ("C2", "moved_home", datetime(2026, 3, 9), datetime(2026, 3, 12), "c", "d", None, None, None, "crm", "crm:2", "r2"),
         ("C2", "income_rose", datetime(2026, 4, 1), datetime(2026, 4, 2), "40000", "48000", 40000.0, 48000.0, 0.2,
          "crm", "crm:2", "r3")],
        schema.LIFE_EVENTS_SCHEMA,
    )  # fmt: skip
    lake.write(schema.LIFE_EVENTS, events, mode="overwrite")
    c360 = lake.read(schema.CUSTOMER_360)
    moved = {"C1": datetime(2026, 3, 2), "C2": datetime(2026, 3, 9)}
    moved_at = F.create_map(*[x for k, v in moved.items() for x in (F.lit(k), F.lit(v))])[F.col("customer_id")]
    c360 = (
        c360.withColumn("moved_at", moved_at)
        .withColumn("income_change_pct_12m", F.when(F.col("customer_id") == "C2", F.lit(20.0)))
        .withColumn("as_of", F.lit(datetime(2026, 6, 1).date()))
    )
    lake.write(schema.CUSTOMER_360, c360.localCheckpoint(), mode="overwrite")
    conf_path = write_config(tmp_path / "conf", root)

    out = tmp_path / "offer.csv"
    nb = execute(
        "life_events",
        {"CONF_PATH": str(conf_path), "WHERE": "event_type = 'moved_home'", "CHANNEL": "email", "OUTPUT_FILE": str(out)},
        tmp_path,
    )
    per_month = tagged_text(nb, "events-per-month")
    assert re.search(r"^2026-03\s+0\s+2\s*$", per_month, re.M) and re.search(r"^2026-04\s+1\s+0\s*$", per_month, re.M), per_month
    risers = tagged_text(nb, "income-risers")
    assert re.search(r"^\s*mid_income\s+2\s+1\s+20\.0\s+0\.5\s*$", risers, re.M), risers
    assert re.search(r"^\s*women\s+1\s+0\s+NaN\s+0\.0\s*$", risers, re.M), risers
    movers = tagged_text(nb, "movers")  # C1 lives in Mazowieckie, C2 and C4 in England, C3 in Bavaria (ISO: Bayern)
    for region, customers, moved, share in (("England", 2, 1, "0.5"), ("Mazowieckie", 1, 1, "1.0"), ("Bayern", 1, 0, "0.0")):
        assert re.search(rf"^\s*{region}\s+{customers}\s+{moved}\s+{share}\s*$", movers, re.M), movers
    assert "1 consented customers (email) match" in tagged_text(nb, "audience")
    assert out.read_text().splitlines()[1:] == ["C2,Ben Smith,Ben,Smith,b***@example.com"]
