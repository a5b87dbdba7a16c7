"""Dependencies shared by the routers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

import sqlalchemy as sa
from fastapi import Depends, Request
from sqlalchemy.orm import Session

from gis_service.db.engine import MAX_SESSIONS
from gis_service.settings import Settings


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_session(request: Request) -> Iterator[Session]:
    """A session per request. Writes call ``session.commit()`` before answering; anything not committed is
    rolled back when the request ends. (Tests bind it to their own transaction with savepoints.)"""
    with Session(request.app.state.engine) as session:
        yield session


#: At most MAX_SESSIONS requests hold a session (and its connection) at once; the pool is sized for them
#: (see create_db_engine). The others wait here, in the event loop, without a thread or a connection.
SessionDep = Annotated[Session, Depends(get_session, max_concurrency=MAX_SESSIONS)]


def get_connection(session: SessionDep) -> sa.Connection:
    """The request's connection, inside the session's transaction."""
    return session.connection()


SettingsDep = Annotated[Settings, Depends(get_settings)]
ConnectionDep = Annotated[sa.Connection, Depends(get_connection)]
