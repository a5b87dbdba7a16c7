"""The layer browser (issue 13, item 6): the OGC API's HTML pages in Chinese, and /docs and /redoc offline (item 7).

Over HTTP: JSON stays the default for clients; f=html, or a browser's Accept, gets the page; codes are shown by
their Chinese labels from the layer registry. In headless Chromium (no request to another host, no console error):
the items page's table and map, a feature's page, the queryables table, the documentation pages.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from html import unescape
from urllib.parse import parse_qs, urlsplit

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from gis_service.io.labels import NO, YES
from gis_service.layers import LAYERS, get_layer

from .harness.browser import Chromium
from .harness.devserver import service
from .helpers import bearer, open_page, station, wait_in_page

BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
#: The resources with a page, and what a client gets from each by default.
RESOURCES = [("/collections", "application/json"), ("/collections/elder_care", "application/json"),
             ("/collections/elder_care/items?limit=3", "application/geo+json"),
             ("/collections/elder_care/items/1", "application/geo+json"),
             ("/collections/elder_care/queryables", "application/schema+json"),
             ("/conformance", "application/json")]


def _cells(html: str, css_class: str) -> list[list[str]]:
    """The text of each cell of the rows of class ``css_class`` (tags stripped)."""
    rows = re.findall(rf'<tr class="{css_class}">(.*?)</tr>', html, flags=re.S)
    return [[re.sub(r"<[^>]+>", "", cell) for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, flags=re.S)]
            for row in rows]


def _embedded(html: str) -> dict:
    """The GeoJSON a page embeds for its map."""
    return json.loads(re.search(r'<script type="application/geo\+json" id="features">(.*?)</script>', html,
                                flags=re.S).group(1))


@pytest.mark.parametrize(("path", "media"), RESOURCES)
@pytest.mark.parametrize("accept", [None, "application/json", "*/*", "text/html;q=0.5, application/json"])
def test_clients_get_json_by_default(client: TestClient, path: str, media: str, accept: str | None) -> None:
    answer = client.get(path, headers={"Accept": accept} if accept else {})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith(media)
    assert "Accept" in answer.headers["vary"]


@pytest.mark.parametrize(("path", "media"), RESOURCES)
@pytest.mark.parametrize("how", ["f=html", "Accept"])
def test_a_browser_gets_the_page(client: TestClient, path: str, media: str, how: str) -> None:
    if how == "f=html":
        answer = client.get(path + ("&" if "?" in path else "?") + "f=html")
    else:
        answer = client.get(path, headers={"Accept": BROWSER})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    assert '<html lang="zh-CN">' in answer.text
    assert client.get(path, headers={"Accept": BROWSER}, params={"f": "json"}).headers["content-type"].startswith(
        media)


def test_the_items_page_shows_chinese_headings_and_labels(client: TestClient, conn: sa.Connection) -> None:
    layer = get_layer("elder_care")
    rows = conn.execute(sa.text("SELECT id, name, kind, operator, comprehensive FROM elder_care ORDER BY id "
                                "LIMIT 20")).all()
    html = client.get("/collections/elder_care/items", params={"f": "html", "limit": 20}).text
    headings = re.findall(r"<th>(.*?)</th>", html.split('class="features"')[1].split("</tr>")[0])
    assert headings == ["编号", *(f.title_zh for f in layer.fields)]
    shown = _cells(html, "feature")
    by_id = {int(cells[0]): dict(zip(headings, cells, strict=True)) for cells in shown}
    for row in rows:
        cells = by_id[row.id]
        assert cells["名称"] == row.name
        assert cells["类型"] == layer.field_named("kind").label_of(row.kind) != row.kind
        assert cells["运营方式"] == layer.field_named("operator").label_of(row.operator)
        assert cells["综合功能"] == (YES if row.comprehensive else NO)
    codes = {v.code for spec in layer.fields for v in spec.values or () if v.code != v.label_zh}
    texts = {cell for cells in shown for cell in cells}
    assert len(shown) == 20 and not texts & ({"True", "False"} | codes)
    assert f'href="http://testserver/collections/elder_care/items/{rows[0].id}?f=html"' in html


def test_a_reference_links_to_what_it_names(client: TestClient, conn: sa.Connection) -> None:
    marker_id, line = conn.execute(sa.text("SELECT id, line_code FROM boundary_markers ORDER BY id LIMIT 1")).one()
    html = client.get(f"/collections/boundary_markers/items/{marker_id}", params={"f": "html"}).text
    assert f'<a href="http://testserver/collections/boundary_lines/items?code={line}&amp;f=html">{line}</a>' in html
    lines = client.get(f"/collections/boundary_lines/items?code={line}&f=json").json()
    assert [f["properties"]["code"] for f in lines["features"]] == [line]


def test_paging_links_follow_the_pages_own(client: TestClient) -> None:
    matched = client.get("/collections/place_names/items", params={"limit": 1}).json()["numberMatched"]
    html = client.get("/collections/place_names/items", params={"limit": 10, "offset": 10, "f": "html"}).text
    assert f"共 {matched:,} 个要素，本页第 11–20 个" in html
    paging = {rel: parse_qs(urlsplit(unescape(href)).query)
              for rel, href in re.findall(r'<a rel="(next|prev)" href="([^"]+)"', html)}
    assert paging == {"prev": {"f": ["html"], "offset": ["0"], "limit": ["10"]},
                      "next": {"f": ["html"], "offset": ["20"], "limit": ["10"]}}
    following = client.get("/collections/place_names/items", params={k: v[0] for k, v in paging["next"].items()})
    assert "本页第 21–30 个" in following.text


def test_the_page_reads_its_features_in_longitude_latitude_whatever_crs_says(client: TestClient) -> None:
    params = {"f": "html", "limit": 2, "crs": "http://www.opengis.net/def/crs/EPSG/0/4490"}
    answer = client.get("/collections/elder_care/items", params=params)
    data = _embedded(answer.text)
    as_crs84 = client.get("/collections/elder_care/items", params={"limit": 2}).json()
    assert [f["geometry"] for f in data["features"]] == [f["geometry"] for f in as_crs84["features"]]
    assert answer.headers["content-crs"] == "<http://www.opengis.net/def/crs/OGC/1.3/CRS84>"
    assert "crs=http" in re.search(r'<a href="([^"]+)">GeoJSON</a>', answer.text).group(1)


def test_a_property_cannot_close_the_embedded_geojson(client: TestClient, tokens: dict[str, str]) -> None:
    answer = client.post("/collections/elder_care/items", json=station("</script><script>alert(1)</script>"),
                         headers=bearer(tokens["planner"]))
    assert answer.status_code == 201, answer.text
    fid = answer.json()["id"]
    html = client.get(f"/collections/elder_care/items/{fid}", params={"f": "html"}).text
    assert html.count("</script>") == 3  # leaflet.js, layer-map.js, the GeoJSON block; none from the name
    assert _embedded(html)["features"][0]["properties"]["name"] == "</script><script>alert(1)</script>"


def test_queryables_page_is_a_table_of_every_queryable(client: TestClient) -> None:
    layer = get_layer("elder_care")
    answer = client.get("/collections/elder_care/queryables", params={"f": "html"})
    assert answer.status_code == 200
    rows = _cells(answer.text, "queryable")
    assert [r[0] for r in rows] == ["geometry", "id", *layer.field_names]
    kind = next(r for r in rows if r[0] == "kind")
    assert kind[1] == "类型" and kind[2] == "文本"
    assert all(f"{v.code}（{v.label_zh}）" in kind[3] for v in layer.field_named("kind").values)


@pytest.mark.parametrize("path", ["/collections", "/collections/elder_care/items/1", "/collections/roads/queryables"])
def test_an_unknown_format_is_still_refused(client: TestClient, path: str) -> None:
    answer = client.get(path, params={"f": "xml"}, headers={"Accept": BROWSER})
    assert answer.status_code == 400 and "f must be" in answer.json()["description"]


def test_the_collections_page_lists_every_layer_in_chinese(client: TestClient) -> None:
    html = client.get("/collections", headers={"Accept": BROWSER}).text
    assert re.findall(r'<tr class="layer"><td><a href="([^"]+)">([^<]+)</a>', html) == [
        (f"http://testserver/collections/{layer.id}?f=html", layer.title_zh) for layer in LAYERS.values()]


# -- in the browser ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def server_url(engine: sa.Engine, database_url: str) -> Iterator[str]:
    with service(database_url, ready_path="/collections") as url:
        yield url


#: JavaScript: the drawn features of the preview map (SVG paths of Leaflet's overlay pane).
DRAWN = "document.querySelectorAll('#map .leaflet-overlay-pane path').length"


def test_the_items_page_in_the_browser(chromium: Chromium, server_url: str, conn: sa.Connection) -> None:
    layer = get_layer("elder_care")
    kinds = dict(conn.execute(sa.text("SELECT id, kind FROM elder_care ORDER BY id LIMIT 50")).all())
    page = open_page(chromium, f"{server_url}/collections/elder_care/items?limit=50", server_url)
    assert page.evaluate("document.querySelector('h1').innerText") == layer.title_zh
    headings = page.evaluate("Array.from(document.querySelectorAll('table.features th')).map(t => t.innerText)")
    assert headings[:4] == ["编号", "名称", "类型", "床位"]
    rows = page.evaluate("Array.from(document.querySelectorAll('tr.feature')).map(r => "
                         "Array.from(r.cells).map(c => c.innerText))")
    assert {int(r[0]): r[2] for r in rows} == {i: layer.field_named("kind").label_of(k) for i, k in kinds.items()}
    assert wait_in_page(page, f"function () {{ return {DRAWN} === {len(kinds)}; }}")
    link = page.evaluate("document.querySelector('tr.feature a').href")
    assert link == f"{server_url}/collections/elder_care/items/{min(kinds)}?f=html"
    following = urlsplit(page.evaluate("document.querySelector('a[rel=next]').href"))
    assert (following.path, parse_qs(following.query)) == ("/collections/elder_care/items",
                                                           {"limit": ["50"], "offset": ["50"]})


def test_the_items_page_fits_a_phone(chromium: Chromium, server_url: str) -> None:
    page = chromium.new_page()
    page.send("Emulation.setDeviceMetricsOverride", {"width": 360, "height": 740, "deviceScaleFactor": 2,
                                                     "mobile": True})
    page.goto(f"{server_url}/collections/place_names/items?f=html&limit=20", timeout_s=180)
    assert page.console_errors == []
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    assert page.evaluate("document.getElementById('map').getBoundingClientRect().width") > 300
    assert wait_in_page(page, f"function () {{ return {DRAWN} === 20; }}")


def test_a_feature_page_shows_its_map_and_links(chromium: Chromium, server_url: str, conn: sa.Connection) -> None:
    row = conn.execute(sa.text("SELECT id, number, line_code, condition FROM boundary_markers ORDER BY id LIMIT 1")
                       ).one()
    layer = get_layer("boundary_markers")
    page = open_page(chromium, f"{server_url}/collections/boundary_markers/items/{row.id}", server_url)
    assert page.evaluate("document.querySelector('h1').innerText") == row.number
    fields = dict(page.evaluate("Array.from(document.querySelectorAll('table.fields tr')).map(r => "
                                "[r.cells[0].innerText, r.cells[1].innerText])"))
    assert fields["状况"] == layer.field_named("condition").label_of(row.condition)
    assert wait_in_page(page, f"function () {{ return {DRAWN} === 1; }}")
    links = page.evaluate("Array.from(document.querySelectorAll('main a')).map(a => [a.innerText, a.href])")
    hrefs = dict(links)
    assert hrefs[row.line_code] == f"{server_url}/collections/boundary_lines/items?code={row.line_code}&f=html"
    assert hrefs["GeoJSON"] == f"{server_url}/collections/boundary_markers/items/{row.id}?f=json"
    assert hrefs["界桩的全部要素"] == f"{server_url}/collections/boundary_markers/items?f=html"


def test_the_queryables_page_in_the_browser(chromium: Chromium, server_url: str) -> None:
    page = open_page(chromium, f"{server_url}/collections/roads/queryables?f=html", server_url)
    names = page.evaluate("Array.from(document.querySelectorAll('tr.queryable td:first-child')).map(c => c.innerText)")
    assert names == ["geometry", "id", *get_layer("roads").field_names]


def _operations(document: dict) -> list[tuple[str, str]]:
    return [(method.upper(), path) for path, item in document["paths"].items() for method in item
            if method in ("get", "put", "post", "delete", "patch", "options", "head")]


def test_swagger_ui_lists_every_operation_offline(chromium: Chromium, server_url: str, client: TestClient) -> None:
    operations = _operations(client.get("/openapi.json").json())
    page = open_page(chromium, f"{server_url}/docs", server_url)
    shown = wait_in_page(page, f"""function () {{ var blocks = document.querySelectorAll('.opblock-summary');
        return blocks.length >= {len(operations)} ? Array.from(blocks).map(b =>
            [b.querySelector('.opblock-summary-method').innerText,
             b.querySelector('.opblock-summary-path').getAttribute('data-path')]) : null; }}""", seconds=60)
    assert shown is not None, "Swagger UI did not render the operations"
    assert sorted(map(tuple, shown)) == sorted(operations)
    summaries = page.evaluate("Array.from(document.querySelectorAll('.opblock-summary-description'))"
                              ".map(d => d.innerText)")
    assert "Features of a layer" in summaries
    assert page.console_errors == []


def test_redoc_renders_offline(chromium: Chromium, server_url: str, client: TestClient) -> None:
    operations = _operations(client.get("/openapi.json").json())
    page = open_page(chromium, f"{server_url}/redoc", server_url)
    count = wait_in_page(page, f"""function () {{ var n = document.querySelectorAll(
        '[data-section-id*="operation/"]').length; return n >= {len(operations)} ? n : null; }}""", seconds=90)
    assert count is not None, "ReDoc did not render the operations"
    assert "Features of a layer" in page.evaluate("document.body.innerText")
    assert page.console_errors == [] and page.failed == []
