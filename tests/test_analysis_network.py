"""The network module's in-process machinery under concurrency: the answer cache (bounded in bytes as well as in
number; a hit is the caller's own copy) and the build gate (requests for analyses wait for a network build without
a session, so that every other request goes on being answered)."""

from __future__ import annotations

import threading
import time

from fastapi.testclient import TestClient

from gis_service.analysis.network import BUILD_GATE, AnswerCache

from .helpers import wait_for


def service_area_answer(facilities: int) -> dict:
    """An answer shaped like /analysis/service-areas: one polygon of 500 points per facility."""
    return {"type": "FeatureCollection", "features": [
        {"type": "Feature", "id": f,
         "geometry": {"type": "Polygon", "coordinates": [[[108.9 + f * 1e-3 + i * 1e-5, 28.4 + i * 1e-5]
                                                          for i in range(500)]]},
         "properties": {"name": f"敬老院 {f}", "reached_road_m": 1234.5}} for f in range(facilities)]}


def test_large_answers_are_bounded_in_bytes_not_only_in_number() -> None:
    cache = AnswerCache(max_entries=32, max_bytes=2_000_000)
    for minutes in range(10, 30):
        cache.put(("service-areas", minutes), service_area_answer(40))  # about 0.45 MB each, pickled

    assert cache.size_bytes <= 2_000_000
    assert 3 <= len(cache) < 20  # far fewer than the 20 asked for, or the 32 the count allows
    assert cache.get(("service-areas", 29)) is not None  # the most recent is kept ...
    assert cache.get(("service-areas", 10)) is None  # ... the oldest went first


def test_an_answer_larger_than_a_quarter_of_the_cache_is_not_kept() -> None:
    cache = AnswerCache(max_entries=32, max_bytes=2_000_000)
    cache.put("small", service_area_answer(1))
    cache.put("huge", service_area_answer(100))  # about 1.1 MB pickled: more than 2 MB / 4

    assert cache.get("huge") is None
    assert cache.get("small") == service_area_answer(1)


def test_changing_an_answer_from_the_cache_does_not_change_the_cache() -> None:
    cache = AnswerCache(max_entries=4, max_bytes=10_000_000)
    cache.put("coverage", {"totals": {"households": 120}, "unserved": [{"id": 7, "name": "岩上"}]})

    first = cache.get("coverage")
    first["unserved"].clear()
    first["totals"]["households"] = 0

    assert cache.get("coverage") == {"totals": {"households": 120}, "unserved": [{"id": 7, "name": "岩上"}]}


def test_the_count_still_bounds_small_answers_and_replacing_one_keeps_the_size_right() -> None:
    cache = AnswerCache(max_entries=2, max_bytes=10_000_000)
    for key in ("a", "b", "c"):
        cache.put(key, {"rate": 0.5})
    cache.put("c", {"rate": 0.75})

    assert len(cache) == 2 and cache.get("a") is None and cache.get("c") == {"rate": 0.75}
    cache.clear()
    assert len(cache) == 0 and cache.size_bytes == 0


def test_while_the_network_is_being_built_tiles_are_answered_and_coverage_waits_for_it(client: TestClient) -> None:
    client.get("/analysis/coverage", params={"group_by": "county"}).raise_for_status()  # network built and loaded
    release = threading.Event()

    def build() -> None:
        with BUILD_GATE.building():
            release.wait(30)

    builder = threading.Thread(target=build)
    builder.start()
    answers: dict = {}
    waiting = threading.Thread(target=lambda: answers.update(
        coverage=client.get("/analysis/coverage", params={"group_by": "county"})))
    try:
        waiting.start()
        started = time.perf_counter()
        tile = client.get("/collections/roads/tiles/WebMercatorQuad/12/3288/1710")
        assert tile.status_code == 200 and time.perf_counter() - started < 5
        wait_for(lambda: BUILD_GATE.waiting == 1, timeout_s=10, what="the coverage request waits at the build gate")
        assert "coverage" not in answers  # still waiting for the build
    finally:
        release.set()
        builder.join()
        waiting.join(30)
    assert answers["coverage"].status_code == 200
    assert answers["coverage"].json()["totals"]["households"] > 0
