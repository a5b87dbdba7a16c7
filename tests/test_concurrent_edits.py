"""No lost updates: many clients changing one feature at once through a real server (uvicorn in a subprocess), each
with its own token. Per version exactly one change wins; the others get 412 and must read again; the audit trail
has one entry per win, in order, ending in the feature as stored."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest
import sqlalchemy as sa

from gis_service.auth import create_token
from gis_service.db import migrate
from gis_service.db.engine import create_db_engine
from gis_service.io.load_demo import load_frames
from gis_service.settings import Settings

from .harness import devserver
from .helpers import create_database, drop_database

CLIENTS = 20
ROUNDS = 5
DATABASE = "gis_concurrency_test"


@pytest.fixture(scope="module")
def concurrency_db(engine: sa.Engine, database_url: str, admin_url: str, settings: Settings,
                   demo_frames: dict) -> Iterator[sa.Engine]:
    """A database of its own beside the test database (the server commits), with the divisions and elder care."""
    url = create_database(admin_url, database_url, DATABASE)
    migrate.upgrade(url)
    own = create_db_engine(url)
    load_frames(own, {name: demo_frames[name] for name in ("admin_divisions", "elder_care")},
                county_code=settings.county_code, measure_srid=settings.measure_srid)
    yield own
    own.dispose()
    drop_database(admin_url, DATABASE)


@pytest.fixture(scope="module")
def tokens(concurrency_db: sa.Engine) -> list[str]:
    """One planner token per client; client n's name in the audit trail is 规划员n."""
    with concurrency_db.begin() as conn:
        return [create_token(conn, role="planner", name=f"规划员{n}")[1] for n in range(CLIENTS)]


@pytest.fixture(scope="module")
def server(concurrency_db: sa.Engine) -> Iterator[str]:
    url = concurrency_db.url.render_as_string(hide_password=False)
    with devserver.service(url, GIS_WARM_UP="false") as base:
        yield base


def _headers(token: str, etag: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/geo+json", "If-Match": etag}


def _station(conn: sa.Connection, offset: int) -> tuple[int, int]:
    return tuple(conn.execute(sa.text("SELECT id, version FROM elder_care ORDER BY id OFFSET :o LIMIT 1"),
                              {"o": offset}).one())


def _updates(conn: sa.Connection, station: int) -> list[sa.Row]:
    return conn.execute(sa.text(
        "SELECT version, actor, before, after FROM audit_log WHERE layer = 'elder_care' AND feature_id = :id "
        "AND action = 'update' ORDER BY id"), {"id": station}).all()


def test_twenty_clients_patching_one_feature_at_once_exactly_one_wins_each_round(
        server: str, concurrency_db: sa.Engine, tokens: list[str]) -> None:
    with concurrency_db.connect() as conn:
        station, start_version = _station(conn, 0)
    url = f"/collections/elder_care/items/{station}"
    together = threading.Barrier(CLIENTS, timeout=120)
    rounds: list[list[tuple[int, str, int]]] = [[] for _ in range(ROUNDS)]  # (client, ETag read, status)
    failures: list[BaseException] = []

    def client(n: int) -> None:
        try:
            with httpx.Client(base_url=server, timeout=60) as http:
                for r in range(ROUNDS):
                    etag = http.get(url).headers["ETag"]
                    together.wait()  # every client has read the same version before anyone writes
                    beds = 100 * (r + 1) + n
                    body = {"type": "Feature", "properties": {"beds": beds, "nursing_beds": beds // 2}}
                    status = http.patch(url, json=body, headers=_headers(tokens[n], etag)).status_code
                    rounds[r].append((n, etag, status))
                    together.wait()  # the round is over before anyone reads again
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            failures.append(exc)
            together.abort()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures

    winners = []
    for r, outcomes in enumerate(rounds):
        assert len({etag for _, etag, _ in outcomes}) == 1  # all read the same version
        assert Counter(status for _, _, status in outcomes) == {200: 1, 412: CLIENTS - 1}, r
        winners.append(next(n for n, _, status in outcomes if status == 200))

    feature = httpx.get(f"{server}{url}")
    final_beds = 100 * ROUNDS + winners[-1]
    assert feature.json()["properties"]["beds"] == final_beds  # the last winner's values, both of them
    assert feature.json()["properties"]["nursing_beds"] == final_beds // 2
    assert feature.headers["ETag"] == f'"elder_care.{station}.v{start_version + ROUNDS}"'  # one version per win
    # history needs a token of any role (it names the staff)
    history = httpx.get(f"{server}{url}/history", headers={"Authorization": f"Bearer {tokens[0]}"}).json()["changes"]
    assert [c["after"]["beds"] for c in history] == [100 * (r + 1) + n for r, n in enumerate(winners)]
    assert [c["actor"] for c in history] == [f"规划员{n}" for n in winners]
    assert [c["version"] for c in history] == list(range(start_version + 1, start_version + ROUNDS + 1))


def test_clients_that_read_again_and_retry_after_412_lose_no_update(
        server: str, concurrency_db: sa.Engine, tokens: list[str]) -> None:
    """Each client appends its own mark to one text field, retrying until its change is accepted once. A lost
    update would drop a mark: two clients would both have written onto the same value."""
    with concurrency_db.begin() as conn:
        station, _ = _station(conn, 1)
        conn.execute(sa.text("UPDATE elder_care SET data_source = 'marks:' WHERE id = :id"), {"id": station})
        start_version = conn.execute(sa.text("SELECT version FROM elder_care WHERE id = :id"),
                                     {"id": station}).scalar_one()
    url = f"/collections/elder_care/items/{station}"
    refused: list[int] = []  # the client of every 412
    failures: list[BaseException] = []
    start = threading.Barrier(CLIENTS, timeout=120)

    def client(n: int) -> None:
        try:
            start.wait()
            with httpx.Client(base_url=server, timeout=60) as http:
                while True:
                    read = http.get(url)
                    body = {"type": "Feature",
                            "properties": {"data_source": read.json()["properties"]["data_source"] + f" c{n:02d}"}}
                    answer = http.patch(url, json=body, headers=_headers(tokens[n], read.headers["ETag"]))
                    if answer.status_code == 200:
                        return
                    assert answer.status_code == 412, answer.text
                    refused.append(n)
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            failures.append(exc)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures
    assert len(refused) >= CLIENTS  # the clients really did get in each other's way

    with concurrency_db.connect() as conn:
        data_source, version = conn.execute(sa.text("SELECT data_source, version FROM elder_care WHERE id = :id"),
                                            {"id": station}).one()
        updates = [u for u in _updates(conn, station) if u.version > start_version]
    marks = data_source.removeprefix("marks:").split()
    assert sorted(marks) == [f"c{n:02d}" for n in range(CLIENTS)]  # every client's change is there, once
    assert version == start_version + CLIENTS  # one version per accepted change
    assert [u.version for u in updates] == list(range(start_version + 1, version + 1))
    for update, mark in zip(updates, marks, strict=True):  # the trail: each change on top of the one before
        assert update.after["data_source"] == update.before["data_source"] + " " + mark
        assert update.actor == f"规划员{int(mark[1:])}"
    assert updates[-1].after["data_source"] == data_source
