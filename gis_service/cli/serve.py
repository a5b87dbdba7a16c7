"""``gis-service serve``: provision or connect to the database, migrate, load the demo county if the database is
empty, build the road network, then serve the API with supervised workers (:mod:`gis_service.server`)."""

from __future__ import annotations

import contextlib
import ipaddress
from typing import Annotated

import sqlalchemy as sa
import typer

from gis_service.cli.common import console, database
from gis_service.cli.demo import build_and_load
from gis_service.settings import Settings, get_settings

app = typer.Typer()


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on (GIS_HOST; 127.0.0.1: keep it so behind "
                                             "a reverse proxy with TLS, see the README's Production).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (GIS_PORT).")] = None,
    workers: Annotated[int | None, typer.Option(min=1, max=64, help="Worker processes (GIS_WORKERS); one that "
                                                "dies is replaced.")] = None,
    demo: Annotated[bool, typer.Option(help="Load the demo county when the database is empty.")] = True,
) -> None:
    """Provision or connect to the database, migrate, load the demo data if empty, and serve the API with
    supervised workers (and, for the embedded cluster, a watchdog that starts it again if it dies)."""
    from gis_service import server
    from gis_service.db.cluster import embedded_cluster
    from gis_service.db.watchdog import ClusterWatchdog
    from gis_service.store.features import database_is_empty, layer_counts

    settings = get_settings()
    lock = contextlib.nullcontext()
    watchdog = contextlib.nullcontext()
    if settings.embedded:
        cluster = embedded_cluster(settings)
        lock, watchdog = cluster.serve_lock_held(), ClusterWatchdog(cluster)
    with lock, database(settings) as engine:
        with engine.connect() as conn:
            empty = database_is_empty(conn)
        if empty and demo and settings.load_demo:
            console.print("The database is empty: building and loading the Xiushan demo county.")
            build_and_load(engine, settings, scale=settings.demo_scale, seed=settings.demo_seed, replace=False,
                           counties=settings.demo_counties)
        with engine.connect() as conn:
            counts = layer_counts(conn)
        console.print("Layers: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()), highlight=False)
        if counts["roads"]:
            _prepare_network(engine, settings)
        engine.dispose()  # the workers open their own connections
        where = "embedded cluster in " + str(settings.data_dir) if settings.embedded else "GIS_DATABASE_URL"
        workers = workers or settings.workers
        host = host or settings.host
        if not _loopback(host):
            console.print(f"[bold yellow]warning:[/] listening on {host} serves plain HTTP to the network: tokens "
                          "and data cross it unencrypted. Put nginx with TLS in front and keep 127.0.0.1 (README: "
                          "Production).", highlight=False, soft_wrap=True)
        console.print(f"Serving on http://{host}:{port or settings.port} with {workers} "
                      f"worker{'s' if workers > 1 else ''} (database: {where})", highlight=False)
        # uvicorn's supervisor handles SIGTERM and SIGINT: it stops the workers and returns, and the with-blocks
        # above then stop the watchdog and the cluster this command started.
        server.run(settings, engine.url.render_as_string(hide_password=False), host=host,
                   port=port or settings.port, workers=workers, alongside=watchdog)


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name
        return host == "localhost"


def _prepare_network(engine: sa.Engine, settings: Settings) -> None:
    """Build the routable network and save its graph in the data folder now, before the workers start: they map
    the one copy, and the first coverage request does not wait for it."""
    from gis_service.analysis.network import ensure_network, keep_graphs_in
    from gis_service.analysis.travel import AnalysisSettings

    keep_graphs_in(settings.data_dir / "network")
    with console.status("building the road network (pgRouting)"), engine.connect() as conn:
        ensure_network(conn, measure_srid=settings.measure_srid, settings=AnalysisSettings())
        conn.commit()

