#!/usr/bin/env bash
# The one test command: a virtualenv with the project and its dev tools, then lint, format check,
# strict type check, the import contract and the test suite. Works on a fresh clone with only Python 3.11+ installed.
# Extra arguments go to pytest, e.g. `bash tests/run.sh -k approve`.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || { echo "dumptask-bot needs Python 3.11 or newer" >&2; exit 1; }
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev]'
.venv/bin/ruff check bot tests bench
.venv/bin/ruff format --check bot tests bench
.venv/bin/mypy
.venv/bin/lint-imports --no-cache >/dev/null || .venv/bin/lint-imports --no-cache
exec .venv/bin/pytest "$@"
