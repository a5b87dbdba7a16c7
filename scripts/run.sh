#!/usr/bin/env bash
# One command on a fresh Debian machine: install what is needed, then serve the demo county.
# Arguments go to `gis-service serve` (e.g. --host 0.0.0.0 --port 8080).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/gis-service serve "$@"
