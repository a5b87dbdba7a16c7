"""``gis-service db start|stop|status|url|upgrade|downgrade|backup|restore|replica``: the embedded PostgreSQL cluster
(or the server GIS_DATABASE_URL names), its schema, backups of the whole database, and hot standbys to read from."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from gis_service.cli.common import console, out
from gis_service.settings import Settings, get_settings

app = typer.Typer(help="The embedded PostgreSQL cluster (or the configured server).", no_args_is_help=True)


def _cluster(settings: Settings):
    from gis_service.db.cluster import embedded_cluster
    from gis_service.errors import InvalidInputError

    if not settings.embedded:
        raise InvalidInputError("GIS_DATABASE_URL is set: the service uses that server, not an embedded cluster")
    return embedded_cluster(settings)


@app.command("start")
def db_start() -> None:
    """Start the embedded cluster (creating it on first use) and leave it running."""
    from gis_service.db.engine import upgrade_schema

    settings = get_settings()
    cluster = _cluster(settings)
    started = cluster.start()
    upgrade_schema(settings, cluster.url())
    out.print(f"{'started' if started else 'already running'}: {cluster.url()}", highlight=False)


@app.command("stop")
def db_stop() -> None:
    """Stop the embedded cluster (refused while a ``serve`` uses it)."""
    from gis_service.errors import ClusterBusyError

    cluster = _cluster(get_settings())
    pid = cluster.serving_pid()
    if pid:
        raise ClusterBusyError(f"gis-service serve (pid {pid}) is using the cluster; stop the service instead")
    out.print("stopped" if cluster.stop() else "was not running")


@app.command("status")
def db_status() -> None:
    """Where the database is and whether it is running (JSON)."""
    settings = get_settings()
    if settings.embedded:
        out.print_json(json.dumps(_cluster(settings).status()))
    else:
        from sqlalchemy.engine import make_url

        out.print_json(json.dumps({"url": make_url(settings.database_url).render_as_string(), "embedded": False}))


@app.command("url")
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


@app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Run the schema migrations up to a revision."""
    from gis_service.db.engine import provisioned, upgrade_schema

    settings = get_settings()
    with provisioned(settings) as url:
        upgrade_schema(settings, url, revision)
    out.print(f"schema at {revision}")


@app.command("downgrade")
def db_downgrade(revision: str = typer.Argument(..., help="Target revision, e.g. base (drops every layer).")) -> None:
    """Undo schema migrations down to a revision."""
    from gis_service.db.engine import downgrade_schema, provisioned

    settings = get_settings()
    with provisioned(settings) as url:
        downgrade_schema(settings, url, revision)
    out.print(f"schema at {revision}")


@app.command("backup")
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


@app.command("restore")
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
app.add_typer(replica_app, name="replica")


@replica_app.command("allow")
def replica_allow() -> None:
    """On the primary's machine: let standbys on other machines copy and follow the embedded cluster (the replication
    role, its password kept in the cluster's password file; from the networks of GIS_CLUSTER_CLIENTS). Then, on each
    standby's machine: gis-service db replica create DIR --from postgresql://gis_replicator:PASSWORD@HOST:PORT/gis."""
    from gis_service.db.cluster import REPLICATION_ROLE
    from gis_service.db.standby import allow_replication

    primary = _cluster(get_settings())
    with primary.running():
        allow_replication(primary)
    out.print(f"the role {REPLICATION_ROLE} may replicate; its password is on the line ending in "
              f"'{REPLICATION_ROLE}:…' of {primary.password_file} (readable by its owner only)", highlight=False,
              soft_wrap=True)


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
    """Start a standby (it catches up with its primary and then follows it), listening on GIS_CLUSTER_LISTEN too, for
    API hosts on other machines (which of them may connect is the primary's pg_hba.conf, copied)."""
    from gis_service.db.cluster import EmbeddedCluster

    settings = get_settings()
    standby = EmbeddedCluster(folder, settings.pg_bin_dir, listen=settings.cluster_listen,
                              tcp_port=settings.cluster_port)
    out.print(f"{'started' if standby.start() else 'already running'}: {standby.url()}", highlight=False)


@replica_app.command("stop")
def replica_stop(folder: Annotated[Path, typer.Argument(help="The standby's folder.")]) -> None:
    """Stop a standby."""
    from gis_service.db.cluster import EmbeddedCluster

    out.print("stopped" if EmbeddedCluster(folder, get_settings().pg_bin_dir).stop() else "was not running")
