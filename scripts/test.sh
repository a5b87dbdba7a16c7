#!/usr/bin/env bash
# One command on a fresh Debian machine: install what is needed, then run the test suite against a
# throwaway PostGIS cluster the tests create themselves (or GIS_TEST_DATABASE_URL). Arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest -q "$@"
