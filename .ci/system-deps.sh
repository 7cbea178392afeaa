#!/usr/bin/env bash
# Debian packages the test suite needs. Installs only what is missing, so repeat runs are quick.
set -euo pipefail
need=()
# headless Chromium: the report test opens the run report in it (tests/test_report.py)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
# PostgreSQL server binaries: the practitioner service's PostgreSQL test starts its own server on loopback
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
# a JDK (17 or later) for pyspark: the Spark engine's tests run Splink on Spark (tests/test_spark.py), and the
# engine compiles DuckDB's string similarities for Spark with javac (linkage_models/spark/DuckDBSimilarity.java)
{ java -version >/dev/null 2>&1 && command -v javac >/dev/null 2>&1; } || need+=(default-jdk-headless)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "system-deps: missing ${need[*]}; run as root or install them with apt-get" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
