"""Benchmark: how long each web map takes to open in headless Chromium, and how large each page is.

The demo county (scale 1) is loaded into a throwaway embedded cluster (or ``--database-url`` names a database that
already holds it); the service runs in a subprocess (uvicorn, one worker) on a free 127.0.0.1 port. For each map:

- served, first open: the first request after the server started, so the analyses (road network, coverage,
  service areas, site suggestions) are computed during it;
- served, warm: the median of ``--rounds`` further opens (analyses cached in the server, browser cache off);
- built: the single file from ``build_map(..., assets="inline")`` opened from disk (file://).

Time is from navigation start to two animation frames after the load event, by which Leaflet has added every layer
(the script checks that features of the map's layers are in the DOM). Sizes are the HTML page, the page plus
Leaflet's script and style sheet (what a served open transfers), and the built file. The target for the whole demo
county is under 3 s per map. Traffic stays on the loopback address.

Run: ``.venv/bin/python scripts/bench_maps.py [--rounds 3] [--database-url URL]``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import httpx
import sqlalchemy as sa
from _bench import demo_database

from gis_service.maps.builders import build_map
from gis_service.maps.recipes import MAP_NAMES, load_recipe
from gis_service.maps.render import LEAFLET_DIR
from tests.harness.browser import Chromium
from tests.harness.devserver import service

TARGET_MS = 3000


def open_ms(page, url: str, name: str) -> float:
    """Milliseconds from navigation start to the layers drawn; fails if a layer of the recipe drew nothing."""
    ms = page.goto(url, timeout_s=300)
    for layer in load_recipe(name).layers:
        if page.count(f".leaflet-pane .gis-{layer.key}") == 0:
            raise RuntimeError(f"{url}: layer {layer.key} drew nothing")
    if page.console_errors:
        raise RuntimeError(f"{url}: console errors {page.console_errors}")
    return ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="warm opens per map (median reported)")
    parser.add_argument("--database-url", help="a database that already holds the demo county")
    args = parser.parse_args()
    leaflet_bytes = sum((LEAFLET_DIR / f).stat().st_size for f in ("leaflet.js", "leaflet.css"))
    rows = []
    with demo_database(args.database_url) as url, \
            service(url, ready_path="/maps", GIS_MAP_BASEMAP="none") as service_url, Chromium() as browser, \
            tempfile.TemporaryDirectory(prefix="gis-maps-built-") as built_dir:
        page = browser.new_page()
        engine = sa.create_engine(url)
        for name in MAP_NAMES:
            page_url = f"{service_url}/maps/{name}"
            first = open_ms(page, page_url, name)
            warm = statistics.median(open_ms(page, page_url, name) for _ in range(max(args.rounds, 1)))
            served_bytes = len(httpx.get(page_url, timeout=120).content)
            started = time.perf_counter()
            with engine.connect() as conn:
                html = build_map(conn, name, assets="inline")
            build_s = time.perf_counter() - started
            path = Path(built_dir) / f"{name}.html"
            path.write_text(html, encoding="utf-8")
            built = statistics.median(open_ms(page, path.as_uri(), name) for _ in range(max(args.rounds, 1)))
            rows.append((name, first, warm, built, served_bytes, served_bytes + leaflet_bytes,
                         path.stat().st_size, build_s))
        engine.dispose()
    header = ("map", "first open ms", "warm open ms", "built open ms", "page bytes", "page+leaflet bytes",
              "built bytes", "build s")
    print(f"{header[0]:<18}" + "".join(f"{h:>20}" for h in header[1:]))
    for name, first, warm, built, served, total, built_bytes, build_s in rows:
        print(f"{name:<18}{first:>20,.0f}{warm:>20,.0f}{built:>20,.0f}{served:>20,}{total:>20,}{built_bytes:>20,}"
              f"{build_s:>20.2f}")
    worst = max(max(r[2], r[3]) for r in rows)
    print(f"\ntarget: every warm and built open under {TARGET_MS:,} ms: "
          f"{'met' if worst < TARGET_MS else 'NOT met'} (slowest {worst:,.0f} ms); first opens include computing "
          "the analyses in the server")


if __name__ == "__main__":
    main()
