"""``gis-service token create|list|revoke``: bearer tokens for writing through the API (only their hashes are
stored)."""

from __future__ import annotations

from typing import Annotated

import typer

from gis_service.cli.common import console, database, out
from gis_service.settings import get_settings

app = typer.Typer(help="Bearer tokens for writing through the API.", no_args_is_help=True)


@app.command("create")
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


@app.command("list")
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


@app.command("revoke")
def token_revoke(token_id: Annotated[int, typer.Argument(help="Id from `gis-service token list`.")]) -> None:
    """Revoke a token: requests with it are refused from now on."""
    from gis_service.auth import revoke_token

    with database(get_settings()) as engine, engine.begin() as conn:
        revoke_token(conn, token_id)
    out.print(f"token {token_id} revoked")
