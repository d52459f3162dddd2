"""cdi on a real Spark cluster: a standalone master and two workers on loopback, jobs sent with
spark-submit, so the driver and the executors are separate processes (separate JVMs and Pythons).
"""

from __future__ import annotations

import logging
import shutil
import zipfile
from datetime import datetime
from pathlib import Path

import pytest
from tests.cluster_fixtures import pyfiles_zip, require_success, standalone_cluster  # noqa: F401
from tests.demo_subset import demo_subset_conf

from cdi.config import load_config
from cdi.lake import Lake
from cdi.pipeline import run
from cdi.spark import delta_package
from cdi_cluster import (
    ENTITY_MAP,
    GOLDEN_RECORDS,
    ClusterError,
    package,
    run_differences,
    submit_command,
    write_run_conf,
)

ROOT = Path(__file__).resolve().parents[1]
PIPELINE_JOB = ROOT / "jobs" / "pipeline.py"
DEMO_PERSONS = 150


def test_package_zips_cdi_for_py_files(tmp_path):
    archive = package(tmp_path)
    names = set(zipfile.ZipFile(archive).namelist())
    assert {"cdi/__init__.py", "cdi/spark.py", "cdi/lake/__init__.py", "cdi/pipeline.py"} <= names
    assert not [n for n in names if n.startswith(("cdi_cluster/", "cdi_demo/"))], "tools stay out of the runtime zip"
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert package(tmp_path).read_bytes() == archive.read_bytes(), "the same sources must give the same zip"


def test_package_can_bundle_pure_python_dependencies(tmp_path):
    names = zipfile.ZipFile(package(tmp_path, include=["unidecode"])).namelist()
    assert "unidecode/__init__.py" in names


def test_package_refuses_compiled_dependencies(tmp_path):
    with pytest.raises(ClusterError, match="compiled extensions.*--archives"):
        package(tmp_path, include=["pyarrow"])


def test_submit_command_names_master_py_files_and_confs(tmp_path):
    cmd = submit_command(
        "jobs/pipeline.py",
        ["--conf", "conf/demo.yaml"],
        master="spark://10.0.0.1:7077",
        py_files=[tmp_path / "cdi-0.1.0.zip"],
        packages=["io.delta:delta-spark_4.2_2.13:4.4.1"],
        conf={"spark.executorEnv.PYSPARK_PYTHON": "./env/bin/python"},
    )
    assert cmd[0].endswith("bin/spark-submit")
    assert cmd[1:3] == ["--master", "spark://10.0.0.1:7077"]
    assert cmd[cmd.index("--py-files") + 1] == str(tmp_path / "cdi-0.1.0.zip")
    assert cmd[cmd.index("--packages") + 1] == "io.delta:delta-spark_4.2_2.13:4.4.1"
    assert "spark.executorEnv.PYSPARK_PYTHON=./env/bin/python" in cmd
    assert cmd[-3:] == ["jobs/pipeline.py", "--conf", "conf/demo.yaml"]


def test_check_job_reports_udf_similarity_and_lake_results(spark, tmp_path):
    """The cluster check's own logic, in local mode (where executors share the driver's folder)."""
    from cdi_cluster import check_executors

    report = check_executors(spark, str(tmp_path / "lake"), rows=40)
    assert report["e164"] == {
        "+44 20 7946 0018": "+442079460018",
        "020 7946 0958": "+442079460958",
        "(212) 555-0142": "+12125550142",
        "06 12 34 56 78": "+33612345678",
    }
    assert report["ascii"]["Łukasz"] == "Lukasz"
    assert report["jaro_winkler"] == [pytest.approx(0.9611, abs=1e-4)]
    assert report["lake_rows"] == 40
    # local mode: the "executors" ran in the driver's process folder, which the CLI reports as a failure
    assert report["executor_dirs"] == [report["driver_cwd"]]


def _entity_map(spark, assignment: dict[str, str], run_id: str):
    rows = [(key, key.split(":")[0], cid, run_id) for key, cid in assignment.items()]
    return spark.createDataFrame(rows, "record_key string, source string, customer_id string, run_id string")


def _golden(spark, customers: dict[str, tuple[str, list[str]]], run_id: str):
    valid_from = datetime(2026, 1, 1)
    rows = [(cid, name, keys, valid_from, True, run_id) for cid, (name, keys) in customers.items()]
    return spark.createDataFrame(
        rows,
        "customer_id string, first_name string, source_record_keys array<string>, valid_from timestamp, "
        "is_current boolean, run_id string",
    )


