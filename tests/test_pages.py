"""The bureau's pages (issue 13) in headless Chromium, served by a running service over the demo county.

Each page loads with no console error and asks nothing of any host but the service; typing pinyin initials in the
地名查询 box shows the place; the boundary page links a township's package in every export format.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from gis_service.io.boundary_export import FORMATS

from .harness.browser import Chromium
from .harness.devserver import service
from .helpers import open_page, wait_in_page


@pytest.fixture(scope="module")
def server_url(engine: sa.Engine, database_url: str) -> Iterator[str]:
    with service(database_url, ready_path="/pages/placenames") as url:
        yield url


@pytest.mark.parametrize(("path", "heading"), [("/", "民政地理信息服务"), ("/pages/placenames", "地名查询"),
                                               ("/pages/boundaries", "界线界桩"), ("/pages/indicators", "规划指标")])
def test_page_loads_without_errors_or_other_hosts(chromium: Chromium, server_url: str, path: str,
                                                  heading: str) -> None:
    page = open_page(chromium, server_url + path, server_url)
    assert page.evaluate("document.querySelector('h1').innerText") == heading


def test_portal_links_the_pages_maps_layers_and_docs(chromium: Chromium, server_url: str) -> None:
    page = open_page(chromium, server_url + "/", server_url)
    links = page.evaluate("Array.from(document.querySelectorAll('main a')).map(a => a.getAttribute('href'))")
    assert links == ["/pages/placenames", "/pages/boundaries", "/pages/indicators", "/maps", "/collections?f=html",
                     "/docs"]


def test_landing_page_stays_json_for_clients(client: TestClient) -> None:
    for accept in (None, "application/json", "*/*", "text/html;q=0.5, application/json"):
        answer = client.get("/", headers={"Accept": accept} if accept else {})
        assert answer.headers["content-type"].startswith("application/json"), accept
        assert answer.json()["title"] == "gis-service"
    answer = client.get("/", headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert answer.headers["content-type"].startswith("text/html") and "地名查询" in answer.text


@pytest.mark.parametrize("typed_from", ["initials", "former"])
def test_typing_in_the_search_box_shows_the_place(chromium: Chromium, server_url: str, conn: sa.Connection,
                                                  typed_from: str) -> None:
    if typed_from == "initials":
        name, typed = conn.execute(sa.text(
            "SELECT name, py_initials FROM place_names WHERE status = 'current' AND category = 'administrative' "
            "AND length(py_initials) >= 3 ORDER BY id LIMIT 1")).one()
    else:
        name, typed = conn.execute(sa.text(
            "SELECT s.name, p.name FROM place_names p JOIN place_names s ON s.id = p.successor_id "
            "WHERE p.status = 'historical' AND s.status = 'current' ORDER BY p.id LIMIT 1")).one()
    page = open_page(chromium, server_url + "/pages/placenames", server_url)
    page.evaluate(f"""(function () {{ var box = document.getElementById('q'); var text = {json.dumps(typed)};
        for (var i = 1; i <= text.length; i++) {{ box.value = text.slice(0, i);
            box.dispatchEvent(new Event('input', {{bubbles: true}})); }} }})()""")
    shown = wait_in_page(page, f"""function () {{ var names = Array.from(document.querySelectorAll('#results li a'))
        .map(a => a.innerText); return names.indexOf({json.dumps(name)}) >= 0 ? names : null; }}""")
    assert shown is not None, f"typing {typed!r} did not show {name}"
    assert page.evaluate("document.querySelectorAll('.leaflet-overlay-pane path').length") == len(shown)
    assert page.console_errors == []


def test_detail_page_shows_the_record(chromium: Chromium, server_url: str, conn: sa.Connection) -> None:
    row = conn.execute(sa.text("SELECT p.id, p.name, p.history, s.id AS former_id, s.name AS former FROM place_names p "
                               "JOIN place_names s ON s.successor_id = p.id WHERE p.history IS NOT NULL "
                               "ORDER BY p.id LIMIT 1")).one()
    page = open_page(chromium, f"{server_url}/pages/placenames/{row.id}", server_url)
    text = page.evaluate("document.querySelector('main').innerText")
    assert row.name in text and row.history in text and row.former in text
    assert page.count(".leaflet-overlay-pane path") == 1


def test_boundary_page_offers_every_format_for_a_township(chromium: Chromium, server_url: str,
                                                         conn: sa.Connection) -> None:
    code = conn.execute(sa.text("SELECT code FROM admin_divisions WHERE level = 'township' AND valid_to IS NULL "
                                "ORDER BY code LIMIT 1")).scalar_one()
    page = open_page(chromium, server_url + "/pages/boundaries", server_url)
    links = page.evaluate(f"""(function () {{ var s = document.querySelector('select[name=township]');
        s.value = {json.dumps(code)}; s.dispatchEvent(new Event('change', {{bubbles: true}}));
        return Array.from(document.querySelectorAll('#formats a.download')).map(a => a.href); }})()""")
    assert links == [f"{server_url}/exports/boundaries?township={code}&format={f}" for f in FORMATS]
    statuses = page.evaluate("Promise.all(Array.from(document.querySelectorAll('#formats a.download'))"
                             ".map(a => fetch(a.href).then(r => r.status)))", timeout_s=120)
    assert statuses == [200] * len(FORMATS)


@pytest.mark.parametrize(("query", "where"), [
    ("condition=missing", "condition = 'missing'"),
    ("years=5", "coalesce(coalesce((SELECT max(inspected_on) FROM marker_inspections i WHERE i.marker_id = m.id), "
                "last_inspected) <= current_date - interval '5 years', true)"),
])
def test_marker_list_filters(chromium: Chromium, server_url: str, conn: sa.Connection, query: str,
                             where: str) -> None:
    expected = conn.execute(sa.text(f"SELECT count(*) FROM boundary_markers m WHERE {where}")).scalar_one()
    assert expected > 0
    page = open_page(chromium, f"{server_url}/pages/boundaries?{query}", server_url)
    assert page.count("tr.marker") == expected


def test_indicators_table_has_every_indicator(chromium: Chromium, server_url: str, client: TestClient) -> None:
    items = client.get("/analysis/indicators").json()["indicators"]
    page = open_page(chromium, server_url + "/pages/indicators", server_url)
    rows = page.evaluate("Array.from(document.querySelectorAll('tr.indicator')).map(r => r.innerText)")
    assert len(rows) == len(items)
    for row, item in zip(rows, items, strict=True):
        assert row.startswith(item["title_zh"])
        assert ("未达标" in row) == (item["met"] is False)
