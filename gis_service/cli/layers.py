"""``gis-service import|export|layers``: a file into a layer (every row checked, all rows written or none), a layer
or a selection of boundary lines out to a file, and the layers with their feature counts."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from gis_service.cli.common import console, database, out, progress_bar
from gis_service.errors import ImportRejected
from gis_service.settings import get_settings

app = typer.Typer()


@app.command("import")
def import_command(
    layer: Annotated[str, typer.Argument(help="Layer id, e.g. settlements (see `gis-service layers`).")],
    file: Annotated[Path, typer.Argument(help="GeoJSON, GeoPackage, Shapefile (.shp, folder or .zip) or CSV.")],
    crs: Annotated[str | None, typer.Option(help="CRS of the coordinates, e.g. EPSG:4545; overrides the file.")] = None,
    dry_run: Annotated[bool, typer.Option(help="Check every row but write nothing.")] = False,
) -> None:
    """Import a file into a layer: every row is checked, and all rows are written or none."""
    from gis_service.io.layers_io import import_file
    from gis_service.layers import get_layer

    get_layer(layer)
    settings = get_settings()
    started = time.perf_counter()
    with database(settings) as engine, progress_bar() as bar:
        task = bar.add_task(f"importing {file.name}", total=None)
        try:
            result, crs_note = import_file(engine, settings, layer, file, crs=crs, dry_run=dry_run,
                                           on_rows=lambda n: bar.advance(task, n))
        except ImportRejected:
            bar.stop()
            raise
    console.print(crs_note)
    verb = "checked (dry run, nothing written)" if dry_run else "imported"
    out.print(f"{verb}: {result.rows_read:,} rows into {layer} in {time.perf_counter() - started:.1f} s")


@app.command("export")
def export_command(
    layer: Annotated[str, typer.Argument(help="Layer id, e.g. boundary_markers; or `boundaries` for the "
                                        "inspectors' field package (with --line, --township or --neighbour).")],
    fmt: Annotated[str, typer.Option("--format", help="geojson (EPSG:4326), gpkg (EPSG:4490) or csv; for "
                                     "boundaries also kml, gpx and shp.")] = "geojson",
    out_path: Annotated[Path | None, typer.Option("--out", help="Output file (default: LAYER.FORMAT).")] = None,
    line: Annotated[str | None, typer.Option(help="boundaries: one line's code, e.g. 500241-500242.")] = None,
    township: Annotated[str | None, typer.Option(help="boundaries: a township's code (its lines).")] = None,
    neighbour: Annotated[str | None, typer.Option(help="boundaries: a neighbouring county's code.")] = None,
) -> None:
    """Write everything a layer holds to a file, or the boundary lines and markers of one selection."""
    from gis_service.io.layers_io import export_layer
    from gis_service.io.placenames_export import EXPORT_FORMATS, export_place_names
    from gis_service.layers import get_layer

    if layer == "boundaries":
        _export_boundaries(fmt, out_path, line=line, township=township, neighbour=neighbour)
        return
    layer = "place_names" if layer == "placenames" else layer
    if layer == "place_names" and fmt in EXPORT_FORMATS:  # the gazetteer, in the national database's field order
        with database(get_settings()) as engine:
            written, count = export_place_names(engine, out_path or Path(f"{layer}.{fmt}"), fmt=fmt)
        out.print(f"wrote {count:,} place names to {written}")
        return
    get_layer(layer)
    path = out_path or Path(f"{layer}.{fmt}")
    with database(get_settings()) as engine:
        written, count = export_layer(engine, layer, path, fmt=fmt)
    out.print(f"wrote {count:,} features to {written}")


def _export_boundaries(fmt: str, out_path: Path | None, **selection: str | None) -> None:
    from gis_service.io.boundary_export import Selection, export_boundaries

    chosen = Selection(**selection)
    settings = get_settings()
    with database(settings) as engine, engine.connect() as conn:
        content, _, filename = export_boundaries(conn, chosen, fmt=fmt, measure_srid=settings.measure_srid)
    path = out_path or Path(filename)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    out.print(f"wrote {path} ({len(content):,} bytes)")


@app.command("layers")
def layers_command() -> None:
    """List the layers with their feature counts."""
    from gis_service.io.load_demo import layer_counts
    from gis_service.layers import LAYERS

    with database(get_settings()) as engine, engine.connect() as conn:
        counts = layer_counts(conn)
    for layer in LAYERS.values():
        out.print(f"{layer.id:<20} {layer.title_zh:<12} {layer.geometry_type:<16} {counts[layer.id]:>9,}",
                  highlight=False)

