"""Analyses bounded in time and memory (issue 18, finding 3): one request within the documented limits once held a
worker for minutes, and twenty took every database session. Now the size guard refuses what would take too long
to draw, a time budget stops an analysis's work (Python included), and analyses take turns of their own, so that
the status page and plain reads keep answering while they run."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import sqlalchemy as sa

from gis_service.api.deps import ANALYSES

from .harness.devserver import service

#: GIS_ANALYSIS_QUEUE of the queue test: small, so that all its requests arrive within the budget on a busy machine
ANALYSES_WAITING = 6

#: The request of the finding: every elder-care facility, 10 minutes by car, grown by 500 m (455-504 s, 3.3 GB).
LARGE = {"mode": "drive", "minutes": 10, "buffer_m": 500}


def test_the_large_service_area_request_is_refused_at_once_with_a_message(client) -> None:
    started = time.perf_counter()
    answer = client.get("/analysis/service-areas", params=LARGE)
    assert answer.status_code == 400
    description = answer.json()["description"]
    assert "too large to draw" in description and "at most 100,000" in description
    assert "fewer minutes, a slower mode, or one kind of facility" in description
    assert time.perf_counter() - started < 5  # refused while counting the pieces, before any is drawn


#: Analyses that take seconds of CPU (about 80,000 road pieces to draw); minutes no other test asks for, so that
#: no cached answer comes back.
SLOW = [
    pytest.param("/analysis/service-areas", {"mode": "walk", "minutes": 41, "buffer_m": 30}, id="service-areas"),
    pytest.param("/maps/coverage", {"mode": "walk", "minutes": 41}, id="coverage-map"),
]


@pytest.mark.parametrize(("path", "params"), SLOW)
def test_an_analysis_over_its_time_budget_stops_and_answers_503(client_with, path: str, params: dict) -> None:
    assert client_with().get("/analysis/coverage", params={"group_by": "county"}).status_code == 200  # network built
    client = client_with(analysis_timeout_s=0.2)
    started = time.perf_counter()
    answer = client.get(path, params=params)
    assert answer.status_code == 503
    description = answer.json()["description"]
    assert "stopped after 0.2 s" in description and "GIS_ANALYSIS_TIMEOUT_S" in description
    assert "fewer minutes" in description
    assert answer.headers["Retry-After"] == "1"
    assert time.perf_counter() - started < 3  # drawing them all takes 5-8 s of CPU
    # and nothing goes on computing after the answer: the analysis ran in the request's own thread, under its turn,
    # and that turn is given back (no analysis computes or waits)
    assert client.app.state.analysis_turns.idle


# -- analyses take turns of their own: a real server -----------------------------------------------------------
#: More analyses at once than the server has sessions (10): before the limit they took them all.
AT_ONCE = [f"/analysis/service-areas?kind=community_station&minutes={minutes}&buffer_m=40"
           for minutes in range(11, 23)]
READS = {"/health": lambda body: body["status"] == "ok" and body["layers"]["settlements"] > 0,
         "/collections/settlements/items?limit=5": lambda body: len(body["features"]) == 5}
#: The server's connections carry this name (libpq reads PGAPPNAME), to tell them from the other tests'.
SERVER_NAME = "gis-analysis-turns-test"


@contextlib.contextmanager
def analysing_server(database_url: str, *, timeout_s: float, queue: int = 64) -> Iterator[str]:
    """The service over the test database (reads only; the ``engine`` fixture loads the demo county into it) with
    GIS_ANALYSIS_TIMEOUT_S=``timeout_s``, the road network built before it answers."""
    with service(database_url, GIS_WARM_UP="true", GIS_ANALYSIS_TIMEOUT_S=str(timeout_s),
                 GIS_ANALYSIS_QUEUE=str(queue),
                 PGAPPNAME=SERVER_NAME) as url:
        # the first analysis loads the graph and joins the points, which a short budget may not cover: again then
        statuses = [httpx.get(f"{url}/analysis/coverage?group_by=county", timeout=120).status_code for _ in range(3)]
        assert 200 in statuses, httpx.get(f"{url}/analysis/coverage?group_by=county", timeout=120).text
        yield url


def server_sessions_in_transaction(engine: sa.Engine) -> int:
    """The server's database sessions in a transaction (an analysis holds one while it computes)."""
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT count(*) FROM pg_stat_activity WHERE application_name = :name "
                                    "AND state <> 'idle'"), {"name": SERVER_NAME}).scalar_one()


