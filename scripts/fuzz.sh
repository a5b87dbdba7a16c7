#!/usr/bin/env bash
# The long fuzzing run (the test suite runs the same test with 10 examples per operation):
#   bash scripts/fuzz.sh [EXAMPLES]        # default 200 examples per operation
# Schemathesis generates requests from the service's own OpenAPI document and sends them as an admin through
# the test client (every write is rolled back): no server error, every schema-invalid request refused with a
# 4xx, and no refused request may change the database. To fuzz a running service from outside instead:
#   .venv/bin/st run http://127.0.0.1:8000/openapi.json -H "Authorization: Bearer gis_..." -n 100
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
GIS_FUZZ_EXAMPLES="${1:-200}" exec .venv/bin/python -m pytest -q tests/test_fuzz.py -p no:cacheprovider
