"""The command line: ``gis-service serve | db | demo | import | export | layers | token | analyse | map | tiles``.

One module per sub-app, and this root only adds them: :mod:`.serve`, :mod:`.db`, :mod:`.demo`, :mod:`.layers`
(import, export, layers), :mod:`.tokens`, :mod:`.analyse`, :mod:`.maps`, :mod:`.tiles`; :mod:`.common` holds what
they share.
Every command works whether the service is running or not: it uses the running embedded cluster, or starts it for
the command's duration (or uses GIS_DATABASE_URL when set).
"""

from __future__ import annotations

import typer

from gis_service.cli import analyse, common, db, demo, layers, maps, serve, tiles, tokens

app = typer.Typer(help="GIS service for a county civil-affairs bureau.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)
app.add_typer(serve.app)  # serve
app.add_typer(layers.app)  # import, export, layers
app.add_typer(db.app, name="db")
app.add_typer(demo.app, name="demo")
app.add_typer(analyse.app, name="analyse")
app.add_typer(maps.app, name="map")
app.add_typer(tokens.app, name="token")
app.add_typer(tiles.app, name="tiles")


def main() -> None:
    """The ``gis-service`` entry point."""
    common.run(app)
