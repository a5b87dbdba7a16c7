"""Dependencies shared by the routers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

import sqlalchemy as sa
from fastapi import Depends, Request

from gis_service.settings import Settings


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_connection(request: Request) -> Iterator[sa.Connection]:
    """A connection in a transaction that is rolled back at the end of a read-only request."""
    engine: sa.Engine = request.app.state.engine
    with engine.connect() as conn:
        yield conn


SettingsDep = Annotated[Settings, Depends(get_settings)]
ConnectionDep = Annotated[sa.Connection, Depends(get_connection)]
