"""Bearer tokens and roles: who may change which layer.

A token is shown once, when it is created; the database keeps only its SHA-256 hash. Which role changes what is
each layer's to say (``Layer.writers``): today inspectors change the boundary lines and markers (and record
inspections), place-name staff the place names and roads, planners the facilities, the settlements and the figures
(households, population) of divisions, and ``admin`` everything, tokens included.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

import sqlalchemy as sa

from gis_service.errors import AuthenticationRequired, Forbidden, InvalidInputError, NotFoundError
from gis_service.layers import layers_written_by
from gis_service.layers.base import ROLES, Layer
from gis_service.store import tokens

TOKEN_PREFIX = "gis_"
#: A token's life unless told otherwise: a year, so that a forgotten token stops working by itself.
DEFAULT_TOKEN_DAYS = 365
#: The longest life a token may be given in days (``never`` is asked for separately).
MAX_TOKEN_DAYS = 3650

@dataclass(frozen=True)
class Principal:
    """Who is making a request."""

    token_id: int
    name: str
    role: str

    def may_change(self, layer: Layer, fields: set[str] | None = None) -> bool:
        """Whether this principal may change ``fields`` of a feature of ``layer`` (None: create or delete it)."""
        return layer.may_be_changed_by(self.role, fields)

    def require(self, layer: Layer, fields: set[str] | None = None) -> None:
        """Forbidden (403) unless :meth:`may_change`; the message says what the role may change instead."""
        if self.may_change(layer, fields):
            return
        only = layer.writers.get(self.role)
        if only is not None:
            raise Forbidden(f"role {self.role} may change only the {' and '.join(sorted(only))} of {layer.id}")
        allowed = ", ".join(sorted(layers_written_by(self.role))) or "nothing"
        raise Forbidden(f"role {self.role} may not change {layer.id}; it may change: {allowed}")


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_token(conn: sa.Connection, *, role: str, name: str,
                 expires_days: int | None = DEFAULT_TOKEN_DAYS) -> tuple[int, str]:
    """Store a new token's hash; return its id and the token itself (shown once, never stored). It expires after
    ``expires_days`` days (a year by default); ``None``: never (until revoked)."""
    if role not in ROLES:
        raise InvalidInputError(f"role must be one of {', '.join(ROLES)}; got {role!r}")
    name = name.strip()
    if not 1 <= len(name) <= 100:
        raise InvalidInputError("name must be 1 to 100 characters (who holds the token)")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    expires = None
    if expires_days is not None:
        if not 1 <= expires_days <= MAX_TOKEN_DAYS:
            raise InvalidInputError(f"a token lives 1 to {MAX_TOKEN_DAYS:,} days; got {expires_days}")
        expires = dt.datetime.now(dt.UTC) + dt.timedelta(days=expires_days)
    token_id = tokens.insert_token(conn, name=name, role=role, token_hash=hash_token(token), expires_at=expires)
    return token_id, token


def parse_expiry(text: str, *, never_allowed: bool) -> int | None:
    """``--expires``: a number of days (``90d``; a bare ``90`` is read as days too), or ``never`` (None) when
    ``never_allowed``. The message says what to write instead."""
    value = text.strip().lower()
    if value == "never":
        if not never_allowed:
            raise InvalidInputError("--expires never makes a token that works until it is revoked; confirm with "
                                    "--allow-never (for a service account on a machine you trust), or give days, "
                                    f"e.g. --expires {DEFAULT_TOKEN_DAYS}d")
        return None
    digits = value.removesuffix("d")
    if not digits.isascii() or not digits.isdigit() or not 1 <= int(digits) <= MAX_TOKEN_DAYS:
        raise InvalidInputError(f"--expires must be a number of days from 1d to {MAX_TOKEN_DAYS}d, e.g. 90d, or "
                                f"never; got {text!r}")
    return int(digits)


def list_tokens(conn: sa.Connection) -> list[dict]:
    """Every token's id, holder, role and dates (never the token)."""
    return tokens.list_tokens(conn)


def revoke_token(conn: sa.Connection, token_id: int) -> None:
    if not tokens.revoke(conn, token_id):
        raise (InvalidInputError(f"token {token_id} is already revoked") if tokens.token_exists(conn, token_id)
               else NotFoundError(f"no token has the id {token_id}"))


def authenticate(conn: sa.Connection, authorization: str | None) -> Principal:
    """The principal behind an ``Authorization: Bearer`` header; 401 if missing, unknown, expired or revoked."""
    if not authorization:
        raise AuthenticationRequired()
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationRequired("the Authorization header must be 'Bearer <token>'")
    row = tokens.find_by_hash(conn, hash_token(token.strip()))
    if row is None:
        raise AuthenticationRequired("the bearer token is not known", token_sent=True)
    if row.revoked_at is not None:
        raise AuthenticationRequired("the bearer token has been revoked", token_sent=True)
    if row.expires_at is not None and row.expires_at <= dt.datetime.now(dt.UTC):
        raise AuthenticationRequired(
            f"the bearer token has expired (on {row.expires_at.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC); ask an "
            "administrator for a new one: `gis-service token create --role ROLE --name NAME --expires 365d`",
            token_sent=True)
    if not row.recent:
        # to the minute: updating the row on every request would make all requests with one token wait for
        # each other's transactions (the row stays locked until each commits)
        tokens.mark_used(conn, row.id)
    return Principal(token_id=row.id, name=row.name, role=row.role)
