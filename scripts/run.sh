#!/usr/bin/env bash
# One command on a fresh Debian machine: install what is needed, then serve the demo county.
# Arguments go to `gis-service serve` (e.g. --port 8080 --workers 2). It listens on 127.0.0.1 only: to serve
# other machines, put nginx with TLS in front (README, "Production"; scripts/deploy/) rather than --host 0.0.0.0,
# which would send bearer tokens and data over the network unencrypted.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/gis-service serve "$@"
