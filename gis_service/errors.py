"""Errors a user can cause or meet, each with the HTTP status it maps to and a plain message."""

from __future__ import annotations


class GisServiceError(Exception):
    """Base class: ``str(error)`` is the message shown to the user."""

    status_code = 500
    #: Exit code of the CLI when this error ends a command.
    exit_code = 1


class SetupError(GisServiceError):
    """The machine lacks something the service needs (PostgreSQL, PostGIS, permissions)."""

    status_code = 503
    exit_code = 2


class ClusterBusyError(GisServiceError):
    """Another process already serves from the same data folder."""

    status_code = 409
    exit_code = 2


class BackupFileError(GisServiceError):
    """A file given as a backup that is missing, unreadable, damaged or not a gis-service backup.

    Raised before anything is changed: the database is left as it was.
    """

    status_code = 400
    exit_code = 2


class NotFoundError(GisServiceError):
    status_code = 404


class UnknownLayerError(NotFoundError):
    def __init__(self, layer_id: str, known: list[str]):
        super().__init__(f"unknown layer {layer_id!r}; the layers are: {', '.join(known)}")


class InvalidInputError(GisServiceError):
    """A request or file the service cannot accept; nothing was written."""

    status_code = 400


class ImportRejected(InvalidInputError):
    """An import in which some rows are bad: every problem is listed and nothing is written."""

    status_code = 422

    def __init__(self, layer_id: str, problems: list[RowProblem], total_rows: int, *, numbering: str = ""):
        self.layer_id = layer_id
        self.problems = problems
        self.total_rows = total_rows
        shown = "\n".join(f"  {p}" for p in problems[:200])
        more = f"\n  ... and {len(problems) - 200} more" if len(problems) > 200 else ""
        bad_rows = len({p.row for p in problems if p.row is not None})
        what = f"{bad_rows} of {total_rows} rows have problems" if bad_rows else "the file has problems"
        numbering = f" ({numbering})" if numbering else ""
        super().__init__(f"import into {layer_id} rejected: {what}; nothing was written{numbering}.\n{shown}{more}")


class RowProblem:
    """One problem with one row of an import: its 1-based row number, the field and what is wrong."""

    __slots__ = ("row", "field", "message")

    def __init__(self, row: int | None, field: str | None, message: str):
        self.row, self.field, self.message = row, field, message

    def __str__(self) -> str:
        where = f"row {self.row}" if self.row is not None else "file"
        return f"{where}, {self.field}: {self.message}" if self.field else f"{where}: {self.message}"

    def as_dict(self) -> dict:
        return {"row": self.row, "field": self.field, "message": self.message}
