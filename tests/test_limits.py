"""What every request goes through: request ids in answers, errors and the log; body size, statement timeout and
write rate limits; one error shape for FastAPI's own errors and for bugs."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from gis_service.app import create_app
from gis_service.auth import create_token
from gis_service.db.engine import create_db_engine
from gis_service.settings import Settings

from .helpers import station


def _count(conn: sa.Connection, table: str) -> int:
    return conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()


def test_an_error_carries_the_request_id_that_the_answer_and_the_log_carry(
        client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="gis_service.access"):
        answer = client.get("/collections/no_such_layer/items", headers={"X-Request-ID": "field-tablet-7.0042"})
    assert answer.status_code == 404
    rid = answer.headers["X-Request-ID"]
    assert answer.json()["request_id"] == rid and len(rid) == 32  # the service's own id, not the client's
    assert "unknown layer 'no_such_layer'" in answer.json()["description"]
    logged = [json.loads(r.getMessage()) for r in caplog.records if r.name == "gis_service.access"]
    assert {"request_id": rid, "client_request_id": "field-tablet-7.0042", "method": "GET",
            "path": "/collections/no_such_layer/items", "status": 404}.items() <= logged[-1].items()
    assert logged[-1]["duration_ms"] >= 0


def test_a_request_id_that_is_not_sane_is_not_logged(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="gis_service.access"):
        answer = client.get("/health", headers={"X-Request-ID": "a b\tc" + "x" * 200})
    assert answer.status_code == 200
    assert len(answer.headers["X-Request-ID"]) == 32 and " " not in answer.headers["X-Request-ID"]
    assert client.get("/health").headers["X-Request-ID"] != answer.headers["X-Request-ID"]
    logged = [json.loads(r.getMessage()) for r in caplog.records if r.name == "gis_service.access"]
    assert "client_request_id" not in logged[0]


def test_unknown_paths_and_methods_are_answered_in_the_error_shape(client: TestClient) -> None:
    missing = client.get("/no/such/page")
    assert missing.status_code == 404
    assert missing.json()["code"] == "NotFound" and "/collections" in missing.json()["description"]
    wrong_method = client.delete("/collections")
    assert wrong_method.status_code == 405
    assert "DELETE is not allowed on /collections" in wrong_method.json()["description"]


def test_a_parameter_of_the_wrong_type_is_a_400_naming_it(client: TestClient) -> None:
    answer = client.get("/placenames/search", params={"q": "石堤", "limit": "ten"})
    assert answer.status_code == 400
    body = answer.json()
    assert body["code"] == "InvalidParameterValue"
    assert "limit (query)" in body["description"] and "'ten'" in body["description"]


def test_a_body_over_the_limit_is_refused_before_it_is_read_and_nothing_is_written(
        client_with, conn: sa.Connection) -> None:
    token = create_token(conn, role="planner", name="测试")[1]
    own = client_with(max_body_bytes=2048)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/geo+json"}
    before = _count(conn, "elder_care")
    big = station("测试" * 2000)
    declared = own.post("/collections/elder_care/items", content=json.dumps(big), headers=headers)
    assert declared.status_code == 413
    assert "at most 2,048 are accepted" in declared.json()["description"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: the middleware counts what arrives
        text = json.dumps(big).encode()
        for start in range(0, len(text), 1000):
            yield text[start:start + 1000]

    streamed = own.post("/collections/elder_care/items", content=chunks(), headers=headers)
    assert streamed.status_code == 413 and "more than 2,048" in streamed.json()["description"]
    assert _count(conn, "elder_care") == before


def test_a_query_over_the_statement_timeout_is_stopped_with_a_503_and_a_message(
        settings: Settings, database_url: str) -> None:
    # 1 ms: any query of 10,000 features takes longer, so the database must stop it
    impatient = create_db_engine(database_url, statement_timeout_s=0.001)
    try:
        app = create_app(settings.model_copy(update={"statement_timeout_s": 0.001}), impatient)
        with TestClient(app) as own:
            answer = own.get("/collections/roads/items", params={"limit": 10000})
        assert answer.status_code == 503
        assert answer.json()["code"] == "QueryTimeout"
        assert "stopped this request after 0.001 s" in answer.json()["description"]
        assert answer.headers["Retry-After"] == "1"
    finally:
        impatient.dispose()


def test_writes_beyond_the_rate_limit_get_429_and_write_nothing(client_with, conn: sa.Connection) -> None:
    token = create_token(conn, role="planner", name="测试限速")[1]
    own = client_with(write_rate_per_minute=2)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/geo+json"}
    for n in range(2):
        answer = own.post("/collections/elder_care/items", json=station(f"测试限速{n}"), headers=headers)
        assert answer.status_code == 201, answer.text
    before = (_count(conn, "elder_care"), _count(conn, "audit_log"))
    refused = own.post("/collections/elder_care/items", json=station("测试限速2"), headers=headers)
    assert refused.status_code == 429
    assert "more than 2 changes in the last minute" in refused.json()["description"]
    assert int(refused.headers["Retry-After"]) >= 1
    assert (_count(conn, "elder_care"), _count(conn, "audit_log")) == before
    assert own.get("/collections/elder_care/items", params={"limit": 1}).status_code == 200  # reads go on


def test_a_bug_is_a_500_in_the_error_shape_with_the_id_it_is_logged_under(
        settings: Settings, engine: sa.Engine, caplog: pytest.LogCaptureFixture) -> None:
    app = create_app(settings, engine)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("a bug")

    with TestClient(app) as own, caplog.at_level(logging.ERROR, logger="gis_service.errors"):
        answer = own.get("/boom")
    assert answer.status_code == 500
    rid = answer.json()["request_id"]
    assert rid and f"request id {rid}" in answer.json()["description"]
    assert "a bug" not in answer.text  # the details go to the log, not to the user
    assert any(rid in r.getMessage() and r.exc_info for r in caplog.records)


def test_the_audit_trail_keeps_the_request_id_of_each_change(client: TestClient, conn: sa.Connection) -> None:
    token = create_token(conn, role="planner", name="测试")[1]
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/geo+json"}
    given = client.post("/collections/elder_care/items", json=station("测试甲"),
                        headers={**headers, "X-Request-ID": "import-batch-12"})
    made = client.post("/collections/elder_care/items", json=station("测试乙"), headers=headers)
    assert given.status_code == made.status_code == 201
    ids = dict(conn.execute(sa.text("SELECT feature_id, request_id FROM audit_log")).all())
    # the service's ids, never one a client chose (the client's is in the log line beside it)
    assert ids[given.json()["id"]] == given.headers["X-Request-ID"] != "import-batch-12"
    assert ids[made.json()["id"]] == made.headers["X-Request-ID"]


def test_serve_logs_json_lines() -> None:
    from gis_service.logs import JsonLines

    record = logging.LogRecord("gis_service.access", logging.INFO, __file__, 1,
                               json.dumps({"request_id": "r1", "status": 200}), None, None)
    line = json.loads(JsonLines().format(record))
    assert line["request_id"] == "r1" and line["status"] == 200 and line["level"] == "info"


def test_a_token_records_its_last_use_to_the_minute_without_writing_on_every_request(conn: sa.Connection) -> None:
    from gis_service.auth import authenticate

    token_id, token = create_token(conn, role="planner", name="测试")
    last_used = sa.text("SELECT last_used_at, now() - last_used_at FROM api_tokens WHERE id = :id")
    assert conn.execute(last_used, {"id": token_id}).one()[0] is None
    authenticate(conn, f"Bearer {token}")
    assert conn.execute(last_used, {"id": token_id}).one()[1].total_seconds() == 0
    conn.execute(sa.text("UPDATE api_tokens SET last_used_at = now() - interval '30 seconds' WHERE id = :id"),
                 {"id": token_id})
    authenticate(conn, f"Bearer {token}")  # used within the minute: the row is not written again
    assert conn.execute(last_used, {"id": token_id}).one()[1].total_seconds() == 30
    conn.execute(sa.text("UPDATE api_tokens SET last_used_at = now() - interval '2 minutes' WHERE id = :id"),
                 {"id": token_id})
    authenticate(conn, f"Bearer {token}")
    assert conn.execute(last_used, {"id": token_id}).one()[1].total_seconds() == 0
