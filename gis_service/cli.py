"""The command line: ``gis-service serve | db | demo | import | export | layers``.

Every command works whether the service is running or not: it uses the running embedded cluster, or
starts it for the command's duration (or uses GIS_DATABASE_URL when set).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import sqlalchemy as sa
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from gis_service.analysis.cli import analysis_app
from gis_service.errors import GisServiceError, ImportRejected
from gis_service.maps.cli import map_app
from gis_service.ogc.cli import tiles_app
from gis_service.settings import Settings, get_settings

app = typer.Typer(help="GIS service for a county civil-affairs bureau.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)
db_app = typer.Typer(help="The embedded PostgreSQL cluster (or the configured server).", no_args_is_help=True)
demo_app = typer.Typer(help="The Xiushan demo county.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(demo_app, name="demo")
app.add_typer(analysis_app, name="analyse")
app.add_typer(map_app, name="map")
app.add_typer(tiles_app, name="tiles")

console = Console(stderr=True)
out = Console()


def main() -> None:
    """Entry point: a user's mistake or a missing install ends in one plain message and its exit code."""
    try:
        app()
    except GisServiceError as exc:
        console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)


@contextlib.contextmanager
def database(settings: Settings) -> Iterator[sa.Engine]:
    """A migrated database for the duration of a command, as the service role."""
    from gis_service.db.engine import create_db_engine, provisioned, upgrade_schema

    with provisioned(settings) as url:
        upgrade_schema(settings, url)
        engine = create_db_engine(url)
        try:
            yield engine
        finally:
            engine.dispose()


def progress_bar() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console, transient=False)


