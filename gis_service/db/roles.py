"""Who may do what in the database: the service role, the audit log's owner, and the set-up a superuser does.

The service (``serve`` and every ordinary command) connects as a role that is not a superuser: it owns every table
the migrations make, so it runs them, but it cannot create databases, roles or untrusted extensions, read files or
run programs on the server (``COPY ... TO PROGRAM`` needs a superuser). Only set-up work connects as a superuser:
creating the cluster's roles and databases, the extensions, and handing ``audit_log`` to its owner.

``audit_log`` is append-only for the service role: it belongs to ``gis_audit`` (a role nobody logs in as, and the
service role is not a member of), which grants the service role INSERT and SELECT only. UPDATE, DELETE and
TRUNCATE are refused, and so are ALTER and DROP: those need the owner, or the owner of the schema, and ``public``
belongs to the database's owner (the superuser), not to the service role, which may only create in it. That is
why the service role owns the tables but neither the schema nor the database: either would let it drop the log.

Every function here takes an autocommit psycopg connection of a superuser (``admin``), to the database concerned.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

#: The embedded cluster's service role and the owner of the audit log.
SERVICE_ROLE = "gis"
AUDIT_OWNER = "gis_audit"
REQUIRED_EXTENSIONS = ("postgis", "pgrouting", "pg_trgm", "fuzzystrmatch")


def set_password(admin: psycopg.Connection, role: str, password: str) -> None:
    """Give ``role`` a SCRAM-SHA-256 password, hashed here: the password itself never reaches the server (or its
    log)."""
    verifier = admin.pgconn.encrypt_password(password.encode(), role.encode(), b"scram-sha-256").decode()
    admin.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(role), sql.Literal(verifier)))


def ensure_roles(admin: psycopg.Connection, *, service_password: str) -> None:
    """Create the service role (may log in, nothing more) and the audit log's owner (may not log in), if missing."""
    existing = {row[0] for row in admin.execute("SELECT rolname FROM pg_roles WHERE rolname = ANY(%s)",
                                                ([SERVICE_ROLE, AUDIT_OWNER],))}
    if SERVICE_ROLE not in existing:
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS")
                      .format(sql.Identifier(SERVICE_ROLE)))
        set_password(admin, SERVICE_ROLE, service_password)
    if AUDIT_OWNER not in existing:
        admin.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(AUDIT_OWNER)))


def prepare_database(admin: psycopg.Connection, *, service_role: str) -> None:
    """Make a database ready for the service role's migrations: the extensions (PostGIS and pgRouting are not
    trusted extensions, so only a superuser creates them) and the right to create tables in schema ``public``."""
    for name in REQUIRED_EXTENSIONS:
        admin.execute(sql.SQL("CREATE EXTENSION IF NOT EXISTS {}").format(sql.Identifier(name)))
    admin.execute(sql.SQL("GRANT USAGE, CREATE ON SCHEMA public TO {}").format(sql.Identifier(service_role)))


def hand_over_objects(admin: psycopg.Connection, *, to_role: str) -> list[str]:
    """Give ``to_role`` the tables, sequences and functions of schema ``public`` that the connected role owns, except
    the extensions' own objects; return their names.

    A cluster made before the service had a role of its own (objects made by the superuser) is upgraded so.
    """
    handed: list[str] = []
    owned_by_me = """
        SELECT {what}, {kind} FROM {catalog} o
        WHERE o.{namespace} = 'public'::regnamespace AND o.{owner} = to_regrole(current_user)
          AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = '{catalog}'::regclass AND d.objid = o.oid
                          AND d.deptype IN ('e', 'a', 'i'))
    """
    # tables first: their indexes and the sequences of their serial columns go with them
    tables = admin.execute(owned_by_me.format(what="o.oid::regclass::text", kind="o.relkind", catalog="pg_class",
                                              namespace="relnamespace", owner="relowner")
                           + " AND o.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') ORDER BY o.relkind = 'S'").fetchall()
    for name, kind in tables:
        admin.execute(sql.SQL("ALTER {} {} OWNER TO {}").format(
            sql.SQL("SEQUENCE" if kind == "S" else "TABLE"), sql.SQL(name), sql.Identifier(to_role)))
        handed.append(name)
    functions = admin.execute(owned_by_me.format(what="o.oid::regprocedure::text", kind="o.prokind",
                                                 catalog="pg_proc", namespace="pronamespace", owner="proowner"))
    for signature, _ in functions.fetchall():
        admin.execute(sql.SQL("ALTER ROUTINE {} OWNER TO {}").format(sql.SQL(signature), sql.Identifier(to_role)))
        handed.append(signature)
    return handed


def audit_log_owner(admin: psycopg.Connection) -> str | None:
    """The owner of ``audit_log`` in the connected database; None when there is no such table."""
    row = admin.execute("SELECT pg_get_userbyid(relowner) FROM pg_class "
                        "WHERE oid = to_regclass('public.audit_log')").fetchone()
    return row[0] if row else None


def seal_audit_log(admin: psycopg.Connection, *, service_role: str, owner: str = AUDIT_OWNER) -> bool:
    """Make ``audit_log`` append-only for ``service_role``: owned by ``owner``, which grants it INSERT and SELECT
    (and use of the id sequence) only. Returns False when there is nothing to do (no such table, or already sealed)."""
    current = audit_log_owner(admin)
    if current is None or current == owner:
        return False
    table, sequence = sql.Identifier("public", "audit_log"), sql.Identifier("public", "audit_log_id_seq")
    role, new_owner = sql.Identifier(service_role), sql.Identifier(owner)
    with admin.transaction():
        admin.execute(sql.SQL("ALTER TABLE {} OWNER TO {}").format(table, new_owner))  # its sequence goes with it
        admin.execute(sql.SQL("REVOKE ALL ON {} FROM PUBLIC, {}").format(table, role))
        admin.execute(sql.SQL("GRANT SELECT, INSERT ON {} TO {}").format(table, role))
        admin.execute(sql.SQL("GRANT USAGE, SELECT ON SEQUENCE {} TO {}").format(sequence, role))
    return True


def unseal_audit_log(admin: psycopg.Connection, *, service_role: str) -> bool:
    """Give ``audit_log`` back to ``service_role`` (for a downgrade that drops it). Returns False when there was
    nothing to do."""
    current = audit_log_owner(admin)
    if current is None or current == service_role:
        return False
    admin.execute(sql.SQL("ALTER TABLE public.audit_log OWNER TO {}").format(sql.Identifier(service_role)))
    return True
