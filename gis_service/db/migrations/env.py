"""Alembic environment: online migrations only, URL from the config the service builds.

The migrations are hand-written DDL. ``target_metadata`` is the schema as the code sees it
(:mod:`gis_service.store.tables`), so that ``alembic check`` (``tests/test_tables.py``) reports any drift between
the two; GeoAlchemy2's helpers render and compare its geometry columns.
"""

from alembic import context
from geoalchemy2 import alembic_helpers
from sqlalchemy import create_engine, pool

from gis_service.db.migrate import include_object
from gis_service.store.tables import metadata

config = context.config

def run_migrations_online() -> None:
    connectable = create_engine(config.get_main_option("sqlalchemy.url"), poolclass=pool.NullPool)
    with connectable.connect() as connection:
        context.configure(connection=connection, transaction_per_migration=True, target_metadata=metadata,
                          include_object=include_object, process_revision_directives=alembic_helpers.writer,
                          render_item=alembic_helpers.render_item)
        with context.begin_transaction():
            context.run_migrations()


run_migrations_online()
