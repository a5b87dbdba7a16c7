"""Changes to place-name records, ready for the write path (``placename`` role, issue 3).

Each function works inside the caller's transaction (the caller commits), records who made the change through
the ``gis.user`` setting that the database's change log reads, and leaves every search key to the database
trigger, so nothing can go stale. None of them is exposed over HTTP yet: authentication does not exist.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import sqlalchemy as sa

from gis_service.errors import InvalidInputError, NotFoundError
from gis_service.pinyin import romanize

__all__ = ["RenameResult", "rename_place_name", "set_pinyin_override", "cancel_place_name", "check_spelling"]

# Letters of Hanyu Pinyin with tone marks, spaces, apostrophes and hyphens, as the national database writes them.
_SPELLING = re.compile(r"^[A-Za-zāáǎàēéěèīíǐìōóǒòūúǔùǖǘǚǜüÜĀÁǍÀĒÉĚÈĪÍǏÌŌÓǑÒŪÚǓÙǕǗǙǛêÊ' \-]{1,200}$")


@dataclass(frozen=True)
class RenameResult:
    #: The record that now carries the new name (the same id as before: references stay valid).
    place_name_id: int
    #: The historical record created for the old name, pointing at ``place_name_id`` as its successor.
    former_name_id: int


def _as_user(conn: sa.Connection, changed_by: str, note: str | None) -> None:
    if not changed_by or not changed_by.strip():
        raise InvalidInputError("changed_by must name the person making the change")
    conn.execute(sa.text("SELECT set_config('gis.user', :user, true), set_config('gis.change_note', :note, true)"),
                 {"user": changed_by.strip(), "note": note or ""})


def _current(conn: sa.Connection, place_name_id: int):
    row = conn.execute(sa.text("SELECT * FROM place_names WHERE id = :id FOR UPDATE"), {"id": place_name_id}).first()
    if row is None:
        raise NotFoundError(f"no place name has id {place_name_id}")
    return row


def check_spelling(spelling: str) -> str:
    """A manual pinyin spelling, trimmed; InvalidInputError unless it is Hanyu Pinyin letters (tone marks allowed)."""
    spelling = " ".join(spelling.split())
    if not _SPELLING.match(spelling):
        raise InvalidInputError(f"pinyin must be Hanyu Pinyin letters with tone marks, spaces and apostrophes, e.g. "
                                f"\"Cháoyáng Shèqū\"; got {spelling!r}")
    return spelling


def set_pinyin_override(conn: sa.Connection, place_name_id: int, spelling: str | None, *, changed_by: str,
                        note: str | None = None) -> None:
    """Set (or clear, with None) the pinyin the office decided for a name with a polyphonic character (多音字).

    The search keys follow at once (the trigger recomputes them); the generated spelling stays searchable too.
    """
    _current(conn, place_name_id)
    _as_user(conn, changed_by, note)
    conn.execute(sa.text("UPDATE place_names SET pinyin_manual = :spelling WHERE id = :id"),
                 {"spelling": check_spelling(spelling) if spelling is not None else None, "id": place_name_id})


def rename_place_name(conn: sa.Connection, place_name_id: int, new_name: str, *, changed_by: str,
                      note: str | None = None, pinyin_manual: str | None = None) -> RenameResult:
    """Rename a current place name, keeping the old name as a historical record whose successor is the renamed one.

    The renamed record keeps its id; its generated pinyin is redone and any manual pinyin is replaced by
    ``pinyin_manual`` (None: cleared, since it spelled the old name). Searching the old name then answers the
    new one with ``match: former_name``.
    """
    new_name = new_name.strip()
    if not 1 <= len(new_name) <= 100:
        raise InvalidInputError("the new name must be 1 to 100 characters long")
    row = _current(conn, place_name_id)
    if row.status != "current":
        raise InvalidInputError(f"place name {place_name_id} ({row.name}) is {row.status}; only a current name "
                                "can be renamed")
    if row.name == new_name:
        raise InvalidInputError(f"place name {place_name_id} is already called {new_name}")
    _as_user(conn, changed_by, note)
    former_id = conn.execute(sa.text(
        "INSERT INTO place_names (name, pinyin, pinyin_manual, category, division_code, meaning, origin, history, "
        "status, successor_id, heritage_listed, data_source, geom) "
        "SELECT name, pinyin, pinyin_manual, category, division_code, meaning, origin, history, 'historical', id, "
        "heritage_listed, data_source, geom FROM place_names WHERE id = :id RETURNING id"),
        {"id": place_name_id}).scalar_one()
    conn.execute(sa.text(
        "INSERT INTO place_name_events (place_name_id, action, changed_by, note, new_values) "
        "VALUES (:id, 'created', :user, :note, "
        "jsonb_build_object('name', CAST(:old_name AS text), 'successor_id', CAST(:successor AS bigint)))"),
        {"id": former_id, "user": changed_by.strip(), "note": note, "old_name": row.name, "successor": place_name_id})
    history_line = f"{row.name}更名为{new_name}"
    conn.execute(sa.text(
        "UPDATE place_names SET name = :name, pinyin = :pinyin, pinyin_manual = :manual, "
        "history = CASE WHEN coalesce(history, '') = '' THEN :line ELSE history || '；' || :line END "
        "WHERE id = :id"),
        {"name": new_name, "pinyin": romanize(new_name),
         "manual": check_spelling(pinyin_manual) if pinyin_manual else None, "line": history_line,
         "id": place_name_id})
    return RenameResult(place_name_id=place_name_id, former_name_id=former_id)


def cancel_place_name(conn: sa.Connection, place_name_id: int, *, changed_by: str, note: str | None = None,
                      successor_id: int | None = None) -> None:
    """Cancel (注销) a current place name; with ``successor_id`` searches for it answer that name instead."""
    row = _current(conn, place_name_id)
    if row.status != "current":
        raise InvalidInputError(f"place name {place_name_id} ({row.name}) is already {row.status}")
    _as_user(conn, changed_by, note)
    conn.execute(sa.text("UPDATE place_names SET status = 'cancelled', successor_id = :successor WHERE id = :id"),
                 {"successor": successor_id, "id": place_name_id})
