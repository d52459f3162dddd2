"""cdi on a real Spark cluster: a standalone master and two workers on loopback, jobs sent with
spark-submit, so the driver and the executors are separate processes (separate JVMs and Pythons).
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

import cdi.cluster
from cdi.cluster import ClusterError, package, submit_command
from cdi.lake import Lake
from tests.cluster_fixtures import pyfiles_zip, require_success, standalone_cluster  # noqa: F401

CLUSTER_PY = Path(cdi.cluster.__file__)


def test_package_zips_cdi_for_py_files(tmp_path):
    archive = package(tmp_path)
    names = set(zipfile.ZipFile(archive).namelist())
    assert {"cdi/__init__.py", "cdi/spark.py", "cdi/lake/__init__.py", "cdi/cluster.py"} <= names
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


@pytest.mark.cluster
def test_executors_run_python_udfs_splink_functions_and_lake_writes(standalone_cluster, pyfiles_zip, tmp_path, spark):
    """The cluster check job: every piece must have run on an executor, and the driver's commit must be readable."""
    lake_root = tmp_path / "lake"
    report_path = tmp_path / "check.json"
    result = standalone_cluster.submit(
        CLUSTER_PY,
        ["check", "--lake-root", str(lake_root), "--out", str(report_path)],
        py_files=[pyfiles_zip],
        driver_memory="1g",
        timeout=300,
        cwd=tmp_path,
        log_dir=tmp_path / "submit",
    )
    require_success(result, standalone_cluster)
    report = json.loads(report_path.read_text())

    # spark-submit's master wins over the job's own default (local[2]) in build_session
    assert report["master"] == standalone_cluster.master_url
    driver_log = result.stdout  # spark-submit merges the Python driver's stderr (our logging) into stdout
    assert f"master={standalone_cluster.master_url}" in driver_log
    assert "storage engine=deltalake" in driver_log
    # the pandas UDF ran in executor folders under the workers' work dirs, not in the driver
    work_dir = str(Path(standalone_cluster.work_dir).resolve())
    assert report["executor_dirs"] and all(d.startswith(work_dir) for d in report["executor_dirs"])
    assert report["driver_cwd"] not in report["executor_dirs"]
    # ... importing cdi from the --py-files zip, and phonenumbers / unidecode from the workers' Python
    assert all(".zip/cdi/" in f for f in report["executor_cdi_files"]), report["executor_cdi_files"]
    assert report["e164"] == {
        "+44 20 7946 0018": "+442079460018",
        "020 7946 0958": "+442079460958",
        "(212) 555-0142": "+12125550142",
        "06 12 34 56 78": "+33612345678",
    }
    assert report["ascii"]["Łukasz"] == "Lukasz"
    # Splink's jar reached the driver (registration) and the executors (row-wise evaluation)
    assert report["jaro_winkler"] == [pytest.approx(0.9611, abs=1e-4)]
    # executors wrote the files, the driver committed them: another session reads the table
    assert report["lake_rows"] == 200
    assert Lake(spark, str(lake_root)).read("check/executors").count() == 200


def _entity_map(spark, assignment: dict[str, str], run_id: str):
    rows = [(key, key.split(":")[0], cid, run_id) for key, cid in assignment.items()]
    return spark.createDataFrame(rows, "record_key string, source string, customer_id string, run_id string")


def _golden(spark, customers: dict[str, tuple[str, list[str]]], run_id: str):
    rows = [(cid, name, keys, True, run_id) for cid, (name, keys) in customers.items()]
    return spark.createDataFrame(
        rows, "customer_id string, first_name string, source_record_keys array<string>, is_current boolean, run_id string"
    )


def test_run_differences_ignore_id_naming_and_report_a_different_partition(spark, tmp_path):
    from cdi.cluster import ENTITY_MAP, GOLDEN_RECORDS, run_differences

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
