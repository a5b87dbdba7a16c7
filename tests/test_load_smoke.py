"""Many clients at once against the service in a uvicorn subprocess: the smoke test of ``scripts/bench_load.py``."""

from __future__ import annotations

import sqlalchemy as sa

from .harness.devserver import LoadKind, run_clients, service

#: More than FastAPI's 40 worker threads plus the 15 connections of SQLAlchemy's default pool: with those, the
#: service once stood still under this many clients (threads waiting for connections held by requests waiting for a
#: thread) and answered 500 after 30 s.
CLIENTS = 80


def test_more_clients_than_threads_and_connections_all_get_answers(engine: sa.Engine, database_url: str) -> None:
    mix = [
        LoadKind("items bbox", 3, ["/collections/settlements/items?bbox=108.95,28.40,109.05,28.50&limit=50",
                                   "/collections/roads/items?bbox=108.98,28.44,109.00,28.46&limit=100"]),
        LoadKind("items CQL2", 2, ["/collections/elder_care/items?filter=beds%20%3E%3D%2010&limit=100"]),
        LoadKind("tile", 3, ["/collections/roads/tiles/WebMercatorQuad/12/3288/1710",
                             "/collections/settlements/tiles/WebMercatorQuad/10/822/427"]),
        LoadKind("place names", 3, ["/placenames/search?q=%E7%9F%B3%E5%A0%A4", "/placenames/autocomplete?q=qx"]),
        LoadKind("health", 1, ["/health"]),
    ]
    with service(database_url, GIS_WARM_UP="false") as url:
        outcome = run_clients(url, mix, clients=CLIENTS, seconds=5, timeout_s=20)

    assert outcome.errors == [], f"{len(outcome.errors)} of {len(outcome.requests)} failed, e.g. {outcome.errors[:3]}"
    answered = {kind for kind, _, _ in outcome.requests}
    assert answered == {kind.name for kind in mix}
    assert len(outcome.requests) >= 2 * CLIENTS  # every client got answers, not only its first request
    assert max(latency for _, _, latency in outcome.requests) < 15
