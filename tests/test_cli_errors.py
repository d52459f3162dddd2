"""The CLI tells errors apart by type: configuration and usage exit 2, every other cdi error 1 with
its one-line message, anything else 1 naming the exception type (a bug); never a traceback."""

from __future__ import annotations

import pytest
from cdi import errors
from cdi.cli import main


@pytest.fixture()
def conf(tmp_path):
    path = tmp_path / "env.yaml"
    path.write_text(f"lake_root: {tmp_path / 'lake'}\n", encoding="utf-8")
    return str(path)


@pytest.mark.parametrize(
    "raised, code, message",
    [
        (errors.MissingTableError("table silver/records does not exist\nsecond line"), 1,
         "cdi: gold failed: table silver/records does not exist"),
        (errors.SegmentRuleError("segment 'x': where 'y' is not valid"), 2, "cdi: configuration error: segment 'x'"),
        (errors.PropagationError("postgres target 'crm' refused the rows"), 1, "cdi: gold failed: postgres target 'crm'"),
        (KeyError("oops"), 1, "cdi: gold failed: KeyError: 'oops'"),
    ],
)  # fmt: skip
def test_errors_map_to_exit_codes_and_one_line(conf, monkeypatch, capsys, raised, code, message):
    def fail(*args, **kwargs):
        raise raised

    monkeypatch.setattr("cdi.pipeline.run", fail)
    assert main(["gold", "--conf", conf]) == code
    err = capsys.readouterr().err
    assert err.startswith(message), err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_every_cdi_error_sits_in_one_branch():
    branches = (errors.ConfigError, errors.SourceError, errors.LakeError, errors.LinkageError, errors.PublishError,
                errors.NotFoundError, errors.InstallError)  # fmt: skip
    leaves = [c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, errors.CdiError)]
    for cls in leaves:
        if cls is errors.CdiError or cls in branches:
            continue
        assert sum(issubclass(cls, b) for b in branches) == 1, cls
    from cdi.lake import LakeError, TableNotFoundError

    assert LakeError is errors.LakeError and issubclass(TableNotFoundError, errors.LakeError)


