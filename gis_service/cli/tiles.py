"""``gis-service tiles seed``: fill the vector tile cache before people ask for the tiles."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from gis_service.cli.common import console, database, progress_bar
from gis_service.settings import get_settings

app = typer.Typer(help="The vector tile cache (DATA_DIR/tiles).", no_args_is_help=True)


@app.command("seed")
def seed_command(
    max_zoom: Annotated[int, typer.Option(min=0, max=22, help="Last zoom level to render.")] = 14,
    min_zoom: Annotated[int, typer.Option(min=0, max=22, help="First zoom level to render.")] = 0,
    layers: Annotated[str | None, typer.Option(help="Layers to render, separated by commas (default: every "
                                                    "layer).")] = None,
    jobs: Annotated[int | None, typer.Option(min=1, max=64, help="Tiles rendered at once (default: one per "
                                             "core).")] = None,
) -> None:
    """Render every tile holding a feature, from --min-zoom to --max-zoom, into the cache the service serves tiles
    from; tiles already kept for the current data are skipped."""
    from gis_service.errors import InvalidInputError
    from gis_service.layers import LAYERS, get_layer
    from gis_service.ogc.seed import seed, tiles_to_seed
    from gis_service.ogc.tilecache import TileCache

    if min_zoom > max_zoom:
        raise InvalidInputError(f"--min-zoom ({min_zoom}) must not be above --max-zoom ({max_zoom})")
    chosen = [get_layer(name.strip()) for name in layers.split(",") if name.strip()] if layers else list(
        LAYERS.values())
    settings = get_settings()
    if settings.tile_cache_mb <= 0:
        raise InvalidInputError("GIS_TILE_CACHE_MB is 0: the service keeps no tiles, so there is nothing to seed")
    cache = TileCache(settings.data_dir / "tiles", max_bytes=settings.tile_cache_mb * 2**20)
    with database(settings) as engine:
        with console.status("finding the tiles that hold features"), engine.connect() as conn:
            work = [(layer, z, x, y) for layer in chosen
                    for z, x, y in tiles_to_seed(conn, layer, min_zoom=min_zoom, max_zoom=max_zoom)]
        with progress_bar() as bar:
            tasks = {layer.id: bar.add_task(layer.id, total=sum(1 for w in work if w[0].id == layer.id))
                     for layer in chosen}
            counts = seed(engine, cache, work, jobs=jobs or os.cpu_count() or 1,
                          on_tile=lambda layer, _: bar.advance(tasks[layer.id]))
    console.print(f"{counts['rendered']:,} tiles rendered, {counts['kept']:,} kept already "
                  f"({counts['empty']:,} of them empty, answered 204); the cache holds "
                  f"{cache.size_bytes() / 2**20:,.1f} MB of at most {settings.tile_cache_mb:,} MB", highlight=False)
