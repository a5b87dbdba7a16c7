"""The README's screenshots of the web maps (docs/maps/*.png), taken in headless Chromium from the built files.

Each map is built as a single file (``build_map(..., assets="inline")``, the demo county at scale 1, a throwaway
database unless ``--database-url`` names one) and opened from disk; the printed coverage map is its print layout
(``#print``, as ``gis-service map build coverage --out FILE.png --landscape`` draws it) on A4 landscape. Pages are
captured at fewer device pixels than CSS pixels (``--scale``), which keeps each PNG to a few hundred KB with the names
still readable.

Run: ``.venv/bin/python scripts/map_screenshots.py [--database-url URL] [--out docs/maps]``.
"""

from __future__ import annotations

import argparse
import base64
import tempfile
from pathlib import Path

import sqlalchemy as sa
from _bench import REPO, demo_database

from gis_service.maps.builders import build_map
from gis_service.maps.printing import MARGIN_MM, PX_PER_MM
from tests.harness.browser import Chromium

#: (file, map, zoom to set after opening or None, centre [lat, lon] at that zoom)
SHOTS = [("overview.png", "overview", None, None), ("coverage.png", "coverage", None, None),
         ("coverage-zoom12.png", "coverage", 12, [28.447, 108.99]),
         ("site_suggestions.png", "site_suggestions", None, None)]
#: The printable area of A4 landscape, CSS pixels (as gis_service.maps.printing lays it out).
A4_LANDSCAPE = (round((297 - 2 * MARGIN_MM) * PX_PER_MM), round((210 - 2 * MARGIN_MM) * PX_PER_MM))
MAP_JS = "window[document.querySelector('.folium-map').id]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", help="a database that already holds the demo county")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "maps")
    parser.add_argument("--scale", type=float, default=0.7, help="device pixels per CSS pixel")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with demo_database(args.database_url) as url, Chromium() as browser, \
            tempfile.TemporaryDirectory(prefix="gis-map-shots-") as folder:
        engine = sa.create_engine(url)
        page = browser.new_page()

        def shot(file: str, url: str, size: tuple[int, int], *, zoom: int | None = None, centre=None) -> None:
            page.send("Emulation.setDeviceMetricsOverride", {"width": size[0], "height": size[1],
                                                             "deviceScaleFactor": args.scale, "mobile": False})
            page.goto(url)
            if zoom is not None:
                page.evaluate(f"{MAP_JS}.setView({centre}, {zoom}, {{animate: false}}) && true")
            page.evaluate("new Promise(function (r) { setTimeout(r, 500); })")  # the labels' collision pass
            png = base64.b64decode(page.send("Page.captureScreenshot", {"format": "png"})["data"])
            (args.out / file).write_bytes(png)
            print(f"{file}: {len(png):,} bytes")

        with engine.connect() as conn:
            for file, name, zoom, centre in SHOTS:
                path = Path(folder) / f"{name}.html"
                path.write_text(build_map(conn, name, assets="inline", organisation="秀山县民政局"), encoding="utf-8")
                shot(file, path.as_uri(), (browser.width, browser.height), zoom=zoom, centre=centre)
        shot("coverage-print-a4.png", (Path(folder) / "coverage.html").as_uri() + "#print", A4_LANDSCAPE)
        engine.dispose()


if __name__ == "__main__":
    main()
