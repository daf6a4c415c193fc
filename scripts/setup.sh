#!/usr/bin/env bash
# Fresh-machine set-up, run by `make` before anything else: checks Python 3.11 and Java (Spark
# needs a JVM), creates .venv and installs the exact pinned set (pyproject.toml + constraints.txt).
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-}
if [ -z "$python" ]; then
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
      python=$candidate; break
    fi
  done
fi
if [ -z "$python" ]; then
  echo "setup: Python 3.11 is required (the version AWS Glue 5.0 runs); set PYTHON=/path/to/python3.11" >&2
  exit 1
fi

if ! command -v java >/dev/null 2>&1; then
  echo "setup: Java is required by Spark (the Glue job runs on local Spark): install a JDK 11 or 17," \
       "e.g. 'apt-get install openjdk-17-jre-headless', or set JAVA_HOME" >&2
  exit 1
fi
java_major=$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\)\(\.[0-9]*\)*.*/\1/p' | head -1)
if [ "${java_major:-0}" -lt 11 ] 2>/dev/null && [ "${java_major:-0}" != 1 ]; then
  echo "setup: found Java $java_major; Spark 3.5 needs Java 8, 11 or 17" >&2
  exit 1
fi

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $("$python" --version)"
  "$python" -m venv .venv
fi
echo "setup: installing pinned dependencies (pyproject.toml + constraints.txt)"
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade "pip==25.3"
.venv/bin/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[dev]"
touch .venv/.installed