def test_run_differences_ignore_id_naming_and_report_a_different_partition(spark, tmp_path):
    local, cluster, other = (Lake(spark, str(tmp_path / name)) for name in ("local", "cluster", "other"))
    local.write(ENTITY_MAP, _entity_map(spark, {"crm:1": "C1", "shop:9": "C1", "crm:2": "C2"}, "r-local"))
    cluster.write(ENTITY_MAP, _entity_map(spark, {"crm:1": "X7", "shop:9": "X7", "crm:2": "X3"}, "r-cluster"))
    other.write(ENTITY_MAP, _entity_map(spark, {"crm:1": "C1", "shop:9": "C2", "crm:2": "C2"}, "r-other"))
    local.write(GOLDEN_RECORDS, _golden(spark, {"C1": ("Ann", ["crm:1", "shop:9"]), "C2": ("Bo", ["crm:2"])}, "r-local"))
    cluster.write(GOLDEN_RECORDS, _golden(spark, {"X7": ("Ann", ["crm:1", "shop:9"]), "X3": ("Bo", ["crm:2"])}, "r-cluster"))
    other.write(GOLDEN_RECORDS, _golden(spark, {"C1": ("Anne", ["crm:1"]), "C2": ("Bo", ["crm:2", "shop:9"])}, "r-other"))

    assert run_differences(local, cluster) == []
    problems = run_differences(local, other)
    assert len(problems) == 2
    # every record's set of fellow records differs: {crm:1, shop:9} {crm:2} vs {crm:1} {shop:9, crm:2}
    assert problems[0].startswith(f"{ENTITY_MAP}: 3 row(s) only in {local.root}, 3 only in {other.root}")
    assert problems[1].startswith(f"{GOLDEN_RECORDS}: 2 row(s) only in {local.root}, 2 only in {other.root}")


@pytest.mark.cluster
def test_pipeline_on_the_cluster_equals_a_local_mode_run(standalone_cluster, pyfiles_zip, tmp_path, spark, monkeypatch, caplog):
    """`spark-submit jobs/pipeline.py` to a standalone master with two workers gives the customers of a local run.

    The local run goes first (in this process, local[2], Splink on DuckDB) and trains the linkage
    model; the cluster run reuses that saved model, so the comparison is about running on a
    cluster, not about two EM trainings. (Independent training on both sides is compared by
    bench/bench_cluster.py; it takes minutes on Spark.)
    """
    demo_out = tmp_path / "demo"
    monkeypatch.setenv("CDI_DEMO_DATA", str(demo_out))  # the demo sources' paths name this variable
    confs = {
        mode: write_run_conf(
            tmp_path / f"{mode}.yaml",
            demo_subset_conf(tmp_path),
            lake_root=str(tmp_path / mode / "lake"),
            demo_out=str(demo_out),
            persons=DEMO_PERSONS,
            # the cluster run's file names a local master on purpose: spark-submit's --master must win
            master="local[1]" if mode == "cluster" else None,
            checkpoint_dir=str(tmp_path / mode / "checkpoints"),
            overrides={
                # a tiny demo still gets the generator's fixed handful of malformed rows per source
                "ingest": {"max_quarantine_share": 0.25},
                "propagation": {"outbox_dir": str(tmp_path / mode / "outbox")},
            },
        )
        for mode in ("local", "cluster")
    }

    with caplog.at_level(logging.INFO, logger="cdi"):
        run(load_config(confs["local"]), spark=spark)
    assert "link: backend duckdb" in caplog.text
    shutil.copytree(tmp_path / "local" / "lake" / "models", tmp_path / "cluster" / "lake" / "models")

    on_cluster = standalone_cluster.submit(
        PIPELINE_JOB,
        ["--conf", str(confs["cluster"])],
        py_files=[pyfiles_zip],
        packages=[delta_package()],  # the jars as a cluster user ships them
        driver_memory="2g",
        timeout=900,
        cwd=tmp_path,
        env={"CDI_DEMO_DATA": str(demo_out)},
        log_dir=tmp_path / "cluster" / "submit",
    )
    require_success(on_cluster, standalone_cluster)
    driver_log = on_cluster.stdout  # spark-submit merges the Python driver's stderr (our logging) into stdout
    assert f"master={standalone_cluster.master_url}" in driver_log
    assert "storage engine=delta-spark" in driver_log
    assert "link: backend spark" in driver_log
    assert "link: reusing linkage model v0001" in driver_log
    # the executors ran the tasks: each worker launched an executor for this application
    executor_logs = list(Path(standalone_cluster.work_dir).glob("worker-*/app-*/*/stderr"))
    assert len({p.parts[-4] for p in executor_logs}) == 2

    cluster_lake = Lake(spark, str(tmp_path / "cluster" / "lake"))
    local_lake = Lake(spark, str(tmp_path / "local" / "lake"))
    records = cluster_lake.read("silver/records").count()
    entity_map = cluster_lake.read(ENTITY_MAP)
    assert records >= DEMO_PERSONS
    assert entity_map.count() == records
    customers = entity_map.select("customer_id").distinct().count()
    assert DEMO_PERSONS // 2 <= customers < records
    assert cluster_lake.read(GOLDEN_RECORDS).where("is_current").count() == customers
    assert cluster_lake.read("gold/customer_360").count() == customers
    assert cluster_lake.read("bronze/crm").count() == local_lake.read("bronze/crm").count()
    assert run_differences(cluster_lake, local_lake) == []
