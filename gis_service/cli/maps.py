"""``gis-service map list | build NAME --out FILE.html``: the web maps as single, self-contained HTML files.

The file holds Leaflet, its style sheet and images inline: it opens from a shared drive or an e-mail with no
network at all (with the default basemap, none). Only typer and the shared helpers are imported here; folium and the
database are loaded by the command that needs them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gis_service.cli.common import database
from gis_service.settings import get_settings

app = typer.Typer(help="Web maps for planners: list them, or build one as a single HTML file.",
                  no_args_is_help=True)


@app.command("list")
def list_command() -> None:
    """The maps and what each shows."""
    from gis_service.maps.recipes import MAP_NAMES, load_recipe

    for name in MAP_NAMES:
        recipe = load_recipe(name)
        typer.echo(f"{name:18} {recipe.title_zh}：{recipe.description_zh}")


@app.command("build")
def build_command(
    name: Annotated[str, typer.Argument(help="overview, coverage, facility_area, boundaries or site_suggestions.")],
    out: Annotated[Path, typer.Option("--out", help="The file to write: .html (the interactive map), or .pdf or "
                                                    ".png (the print layout, drawn by headless Chromium).")],
    kind: Annotated[str | None, typer.Option(help="Coverage/sites: facility kind (the layer follows).")] = None,
    minutes: Annotated[float | None, typer.Option(help="Coverage/sites: time limit in minutes.")] = None,
    mode: Annotated[str | None, typer.Option(help="Coverage/sites: walk, cycle or drive.")] = None,
    layer: Annotated[str | None, typer.Option(help="Coverage/sites: elder_care, community_centres or "
                                                    "cemeteries.")] = None,
    k: Annotated[int | None, typer.Option(help="Sites: number of new sites.")] = None,
    county: Annotated[str | None, typer.Option(help="A county's 6-digit code: that county only, in a database "
                                                    "holding several.")] = None,
    service_url: Annotated[str, typer.Option(help="Base URL of the service for the export links of the "
                                                  "boundaries map, e.g. http://10.1.2.3:8000.")] = "",
    paper: Annotated[str, typer.Option(help="PDF/PNG: paper size, A4 or A3.")] = "A4",
    landscape: Annotated[bool, typer.Option("--landscape", help="PDF/PNG: landscape (default portrait).")] = False,
) -> None:
    """Write map NAME as one self-contained HTML file (the same map as /maps/NAME), or print it to PDF or PNG
    with the layout of the map's 打印 button (title, legend, scale bar, north arrow, date, 制图单位)."""
    from gis_service.analysis.network import check_county
    from gis_service.analysis.travel import AnalysisSettings
    from gis_service.errors import InvalidInputError
    from gis_service.maps.builders import MapParameters, build_map
    from gis_service.maps.printing import paper_mm, print_map
    from gis_service.maps.recipes import load_recipe

    load_recipe(name)
    suffix = out.suffix.lower()
    if suffix not in (".html", ".htm", ".pdf", ".png"):
        raise InvalidInputError(f"--out must end in .html, .pdf or .png; got {out.name}")
    paper_mm(paper, landscape)  # a bad paper is refused before any work
    settings = get_settings()
    base = service_url or f"http://{settings.host}:{settings.port}"
    with database(settings) as engine, engine.connect() as conn:
        county = check_county(county, conn)
        html = build_map(conn, name, params=MapParameters(layer=layer, kind=kind, minutes=minutes, mode=mode, k=k,
                                                          county=county),
                         measure_srid=settings.measure_srid, analysis_settings=AnalysisSettings(),
                         basemap=settings.map_basemap, tianditu_key=settings.tianditu_key, assets="inline",
                         service_url=base, tile_url=settings.map_tile_url,
                         tile_attribution=settings.map_tile_attribution, organisation=settings.map_organisation)
        conn.commit()  # the analyses may have (re)built the road network: keep it for the next command
    if suffix in (".pdf", ".png"):
        written = print_map(html, out, paper=paper, landscape=landscape)
        typer.echo(f"wrote {out} ({written:,} bytes, {paper.upper()} {'landscape' if landscape else 'portrait'})")
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    typer.echo(f"wrote {out} ({len(html.encode('utf-8')):,} bytes)")