def all_at_once(base_url: str, paths: list[str]) -> list[tuple[httpx.Response, float]]:
    """GET every path at the same time, each on a connection of its own: (answer, seconds) in the paths' order."""
    answers: list = [None] * len(paths)

    def get(i: int) -> None:
        started = time.perf_counter()
        answers[i] = (httpx.get(f"{base_url}{paths[i]}", timeout=120), time.perf_counter() - started)

    threads = [threading.Thread(target=get, args=(i,)) for i in range(len(paths))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def test_status_and_reads_answer_while_analyses_fill_their_turns(engine: sa.Engine, database_url: str) -> None:
    reads: list[tuple[str, int, bool, float]] = []
    sessions: list[int] = []
    running = threading.Event()

    def reader(server: str) -> None:
        with httpx.Client(base_url=server, timeout=30) as client:
            while running.is_set():
                for path, looks_right in READS.items():
                    started = time.perf_counter()
                    response = client.get(path)
                    reads.append((path, response.status_code, looks_right(response.json()),
                                  time.perf_counter() - started))
                sessions.append(server_sessions_in_transaction(engine))

    with analysing_server(database_url, timeout_s=60) as server:
        running.set()
        watcher = threading.Thread(target=reader, args=(server,))
        watcher.start()
        answers = all_at_once(server, AT_ONCE)
        running.clear()
        watcher.join()

    assert [answer.status_code for answer, _ in answers] == [200] * len(AT_ONCE)  # every one answered, in turn
    assert len(reads) >= 10  # read all the while
    assert all(status == 200 and right for _, status, right, _ in reads)
    # (the 1 s target is measured by scripts/bench_analysis_limits.py; beside the rest of the suite on two cores,
    # a read has taken 2 s)
    assert max(seconds for *_, seconds in reads) < 5.0
    # sampled between reads: the analyses computing (each may read the committed roads on a second connection
    # for a moment), never all ten sessions
    assert ANALYSES <= max(sessions) <= 2 * ANALYSES


def test_analyses_wait_for_their_turn_a_bounded_time_and_beyond_the_queue_not_at_all(engine: sa.Engine,
                                                                                     database_url: str) -> None:
    """With a 2 s budget: ANALYSES run (and are stopped), ANALYSES_WAITING wait at most 2 s, the rest are refused
    at once; every refusal says why and when to try again."""
    slow = [f"/analysis/service-areas?mode=walk&minutes={40 + i / 10:.1f}&buffer_m=30"
            for i in range(ANALYSES + ANALYSES_WAITING + 4)]
    with analysing_server(database_url, timeout_s=2, queue=ANALYSES_WAITING) as server:
        answers = all_at_once(server, slow)
    descriptions = [answer.json()["description"] for answer, _ in answers]
    assert all(answer.status_code == 503 for answer, _ in answers)
    stopped = [d for d in descriptions if "stopped after 2 s" in d]
    waited = [d for d in descriptions if d.startswith("this analysis waited 2 s for its turn")]
    refused = [(answer, seconds) for (answer, seconds), d in zip(answers, descriptions) if d.startswith("the service")]
    counts = f"{len(stopped)} stopped, {len(waited)} waited, {len(refused)} refused at once: {set(descriptions)}"
    assert len(stopped) >= ANALYSES and len(waited) >= ANALYSES_WAITING - 2 * ANALYSES and len(refused) >= 4, counts
    assert len(stopped) + len(waited) + len(refused) == len(slow), counts
    for answer, seconds in refused:
        assert f"{ANALYSES} at once, {ANALYSES_WAITING} more waiting their turn" in answer.json()["description"]
        assert answer.headers["Retry-After"] == "5"
        assert seconds < 2  # at once, not after a wait of 2 s
    # nobody waits longer than a turn and a budget (and a check)
    assert max(seconds for _, seconds in answers) < 15, sorted(round(seconds, 1) for _, seconds in answers)
