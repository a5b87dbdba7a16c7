"""Schemathesis against the service's own OpenAPI document: every operation, with generated valid and invalid
parameters and bodies, sent as an admin (so that writes get past the token check) through the test's client (so
that everything is rolled back). No answer may be a server error, a request the schema calls invalid must be
refused with a 4xx, and a refused request must change nothing. ``scripts/fuzz.sh`` runs many more examples."""

from __future__ import annotations

import os

import pytest
import schemathesis
import sqlalchemy as sa
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig

from gis_service.app import create_app
from gis_service.auth import create_token
from gis_service.layers import LAYERS
from gis_service.settings import Settings

#: Examples per operation: few in the suite so that CI stays fast.
EXAMPLES = int(os.environ.get("GIS_FUZZ_EXAMPLES", "10"))
CHECKS = [schemathesis.checks.not_a_server_error, schemathesis.checks.negative_data_rejection]

# The document is read from an app built without a database (building one does not connect); the calls go to
# the test's own app. (schemathesis.pytest.from_fixture would do this lazily but fails under pytest 9.)
schema = schemathesis.openapi.from_dict(
    create_app(Settings(_env_file=None, warm_up=False)).openapi(),
    # service areas: no boundary values (120 minutes, 500 m buffers; see filter_query)
    config=SchemathesisConfig.from_dict({"operations": [
        {"include-path": "/analysis/service-areas", "phases": {"coverage": {"enabled": False}}}]}))


@pytest.fixture()
def admin(client_with, conn: sa.Connection):
    """(client, headers): the API with no write rate limit, and an admin's bearer token."""
    token = create_token(conn, role="admin", name="fuzz")[1]
    return client_with(write_rate_per_minute=0), {"Authorization": f"Bearer {token}"}


def fingerprint(conn: sa.Connection) -> dict[str, tuple[int, int]]:
    """(rows, sum of versions) of every layer, and the audit trail's length: any write changes one of them."""
    result = {layer.id: tuple(conn.execute(sa.text(
        f"SELECT count(*), coalesce(sum(version), 0) FROM {layer.table}")).one()) for layer in LAYERS.values()}
    result["audit_log"] = (conn.execute(sa.text("SELECT count(*) FROM audit_log")).scalar_one(), 0)
    return result


@schema.hook
def filter_query(ctx, query) -> bool:
    """Service areas as the county asks for them: within about 1.5 km of travel and 100 m buffers. (Every facility's
    area at 120 minutes by car with 500 m buffers is the whole county 200 times over and takes minutes to draw:
    the benchmark's business, not the fuzzer's.) Values that are not numbers are kept: they must be refused."""
    if ctx.operation.path != "/analysis/service-areas" or not isinstance(query, dict):
        return True
    speed_kmh = {"walk": 4.8, "cycle": 12.0, "drive": 50.0}.get(str(query.get("mode", "walk")), 4.8)
    try:
        reach_km = float(query.get("minutes", 15)) / 60 * speed_kmh
        buffer_m = float(query.get("buffer_m", 50))
    except (TypeError, ValueError):
        return True
    return reach_km <= 1.5 and buffer_m <= 100


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_api(case, admin, conn: sa.Connection) -> None:
    client, headers = admin
    writes = case.method.upper() not in ("GET", "HEAD", "OPTIONS")
    before = fingerprint(conn) if writes else None
    kwargs = case.as_transport_kwargs(base_url="http://testserver", headers=headers)
    response = client.request(**{k: v for k, v in kwargs.items() if k in REQUEST_ARGS and v != {}},
                              follow_redirects=False)
    case.validate_response(response, checks=CHECKS)
    if writes and response.status_code >= 400:
        assert fingerprint(conn) == before, f"{case.method} {case.formatted_path} was refused but wrote"


REQUEST_ARGS = ("method", "url", "params", "headers", "json", "content", "data", "files")
