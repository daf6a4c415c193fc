#!/usr/bin/env bash
# The infrastructure checks' environment, apart from the project's .venv (checkov pins its own versions of
# boto3, urllib3 ... that clash with the project's): .venv-infra with the exact set in infra/requirements-ci.txt.
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
  echo "setup-infra: Python 3.11 is required; set PYTHON=/path/to/python3.11" >&2
  exit 1
fi

if [ ! -x .venv-infra/bin/python ]; then
  echo "setup-infra: creating .venv-infra with $("$python" --version)"
  "$python" -m venv .venv-infra
fi
echo "setup-infra: installing cfn-lint and checkov (infra/requirements-ci.txt)"
.venv-infra/bin/python -m pip install --quiet --disable-pip-version-check --upgrade "pip==25.3"
.venv-infra/bin/python -m pip install --quiet --disable-pip-version-check -r infra/requirements-ci.txt
touch .venv-infra/.installed
