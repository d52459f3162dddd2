#!/usr/bin/env bash
# Installs everything the project needs on a fresh Debian machine with Python 3.11:
# system packages (Java for Spark, PostgreSQL server + JDBC driver for the database source and
# propagation tests, Chromium for the service's browser tests) and the Python package with its
# dev extras. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")"

need_apt=()
command -v java >/dev/null 2>&1 || need_apt+=(openjdk-17-jre-headless)
[ -f /usr/share/java/postgresql.jar ] || need_apt+=(libpostgresql-jdbc-java)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_apt+=(postgresql)
# the service's browser tests drive Debian's chromium through Playwright (no browser download)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; elif command -v sudo >/dev/null; then SUDO="sudo"; else
    echo "install.sh: need root (or sudo) to apt-get install ${need_apt[*]}" >&2; exit 1; fi
  echo "install.sh: installing system packages: ${need_apt[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

export PIP_ROOT_USER_ACTION=ignore
PY=${PYTHON:-python3}
"$PY" -m pip install -q --disable-pip-version-check -e '.[dev]'
# delta-spark's jars: Spark's own package mechanism (Ivy) fetches them from Maven Central once
# into ~/.ivy2*/; every later session finds them there
"$PY" - <<'PY'
import logging
from cdi.spark import SparkSettings, build_session, delta_classes_available, delta_package
logging.basicConfig(level=logging.WARNING)
spark = build_session(SparkSettings(master="local[1]", app_name="cdi-install", shuffle_partitions=1,
                                    conf={"spark.ui.enabled": "false"}, storage_engine="delta-spark"))
ok = delta_classes_available(spark)
spark.stop()
print(f"install.sh: delta-spark jars {delta_package()} {'ready' if ok else 'NOT loaded'}")
PY
echo "install.sh: done ($("$PY" -c 'import pyspark, splink, deltalake; print("pyspark", pyspark.__version__, "splink", splink.__version__, "deltalake", deltalake.__version__)'))"
