"""Tools for running cdi on a Spark cluster, where the driver and the executors are separate processes.

A package next to ``cdi``, not part of it: the product runs with ``spark-submit`` and needs none
of this at run time; these are the tools to ship it and to prove a cluster can run it:

* :func:`package` zips the ``cdi`` package (and, on request, pure-Python dependencies such as
  ``phonenumbers`` and ``unidecode``) for ``spark-submit --py-files``;
* :func:`submit_command` and :func:`run_submit` build and run a ``spark-submit`` command line,
  killing the whole process group when it overruns;
* :class:`StandaloneCluster` starts a throwaway Spark standalone master and workers on loopback
  from the installed PySpark (tests, benchmarks, trying a cluster run on one machine) and always
  stops them again;
* :func:`check_executors` is a small job proving a cluster can run cdi: Python dependencies in a
  pandas UDF, Splink's similarity functions and a lake write/read, all on executors.

    python -m cdi_cluster package --out dist/               # dist/cdi-<version>.zip for --py-files
    python -m cdi_cluster standalone --workers 2            # prints the master URL; Ctrl-C stops it
    python -m cdi_cluster package --out dist/ --include cdi_cluster
    spark-submit --master spark://127.0.0.1:7077 --py-files dist/cdi-0.1.0.zip \\
        lib/cdi_cluster/__main__.py check --lake-root /shared/lake-check --out check.json
"""

from __future__ import annotations

import atexit
import importlib.util
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # fixed timestamps: the same sources give the same zip
_SKIP_DIRS = {"__pycache__", ".pytest_cache", ".ipynb_checkpoints"}
_COMPILED_SUFFIXES = (".so", ".pyd", ".dylib")
# Variables that tie a process to an existing Py4J gateway or pre-set submit arguments; a child
# spark-submit must start clean or it would attach to (or inherit) the parent's Spark.
_INHERITED_SPARK_VARS = ("PYSPARK_GATEWAY_PORT", "PYSPARK_GATEWAY_SECRET", "PYSPARK_SUBMIT_ARGS", "SPARK_SUBMIT")


class ClusterError(RuntimeError):
    """A cluster process failed to start, to register or to finish; the message carries its log."""


