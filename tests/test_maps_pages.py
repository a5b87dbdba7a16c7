"""The web maps as HTML: recipes, the /maps routes, parameters, basemaps, escaping and the single-file build.

The browser tests (tests/test_maps_browser.py) check what is drawn; these check what is sent.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from gis_service.errors import InvalidInputError
from gis_service.maps.builders import MapParameters, build_map
from gis_service.maps.recipes import MAP_NAMES, UnknownMapError, load_recipe
from gis_service.maps.render import LEAFLET_DIR

from .helpers import open_map

#: attributes that make a browser fetch something: none of them may name another host
FETCHING = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']|url\(\s*["']?([^"')]+)""", re.I)


def fetched_urls(html: str) -> list[str]:
    """Every URL the page would fetch by itself (scripts, styles, images, icons), not the links a user clicks."""
    html = re.sub(r"<script>.*?</script>", "<script></script>", html, flags=re.S)  # inline code is not markup
    urls = []
    for match in FETCHING.finditer(html):
        url = match.group(1) or match.group(2)
        start = html.rfind("<", 0, match.start())
        if html[start:start + 2].lower() == "<a":  # a link: fetched only when clicked
            continue
        urls.append(url)
    return urls


def in_page(text: str) -> str:
    """``text`` as folium writes it inside the page's data (HTML-safe ASCII JSON)."""
    return (json.dumps(text)[1:-1].replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("'", "\\u0027"))


def test_every_map_has_a_recipe_with_chinese_titles() -> None:
    for name in MAP_NAMES:
        recipe = load_recipe(name)
        assert re.search(r"[\u4e00-\u9fff]", recipe.title_zh)
        assert recipe.layers and all(re.search(r"[\u4e00-\u9fff]", layer.title_zh) for layer in recipe.layers)
    with pytest.raises(UnknownMapError, match="the maps are: overview"):
        load_recipe("nowhere")


def test_index_lists_every_map(client) -> None:
    page = client.get("/maps")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for name in MAP_NAMES:
        assert f'href="maps/{name}"' in page.text
        assert load_recipe(name).title_zh in page.text


def test_unknown_map_is_404_naming_the_maps(client) -> None:
    answer = client.get("/maps/nowhere")
    assert answer.status_code == 404
    assert "overview" in answer.json()["description"]


