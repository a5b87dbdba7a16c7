"""The bureau's pages (issue 13) in headless Chromium, served by a running service over the demo county.

Each page loads with no console error and asks nothing of any host but the service, and fits a 360 px phone;
typing pinyin initials or a former name in the 地名查询 box shows the place, its downloads hold as many rows as the
page counts, a click on a row flies there and a click on the map says what is there; 命名核查 finds 梅江路 clear with
warnings and refuses an existing township's name; the boundary page links a township's package in every export
format. With GIS_PAGES_SCREENSHOTS=1 the tests also write the README's screenshots (docs/pages/*.png).
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterator
from urllib.parse import parse_qs, parse_qsl, urlsplit

import httpx
import openpyxl
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from gis_service.io.boundary_export import FORMATS

from .harness.browser import Chromium, Page
from .harness.devserver import service
from .helpers import REPO, open_map, open_page, wait_in_page


@pytest.fixture(scope="module")
def server_url(engine: sa.Engine, database_url: str) -> Iterator[str]:
    with service(database_url, ready_path="/pages/placenames") as url:
        yield url


def screenshot(page: Page, name: str) -> None:
    """With GIS_PAGES_SCREENSHOTS set: the page as the README shows it (docs/pages/NAME.png)."""
    if os.environ.get("GIS_PAGES_SCREENSHOTS"):
        (REPO / "docs" / "pages").mkdir(parents=True, exist_ok=True)
        page.screenshot(REPO / "docs" / "pages" / f"{name}.png")


def type_in(page: Page, box: str, text: str) -> None:
    """Type ``text`` into the input ``box`` a character at a time, as a person types (an input event each)."""
    page.evaluate(f"""(function () {{ var box = document.getElementById({json.dumps(box)});
        var text = {json.dumps(text)};
        for (var i = 1; i <= text.length; i++) {{ box.value = text.slice(0, i);
            box.dispatchEvent(new Event('input', {{bubbles: true}})); }} }})()""")


def click_at(page: Page, x: float, y: float) -> None:
    """A real mouse click at (x, y) of the viewport (pointer events, as Leaflet listens for)."""
    for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
        page.send("Input.dispatchMouseEvent", {"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1})


PAGES = [("/", "民政地理信息服务", "portal"), ("/pages/placenames", "地名查询", None),
         ("/pages/naming-check", "命名核查", None), ("/pages/boundaries", "界线界桩", "boundaries"),
         ("/pages/indicators", "规划指标", "indicators")]


@pytest.mark.parametrize(("path", "heading", "shot"), PAGES)
def test_page_loads_without_errors_or_other_hosts(chromium: Chromium, server_url: str, path: str,
                                                  heading: str, shot: str | None) -> None:
    page = open_page(chromium, server_url + path, server_url)
    assert page.evaluate("document.querySelector('h1').innerText") == heading
    if shot:
        screenshot(page, shot)


@pytest.mark.parametrize(("path", "heading", "shot"), PAGES)
def test_page_fits_a_360_px_phone(phone: Chromium, server_url: str, path: str, heading: str,
                                  shot: str | None) -> None:
    page = open_page(phone, server_url + path, server_url)
    assert page.evaluate("document.documentElement.scrollWidth") <= 360, "wider than a 360 px phone"


def test_portal_links_the_pages_maps_layers_and_docs(chromium: Chromium, server_url: str) -> None:
    page = open_page(chromium, server_url + "/", server_url)
    links = page.evaluate("Array.from(document.querySelectorAll('main a')).map(a => a.getAttribute('href'))")
    assert links == ["/pages/placenames", "/pages/naming-check", "/pages/boundaries", "/pages/indicators", "/maps",
                     "/collections?f=html",
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
    type_in(page, "q", typed)
    shown = wait_in_page(page, f"""function () {{ var names = Array.from(document.querySelectorAll('#results li a'))
        .map(a => a.innerText); return names.indexOf({json.dumps(name)}) >= 0 ? names : null; }}""")
    assert shown is not None, f"typing {typed!r} did not show {name}"
    assert page.evaluate("document.querySelectorAll('.leaflet-overlay-pane path').length") == len(shown)
    assert page.console_errors == []


def test_detail_page_shows_the_record(chromium: Chromium, server_url: str, conn: sa.Connection) -> None:
    row = conn.execute(sa.text(
        "SELECT p.id, p.name, p.pinyin, p.meaning, p.origin, p.history, p.heritage_listed, t.name AS township, "
        "s.id AS former_id, s.name AS former FROM place_names p JOIN place_names s ON s.successor_id = p.id "
        "JOIN admin_divisions t ON t.code = left(p.division_code, 9) || '000' AND t.valid_to IS NULL "
        "WHERE p.history IS NOT NULL AND p.meaning IS NOT NULL AND p.origin IS NOT NULL ORDER BY p.id LIMIT 1")).one()
    page = open_page(chromium, f"{server_url}/pages/placenames/{row.id}", server_url)
    table = dict(page.evaluate("Array.from(document.querySelectorAll('#record tr'))"
                               ".map(r => [r.querySelector('th').innerText, r.querySelector('td').innerText])"))
    assert table["标准名称"] == row.name and table["罗马字母拼写"] == row.pinyin
    assert table["类别"] == "行政区划" and row.township in table["所属行政区划"]
    assert table["地名文化遗产"] == ("是" if row.heritage_listed else "否") and table["现名"] == "—"
    texts = dict(page.evaluate("Array.from(document.querySelectorAll('dt'))"
                               ".map(d => [d.innerText, d.nextElementSibling.innerText])"))
    assert (texts["含义"], texts["来历"], texts["历史沿革"]) == (row.meaning, row.origin, row.history)
    assert texts["曾用名"].startswith(row.former)
    assert page.count(".leaflet-overlay-pane path") == 1
    screenshot(page, "placename")
    former = open_page(chromium, f"{server_url}/pages/placenames/{row.former_id}", server_url)
    successor = former.evaluate("Array.from(document.querySelectorAll('#record tr')).filter(r => "
                                "r.querySelector('th').innerText === '现名').map(r => r.querySelector('a').href)")
    assert successor == [f"{server_url}/pages/placenames/{row.id}"]


def test_an_unknown_place_name_page_is_a_clear_404(client: TestClient) -> None:
    answer = client.get("/pages/placenames/999999999")
    assert answer.status_code == 404 and "999999999" in answer.json()["description"]


def search_on_page(page: Page, typed: str, *, category: str = "") -> dict:
    """Type into the 地名查询 box (with a category chosen) and wait for the list: the count shown, the names listed
    and the download links."""
    if category:
        page.evaluate(f"document.querySelector('select[name=category]').value = {json.dumps(category)}")
    type_in(page, "q", typed)
    return wait_in_page(page, f"""function () {{ var count = document.getElementById('count').innerText;
        var listed = Array.from(document.querySelectorAll('#results li a')).map(a => a.innerText);
        var links = Array.from(document.querySelectorAll('#export a.download')).map(a => a.href);
        return count && listed.length && links[0] && new URL(links[0]).searchParams.get('q') === {json.dumps(typed)}
               ? {{count: count, listed: listed, links: links}} : null; }}""")


def test_downloads_hold_every_match_the_page_counts(chromium: Chromium, server_url: str, client: TestClient) -> None:
    page = open_page(chromium, server_url + "/pages/placenames", server_url)
    shown = search_on_page(page, "sh", category="administrative")  # pinyin: 三合村, 双河村, 石堤镇 ...
    assert shown is not None, "no results for sh"
    expected = client.get("/placenames/search", params={"q": "sh", "category": "administrative",
                                                         "limit": 100}).json()["features"]
    assert shown["count"].startswith(f"共 {len(expected)} 条") and len(expected) > len(shown["listed"]) == 20
    assert shown["listed"] == [f["properties"]["name"] for f in expected[:20]]
    screenshot(page, "placenames")
    csv_link, xlsx_link = shown["links"]
    assert parse_qs(urlsplit(csv_link).query) == {"q": ["sh"], "category": ["administrative"], "status": ["current"],
                                                  "format": ["csv"]}
    answer = httpx.get(csv_link, timeout=60)
    assert answer.status_code == 200 and "attachment" in answer.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig"))))
    assert rows[0][:8] == ["标准名称", "罗马字母拼写", "类别", "所属行政区划", "地理位置", "含义", "来历", "历史沿革"]
    assert [r[0] for r in rows[1:]] == [f["properties"]["name"] for f in expected]
    assert {r[2] for r in rows[1:]} == {"行政区划"} and {r[8] for r in rows[1:]} == {"现行"}
    sheet = openpyxl.load_workbook(io.BytesIO(httpx.get(xlsx_link, timeout=60).content), read_only=True).active
    cells = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert cells[0] == rows[0] and len(cells) - 1 == len(expected)
    assert [c[0] for c in cells[1:]] == [r[0] for r in rows[1:]]


def test_contains_mode_counts_every_match_and_pages_through_them(chromium: Chromium, server_url: str,
                                                                 client: TestClient, conn: sa.Connection) -> None:
    total = conn.execute(sa.text("SELECT count(*) FROM place_names WHERE status = 'current' AND name LIKE '%村%'"))\
        .scalar_one()
    assert total > 100  # more than the ranked search answers: the count is the service's, not the list's
    page = open_page(chromium, server_url + "/pages/placenames", server_url)
    page.evaluate("document.querySelector('input[name=mode]').checked = true")
    shown = search_on_page(page, "村")
    assert shown is not None and shown["count"].startswith(f"共 {total} 条，每页 20 条")
    api = lambda offset: [f["properties"]["name"] for f in client.get("/placenames/search", params={  # noqa: E731
        "q": "村", "mode": "contains", "limit": 20, "offset": offset}).json()["features"]]
    assert shown["listed"] == api(0)
    pages = -(-total // 20)
    assert page.evaluate("document.getElementById('page-of').innerText") == f"第 1 / {pages} 页"
    page.evaluate("document.getElementById('next').click()")
    second = wait_in_page(page, """function () { return document.getElementById('page-of').innerText.startsWith('第 2')
        ? Array.from(document.querySelectorAll('#results li a')).map(a => a.innerText) : null; }""")
    assert second == api(20)
    assert page.evaluate("document.querySelectorAll('.leaflet-overlay-pane path').length") == 20
    csv_link = shown["links"][0]
    assert parse_qs(urlsplit(csv_link).query)["mode"] == ["contains"]
    rows = list(csv.reader(io.StringIO(httpx.get(csv_link, timeout=60).content.decode("utf-8-sig"))))
    assert len(rows) - 1 == total and all("村" in r[0] for r in rows[1:])
    assert page.console_errors == []


def test_export_refuses_bad_input_with_a_message(client: TestClient) -> None:
    answer = client.get("/pages/placenames/export", params={"q": "石堤", "format": "pdf"})
    assert answer.status_code == 400 and "format" in answer.json()["description"]
    answer = client.get("/pages/placenames/export", params={"q": "石堤", "division": "500241999000"})
    assert answer.status_code == 404 and "500241999000" in answer.json()["description"]


def test_a_row_flies_to_its_place_and_the_map_says_what_is_here(chromium: Chromium, server_url: str,
                                                                client: TestClient) -> None:
    page = open_page(chromium, server_url + "/pages/placenames", server_url)
    shown = search_on_page(page, "sdz")
    assert shown is not None and shown["listed"][0] == "石堤镇"
    page.evaluate("document.querySelector('#results li').click()")
    centred = wait_in_page(page, """function () {
        var box = document.getElementById('map').getBoundingClientRect();
        var tip = document.querySelector('.leaflet-tooltip');
        var near = Array.from(document.querySelectorAll('.leaflet-overlay-pane path')).some(function (p) {
          var r = p.getBoundingClientRect();
          return Math.abs(r.x + r.width / 2 - box.x - box.width / 2) < 3 &&
                 Math.abs(r.y + r.height / 2 - box.y - box.height / 2) < 3; });
        return near && tip && tip.innerText === '石堤镇' ? tip.innerText : null; }""")
    assert centred == "石堤镇", "the map did not fly to 石堤镇"
    box = page.evaluate("(function () { var r = document.getElementById('map').getBoundingClientRect();"
                        " return [r.x + r.width / 3, r.y + r.height / 3]; })()")
    click_at(page, *box)
    said = wait_in_page(page, "function () { var p = document.querySelector('.leaflet-popup-content .here');"
                          " return p ? p.innerText : null; }")
    asked = [u for u in page.requests if "/placenames/reverse?" in u]
    assert said is not None and len(asked) == 1
    point = {k: v[0] for k, v in parse_qs(urlsplit(asked[0]).query).items()}
    here = client.get("/placenames/reverse", params=point).json()
    assert here["township"]["name"] in said and here["village"]["name"] in said
    assert all(f["properties"]["name"] in said for f in here["nearest_place_names"]["features"])
    assert page.console_errors == []


def naming_check(page_url: str, chromium: Chromium, server_url: str, **asked: str) -> tuple[Page, dict]:
    page = open_page(chromium, f"{page_url}?{httpx.QueryParams(asked)}", server_url)
    shown = page.evaluate("""({verdict: document.getElementById('verdict').innerText,
        clear: document.getElementById('verdict').dataset.clear,
        clashes: Array.from(document.querySelectorAll('tr.clash')).map(r => ({
          name: r.querySelector('a').innerText, grade: r.querySelector('.grade').innerText,
          scope: r.querySelector('.scope').innerText, refused: r.classList.contains('refused'),
          rule: r.querySelector('.rule').innerText}))})""")
    return page, shown


def test_naming_check_page_finds_meijiang_road_clear_with_warnings(chromium: Chromium, server_url: str,
                                                                   client: TestClient) -> None:
    api = client.get("/placenames/check", params={"name": "梅江路"}).json()
    page, shown = naming_check(f"{server_url}/pages/naming-check", chromium, server_url, name="梅江路")
    assert shown["clear"] == "true" and "可以使用" in shown["verdict"]
    assert f"{api['warnings']} 条提示" in shown["verdict"]
    assert len(shown["clashes"]) == api["warnings"] > 0 and not any(c["refused"] for c in shown["clashes"])
    assert {c["grade"] for c in shown["clashes"]} == {"近似"}
    assert [c["name"] for c in shown["clashes"]] == [f["properties"]["name"] for f in api["clashes"]["features"]]
    assert all(c["rule"].startswith("近似名称") for c in shown["clashes"])


@pytest.mark.parametrize("name", ["梅江镇", "中和街道"])
def test_naming_check_page_refuses_an_existing_township_name(chromium: Chromium, server_url: str, name: str) -> None:
    page, shown = naming_check(f"{server_url}/pages/naming-check", chromium, server_url, name=name)
    assert shown["clear"] == "false" and f"{name}：不予通过" in shown["verdict"]
    first = shown["clashes"][0]
    assert (first["name"], first["grade"], first["scope"], first["refused"]) == (name, "同名", "本县", True)
    assert "第九条第一款第（八）项" in first["rule"] and "乡、镇名称不应重名" in first["rule"]
    if name == "梅江镇":
        screenshot(page, "naming-check")


@pytest.mark.parametrize(("asked", "status", "message"), [
    ({"name": "Meijiang Lu"}, 200, "输入有误：name must be the proposed standard name in Chinese characters"),
    ({"name": "梅江路", "division": "500241999000"}, 404, "not the code of any"),
    ({"name": "梅江路", "kind": "bridge"}, 400, "kind must be one of"),
])
def test_naming_check_page_says_what_is_wrong_with_the_input(client: TestClient, asked: dict, status: int,
                                                             message: str) -> None:
    """A name the check cannot take is said beside the form (which keeps it); a kind or division the form does
    not offer is refused as the API refuses it."""
    answer = client.get("/pages/naming-check", params=asked)
    assert answer.status_code == status
    if status == 200:
        assert message in answer.text and f'value="{asked["name"]}"' in answer.text and 'id="result"' not in answer.text
    else:
        assert message in answer.json()["description"]


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
    # the counts behind each, and the map that explains it
    circle = next(i for i, item in enumerate(items) if item["id"] == "fifteen_minute_elder_care_circle")
    households = items[circle]["counts"]["community_households"]
    assert f"城市社区户数 {households:,}" in rows[circle]
    links = page.evaluate("Array.from(document.querySelectorAll('tr.indicator')).map(r => "
                          "(r.querySelector('a[href*=\"/maps/\"]') || {}).href || null)")
    assert None not in links, "an indicator without its map"
    for link in {links[circle], next(u for u in links if "cemeteries" in u)}:
        path, _, query = link.removeprefix(server_url).partition("?")
        answer = open_map(client, path, dict(parse_qsl(query)))
        assert answer.status_code == 200, (link, answer.text[:300])