# --------------------------------------------------------------------------- locations and ports
def spark_home() -> Path:
    """``$SPARK_HOME``, or the installed PySpark package (it ships ``bin/`` and ``jars/``)."""
    env = os.environ.get("SPARK_HOME")
    if env and (Path(env) / "bin" / "spark-submit").exists():
        return Path(env)
    spec = importlib.util.find_spec("pyspark")
    if spec is None or not spec.submodule_search_locations:
        raise ClusterError("PySpark is not installed and SPARK_HOME is not set: cannot find spark-submit")
    return Path(next(iter(spec.submodule_search_locations)))


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port that is free right now (the caller binds it soon after; see StandaloneCluster's retry)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a child Spark process: this Python on both sides, loopback, no inherited gateway."""
    env = {k: v for k, v in os.environ.items() if k not in _INHERITED_SPARK_VARS}
    env.setdefault("SPARK_HOME", str(spark_home()))
    env.setdefault("PYSPARK_PYTHON", sys.executable)
    env.setdefault("PYSPARK_DRIVER_PYTHON", env["PYSPARK_PYTHON"])
    env.setdefault("SPARK_LOCAL_IP", LOOPBACK)
    env.update(extra or {})
    return env


# --------------------------------------------------------------------------- packaging
def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None:
        raise ClusterError(f"package {name!r} is not installed in {sys.executable}; install it or drop it from --include")
    if not spec.submodule_search_locations:
        raise ClusterError(f"{name!r} is a single module, not a package; ship {spec.origin} with --py-files directly")
    return Path(next(iter(spec.submodule_search_locations)))


def _package_files(root: Path) -> Iterable[Path]:
    for path in sorted(root.rglob("*")):
        if path.is_dir() or _SKIP_DIRS.intersection(path.relative_to(root).parts) or path.suffix == ".pyc":
            continue
        yield path


def package(out_dir: str | os.PathLike, include: Sequence[str] = ()) -> Path:
    """Zip ``cdi`` (plus the pure-Python packages named in ``include``) for ``--py-files``.

    Packages with compiled extensions (pandas, pyarrow, numpy, rapidfuzz) cannot be imported from a
    zip: they must be installed on the workers or shipped as an environment archive (``--archives``).

        >>> package("dist", include=["phonenumbers", "unidecode"])  # doctest: +SKIP
        PosixPath('dist/cdi-0.1.0.zip')
    """
    from importlib.metadata import PackageNotFoundError, version

    try:
        cdi_version = version("cdi")
    except PackageNotFoundError:
        cdi_version = "0"
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    target = out / f"cdi-{cdi_version}.zip"
    partial = target.with_suffix(".zip.tmp")
    roots = [("cdi", _package_dir("cdi"))] + [(n, _package_dir(n)) for n in include if n != "cdi"]
    for name, root in roots[1:]:
        compiled = [p for p in _package_files(root) if p.name.endswith(_COMPILED_SUFFIXES)]
        if compiled:
            raise ClusterError(
                f"package {name!r} has compiled extensions ({compiled[0].name}, ...) that cannot be imported "
                "from a zip: install it on the workers or ship an environment with --archives (see 'Running on a cluster' in README.md)"
            )
    files = 0
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, root in roots:
            for path in _package_files(root):
                info = zipfile.ZipInfo(f"{name}/{path.relative_to(root).as_posix()}", date_time=_ZIP_TIME)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                zf.writestr(info, path.read_bytes())
                files += 1
    partial.replace(target)
    log.info("packaged %s (%d files, %.1f MB) for --py-files", ", ".join(n for n, _ in roots), files, target.stat().st_size / 1e6)
    return target


# --------------------------------------------------------------------------- spark-submit
def submit_command(
    app: str | os.PathLike,
    app_args: Sequence[str] = (),
    *,
    master: str,
    deploy_mode: str | None = None,
    name: str | None = None,
    py_files: Sequence[str | os.PathLike] = (),
    archives: Sequence[str] = (),
    packages: Sequence[str] = (),
    jars: Sequence[str | os.PathLike] = (),
    driver_memory: str | None = None,
    executor_memory: str | None = None,
    total_executor_cores: int | None = None,
    conf: Mapping[str, str] | None = None,
) -> list[str]:
    """The ``spark-submit`` command line for a cdi job (``jobs/pipeline.py`` or another entry point)."""
    cmd = [str(spark_home() / "bin" / "spark-submit"), "--master", master]
    if deploy_mode:
        cmd += ["--deploy-mode", deploy_mode]
    if name:
        cmd += ["--name", name]
    for flag, values in (("--py-files", py_files), ("--archives", archives), ("--packages", packages), ("--jars", jars)):
        if values:
            cmd += [flag, ",".join(str(v) for v in values)]
    if driver_memory:
        cmd += ["--driver-memory", driver_memory]
    if executor_memory:
        cmd += ["--executor-memory", executor_memory]
    if total_executor_cores:
        cmd += ["--total-executor-cores", str(total_executor_cores)]
    for key, value in (conf or {}).items():
        cmd += ["--conf", f"{key}={value}"]
    return cmd + [str(app), *[str(a) for a in app_args]]


@dataclass
class SubmitResult:
    """What a finished ``spark-submit`` left behind: exit code, its output and how long it took."""

    command: list[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    def check(self) -> SubmitResult:
        if self.returncode != 0:
            raise ClusterError(
                f"spark-submit exited with {self.returncode} after {self.seconds:.0f}s: {' '.join(self.command)}\n"
                f"--- stderr (tail) ---\n{_tail(self.stderr, 80)}\n--- stdout (tail) ---\n{_tail(self.stdout, 30)}"
            )
        return self


def _tail(text: str, lines: int) -> str:
    return "\n".join(text.splitlines()[-lines:])


def _stop_group(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """SIGTERM the process group (a Spark daemon's children: executors, Python workers), then SIGKILL."""
    if proc.poll() is not None and not _group_alive(proc.pid):
        return
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
        if not _group_alive(proc.pid):
            break
    try:
        proc.wait(timeout=1)
    except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL of the leader always lands
        log.warning("process %s did not exit after SIGKILL", proc.pid)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def run_submit(
    command: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike | None = None,
    timeout: float = 600,
    log_dir: str | os.PathLike | None = None,
) -> SubmitResult:
    """Run a spark-submit command line to completion; on ``timeout`` kill its process group and raise.

    Output goes to files (``log_dir``, or a temporary folder) rather than pipes, so a chatty driver
    can never block on a full pipe.
    """
    folder = Path(log_dir) if log_dir else Path(tempfile.mkdtemp(prefix="cdi-submit-"))
    folder.mkdir(parents=True, exist_ok=True)
    out_path, err_path = folder / "submit.stdout", folder / "submit.stderr"
    start = time.perf_counter()
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        proc = subprocess.Popen(
            list(command), stdout=out, stderr=err, env=dict(env) if env else clean_env(), cwd=cwd, start_new_session=True
        )
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _stop_group(proc, grace=5)
            raise ClusterError(
                f"spark-submit did not finish within {timeout:.0f}s and was killed: {' '.join(command)}\n"
                f"--- stderr (tail) ---\n{_tail(err_path.read_text(errors='replace'), 80)}"
            ) from None
        finally:
            if proc.poll() is None:  # interrupted (KeyboardInterrupt): never leave a driver behind
                _stop_group(proc, grace=5)
    return SubmitResult(
        command=list(command),
        returncode=proc.returncode,
        stdout=out_path.read_text(errors="replace"),
        stderr=err_path.read_text(errors="replace"),
        seconds=time.perf_counter() - start,
    )


# --------------------------------------------------------------------------- standalone cluster
@dataclass
class _Daemon:
    role: str
    proc: subprocess.Popen
    log_path: Path
    webui_port: int


@dataclass
class StandaloneCluster:
    """A Spark standalone master and ``workers`` workers on loopback, for one test session or benchmark.

    Each daemon runs in its own process group, so :meth:`stop` also ends the executors and Python
    workers it spawned. :meth:`start` registers :meth:`stop` with ``atexit`` as a last resort.

        >>> with StandaloneCluster("/tmp/cluster", workers=2) as cluster:  # doctest: +SKIP
        ...     print(cluster.master_url)
    """

    work_dir: str | os.PathLike
    workers: int = 2
    cores: int = 1
    memory: str = "2g"
    host: str = LOOPBACK
    daemon_memory: str = "512m"
    daemons: list[_Daemon] = field(default_factory=list, init=False)
    master_url: str | None = field(default=None, init=False)
    webui_url: str | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.work_dir = Path(self.work_dir)

    # -- lifecycle
    def __enter__(self) -> StandaloneCluster:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self, timeout: float = 120) -> StandaloneCluster:
        """Start the master, then the workers; return once every worker is registered and alive."""
        if self.daemons:
            raise ClusterError("this cluster is already started")
        Path(self.work_dir, "logs").mkdir(parents=True, exist_ok=True)
        atexit.register(self.stop)
        try:
            self._start_master(timeout)
            for i in range(self.workers):
                self._start_worker(i)
            self.wait_for_workers(self.workers, timeout)
        except BaseException:
            self.stop()
            raise
        log.info("standalone cluster up: %s (%d workers, UI %s)", self.master_url, self.workers, self.webui_url)
        return self

    def stop(self) -> None:
        """Stop workers (and their executors) first, then the master. Safe to call more than once."""
        for daemon in reversed(self.daemons):
            _stop_group(daemon.proc)
        if self.daemons:
            log.info("standalone cluster %s stopped", self.master_url)
        self.daemons = []
        atexit.unregister(self.stop)

    # -- starting daemons
    def _env(self) -> dict[str, str]:
        return clean_env(
            {
                "SPARK_LOG_DIR": str(Path(self.work_dir, "logs")),
                "SPARK_PID_DIR": str(Path(self.work_dir, "logs")),
                "SPARK_DAEMON_MEMORY": self.daemon_memory,
                # fail on a taken port instead of silently moving to the next one
                # and no REST submission server: its fixed port 6066 would clash between clusters
                "SPARK_DAEMON_JAVA_OPTS": "-Dspark.port.maxRetries=0 -Dspark.master.rest.enabled=false",
            }
        )

    def _spawn(self, role: str, args: list[str], webui_port: int) -> _Daemon:
        log_path = Path(self.work_dir, "logs", f"{role}.log")
        handle = open(log_path, "ab")  # noqa: SIM115  # the daemon's log: closed when it stops
        try:
            proc = subprocess.Popen(
                [str(spark_home() / "bin" / "spark-class"), *args],
                stdout=handle,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self._env(),
                start_new_session=True,
            )
        finally:
            handle.close()
        daemon = _Daemon(role, proc, log_path, webui_port)
        self.daemons.append(daemon)
        return daemon

    def _start_master(self, timeout: float, attempts: int = 3) -> None:
        for attempt in range(1, attempts + 1):
            port, webui = free_port(self.host), free_port(self.host)
            daemon = self._spawn(
                "master",
                ["org.apache.spark.deploy.master.Master", "--host", self.host, "--port", str(port), "--webui-port", str(webui)],
                webui,
            )
            self.webui_url = f"http://{self.host}:{webui}"
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if daemon.proc.poll() is not None:
                    break  # most likely a port taken between free_port() and bind: try new ports
                state = self._state_or_none()
                if state and state.get("status") == "ALIVE":
                    self.master_url = state.get("url") or f"spark://{self.host}:{port}"
                    return
                time.sleep(0.5)
            else:
                raise ClusterError(f"the Spark master did not come up within {timeout:.0f}s\n{self.logs()}")
            log.warning("Spark master exited at start (attempt %d of %d); retrying on other ports", attempt, attempts)
            self.daemons.remove(daemon)
        raise ClusterError(f"the Spark master failed to start {attempts} times\n{self.logs()}")

    def _start_worker(self, index: int) -> None:
        work = Path(self.work_dir, f"worker-{index}")
        work.mkdir(parents=True, exist_ok=True)
        webui = free_port(self.host)
        self._spawn(
            f"worker-{index}",
            [
                "org.apache.spark.deploy.worker.Worker", str(self.master_url),
                "--host", self.host,
                "--cores", str(self.cores),
                "--memory", self.memory,
                "--work-dir", str(work),
                "--webui-port", str(webui),
            ],
            webui,
        )

    # -- state
    def state(self) -> dict[str, Any]:
        """The master's JSON status page (workers, applications)."""
        if not self.webui_url:
            raise ClusterError("the cluster is not started")
        with urllib.request.urlopen(f"{self.webui_url}/json", timeout=5) as resp:
            return json.loads(resp.read().decode("utf-8"))

    def _state_or_none(self) -> dict[str, Any] | None:
        try:
            return self.state()
        except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError, OSError):
            return None

    def alive_workers(self) -> int:
        state = self._state_or_none() or {}
        return sum(1 for w in state.get("workers", []) if w.get("state") == "ALIVE")

    def wait_for_workers(self, count: int, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            dead = [d.role for d in self.daemons if d.proc.poll() is not None]
            if dead:
                raise ClusterError(f"Spark daemon(s) {dead} exited while starting\n{self.logs()}")
            if self.alive_workers() >= count:
                return
            time.sleep(0.5)
        raise ClusterError(
            f"only {self.alive_workers()} of {count} workers registered with {self.master_url} within {timeout:.0f}s\n{self.logs()}"
        )

    def logs(self, lines: int = 40) -> str:
        """The tail of every daemon log and executor stderr, for failure messages."""
        root = Path(self.work_dir)
        paths = sorted(Path(root, "logs").glob("*.log")) + sorted(root.glob("worker-*/app-*/*/stderr"))
        parts = []
        for path in paths:
            text = path.read_text(errors="replace") if path.exists() else ""
            parts.append(f"--- {path.relative_to(root)} (tail) ---\n{_tail(text, lines)}")
        return "\n".join(parts)

    def submit(
        self,
        app: str | os.PathLike,
        app_args: Sequence[str] = (),
        *,
        timeout: float = 600,
        log_dir: str | os.PathLike | None = None,
        cwd: str | os.PathLike | None = None,
        env: Mapping[str, str] | None = None,
        **options: Any,
    ) -> SubmitResult:
        """``spark-submit`` an application to this cluster (options as for :func:`submit_command`)."""
        if not self.master_url:
            raise ClusterError("the cluster is not started")
        options.setdefault("conf", {})
        options["conf"] = {"spark.ui.enabled": "false", **options["conf"]}
        command = submit_command(app, app_args, master=self.master_url, **options)
        return run_submit(command, env=clean_env(env), cwd=cwd, timeout=timeout, log_dir=log_dir)


# --------------------------------------------------------------------------- executor check job
_PHONE_SAMPLES = ("+44 20 7946 0018", "020 7946 0958", "(212) 555-0142", "06 12 34 56 78")
_NAME_SAMPLES = ("Zoë", "Renée", "Łukasz", "José")


def check_executors(spark, lake_root: str, rows: int = 200) -> dict[str, Any]:
    """Prove that executors can run cdi's work: report where each piece actually ran.

    * a pandas UDF that imports ``cdi``, ``phonenumbers``, ``unidecode`` and ``networkx`` on the executors and
      reports the executor's file root and where ``cdi`` was imported from;
    * Splink's ``jaro_winkler`` (from the similarity jar) evaluated row by row on executors;
    * a lake write through :class:`cdi.lake.Lake` (executors write the files, the driver commits)
      read back by the driver.
    """
    import pandas as pd
    from pyspark import SparkFiles
    from pyspark.sql import functions as F
    from pyspark.sql.functions import pandas_udf
    from splink.internals.spark.jar_location import get_scala_udfs

    from cdi.lake import Lake

    def executor_facts(phone, name, region):
        import networkx  # noqa: F401  (the weak-chain search runs on executors)
        import phonenumbers
        from unidecode import unidecode

        import cdi

        def e164(text: str, default_region: str) -> str | None:
            try:
                number = phonenumbers.parse(text, default_region)
            except phonenumbers.NumberParseException:
                return None
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)

        # an executor's working directory is its folder under the worker's work dir
        where = {"root": os.getcwd(), "cdi": os.path.abspath(cdi.__file__), "pid": os.getpid()}
        return pd.Series(
            [json.dumps({**where, "e164": e164(p, r), "ascii": unidecode(n)}) for p, n, r in zip(phone, name, region)]
        )

    # real (not string) annotations: pandas_udf reads them to pick the Series-to-Series UDF kind
    executor_facts.__annotations__ = {"phone": pd.Series, "name": pd.Series, "region": pd.Series, "return": pd.Series}
    executor_facts = pandas_udf(executor_facts, "string")  # type: ignore[call-overload]

    for udf_name, java_class, return_type in get_scala_udfs():
        spark.udf.registerJavaFunction(udf_name, java_class, return_type)

    phones = F.element_at(F.array(*[F.lit(p) for p in _PHONE_SAMPLES]), (F.col("id") % len(_PHONE_SAMPLES) + 1).cast("int"))
    names = F.element_at(F.array(*[F.lit(n) for n in _NAME_SAMPLES]), (F.col("id") % len(_NAME_SAMPLES) + 1).cast("int"))
    regions = F.element_at(F.array(*[F.lit(r) for r in ("GB", "GB", "US", "FR")]), (F.col("id") % 4 + 1).cast("int"))
    facts = F.from_json(
        executor_facts(phones, names, regions), "root string, cdi string, pid int, e164 string, ascii string"
    )
    df = (
        spark.range(rows, numPartitions=4)
        .select("id", phones.alias("phone"), names.alias("name"), facts.alias("f"))
        .select(
            "id",
            "phone",
            "name",
            "f.*",
            F.expr("jaro_winkler(concat('mar', 'tha'), concat('mar', if(id >= 0, 'hta', 'xxx')))").alias("jw"),
        )
    )
    lake = Lake(spark, lake_root, job="cluster-check")
    written = lake.write("check/executors", df, mode="overwrite")
    back = lake.read("check/executors")
    # one bounded summary (distinct executors and samples), never the rows themselves
    summary = back.agg(
        F.count(F.lit(1)).alias("rows"),
        F.sort_array(F.collect_set("root")).alias("roots"),
        F.sort_array(F.collect_set("cdi")).alias("cdi_files"),
        F.map_from_entries(F.collect_set(F.struct("phone", "e164"))).alias("e164"),
        F.map_from_entries(F.collect_set(F.struct("name", "ascii"))).alias("ascii"),
        F.sort_array(F.collect_set("jw")).alias("jw"),
    ).first()
    assert summary is not None  # a global aggregate always has its row
    return {
        "master": spark.sparkContext.master,
        "storage_engine": lake.engine.name,
        "driver_cwd": os.getcwd(),
        "driver_files_root": SparkFiles.getRootDirectory(),
        "executor_dirs": list(summary["roots"]),
        "executor_cdi_files": list(summary["cdi_files"]),
        "e164": dict(summary["e164"]),
        "ascii": dict(summary["ascii"]),
        "jaro_winkler": list(summary["jw"]),
        "lake_version": written.version,
        "lake_rows": summary["rows"],
    }


# --------------------------------------------------------------------------- run configurations
def write_run_conf(
    path: str | os.PathLike,
    base_conf: str | os.PathLike,
    *,
    lake_root: str,
    demo_out: str | None = None,
    persons: int | None = None,
    master: str | None = None,
    checkpoint_dir: str | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Path:
    """Write an environment file that includes ``base_conf`` and points the run at its own folders.

    ``overrides`` are further top-level keys (merged over the included files like any config).

    Used to run the same configuration twice (on a cluster and locally) into separate lakes:

        >>> write_run_conf("/tmp/c.yaml", "conf/demo.yaml", lake_root="/tmp/lake", persons=150)  # doctest: +SKIP
    """
    import yaml

    doc: dict[str, Any] = {"include": [str(Path(base_conf).resolve())], "lake_root": str(lake_root)}
    spark: dict[str, Any] = {}
    if master:
        spark["master"] = master
    if checkpoint_dir:
        spark["checkpoint_dir"] = str(checkpoint_dir)
    if spark:
        doc["spark"] = spark
    demo = {k: v for k, v in (("out", demo_out and str(demo_out)), ("persons", persons)) if v is not None}
    if demo:
        doc["demo"] = demo
    doc.update(overrides or {})
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return target


# --------------------------------------------------------------------------- comparing two runs
ENTITY_MAP = "silver/entity_map"
GOLDEN_RECORDS = "gold/golden_records"
# columns that name or time a run rather than describe a customer
RUN_SPECIFIC_COLUMNS = ("customer_id", "run_id", "id_first_seen_run", "id_minted_at", "valid_from", "valid_to")


def _without_ids(lake, table: str):
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    df = lake.read(table)
    if table == GOLDEN_RECORDS:
        df = df.where(F.col("is_current"))
    if table == ENTITY_MAP:
        # each record with the sorted keys of its customer: the partition of records, minus the ids
        df = df.withColumn("members", F.array_sort(F.collect_set("record_key").over(Window.partitionBy("customer_id"))))
    return df.drop(*RUN_SPECIFIC_COLUMNS)


def run_differences(lake_a, lake_b, tables: Sequence[str] = (ENTITY_MAP, GOLDEN_RECORDS), examples: int = 3) -> list[str]:
    """How two runs on the same input disagree, ignoring id naming and run times (empty: they agree).

    ``silver/entity_map`` is compared as the partition of ``record_key`` into customers, and the
    current ``gold/golden_records`` by their content (attributes, provenance, ``source_record_keys``).
    Only counts and a few example rows reach the driver.

        >>> run_differences(Lake(spark, "/lake/cluster"), Lake(spark, "/lake/local"))  # doctest: +SKIP
        []
    """
    problems = []
    for table in tables:
        a, b = _without_ids(lake_a, table), _without_ids(lake_b, table)
        if sorted(a.columns) != sorted(b.columns):
            problems.append(f"{table}: columns differ: {sorted(set(a.columns) ^ set(b.columns))}")
            continue
        b = b.select(*a.columns)
        only_a, only_b = a.exceptAll(b).persist(), b.exceptAll(a).persist()
        try:
            n_a, n_b = only_a.count(), only_b.count()
            if n_a or n_b:
                sample_a = [r.asDict() for r in only_a.limit(examples).collect()]
                sample_b = [r.asDict() for r in only_b.limit(examples).collect()]
                problems.append(
                    f"{table}: {n_a} row(s) only in {lake_a.root}, {n_b} only in {lake_b.root}; "
                    f"e.g. {sample_a} vs {sample_b}"
                )
        finally:
            only_a.unpersist()
            only_b.unpersist()
    return problems


# --------------------------------------------------------------------------- command line
def _cmd_check(args) -> int:
    from cdi.spark import SparkSettings, build_session

    # under spark-submit the submitted master wins over this one (see cdi.spark.build_session)
    spark = build_session(SparkSettings(master=args.master or "local[2]", app_name="cdi-cluster-check", shuffle_partitions=4))
    try:
        report = check_executors(spark, args.lake_root, rows=args.rows)
    finally:
        spark.stop()
    text = json.dumps(report, indent=2, sort_keys=True)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
    print(text)
    on_driver = [d for d in report["executor_dirs"] if d == report["driver_cwd"]]
    return 1 if on_driver or not report["executor_dirs"] else 0


def _cmd_standalone(args) -> int:
    work = args.work_dir or tempfile.mkdtemp(prefix="cdi-standalone-")
    cluster = StandaloneCluster(work, workers=args.workers, cores=args.cores, memory=args.memory)
    stop = {"now": False}

    def request_stop(*_):
        stop["now"] = True

    signal.signal(signal.SIGTERM, request_stop)
    with cluster:
        print(f"master {cluster.master_url}  (UI {cluster.webui_url}, logs in {work}); Ctrl-C stops it", flush=True)
        try:
            while not stop["now"] and all(d.proc.poll() is None for d in cluster.daemons):
                time.sleep(1)
        except KeyboardInterrupt:
            pass
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m cdi_cluster", description="run cdi on a Spark cluster")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("package", help="zip cdi (and pure-Python dependencies) for spark-submit --py-files")
    p.add_argument("--out", default="dist", help="output folder (default: dist)")
    p.add_argument("--include", action="append", default=[], help="also zip this pure-Python package (repeatable)")
    p = sub.add_parser("standalone", help="start a local standalone master and workers until Ctrl-C")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--cores", type=int, default=1)
    p.add_argument("--memory", default="2g")
    p.add_argument("--work-dir")
    p = sub.add_parser("check", help="prove that executors can run cdi (run it with spark-submit)")
    p.add_argument("--lake-root", required=True, help="a lake root on storage the driver and workers share")
    p.add_argument("--master", help="only without spark-submit, e.g. spark://host:7077")
    p.add_argument("--rows", type=int, default=200)
    p.add_argument("--out", help="also write the JSON report here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s", datefmt="%H:%M:%S")
    try:
        if args.command == "package":
            print(package(args.out, include=args.include))
            return 0
        if args.command == "standalone":
            return _cmd_standalone(args)
        return _cmd_check(args)
    except ClusterError as exc:
        print(f"cdi_cluster: {exc}", file=sys.stderr)
        return 1

