"""The files of a deployment on several machines (scripts/deploy/, README "Production"): the balancer's nginx
configuration passes `nginx -t` and keeps what the README says it does, and the systemd units of the primary and
of a standby run the commands that exist, as the service's user."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from gis_service.settings import Settings

from .helpers import REPO, nginx_check

DEPLOY = REPO / "scripts" / "deploy"


def _directives(text: str) -> dict[str, list[str]]:
    """Each directive's values, in file order (comments left out)."""
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line and line.endswith(";"):
            name, _, value = line.rstrip(";").partition(" ")
            found.setdefault(name, []).append(value.strip())
    return found


def test_the_balancer_configuration_passes_nginx_t(tmp_path: Path) -> None:
    code, said = nginx_check((DEPLOY / "nginx-gis-balancer.conf").read_text(), tmp_path)
    assert code == 0, said
    assert "test is successful" in said


def test_the_balancer_caches_tiles_revalidating_them_and_never_with_a_token() -> None:
    text = (DEPLOY / "nginx-gis-balancer.conf").read_text()
    directives = _directives(text)
    tiles = text[text.index("location ~ ^/collections/"):]
    assert re.search(r"proxy_cache gis_tiles;", tiles) and "proxy_cache_revalidate on;" in tiles
    assert "proxy_no_cache $http_authorization;" in tiles and "proxy_cache_bypass $http_authorization;" in tiles
    assert directives["gzip"] == ["on"] and re.search(r"gzip_types [^;]*application/geo\+json", text)
    assert all(value.startswith("https://") for value in directives["proxy_pass"])  # tokens cross in TLS only
    assert directives["proxy_ssl_verify"] == ["on"]
    # the same limits as the service's, so a request too large or too slow stops at the balancer
    defaults = Settings.model_fields
    assert int(directives["client_max_body_size"][0].removesuffix("m")) * 2**20 == defaults["max_body_bytes"].default
    assert directives["client_header_timeout"] == [f"{defaults['header_timeout_s'].default:g}s"]
    # writes are never sent to a second host
    assert "non_idempotent" not in " ".join(directives["proxy_next_upstream"])


@pytest.mark.parametrize(("unit", "commands"), [
    ("gis-service-db.service", ["db start", "db stop"]),
    ("gis-service-standby.service", ["db replica start", "db replica stop"]),
])
def test_the_database_units_run_the_cli_as_the_service_user(unit: str, commands: list[str], tmp_path: Path) -> None:
    text = (DEPLOY / unit).read_text()
    directives = dict(line.split("=", 1) for line in text.splitlines() if re.match(r"^[A-Za-z]+=", line))
    assert directives["User"] == "gis-service" and directives["Type"] == "forking"
    assert directives["PIDFile"].endswith("/pgdata/postmaster.pid")
    for command, line in zip(commands, (directives["ExecStart"], directives["ExecStop"]), strict=True):
        assert line.startswith("/opt/gis-service/.venv/bin/gis-service " + command)
        help_text = subprocess.run([str(REPO / ".venv" / "bin" / "gis-service"), *command.split(), "--help"],
                                   capture_output=True, text=True, timeout=60)
        assert help_text.returncode == 0, help_text.stderr  # the command exists as written
    analyse = shutil.which("systemd-analyze")
    if analyse:  # where systemd can read units: the file parses, with the paths of this checkout
        local = text.replace("/opt/gis-service/.venv/bin/gis-service", str(REPO / ".venv" / "bin" / "gis-service"))
        (tmp_path / unit).write_text(local.replace("User=gis-service", "User=root").replace("Group=gis-service",
                                                                                             "Group=root"))
        verified = subprocess.run([analyse, "verify", str(tmp_path / unit)], capture_output=True, text=True)
        assert "Unknown key" not in verified.stderr and "Invalid" not in verified.stderr, verified.stderr
