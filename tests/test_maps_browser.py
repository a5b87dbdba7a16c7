"""Each map in headless Chromium: served by a running service, and built to a file opened from disk.

The page must load with no console error, request nothing from any host but the service (the built file: nothing
at all), and draw every layer: the features are counted in the DOM (each drawn feature has the class
``gis-<layer>``) against counts taken from the database and the analyses. A screenshot of each is saved.
There is no skipping: without Chromium the tests fail and say to run scripts/setup.sh.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

from gis_service.maps.builders import build_map
from gis_service.maps.recipes import MAP_NAMES

from .harness.browser import Chromium
from .harness.devserver import service

UNSERVED_ORANGE = "#e69f00"
#: The zoom from which the coverage map draws its settlements (builders and recipe: where the dots separate).
DETAIL_ZOOM = 12
#: JavaScript: the page's Leaflet map.
MAP_JS = "window[document.querySelector('.folium-map').id]"
#: JavaScript: true once the map page is there (not the page saying what is being computed).
MAP_READY_JS = "document.querySelector('.folium-map')"
#: Seconds a map may take to open the first time, its analyses computed (minutes under a full test run).
OPEN_TIMEOUT_S = 300


def open_map(page, url: str) -> float:
    """Open a served map as a planner's browser does: while it is computed the page says so and asks again."""
    return page.goto_until(url, MAP_READY_JS, timeout_s=OPEN_TIMEOUT_S)


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

        unserved = coverage(conn, layer="elder_care", minutes=15, mode="walk", group_by="county")["unserved"]
        return {
            "townships": townships, "county": 1,
            "service_areas": 1,  # one area: what any facility reaches
            "settlements": _count(conn, "SELECT count(*) FROM settlements"),
            f'settlements[fill="{UNSERVED_ORANGE}"]': len(unserved),
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
    if "settlements" in expected:  # at county zoom the settlements are left out; zoomed in, every one is there
        assert page.count(".leaflet-pane .gis-settlements") == 0
        page.screenshot(screenshot.with_name(f"county-zoom-{screenshot.name}"))
        page.evaluate(f"{MAP_JS}.setZoom({DETAIL_ZOOM}, {{animate: false}}) && true")
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
    ms = open_map(page, f"{server_url}/maps/{name}")
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
    open_map(page, f"{server_url}/maps/overview")
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
    open_map(page, f"{server_url}/maps/boundaries")
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


def township_names(conn: sa.Connection) -> set[str]:
    return set(conn.execute(sa.text("SELECT name FROM admin_divisions WHERE level = 'township' "
                                    "AND valid_to IS NULL")).scalars())


@pytest.mark.parametrize("name", ["overview", "coverage", pytest.param("coverage?mode=cycle&minutes=24",
                                                                       id="coverage-cycle-24")])
def test_township_names_are_written_on_the_map_without_overlapping(chromium: Chromium, server_url: str,
                                                                   conn: sa.Connection, name: str) -> None:
    page = chromium.new_page()
    open_map(page, f"{server_url}/maps/{name}")
    written = page.evaluate("Array.from(document.querySelectorAll('.gis-label-township'))"
                            ".map(function (e) { var r = e.getBoundingClientRect(); "
                            "return [e.textContent, r.left, r.top, r.right, r.bottom]; })")
    expected = township_names(conn)
    names = {label[0] for label in written}
    assert names <= expected and len(names) >= 0.8 * len(expected), sorted(expected - names)
    for i, a in enumerate(written):  # decluttered: no two boxes overlap
        for b in written[i + 1:]:
            assert not (a[1] < b[3] - 1 and b[1] < a[3] - 1 and a[2] < b[4] - 1 and b[2] < a[4] - 1), (a, b)
    assert page.count(".leaflet-tooltip") == 0  # labels, not tooltips
    rivers = page.evaluate("Array.from(document.querySelectorAll('.gis-label-natural')).map(e => e.textContent)")
    assert any(river in rivers for river in ("梅江河", "酉水", "平江河")), rivers
    page.evaluate(f"{MAP_JS}.setZoom(13, {{animate: false}}) && true")
    assert page.count(".gis-label-village") > 0 and page.count(".gis-label-major_road") > 0
    assert page.console_errors == []


def test_coverage_title_says_the_minutes_and_mode_asked_for(chromium: Chromium, server_url: str) -> None:
    page = chromium.new_page()
    open_map(page, f"{server_url}/maps/coverage?minutes=30&mode=cycle&kind=rural_happiness_home")
    title = page.evaluate("document.querySelector('.gis-title h1').textContent")
    assert title == "骑行30分钟生活圈覆盖（农村幸福院）"
    assert page.evaluate("document.title") == title
    tip = page.evaluate(f"""(function () {{ {MAP_JS}.setZoom({DETAIL_ZOOM}, {{animate: false}});
        var dot = document.querySelector('.leaflet-pane path.gis-settlements[fill="{UNSERVED_ORANGE}"]');
        dot.dispatchEvent(new MouseEvent('mouseover', {{bubbles: true}}));
        var tips = document.querySelectorAll('.leaflet-tooltip');
        return tips.length ? tips[tips.length - 1].innerText : null; }})()""")
    assert tip and "未覆盖" in tip and "unserved" not in tip and ".0" not in tip


def test_search_box_flies_to_a_township(chromium: Chromium, server_url: str, conn: sa.Connection) -> None:
    page = chromium.new_page()
    open_map(page, f"{server_url}/maps/overview")
    township = sorted(township_names(conn))[0]
    page.evaluate(f"""(function () {{ var input = document.querySelector('.gis-search input');
        input.value = {township!r}; input.dispatchEvent(new Event('input')); }})()""")
    page.evaluate("new Promise(function (r) { setTimeout(r, 1500); })")
    first = page.evaluate("(document.querySelector('.gis-search li') || {}).textContent")
    assert first and first.startswith(township)
    before = page.evaluate(f"{MAP_JS}.getZoom()")
    page.evaluate("document.querySelector('.gis-search li').click()")
    page.evaluate("new Promise(function (r) { setTimeout(r, 2000); })")
    assert page.evaluate(f"{MAP_JS}.getZoom()") > before
    assert page.console_errors == []


def test_a_map_asked_with_new_parameters_says_what_it_computes_then_opens(chromium: Chromium,
                                                                         server_url: str) -> None:
    """24 minutes by bicycle: refused as too large to draw before the service areas were drawn as one."""
    page = chromium.new_page()
    page.goto(f"{server_url}/maps/coverage?mode=cycle&minutes=24&kind=township_home")
    title = "骑行24分钟生活圈覆盖（敬老院）"
    first = page.evaluate("document.title")
    if first != title:  # not computed within GIS_MAP_WAIT_S: the page says what is being computed
        shown = page.evaluate("document.body.innerText")
        assert first == f"正在计算… {title}" and "24 分钟" in shown and "骑行" in shown and "当前步骤" in shown
    page.wait_until(MAP_READY_JS, timeout_s=OPEN_TIMEOUT_S)
    assert page.evaluate("document.querySelector('.gis-title h1').textContent") == title
    assert page.count(".leaflet-pane .gis-service_areas") == 1 and page.count(".leaflet-pane .gis-townships") > 0
    assert page.console_errors == [] and page.failed == []


def test_the_scale_bar_is_written_in_chinese_units(chromium: Chromium, server_url: str) -> None:
    page = chromium.new_page()
    open_map(page, f"{server_url}/maps/overview")
    scale = "document.querySelector('.leaflet-control-scale-line').textContent"
    county_zoom = page.evaluate(scale)
    page.evaluate(f"{MAP_JS}.setZoom(17, {{animate: false}}) && true")
    street_zoom = page.evaluate(scale)
    assert re.fullmatch(r"\d+ 公里", county_zoom) and re.fullmatch(r"\d+ 米", street_zoom), (county_zoom, street_zoom)
    assert page.evaluate("document.querySelector('.leaflet-control-scale').textContent").startswith("比例尺")
