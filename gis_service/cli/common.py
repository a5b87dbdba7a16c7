"""What the commands share: the two consoles, the progress bar, the database for a command's duration, and the
entry point's handling of a user's mistake.

Only typer, rich and the settings are imported here; the commands import the rest when they run, so that
``gis-service --help`` answers at once.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

import sqlalchemy as sa
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from gis_service.errors import GisServiceError
from gis_service.settings import Settings

#: Messages, progress and warnings (stderr); ``out`` is the command's answer (stdout), for pipes and files.
console = Console(stderr=True)
out = Console()


def run(app: typer.Typer) -> None:
    """Run ``app``: a user's mistake or a missing install ends in one plain message and its exit code."""
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
