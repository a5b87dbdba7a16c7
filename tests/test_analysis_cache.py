"""The cache of the analyses' answers: bounded in bytes as well as in number, and a hit is the caller's own copy."""

from __future__ import annotations

from gis_service.analysis.network import AnswerCache


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
