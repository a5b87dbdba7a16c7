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

from gis_service.app import create_app
from gis_service.auth import create_token
from gis_service.layers import LAYERS
from gis_service.settings import Settings

#: Examples per operation: few in the suite so that CI stays fast.
EXAMPLES = int(os.environ.get("GIS_FUZZ_EXAMPLES", "10"))
CHECKS = [schemathesis.checks.not_a_server_error, schemathesis.checks.negative_data_rejection]

# The document is read from an app built without a database (building one does not connect); the calls go to
# the test's own app. (schemathesis.pytest.from_fixture would do this lazily but fails under pytest 9.)
schema = schemathesis.openapi.from_dict(create_app(Settings(_env_file=None, warm_up=False)).openapi())


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


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_api(case, admin, conn: sa.Connection) -> None:
    client, headers = admin
    writes = case.method.upper() not in ("GET", "HEAD", "OPTIONS")
    before = fingerprint(conn) if writes else None
    kwargs = case.as_transport_kwargs(base_url="http://testserver", headers=headers)
    response = client.request(**{k: v for k, v in kwargs.items() if k in REQUEST_ARGS and v != {}})
    case.validate_response(response, checks=CHECKS)
    if writes and response.status_code >= 400:
        assert fingerprint(conn) == before, f"{case.method} {case.formatted_path} was refused but wrote"


REQUEST_ARGS = ("method", "url", "params", "headers", "json", "content", "data", "files")