# -- serve -------------------------------------------------------------------------------------------

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
    from gis_service.io.load_demo import database_is_empty, layer_counts

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
            _build_and_load(engine, settings, scale=settings.demo_scale, seed=settings.demo_seed, replace=False,
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


# -- db ------------------------------------------------------------------------------------------------

def _cluster(settings: Settings):
    from gis_service.db.cluster import embedded_cluster
    from gis_service.errors import InvalidInputError

    if not settings.embedded:
        raise InvalidInputError("GIS_DATABASE_URL is set: the service uses that server, not an embedded cluster")
    return embedded_cluster(settings)


@db_app.command("start")
def db_start() -> None:
    """Start the embedded cluster (creating it on first use) and leave it running."""
    from gis_service.db.engine import upgrade_schema

    settings = get_settings()
    cluster = _cluster(settings)
    started = cluster.start()
    upgrade_schema(settings, cluster.url())
    out.print(f"{'started' if started else 'already running'}: {cluster.url()}", highlight=False)


@db_app.command("stop")
def db_stop() -> None:
    """Stop the embedded cluster (refused while a ``serve`` uses it)."""
    from gis_service.errors import ClusterBusyError

    cluster = _cluster(get_settings())
    pid = cluster.serving_pid()
    if pid:
        raise ClusterBusyError(f"gis-service serve (pid {pid}) is using the cluster; stop the service instead")
    out.print("stopped" if cluster.stop() else "was not running")


@db_app.command("status")
def db_status() -> None:
    """Where the database is and whether it is running (JSON)."""
    settings = get_settings()
    if settings.embedded:
        out.print_json(json.dumps(_cluster(settings).status()))
    else:
        from sqlalchemy.engine import make_url

        out.print_json(json.dumps({"url": make_url(settings.database_url).render_as_string(), "embedded": False}))


@db_app.command("url")
def db_url() -> None:
    """Print the SQLAlchemy URL of the database (the service role's); never a password: it says where that is."""
    from sqlalchemy.engine import make_url

    settings = get_settings()
    if settings.embedded:
        cluster = _cluster(settings)
        out.print(cluster.url(), highlight=False, soft_wrap=True)
        console.print(f"The password is in {cluster.password_file} (readable by its owner only), which the URL names "
                      "as passfile: psql and libpq read it from there.", highlight=False, soft_wrap=True)
    else:
        out.print(make_url(settings.database_url).render_as_string(), highlight=False, soft_wrap=True)
        console.print("The password (***) is the one in GIS_DATABASE_URL.", highlight=False)


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Run the schema migrations up to a revision."""
    from gis_service.db.engine import provisioned, upgrade_schema

    settings = get_settings()
    with provisioned(settings) as url:
        upgrade_schema(settings, url, revision)
    out.print(f"schema at {revision}")


@db_app.command("downgrade")
def db_downgrade(revision: str = typer.Argument(..., help="Target revision, e.g. base (drops every layer).")) -> None:
    """Undo schema migrations down to a revision."""
    from gis_service.db.engine import downgrade_schema, provisioned

    settings = get_settings()
    with provisioned(settings) as url:
        downgrade_schema(settings, url, revision)
    out.print(f"schema at {revision}")


@db_app.command("backup")
def db_backup(
    file: Annotated[Path, typer.Argument(help="The file to write (PostgreSQL custom format), e.g. gis.backup.")],
    verify: Annotated[bool, typer.Option(help="Then restore the file into a throwaway database and compare "
                                         "every table with the data backed up.")] = False,
) -> None:
    """Back up the whole database to one file (pg_dump) and a signed manifest beside it, and print the rows and
    checksums of every layer in it."""
    from gis_service.db import backup
    from gis_service.db.engine import admin_url, provisioned

    settings = get_settings()
    key = backup.backup_key(settings.data_dir, create=True)
    with provisioned(settings) as url:
        result = backup.backup(url, file, key=key, bin_dir=settings.pg_bin_dir)
        if verify:
            backup.verify_backup(url, result.archive, result.checksums, admin_url=admin_url(settings),
                                 bin_dir=settings.pg_bin_dir)
    _print_checksums(result.checksums)
    checked = "; verified: it restores to the same data" if verify else ""
    out.print(f"backed up to {result.archive.path} ({result.size_bytes:,} bytes) in {result.seconds:.1f} s{checked}",
              highlight=False, soft_wrap=True)
    out.print(f"manifest: {backup.manifest_path(result.archive.path)}, signed with the key in "
              f"{settings.data_dir / backup.KEY_FILE}; keep the two files together, and a copy of the key apart",
              highlight=False, soft_wrap=True)


@db_app.command("restore")
def db_restore(
    file: Annotated[Path, typer.Argument(help="A file written by `gis-service db backup`.")],
    keep_previous: Annotated[bool, typer.Option(help="Keep the replaced database under another name, to be "
                                                "dropped by hand once the restore is known to be right.")] = True,
    without_manifest: Annotated[bool, typer.Option(help="Restore a backup that has no manifest (written before "
                                                   "manifests existed): only for a file whose origin you know; its "
                                                   "rows, tokens included, are taken as they are.")] = False,
) -> None:
    """Replace the database with a backup: its rows loaded into a fresh database of this version's schema, checked
    against the manifest, then swapped in whole.

    A missing or damaged file, one its manifest does not describe, or one holding anything a backup does not hold is
    refused with exit code 2 and changes nothing.
    """
    from gis_service.db import backup
    from gis_service.db.engine import admin_url, provisioned
    from gis_service.db.roles import AUDIT_OWNER

    settings = get_settings()
    # a bad file is refused before anything starts
    archive = backup.open_archive(file, key=backup.backup_key(settings.data_dir), without_manifest=without_manifest,
                                  bin_dir=settings.pg_bin_dir)
    with provisioned(settings) as url:
        result = backup.restore(url, archive, admin_url=admin_url(settings),
                                audit_owner=AUDIT_OWNER if settings.embedded else None, bin_dir=settings.pg_bin_dir,
                                keep_previous=keep_previous)
    _print_checksums(result.checksums)
    out.print(f"restored {archive.path} (written {archive.created}, schema {result.revision}) into the database "
              f"{result.database} in {result.seconds:.1f} s", highlight=False, soft_wrap=True)
    if result.previous:
        out.print(f"the data from before the restore is kept in the database {result.previous}; once you are sure, "
                  f"drop it: DROP DATABASE {result.previous};", highlight=False, soft_wrap=True)


def _print_checksums(checksums: dict) -> None:
    """One line per table: rows, and the md5 of its geometries and of its whole rows."""
    out.print(f"{'table':<20} {'rows':>9}  {'geometry md5':<32}  rows md5", highlight=False, soft_wrap=True)
    for name, sums in checksums.items():
        out.print(f"{name:<20} {sums.rows:>9,}  {sums.geometry_md5 or '-':<32}  {sums.rows_md5}", highlight=False,
                  soft_wrap=True)


# -- db replica ----------------------------------------------------------------------------------------------
replica_app = typer.Typer(help="Hot standbys of the database (streaming replication) to spread reads over.",
                          no_args_is_help=True)
db_app.add_typer(replica_app, name="replica")


@replica_app.command("create")
def replica_create(
    folder: Annotated[Path, typer.Argument(help="An empty folder for the standby (its pgdata, socket, log and "
                                                 "password file).")],
    source: Annotated[str | None, typer.Option("--from", help="URL of the primary as a role allowed to replicate, "
                                               "postgresql://gis_replicator:PASSWORD@HOST:PORT/gis. Default: the "
                                               "embedded cluster of GIS_DATA_DIR, which is prepared for it.")] = None,
) -> None:
    """Make a hot standby with pg_basebackup -R, ready to start (gis-service db replica start FOLDER) and to list in
    GIS_DATABASE_READ_URLS."""
    from gis_service.db.standby import allow_replication, create_standby, source_from_url

    settings = get_settings()
    if source is None:
        primary = _cluster(settings)
        with primary.running(), console.status("copying the primary (pg_basebackup)"):
            password = allow_replication(primary)
            standby = create_standby(folder, source=primary.conninfo(role="gis_replicator"), password=password,
                                     password_file=primary.password_file, bin_dir=settings.pg_bin_dir)
    else:
        conninfo, password = source_from_url(source)
        with console.status("copying the primary (pg_basebackup)"):
            standby = create_standby(folder, source=conninfo, password=password, password_file=None,
                                     bin_dir=settings.pg_bin_dir)
        console.print(f"Copy the service's password file (DATA_DIR/pgpass on the primary's machine) to "
                      f"{standby.password_file} (mode 0600) before the service reads from it.", highlight=False)
    out.print(f"standby made in {standby.data_dir}; start it with: gis-service db replica start {standby.data_dir}",
              highlight=False)
    out.print(f"then read from it: GIS_DATABASE_READ_URLS={standby.url()}", highlight=False, soft_wrap=True)


@replica_app.command("start")
def replica_start(folder: Annotated[Path, typer.Argument(help="The standby's folder.")]) -> None:
    """Start a standby (it catches up with its primary and then follows it)."""
    from gis_service.db.cluster import EmbeddedCluster

    standby = EmbeddedCluster(folder, get_settings().pg_bin_dir)
    out.print(f"{'started' if standby.start() else 'already running'}: {standby.url()}", highlight=False)


@replica_app.command("stop")
def replica_stop(folder: Annotated[Path, typer.Argument(help="The standby's folder.")]) -> None:
    """Stop a standby."""
    from gis_service.db.cluster import EmbeddedCluster

    out.print("stopped" if EmbeddedCluster(folder, get_settings().pg_bin_dir).stop() else "was not running")


# -- demo ------------------------------------------------------------------------------------------------

ScaleOption = Annotated[int, typer.Option(min=1, max=100, help="Multiply settlements, roads and place names.")]
SeedOption = Annotated[int | None, typer.Option(help="Random seed (default: GIS_DEMO_SEED).")]
CountiesOption = Annotated[int | None, typer.Option(min=1, max=99, help="Counties side by side: the real Xiushan and "
                                                    "synthetic copies, for a province in one database (default: "
                                                    "GIS_DEMO_COUNTIES).")]
#: The province code a database of several demo counties is checked against (every county code under 50).
PROVINCE_CODE = "500000"


def _build(scale: int, seed: int, counties: int = 1) -> dict:
    from gis_service.demo.province import build_province

    what = "the demo county" if counties == 1 else f"{counties} demo counties"
    with console.status(f"building {what}") as status:
        frames = build_province(counties, scale=scale, seed=seed,
                                progress=lambda step: status.update(f"building: {step}"))
    console.print(f"built {what} (scale {scale}, seed {seed}): "
                  + ", ".join(f"{k} {len(v):,}" for k, v in frames.items()), highlight=False)
    return frames


def _build_and_load(engine: sa.Engine, settings: Settings, *, scale: int, seed: int, replace: bool,
                    counties: int = 1) -> None:
    from gis_service.io.load_demo import load_frames

    frames = _build(scale, seed, counties)
    total = sum(len(f) for f in frames.values())
    with progress_bar() as bar:
        task = bar.add_task("loading", total=total)
        load_frames(engine, frames, county_code=settings.county_code if counties == 1 else PROVINCE_CODE,
                    measure_srid=settings.measure_srid, replace=replace,
                    on_step=lambda name, n: bar.update(task, description=f"loading {name}"),
                    on_rows=lambda n: bar.advance(task, n))


@demo_app.command("build")
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
    frames = _build(scale, seed if seed is not None else settings.demo_seed, counties or settings.demo_counties)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, frame in frames.items():
        if hasattr(frame, "geometry"):
            write_export(frame, out_dir / f"{name}.geojson", fmt="geojson", layer_name=name)
        else:
            write_frame(frame, out_dir / f"{name}.csv")
    out.print(f"wrote {len(frames)} files to {out_dir}")


@demo_app.command("load")
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
        _build_and_load(engine, settings, scale=scale, seed=seed if seed is not None else settings.demo_seed,
                        replace=replace, counties=counties or settings.demo_counties)
    out.print("loaded")


# -- import / export -------------------------------------------------------------------------------------

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



# -- tokens ------------------------------------------------------------------------------------------------

token_app = typer.Typer(help="Bearer tokens for writing through the API.", no_args_is_help=True)
app.add_typer(token_app, name="token")


@token_app.command("create")
def token_create(
    role: Annotated[str, typer.Option(help="inspector, placename, planner or admin.")],
    name: Annotated[str, typer.Option(help="Who holds the token (kept in the audit trail).")],
    expires: Annotated[str, typer.Option(help="How long the token works: days, e.g. 90d (1d to 3650d), or never "
                                              "(with --allow-never).")] = "365d",
    allow_never: Annotated[bool, typer.Option(help="Confirm --expires never.")] = False,
) -> None:
    """Create a token and print it once: only its hash is stored. It expires after a year unless told otherwise."""
    from gis_service.auth import create_token, parse_expiry

    expires_days = parse_expiry(expires, never_allowed=allow_never)  # before connecting: a typo costs nothing
    with database(get_settings()) as engine, engine.begin() as conn:
        token_id, token = create_token(conn, role=role, name=name, expires_days=expires_days)
    until = "never expires" if expires_days is None else f"expires in {expires_days} days"
    console.print(f"token {token_id} for {name} ({role}), {until}; it is shown only now:")
    out.print(token, highlight=False)


@token_app.command("list")
def token_list() -> None:
    """The tokens (never the tokens themselves): id, holder, role, state, created, expires, last used."""
    import datetime as dt

    from gis_service.auth import list_tokens

    with database(get_settings()) as engine, engine.connect() as conn:
        for row in list_tokens(conn):
            expires = row["expires_at"]
            state = ("revoked" if row["revoked_at"] else
                     "expired" if expires is not None and expires <= dt.datetime.now(dt.UTC) else "active")
            used = f"{row['last_used_at']:%Y-%m-%d %H:%M}" if row["last_used_at"] else "never"
            out.print(f"{row['id']:>4}  {row['role']:<10} {state:<8} {row['name']}  "
                      f"created {row['created_at']:%Y-%m-%d}  expires {f'{expires:%Y-%m-%d}' if expires else 'never'}"
                      f"  last used {used}", highlight=False)


@token_app.command("revoke")
def token_revoke(token_id: Annotated[int, typer.Argument(help="Id from `gis-service token list`.")]) -> None:
    """Revoke a token: requests with it are refused from now on."""
    from gis_service.auth import revoke_token

    with database(get_settings()) as engine, engine.begin() as conn:
        revoke_token(conn, token_id)
    out.print(f"token {token_id} revoked")

if __name__ == "__main__":
    main()
