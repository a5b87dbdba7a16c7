"""``gis-service demo build|load``: the Xiushan demo county, or a province of copies of it (``--counties N``),
seeded (the same output every run), written as files or loaded into the database."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import sqlalchemy as sa
import typer

from gis_service.cli.common import console, database, out, progress_bar
from gis_service.settings import Settings, get_settings

app = typer.Typer(help="The Xiushan demo county.", no_args_is_help=True)

ScaleOption = Annotated[int, typer.Option(min=1, max=100, help="Multiply settlements, roads and place names.")]
SeedOption = Annotated[int | None, typer.Option(help="Random seed (default: GIS_DEMO_SEED).")]
CountiesOption = Annotated[int | None, typer.Option(min=1, max=99, help="Counties side by side: the real Xiushan and "
                                                    "synthetic copies, for a province in one database (default: "
                                                    "GIS_DEMO_COUNTIES).")]
#: The province code a database of several demo counties is checked against (every county code under 50).
PROVINCE_CODE = "500000"


def build_frames(scale: int, seed: int, counties: int = 1) -> dict:
    """The demo county's layers, or a province's of ``counties`` counties (name -> frame), built with a spinner and
    summed up on the console."""
    from gis_service.demo.province import build_province

    what = "the demo county" if counties == 1 else f"{counties} demo counties"
    with console.status(f"building {what}") as status:
        frames = build_province(counties, scale=scale, seed=seed,
                                progress=lambda step: status.update(f"building: {step}"))
    console.print(f"built {what} (scale {scale}, seed {seed}): "
                  + ", ".join(f"{k} {len(v):,}" for k, v in frames.items()), highlight=False)
    return frames


def build_and_load(engine: sa.Engine, settings: Settings, *, scale: int, seed: int, replace: bool,
                   counties: int = 1) -> None:
    """Build the demo county (or ``counties`` of them) and load it into ``engine``'s database (all or nothing),
    with a progress bar."""
    from gis_service.io.load_demo import load_frames

    frames = build_frames(scale, seed, counties)
    total = sum(len(f) for f in frames.values())
    with progress_bar() as bar:
        task = bar.add_task("loading", total=total)
        load_frames(engine, frames, county_code=settings.county_code if counties == 1 else PROVINCE_CODE,
                    measure_srid=settings.measure_srid, replace=replace,
                    on_step=lambda name, n: bar.update(task, description=f"loading {name}"),
                    on_rows=lambda n: bar.advance(task, n))


@app.command("build")
def demo_build(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for one GeoJSON file per layer.")] = Path("out/demo"),
    scale: ScaleOption = 1,
    seed: SeedOption = None,
    counties: CountiesOption = None,
) -> None:
    """Build the demo county, or a province of them (seeded: the same output every run), and write it as GeoJSON
    files."""
    from gis_service.io.csv_cells import write_frame
    from gis_service.io.files import write_export

    settings = get_settings()
    frames = build_frames(scale, seed if seed is not None else settings.demo_seed,
                          counties or settings.demo_counties)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, frame in frames.items():
        if hasattr(frame, "geometry"):
            write_export(frame, out_dir / f"{name}.geojson", fmt="geojson", layer_name=name)
        else:
            write_frame(frame, out_dir / f"{name}.csv")
    out.print(f"wrote {len(frames)} files to {out_dir}")


@app.command("load")
def demo_load(
    scale: ScaleOption = 1,
    seed: SeedOption = None,
    counties: CountiesOption = None,
    replace: Annotated[bool, typer.Option(help="Clear every layer first.")] = False,
) -> None:
    """Build the demo county (or a province of them) and load it into the database (all or nothing). Serve a
    province with GIS_COUNTY_CODE=500000, so that writes anywhere in it are accepted."""
    settings = get_settings()
    with database(settings) as engine:
        build_and_load(engine, settings, scale=scale, seed=seed if seed is not None else settings.demo_seed,
                       replace=replace, counties=counties or settings.demo_counties)
    out.print("loaded")