def test_a_run_id_with_a_quote_is_rejected_before_spark_starts(conf, monkeypatch, capsys):
    def must_not_run(*args, **kwargs):
        raise AssertionError("reached the pipeline")

    monkeypatch.setattr("cdi.pipeline.run", must_not_run)
    monkeypatch.setattr("cdi.pipeline.open_session", must_not_run)
    monkeypatch.setattr("cdi.config.load_config", must_not_run)
    assert main(["run", "--conf", conf, "--run-id", "x' OR '1'='1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cdi: configuration error: --run-id") and "letters, digits" in err, err
    assert len(err.strip().splitlines()) == 1


def test_pipeline_checks_the_run_id_before_opening_a_session(conf, monkeypatch):
    from cdi import pipeline
    from cdi.config import load_config

    monkeypatch.setattr("cdi.pipeline.open_session", lambda cfg: pytest.fail("opened a Spark session"))
    for bad in ("a'b", "../outbox", "", "x" * 65, "run id"):
        with pytest.raises(errors.ConfigError, match="not a valid run id"):
            pipeline.run(load_config(conf), stages=("gold",), run_id=bad)


@pytest.mark.parametrize("argv", [["-q", "gold", "--conf"], ["gold", "-q", "--conf"], ["gold", "--conf", "CONF", "-q"]])
def test_quiet_and_verbose_are_accepted_anywhere_on_the_line(conf, monkeypatch, argv):
    import logging

    seen = {}

    def fake_run(cfg, **kwargs):
        seen["level"] = logging.getLogger().getEffectiveLevel()
        raise errors.MissingTableError("no silver")

    monkeypatch.setattr("cdi.pipeline.run", fake_run)
    monkeypatch.setattr("cdi.cli._setup_logging", lambda verbose, quiet=False: seen.update(verbose=verbose, quiet=quiet))
    argv = [a.replace("CONF", conf) for a in argv] + ([conf] if argv[-1] == "--conf" else [])
    assert main(argv) == 1
    assert seen["quiet"] is True and seen["verbose"] is False
    assert main(["gold", "--conf", conf, "-v"]) == 1 and seen["verbose"] is True


def test_quiet_and_verbose_together_and_version(capsys):
    with pytest.raises(SystemExit) as done:
        main(["-v", "demo-data", "--out", "x", "-q"])
    assert done.value.code == 2 and "-v and -q exclude each other" in capsys.readouterr().err
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    from cdi import __version__

    assert done.value.code == 0 and capsys.readouterr().out.strip() == f"cdi {__version__}"


def test_output_into_a_pipe_closed_early_ends_quietly(tmp_path):
    """`cdi ... | head`: the reader leaves after a line; no BrokenPipeError, exit 0."""
    import subprocess
    import sys

    script = (
        "import cdi.cli as c\n"
        "def many(args, redactor):\n"
        "    for i in range(200000):\n"
        "        print('line', i)\n"
        "    return 0\n"
        "c._cmd_demo_data = lambda args: many(args, None)\n"
        "raise SystemExit(c.main(['demo-data', '--out', 'x']))\n"
    )
    done = subprocess.run(
        f"{sys.executable} -c \"$SCRIPT\" | head -1; exit ${{PIPESTATUS[0]}}",
        shell=True, executable="/bin/bash", capture_output=True, text=True, env={"SCRIPT": script, "PATH": "/usr/bin:/bin"},
        timeout=120,
    )
    assert done.stdout == "line 0\n"
    assert "BrokenPipe" not in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 0


def test_the_public_api_loads_lazily_and_names_what_the_readme_uses():
    import subprocess
    import sys

    code = (
        "import sys, cdi\n"
        "assert 'pyspark' not in sys.modules, 'import cdi imported pyspark'\n"
        "from cdi import load_config, run, maintain, open_session, Lake, connect, CdiConfig, CdiError, ConfigError\n"
        "import cdi.pipeline, cdi.lake\n"
        "assert run is cdi.pipeline.run and Lake is cdi.lake.Lake\n"
        "assert set(cdi.__all__) <= set(dir(cdi))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    assert "Apache License" in (root / "LICENSE").read_text(encoding="utf-8")


def test_a_missing_source_folder_and_an_unknown_source_exit_2_before_spark_starts(tmp_path, monkeypatch, capsys):
    (tmp_path / "data" / "shop").mkdir(parents=True)
    env = tmp_path / "env.yaml"
    env.write_text(
        f"lake_root: {tmp_path / 'lake'}\n"
        "sources:\n"
        f"  - {{name: crm, kind: customers, format: csv, path: {tmp_path / 'data' / 'crm' / '*.csv'}, id_columns: [id]}}\n"
        f"  - {{name: shop, kind: customers, format: csv, path: {tmp_path / 'data' / 'shop' / '*.csv'}, id_columns: [id]}}\n"
        f"  - {{name: erp, kind: customers, format: delta, path: {tmp_path / 'tables' / 'erp'}, id_columns: [id]}}\n",
        encoding="utf-8",
    )
    monkeypatch.setattr("cdi.pipeline.open_session", lambda cfg: pytest.fail("Spark started"))

    assert main(["ingest", "--conf", str(env)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "source 'crm'" in err and f"folder {tmp_path / 'data' / 'crm'} does not exist" in err, err
    assert "source 'erp'" in err and "source 'shop'" not in err, err
    assert not (tmp_path / "lake").exists()

    assert main(["ingest", "--conf", str(env), "--source", "shopp"]) == 2
    err = capsys.readouterr().err
    assert "--source: unknown source(s) ['shopp']; configured: crm, erp, shop" in err, err


def test_run_json_prints_the_summary_as_data(conf, monkeypatch, capsys):
    import json

    from cdi.pipeline import PipelineResult
    from cdi.progress import RunSummary

    def fake_run(cfg, **kwargs):
        summary = RunSummary(run_id="r-json")
        with summary.step("ingest", "crm") as step:
            step.rows, step.details["bronze"] = 12, 11
        summary.warnings.append("source crm: 1 row quarantined")
        return PipelineResult(run_id="r-json", summary=summary)

    monkeypatch.setattr("cdi.pipeline.run", fake_run)
    assert main(["run", "--conf", conf, "--json", "-q"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["run_id"] == "r-json" and data["warnings"] == ["source crm: 1 row quarantined"]
    (step,) = data["steps"]
    assert (step["stage"], step["step"], step["status"], step["rows"], step["details"]) == ("ingest", "crm", "ok", 12, {"bronze": 11})
    assert data["total_seconds"] >= 0



@pytest.mark.parametrize(
    "args, hash_key, message",
    [
        (["--customer", "C1", "--reason", "ticket 1"], None, "privacy.hash_key is not set"),
        (["--record", "C001611", "--reason", "ticket 1"], "k" * 16, "is not a record key; give SOURCE:ID"),
        (["--email", "   ", "--reason", "ticket 1"], "k" * 16, "--email is empty"),
        (["--customer", "C1", "--reason", "  "], "k" * 16, "--reason is empty"),
    ],
)  # fmt: skip
def test_erase_refuses_bad_input_before_spark_starts(tmp_path, monkeypatch, capsys, args, hash_key, message):
    conf = tmp_path / "env.yaml"
    body = f"lake_root: {tmp_path / 'lake'}\n"
    if hash_key:
        monkeypatch.setenv("CDI_TEST_HASH_KEY", hash_key)
        body += "privacy:\n  hash_key: ${CDI_TEST_HASH_KEY}\n"
    conf.write_text(body, encoding="utf-8")

    def no_spark(*a, **k):
        raise AssertionError("Spark must not start")

    monkeypatch.setattr("cdi.pipeline.open_session", no_spark)
    assert main(["erase", "--conf", str(conf), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err
    if hash_key:
        assert hash_key not in err


def test_erase_takes_exactly_one_person_key(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["erase", "--conf", "x.yaml", "--customer", "C1", "--email", "a@b.c", "--reason", "r"])
    assert exit_.value.code == 2


def test_full_reaches_the_pipeline_from_run_link_and_gold(conf, monkeypatch):
    from cdi.pipeline import PipelineResult
    from cdi.progress import RunSummary

    seen: dict = {}

    def fake_run(cfg, **kwargs):
        seen.update(kwargs)
        return PipelineResult(run_id="r", summary=RunSummary(run_id="r"))

    monkeypatch.setattr("cdi.pipeline.run", fake_run)
    for command in ("run", "link", "gold"):
        assert main([command, "--conf", conf, "--full", "-q"]) == 0 and seen["full"] is True, command
        assert main([command, "--conf", conf, "-q"]) == 0 and seen["full"] is False, command
