"""Each map in headless Chromium: served by a running service, and built to a file opened from disk.

The page must load with no console error, request nothing from any host but the service (the built file: nothing
at all), and draw every layer: the features are counted in the DOM (each drawn feature has the class
``gis-<layer>``) against counts taken from the database and the analyses. A screenshot of each is saved.
There is no skipping: without Chromium the tests fail and say to run scripts/setup.sh.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

from gis_service.maps.builders import build_map
from gis_service.maps.recipes import MAP_NAMES

from .harness.browser import Chromium
from .harness.devserver import service
from .helpers import chromium_or_fail

UNSERVED_RED = "#c62828"


@pytest.fixture(scope="module")
def chromium() -> Iterator[Chromium]:
    with chromium_or_fail() as browser:
        yield browser


@pytest.fixture(scope="module")
def server_url(engine: sa.Engine, database_url: str) -> Iterator[str]:
    """The service in a subprocess on a free port, over the committed demo county."""
    with service(database_url, ready_path="/maps", GIS_MAP_BASEMAP="none") as url:
        yield url


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("map-screenshots")


def _count(conn: sa.Connection, sql: str) -> int:
    return int(conn.execute(sa.text(sql)).scalar_one())


def expected_features(conn: sa.Connection, name: str) -> dict[str, int]:
    """Features each layer of map ``name`` must draw, counted from the database and the analyses."""
    townships = _count(conn, "SELECT count(*) FROM admin_divisions WHERE level = 'township' AND valid_to IS NULL")
    villages = _count(conn, "SELECT count(*) FROM admin_divisions WHERE level = 'village' AND valid_to IS NULL")
    if name == "overview":
        return {
            "villages": villages, "townships": townships, "county": 1,
            "roads": _count(conn, "SELECT count(DISTINCT (CASE WHEN road_class = 'path' THEN '' ELSE name END, "
                                  "road_class)) FROM roads"),
            "elder_care": _count(conn, "SELECT count(*) FROM elder_care WHERE status <> 'closed'"),
            "community_centres": _count(conn, "SELECT count(*) FROM community_centres WHERE status <> 'closed'"),
            "cemeteries": _count(conn, "SELECT count(*) FROM cemeteries WHERE status <> 'closed'"),
        }
    if name == "coverage":
        from gis_service.analysis.coverage import coverage
        from gis_service.analysis.service_areas import service_areas

        areas = service_areas(conn, layer="elder_care", minutes=15, mode="walk")
        unserved = coverage(conn, layer="elder_care", minutes=15, mode="walk", group_by="county")["unserved"]
        return {
            "townships": townships, "county": 1,
            "service_areas": sum(1 for f in areas["features"] if f["geometry"]),
            "settlements": _count(conn, "SELECT count(*) FROM settlements"),
            f'settlements[fill="{UNSERVED_RED}"]': len(unserved),
            "facilities": _count(conn, "SELECT count(*) FROM elder_care WHERE status = 'existing'"),
        }
    if name == "facility_area":
        return {"villages": villages, "townships": townships, "county": 1,
                "community_centres": _count(conn, "SELECT count(*) FROM community_centres "
                                                  "WHERE status = 'existing'")}
    if name == "boundaries":
        return {"townships": townships,
                "township_lines": _count(conn, "SELECT count(*) FROM boundary_lines WHERE level = 'township'"),
                "county_lines": _count(conn, "SELECT count(*) FROM boundary_lines WHERE level = 'county'"),
                "boundary_markers": _count(conn, "SELECT count(*) FROM boundary_markers"),
                'boundary_markers[fill="#c62828"]': _count(conn, "SELECT count(*) FROM boundary_markers "
                                                                 "WHERE condition = 'missing'")}
    if name == "site_suggestions":
        from gis_service.analysis.coverage import coverage
        from gis_service.analysis.sites import site_suggestions

        sites = site_suggestions(conn, layer="elder_care", minutes=15, mode="walk", k=5)["sites"]
        unserved = coverage(conn, layer="elder_care", minutes=15, mode="walk", group_by="county")["unserved"]
        newly = sum(s["newly_served_settlements"] for s in sites)
        return {"townships": townships, "county": 1, "sites": len(sites), "newly_served": newly,
                "still_unserved": len(unserved) - newly}
    raise AssertionError(name)


def drawn_features(page, expected: dict[str, int]) -> dict[str, int]:
    """The same keys, counted in the page: SVG paths and marker icons with the layer's class."""
    counts = {}
    for key in expected:
        layer, _, attribute = key.partition("[")
        selector = f".leaflet-pane .gis-{layer}" + (f"[{attribute}" if attribute else "")
        counts[key] = page.count(selector)
    return counts


