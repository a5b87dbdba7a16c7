#!/usr/bin/env bash
# Installs everything gis-service needs on Debian/Ubuntu, idempotently:
#   PostgreSQL with PostGIS and pgRouting (Debian packages), and a virtualenv in .venv with the
#   Python dependencies at the exact versions in requirements.lock (the service's) and requirements-test.lock (the
#   tests' and benchmarks', on top).
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

apt_install() {
  if [ -z "${APT_UPDATED:-}" ]; then $SUDO apt-get update -qq; APT_UPDATED=1; fi
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# The PostgreSQL major version: the newest one installed, else the distribution's default.
PG_VERSION="${GIS_PG_VERSION:-$(ls /usr/lib/postgresql 2>/dev/null | sort -V | tail -n 1)}"
if [ -z "$PG_VERSION" ]; then
  apt_install postgresql-common
  PG_VERSION="$(apt-cache depends postgresql | grep -o 'postgresql-[0-9]\+' | head -n 1 | cut -d- -f2)"
fi
packages=()
for pkg in "postgresql-$PG_VERSION" "postgresql-$PG_VERSION-postgis-3" "postgresql-$PG_VERSION-pgrouting" \
           postgresql-contrib python3-venv gdal-bin chromium fonts-wqy-microhei nginx; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || packages+=("$pkg")
done
if [ "${#packages[@]}" -gt 0 ]; then
  echo "setup: installing ${packages[*]}"
  apt_install "${packages[@]}"
  # nginx is installed for the tests' `nginx -t` of scripts/deploy/nginx-gis-service.conf; Debian starts it with
  # its default site, which is not left serving (the README's production section enables it with ours)
  if [[ " ${packages[*]} " == *" nginx "* ]] && command -v systemctl >/dev/null; then
    $SUDO systemctl disable --now nginx >/dev/null 2>&1 || true
  fi
fi

PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "setup: gis-service needs Python 3.11 or newer; $($PYTHON --version) found" >&2
  exit 2
fi
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
# Development and CI: the service (editable) with the test extras, each at its locked version. A deployment that
# runs only the service needs only requirements.lock: pip install -c requirements.lock .
installed="$(cat requirements.lock requirements-test.lock pyproject.toml setup.py)"
if [ "$installed" != "$(cat .venv/.installed-lock 2>/dev/null)" ]; then
  echo "setup: installing Python dependencies (requirements.lock, requirements-test.lock)"
  .venv/bin/pip install -q --disable-pip-version-check -c requirements.lock -c requirements-test.lock -e '.[test]'
  printf '%s' "$installed" > .venv/.installed-lock
fi
