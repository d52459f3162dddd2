def test_spark_starts(spark):
    assert spark.range(5).count() == 5
    assert spark.conf.get("spark.sql.session.timeZone") == "UTC"


def test_a_local_session_starts_quietly_and_resolves_the_delta_jars_only_once(tmp_path):
    """No log4j banner, no loopback-hostname or native-library notices; a JVM warning still shows.
    The first start resolves delta-spark through Ivy and records the jar files; the next start
    is given them directly: no Ivy report, and Delta still works."""
    import os
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from cdi.spark import SparkSettings, build_session, delta_classes_available\n"
        "spark = build_session(SparkSettings(master='local[1]', conf={'spark.ui.enabled': 'false'}))\n"
        "print(spark.sparkContext.getConf().get('spark.driver.extraJavaOptions'))\n"
        "log = spark.sparkContext._jvm.org.apache.logging.log4j.LogManager.getLogger('cdi.test')\n"
        "log.warn('a jvm warning'); log.info('a jvm info')\n"
        "spark.range(3).write.format('delta').save(sys.argv[1])\n"
        "print('delta', delta_classes_available(spark), spark.read.format('delta').load(sys.argv[1]).count())\n"
        "spark.sql('CREATE DATABASE IF NOT EXISTS cdi_probe')\n"  # a catalog operation makes the warehouse folder
    )
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    starts = [
        subprocess.run(
            [sys.executable, "-c", code, str(tmp_path / f"t{i}")], capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path
        )
        for i in range(2)
    ]
    # Spark's ./spark-warehouse would land in whatever folder the command ran in (a checkout)
    assert not (tmp_path / "spark-warehouse").exists() and (tmp_path / "cache" / "cdi" / "spark-warehouse").is_dir()
    for done in starts:
        assert done.returncode == 0, done.stderr[-2000:]
        assert "log4j2.configurationFile=" in done.stdout and "log4j2.properties" in done.stdout
        assert "delta True 3" in done.stdout, done.stdout
        for noise in ("Using Spark's default log4j profile", "resolves to a loopback address", "NativeCodeLoader", "a jvm info"):
            assert noise not in done.stderr, (noise, done.stderr[-2000:])
        assert "WARN    jvm.test: a jvm warning" in done.stderr, done.stderr[-2000:]
    assert "resolving dependencies" in starts[0].stderr + starts[0].stdout
    assert (tmp_path / "cache" / "cdi" / "spark-jars.json").exists()
    assert "resolving dependencies" not in starts[1].stderr + starts[1].stdout, starts[1].stderr[-2000:]
