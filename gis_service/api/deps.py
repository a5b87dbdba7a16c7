"""Dependencies shared by the routers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

import sqlalchemy as sa
from fastapi import Depends, Request
from sqlalchemy.orm import Session

from gis_service.settings import Settings


async def get_settings(request: Request) -> Settings:
    # async: a plain attribute read, not worth a trip through the thread pool
    return request.app.state.settings


def get_session(request: Request) -> Iterator[Session]:
    """A session per request. Writes call ``session.commit()`` before answering; anything not committed is
    rolled back when the request ends. (Tests bind it to their own transaction with savepoints.)"""
    with Session(request.app.state.engine) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def get_connection(session: SessionDep) -> sa.Connection:
    """The request's connection, inside the session's transaction."""
    return session.connection()


SettingsDep = Annotated[Settings, Depends(get_settings)]
ConnectionDep = Annotated[sa.Connection, Depends(get_connection)]
