"""Schema migrations (alembic), run from code: ``serve`` upgrades before the app starts."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # alembic's ini interpolation treats % specially
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    command.downgrade(alembic_config(url), revision)


def current_revision(bind: Engine | Connection) -> str | None:
    """The database's schema revision; read on ``bind`` itself when it is a connection (no second connection)."""
    if isinstance(bind, Connection):
        return MigrationContext.configure(bind).get_current_revision()
    with bind.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str:
    return ScriptDirectory.from_config(alembic_config("postgresql://")).get_current_head()


def is_known_revision(revision: str) -> bool:
    """True if ``revision`` is one of this version's migrations (a newer gis-service's is not)."""
    from alembic.util import CommandError

    try:
        return ScriptDirectory.from_config(alembic_config("postgresql://")).get_revision(revision) is not None
    except CommandError:
        return False