def check_drawn(page, expected: dict[str, int], screenshot: Path) -> None:
    assert page.console_errors == [], page.console_errors
    assert page.failed == [], page.failed
    assert drawn_features(page, expected) == expected
    size = page.evaluate("(function () { var r = document.querySelector('.leaflet-overlay-pane svg')"
                         ".getBoundingClientRect(); return [r.width, r.height]; })()")
    assert size[0] > 300 and size[1] > 300, f"the layers are not drawn at a visible size: {size}"
    page.screenshot(screenshot)
    assert screenshot.stat().st_size > 20_000  # a drawn county, not a blank page


@pytest.mark.parametrize("name", MAP_NAMES)
def test_served_map_draws_every_layer_and_asks_only_the_service(chromium: Chromium, server_url: str,
                                                                 conn: sa.Connection, screenshots: Path,
                                                                 name: str) -> None:
    page = chromium.new_page()
    ms = page.goto(f"{server_url}/maps/{name}", timeout_s=180)
    service = urlsplit(server_url).netloc
    elsewhere = [u for u in page.requests if not (urlsplit(u).scheme == "data" or
                                                   (urlsplit(u).scheme == "http" and urlsplit(u).netloc == service))]
    assert elsewhere == [], f"requests to other hosts: {elsewhere}"
    assert f"{server_url}/maps/static/leaflet/leaflet.js" in page.requests
    check_drawn(page, expected_features(conn, name), screenshots / f"served-{name}.png")
    assert ms > 0


@pytest.mark.parametrize("name", MAP_NAMES)
def test_built_file_opens_from_disk_with_no_network(chromium: Chromium, conn: sa.Connection, tmp_path: Path,
                                                    screenshots: Path, name: str) -> None:
    path = tmp_path / f"{name}.html"
    path.write_text(build_map(conn, name, assets="inline", service_url="http://127.0.0.1:8000"), encoding="utf-8")
    page = chromium.new_page()
    page.goto(path.as_uri())
    network = [u for u in page.requests if u != path.as_uri() and not u.startswith("data:")]
    assert network == [], f"the built file made requests: {network}"
    check_drawn(page, expected_features(conn, name), screenshots / f"built-{name}.png")


def test_overview_popup_and_tooltip_show_the_facility_and_the_village(chromium: Chromium, server_url: str,
                                                                      conn: sa.Connection) -> None:
    page = chromium.new_page()
    page.goto(f"{server_url}/maps/overview")
    beds, kind = conn.execute(sa.text("SELECT beds, kind FROM elder_care WHERE status <> 'closed' "
                                      "AND kind = 'welfare_institution' ORDER BY id LIMIT 1")).one()
    popup = page.evaluate("""(function () {
        var icon = document.querySelector('.leaflet-pane .gis-elder_care');
        icon.dispatchEvent(new MouseEvent('click', {bubbles: true}));
        var box = document.querySelector('.leaflet-popup-content');
        return box ? box.innerText : null; })()""")
    assert popup and "床位" in popup and "运营方式" in popup and "社会福利机构" in popup and str(beds) in popup
    village = conn.execute(sa.text("SELECT name FROM admin_divisions WHERE level = 'village' AND valid_to IS NULL "
                                   "ORDER BY code LIMIT 1")).scalar_one()
    tooltip = page.evaluate("""(function () {
        var path = document.querySelector('.leaflet-pane path.gis-villages');
        var box = path.getBoundingClientRect();
        path.dispatchEvent(new MouseEvent('mouseover', {bubbles: true, clientX: box.x + box.width / 2,
                                                        clientY: box.y + box.height / 2}));
        var tips = document.querySelectorAll('.leaflet-tooltip');
        return tips.length ? tips[tips.length - 1].innerText : null; })()""")
    assert tooltip and village in tooltip and "户数" in tooltip
    assert page.console_errors == []


def test_boundary_marker_popup_shows_condition_inspection_and_export(chromium: Chromium, server_url: str,
                                                                     conn: sa.Connection) -> None:
    page = chromium.new_page()
    page.goto(f"{server_url}/maps/boundaries")
    number, line_code, inspected = conn.execute(sa.text(
        "SELECT number, line_code, coalesce((SELECT max(inspected_on) FROM marker_inspections i "
        "WHERE i.marker_id = m.id), last_inspected) FROM boundary_markers m WHERE condition = 'missing' "
        "ORDER BY number LIMIT 1")).one()
    popup = page.evaluate("""(function () {
        var dot = document.querySelector('.leaflet-pane path.gis-boundary_markers[fill="#c62828"]');
        dot.dispatchEvent(new MouseEvent('click', {bubbles: true}));
        var box = document.querySelector('.leaflet-popup-content');
        var link = box && box.querySelector('a[href*="format=gpx"]');
        return box ? [box.innerText, link ? link.href : null] : null; })()""")
    assert popup is not None
    text, gpx = popup
    assert number in text and "缺失" in text and str(inspected) in text
    assert gpx == f"{server_url}/exports/boundaries?line={line_code}&format=gpx"
    assert page.console_errors == []
