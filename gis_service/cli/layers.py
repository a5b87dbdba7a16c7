"""``gis-service import|export|layers``: a file into a layer (every row checked, all rows written or none), a layer
or a selection of boundary lines out to a file, and the layers with their feature counts."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from gis_service.cli.common import console, database, out, progress_bar
from gis_service.errors import ImportRejected, InvalidInputError
from gis_service.settings import get_settings

app = typer.Typer()


@app.command("import")
def import_command(
    layer: Annotated[str, typer.Argument(help="Layer id, e.g. settlements (see `gis-service layers`), or "
                                        "marker_inspections for inspectors' field records.")],
    file: Annotated[Path, typer.Argument(help="GeoJSON, GeoPackage, Shapefile (.shp, folder or .zip), CSV or XLSX "
                                         "(marker_inspections: CSV, XLSX, GPX or GeoJSON).")],
    crs: Annotated[str | None, typer.Option(help="CRS of the coordinates, e.g. EPSG:4545; overrides the file.")] = None,
    encoding: Annotated[str | None, typer.Option(help="Text encoding of a CSV or a Shapefile's DBF, e.g. gbk, "
                                                 "utf-8, big5; overrides the .cpg and the DBF header (default: "
                                                 "decided from them, else UTF-8, else GB18030).")] = None,
    sheet: Annotated[str | None, typer.Option(help="XLSX: the sheet to read (default: the first).")] = None,
    header_row: Annotated[int | None, typer.Option(min=1, help="XLSX: the row holding the column names, as Excel "
                                                   "numbers it (default: found among the top rows).")] = None,
    inspector: Annotated[str | None, typer.Option(help="marker_inspections: who inspected, for rows that do not "
                                                  "say.")] = None,
    geocode: Annotated[bool, typer.Option(help="Facilities: place rows without coordinates by their 地址 (address) "
                                          "or 所在村(社区) (village) column, with the service's gazetteer.")] = False,
    allow_approximate: Annotated[bool, typer.Option(help="With --geocode: accept rows placed only at their "
                                                    "village's point (else they are bad rows).")] = False,
    dry_run: Annotated[bool, typer.Option(help="Check every row but write nothing.")] = False,
) -> None:
    """Import a file into a layer: every row is checked, and all rows are written or none."""
    from gis_service.io.layers_io import import_file
    from gis_service.layers import get_layer

    reading = {"encoding": encoding, "sheet": sheet, "header_row": header_row}
    if layer == "marker_inspections":
        _import_inspections(file, inspector=inspector, dry_run=dry_run, **reading)
        return
    get_layer(layer)
    settings = get_settings()
    started = time.perf_counter()
    with database(settings) as engine, progress_bar() as bar:
        task = bar.add_task(f"importing {file.name}", total=None)
        try:
            result, notes = import_file(engine, settings, layer, file, crs=crs, dry_run=dry_run,
                                        on_rows=lambda n: bar.advance(task, n), geocode=geocode,
                                        allow_approximate=allow_approximate, **reading)
        except ImportRejected:
            bar.stop()
            raise
    console.print(notes, highlight=False, soft_wrap=True)
    verb = "checked (dry run, nothing written)" if dry_run else "imported"
    out.print(f"{verb}: {result.rows_read:,} rows into {layer} in {time.perf_counter() - started:.1f} s")


def _import_inspections(file: Path, *, dry_run: bool, **options) -> None:
    from gis_service.io.inspections import import_inspections
    from gis_service.layers.boundaries import CONDITION_ZH

    with database(get_settings()) as engine, engine.connect() as conn, conn.begin() as transaction:
        result = import_inspections(conn, file, dry_run=dry_run, **options)
        if dry_run:
            transaction.rollback()
    console.print(result.note, highlight=False, soft_wrap=True)
    if result.unused_columns:
        console.print(f"columns left out (not part of a field record): {', '.join(result.unused_columns)}",
                      highlight=False, soft_wrap=True)
    changed = ", ".join(f"{n} now {CONDITION_ZH[c]} ({c})" for c, n in sorted(result.changed.items()))
    older = (f"; {result.older} older than their marker's last inspection (kept in the history, condition "
             "unchanged)") if result.older else ""
    verb = "checked (dry run, nothing written)" if dry_run else "recorded"
    out.print(f"{verb}: {result.rows:,} inspections of {result.markers:,} markers; condition changed: "
              f"{changed or 'none'}{older}", highlight=False, soft_wrap=True)


@app.command("export")
def export_command(
    layer: Annotated[str, typer.Argument(help="Layer id, e.g. boundary_markers; or `boundaries` for the "
                                        "inspectors' field package (with --line, --township or --neighbour).")],
    fmt: Annotated[str, typer.Option("--format", help="geojson (EPSG:4326), gpkg or shp (EPSG:4490), csv or xlsx "
                                     "(lon/lat or WKT in EPSG:4490); for boundaries also kml and gpx.")] = "geojson",
    out_path: Annotated[Path | None, typer.Option("--out", help="Output file (default: LAYER.FORMAT).")] = None,
    line: Annotated[str | None, typer.Option(help="boundaries: one line's code, e.g. 500241-500242.")] = None,
    township: Annotated[str | None, typer.Option(help="boundaries: a township's code (its township lines and "
                                                 "the parts of county lines bounding it).")] = None,
    neighbour: Annotated[str | None, typer.Option(help="boundaries: a neighbouring county's code.")] = None,
    encoding: Annotated[str | None, typer.Option(help="shp: gbk writes the text in GBK (with a .cpg and the DBF's "
                                                 "code page) for desktop tools that read nothing else; default "
                                                 "UTF-8.")] = None,
    labels: Annotated[str, typer.Option(help="csv, xlsx: zh writes Chinese headers (each field's title) and "
                                        "values (labels, 是/否), which import reads back unchanged; en the field "
                                        "names and codes. place_names with zh: the layer's own fields rather than "
                                        "the national database's. boundaries with zh: attribute values in Chinese "
                                        "(状况 完好).")] = "en",
) -> None:
    """Write everything a layer holds to a file, or the boundary lines and markers of one selection."""
    from gis_service.io.layers_io import export_layer
    from gis_service.io.placenames_export import EXPORT_FORMATS, export_place_names
    from gis_service.layers import get_layer

    if layer == "boundaries":
        if encoding is not None:
            raise InvalidInputError("--encoding applies to a layer's Shapefile export; the boundaries' field package "
                                    "is UTF-8")
        _export_boundaries(fmt, out_path, labels, line=line, township=township, neighbour=neighbour)
        return
    layer = "place_names" if layer == "placenames" else layer
    # the gazetteer, in the national database's field order (with --labels zh: its own fields, to import back)
    if layer == "place_names" and fmt in EXPORT_FORMATS and labels == "en":
        with database(get_settings()) as engine:
            written, count = export_place_names(engine, out_path or Path(f"{layer}.{fmt}"), fmt=fmt)
        out.print(f"wrote {count:,} place names to {written}")
        return
    get_layer(layer)
    path = out_path or Path(f"{layer}.{fmt}")
    with database(get_settings()) as engine:
        written, count = export_layer(engine, layer, path, fmt=fmt, encoding=encoding, labels=labels)
    out.print(f"wrote {count:,} features to {written}")


def _export_boundaries(fmt: str, out_path: Path | None, lang: str, **selection: str | None) -> None:
    from gis_service.io.boundary_export import Selection, export_boundaries

    chosen = Selection(**selection)
    settings = get_settings()
    with database(settings) as engine, engine.connect() as conn:
        content, _, filename = export_boundaries(conn, chosen, fmt=fmt, measure_srid=settings.measure_srid,
                                                 lang=lang)
    path = out_path or Path(filename)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    out.print(f"wrote {path} ({len(content):,} bytes)")


@app.command("layers")
def layers_command() -> None:
    """List the layers with their feature counts."""
    from gis_service.layers import LAYERS
    from gis_service.store.features import layer_counts

    with database(get_settings()) as engine, engine.connect() as conn:
        counts = layer_counts(conn)
    for layer in LAYERS.values():
        out.print(f"{layer.id:<20} {layer.title_zh:<12} {layer.geometry_type:<16} {counts[layer.id]:>9,}",
                  highlight=False)