def test_static_assets_are_served_and_confined(client) -> None:
    script = client.get("/maps/static/leaflet/leaflet.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert script.content == (LEAFLET_DIR / "leaflet.js").read_bytes()
    assert 'version="1.9.3"' in script.text  # the Leaflet folium 0.20 expects
    assert client.get("/maps/static/leaflet/images/layers.png").headers["content-type"] == "image/png"
    assert client.get("/maps/static/../recipes.py").status_code == 404
    assert client.get("/maps/static/%2e%2e/recipes.py").status_code == 404
    assert client.get("/maps/static/leaflet/nothing.js").status_code == 404


@pytest.mark.parametrize("name", MAP_NAMES)
def test_served_page_fetches_only_from_the_service(client, name: str) -> None:
    page = open_map(client, f"/maps/{name}")
    assert page.status_code == 200, page.text
    html = page.text
    urls = fetched_urls(html)
    assert "static/leaflet/leaflet.js" in urls and "static/leaflet/leaflet.css" in urls
    outside = [u for u in urls if re.match(r"^(?:[a-z]+:)?//", u, re.I)]
    assert outside == [], f"the page would fetch from other hosts: {outside}"
    assert "cdn.jsdelivr" not in html and "bootstrap" not in html.lower() and "font-awesome" not in html.lower()
    assert '<html lang="zh-CN">' in html and "图例" in html


def test_overview_popups_and_tooltips_say_what_a_planner_asks(conn: sa.Connection) -> None:
    html = build_map(conn, "overview")
    # facility popups: name, kind, beds, operator in Chinese; the legend sums beds per kind
    for label in ("床位", "护理型床位", "运营方式", "建筑面积（平方米）", "社会福利机构", "农村幸福院", "张床位"):
        assert label in html
    beds = conn.execute(sa.text("SELECT sum(beds) FROM elder_care WHERE status <> 'closed' "
                                "AND kind = 'welfare_institution'")).scalar_one()
    assert "社会福利机构：" in html and f"{beds:,} 张床位" in html
    name = conn.execute(sa.text("SELECT name FROM elder_care ORDER BY id LIMIT 1")).scalar_one()
    assert in_page(name) in html


def test_coverage_parameters_come_from_the_query_string(client, conn: sa.Connection) -> None:
    page = open_map(client, "/maps/coverage", {"kind": "rural_happiness_home", "minutes": 20, "mode": "cycle"})
    assert page.status_code == 200, page.text
    assert "农村幸福院" in page.text and "骑行 20 分钟" in page.text
    from gis_service.analysis.coverage import coverage

    answer = coverage(conn, layer="elder_care", kind="rural_happiness_home", minutes=20, mode="cycle",
                      group_by="county")
    totals = answer["totals"]
    assert f"户数覆盖率 {totals['coverage_percent']:.1f}%" in page.text
    assert f"已覆盖 {totals['served_households']:,} 户" in page.text
    cemeteries = open_map(client, "/maps/coverage", {"kind": "public_welfare_cemetery", "mode": "drive"})
    assert cemeteries.status_code == 200 and "殡葬设施·公益性公墓；驾车 15 分钟" in cemeteries.text
    centres = open_map(client, "/maps/coverage", {"layer": "community_centres"})
    assert centres.status_code == 200 and "城乡社区综合服务设施；步行" in centres.text
    assert client.get("/maps/coverage", params={"minutes": 500}).status_code == 400
    assert client.get("/maps/coverage", params={"kind": "spaceship"}).status_code == 400
    assert client.get("/maps/coverage", params={"mode": "fly"}).status_code == 400
    # the parameters are checked on every map, also where they change nothing (the overview draws no travel)
    assert client.get("/maps/overview", params={"mode": "fly"}).status_code == 400


def test_floor_area_map_states_the_target_and_shortfall(conn: sa.Connection) -> None:
    from gis_service.analysis.facility_area import facility_area

    totals = facility_area(conn, level="village")["totals"]
    html = build_map(conn, "facility_area")
    assert "每百户不少于 30 平方米" in html
    assert f"未达标 {totals['units_below_target']} 个" in html and f"缺口合计 {totals['shortfall_m2']:,.0f}" in html


def test_boundary_popups_link_to_the_export_of_their_line(client, conn: sa.Connection) -> None:
    html = open_map(client, "/maps/boundaries").text
    code = conn.execute(sa.text("SELECT code FROM boundary_lines ORDER BY code LIMIT 1")).scalar_one()
    assert in_page(f'href="../exports/boundaries?line={code}&amp;format=gpx"') in html
    exported = client.get(f"/exports/boundaries?line={code}&format=geojson")
    assert exported.status_code == 200 and code in exported.text


def test_names_are_escaped_and_never_read_as_templates(conn: sa.Connection) -> None:
    conn.execute(sa.text("UPDATE elder_care SET name = :name WHERE id = (SELECT min(id) FROM elder_care)"),
                 {"name": "<script>alert(1)</script>{{ 'tmpl' ~ 'evaluated' }}院"})
    html = build_map(conn, "overview")
    assert "<script>alert(1)" not in html and "tmplevaluated" not in html
    assert in_page("&lt;script&gt;alert(1)&lt;/script&gt;&#123;&#123; &#x27;tmpl&#x27; ~ &#x27;evaluated&#x27; "
                   "&#125;&#125;院") in html


def test_amap_basemap_moves_the_overlays_to_gcj02(conn: sa.Connection) -> None:
    from gis_service.geo.gcj02 import wgs84_to_gcj02

    plain = build_map(conn, "boundaries")
    amap = build_map(conn, "boundaries", basemap="amap")
    assert "autonavi.com" in amap and "autonavi.com" not in plain
    lon, lat = conn.execute(sa.text("SELECT round(ST_X(geom)::numeric, 6)::float, round(ST_Y(geom)::numeric, 6)"
                                    "::float FROM boundary_markers ORDER BY number LIMIT 1")).one()
    assert f"[{lon}, {lat}]" in plain
    glon, glat = wgs84_to_gcj02(lon, lat)
    assert f"[{round(glon, 7)}, {round(glat, 7)}]" in amap and f"[{lon}, {lat}]" not in amap


def test_tianditu_needs_a_key(conn: sa.Connection) -> None:
    with pytest.raises(InvalidInputError, match="GIS_TIANDITU_KEY"):
        build_map(conn, "boundaries", basemap="tianditu")
    html = build_map(conn, "boundaries", basemap="tianditu", tianditu_key="abc123")
    assert "tianditu.gov.cn/vec_w/wmts" in html and "tk=abc123" in html
    with pytest.raises(InvalidInputError, match="GIS_MAP_BASEMAP"):
        build_map(conn, "boundaries", basemap="google")


def test_kind_without_layer_picks_the_layer() -> None:
    recipe = load_recipe("coverage")
    assert MapParameters(kind="public_welfare_cemetery").resolved(recipe).layer == "cemeteries"
    assert MapParameters().resolved(recipe) == MapParameters(layer="elder_care", kind=None, minutes=15.0,
                                                            mode="walk", k=5)
    with pytest.raises(InvalidInputError, match="kind must be one of"):
        MapParameters(kind="spaceship").resolved(recipe)


def test_cli_builds_a_self_contained_file(engine, database_url: str, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from gis_service.cli import app

    monkeypatch.setenv("GIS_DATABASE_URL", database_url)
    monkeypatch.setenv("GIS_LOAD_DEMO", "false")
    out = tmp_path / "maps" / "boundaries.html"
    result = CliRunner().invoke(app, ["map", "build", "boundaries", "--out", str(out),
                                      "--service-url", "http://10.0.0.5:8000"])
    assert result.exit_code == 0, result.output
    html = out.read_text(encoding="utf-8")
    # nothing to fetch at all: images are data: URIs, and "#default#VML" is an old IE behaviour in leaflet.css
    assert [u for u in fetched_urls(html) if not u.startswith(("data:", "#"))] == []
    assert "L.version" in html or 't.version="1.9.3"' in html  # Leaflet itself is inside
    assert in_page('href="http://10.0.0.5:8000/exports/boundaries?line=') in html
    bad = CliRunner().invoke(app, ["map", "build", "boundaries", "--out", str(tmp_path / "x.svg")])
    assert bad.exit_code != 0


def test_a_map_not_ready_at_once_says_what_is_computed_and_opens_when_ready(client_with) -> None:
    client = client_with(map_wait_s=0)  # no wait: the first answer is the page saying what is computed
    params = {"mode": "cycle", "minutes": 24}
    first = client.get("/maps/coverage", params=params)
    assert first.status_code == 202 and first.headers["Retry-After"] == "1"
    assert first.headers["Cache-Control"] == "no-store"
    assert '<meta http-equiv="refresh" content="1">' in first.text and "正在计算…" in first.text
    for words in ("骑行24分钟生活圈覆盖（养老服务设施）", "<dt>方式</dt><dd>骑行</dd>", "<dt>时间</dt><dd>24 分钟</dd>",
                  "<dt>设施</dt><dd>养老服务设施</dd>", "当前步骤："):
        assert words in first.text
    assert '<html lang="zh-CN">' in first.text and fetched_urls(first.text) == ["data:,"]  # nothing to fetch
    again = client.get("/maps/coverage", params=params)  # asked again while it computes: the same computation
    assert again.status_code in (200, 202) and len(client.app.state.map_jobs) <= 1
    page = open_map(client, "/maps/coverage", params)
    assert page.status_code == 200, page.text
    assert "<title>骑行24分钟生活圈覆盖（养老服务设施）</title>" in page.text and "处设施可达的范围" in page.text
    # the job is forgotten once done (its page may be served from the cache a moment before the job's loop ends)
    deadline = time.monotonic() + 10
    while len(client.app.state.map_jobs) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(client.app.state.map_jobs) == 0
    assert client.get("/maps/coverage", params=params).status_code == 200  # kept: no wait at all


def test_a_map_waits_for_its_turn_among_the_analyses(client_with) -> None:
    client = client_with(analysis_queue=0)  # no analysis may wait for a turn
    # (on a busy machine the network check may outlast GIS_MAP_WAIT_S: then 正在计算… first, asking again)
    answer = open_map(client, "/maps/coverage", {"mode": "cycle", "minutes": 23})
    assert answer.status_code == 503 and answer.headers["Retry-After"] == "5"
    assert "等候其他计算完成" in answer.text and "骑行23分钟生活圈覆盖" in answer.text
    assert '<meta http-equiv="refresh" content="5">' in answer.text
    assert client.app.state.analysis_turns.idle and len(client.app.state.map_jobs) == 0
