def test_spark_starts(spark):
    assert spark.range(5).count() == 5
    assert spark.conf.get("spark.sql.session.timeZone") == "UTC"


def test_a_local_session_starts_quietly_with_the_shipped_jvm_logging():
    """No log4j banner, no loopback-hostname or native-library notices; a JVM warning still shows."""
    import subprocess
    import sys

    code = (
        "from cdi.spark import SparkSettings, build_session\n"
        "spark = build_session(SparkSettings(master='local[1]'))\n"
        "print(spark.sparkContext.getConf().get('spark.driver.extraJavaOptions'))\n"
        "log = spark.sparkContext._jvm.org.apache.logging.log4j.LogManager.getLogger('cdi.test')\n"
        "log.warn('a jvm warning'); log.info('a jvm info')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "log4j2.configurationFile=" in done.stdout and "log4j2.properties" in done.stdout
    for noise in ("Using Spark's default log4j profile", "resolves to a loopback address", "NativeCodeLoader", "a jvm info"):
        assert noise not in done.stderr, (noise, done.stderr[-2000:])
    assert "WARN    jvm.test: a jvm warning" in done.stderr, done.stderr[-2000:]
