"""Every error a user can cause or meet: one class per failure, each with its HTTP status, a stable ``code`` and a
plain message (``str(error)``).

The codes are the contract: every error answer is ``{"code", "description", "request_id"}``, and a client branches on
``code``, never on the wording. They follow the OGC API exception style (``InvalidParameterValue``, ``NotFound``),
one code per meaning: several classes may share one (an unknown layer and an unknown map are both ``NotFound``),
but a code always goes with the same status. :data:`CODES` lists them, and the API document takes its list from
there. Errors that the middleware answers without a route (a token in the URL, a body too large, a statement
stopped by the database) have classes here too, so that their codes are written once.

Pure: no database access, no web framework.
"""

from __future__ import annotations

import math
from typing import ClassVar


class GisServiceError(Exception):
    """Base class: ``str(error)`` is the message shown to the user; ``headers`` go with the HTTP answer."""

    status_code: ClassVar[int] = 500
    code: ClassVar[str] = "ServerError"
    #: Exit code of the CLI when this error ends a command.
    exit_code: ClassVar[int] = 1
    headers: dict[str, str] | None = None


# -- 400 ---------------------------------------------------------------------------------------------------------

class InvalidInputError(GisServiceError):
    """A request or file the service cannot accept; nothing was written."""

    status_code = 400
    code = "InvalidParameterValue"


class FilterError(InvalidInputError):
    """A filter that cannot be parsed or that uses something the layer does not have."""


class BackupFileError(InvalidInputError):
    """A file given as a backup that is missing, unreadable, damaged or not a gis-service backup.

    Raised before anything is changed: the database is left as it was.
    """

    exit_code = 2


class LimitExceeded(InvalidInputError):
    """Input beyond one of the limits of :mod:`gis_service.limits`; nothing was parsed and nothing was written."""

    code = "LimitExceeded"


class TokenInUrl(InvalidInputError):
    """A bearer token sent in the query string: refused, since URLs end up in logs and browser history."""

    code = "TokenInUrl"


class ClientDisconnected(InvalidInputError):
    """The connection closed before the request body arrived (nobody reads this answer; the access log does)."""

    code = "ClientDisconnected"


# -- 401, 403 ------------------------------------------------------------------------------------------------------

class AuthenticationRequired(GisServiceError):
    """401, with the ``WWW-Authenticate`` challenge RFC 6750 asks for (``invalid_token`` when one was sent)."""

    status_code = 401
    code = "AuthenticationRequired"

    def __init__(self, message: str = "this request needs a bearer token: send 'Authorization: Bearer <token>' "
                 "(create one with `gis-service token create --role ROLE --name NAME`)", *, token_sent: bool = False):
        super().__init__(message)
        self.headers = {"WWW-Authenticate": 'Bearer realm="gis-service"' +
                        (', error="invalid_token"' if token_sent else "")}


class Forbidden(GisServiceError):
    """The token's role may not make this change."""

    status_code = 403
    code = "Forbidden"


# -- 404, 405 ------------------------------------------------------------------------------------------------------

class NotFoundError(GisServiceError):
    """No such collection, feature, record or resource."""

    status_code = 404
    code = "NotFound"


class UnknownLayerError(NotFoundError):
    def __init__(self, layer_id: str, known: list[str]):
        super().__init__(f"unknown layer {layer_id!r}; the layers are: {', '.join(known)}")


class TileOutOfRange(NotFoundError):
    """A tile that is not on the WebMercatorQuad grid."""


class UnknownMapError(NotFoundError):
    def __init__(self, name: str, known: tuple[str, ...]):
        super().__init__(f"unknown map {name!r}; the maps are: {', '.join(known)}")


class MethodNotAllowed(GisServiceError):
    """The path exists, the method does not (the answer's ``Allow`` header lists the ones that do)."""

    status_code = 405
    code = "MethodNotAllowed"


# -- 409 -----------------------------------------------------------------------------------------------------------

class ClusterBusyError(GisServiceError):
    """Another process already serves from the same data folder."""

    status_code = 409
    code = "Conflict"
    exit_code = 2


class NoNetworkError(GisServiceError):
    """The roads layer is empty: nothing to measure along."""

    status_code = 409
    code = "Conflict"


# -- 412, 413, 415, 422, 428, 429 ----------------------------------------------------------------------------------

class PreconditionFailed(GisServiceError):
    """If-Match names a version of the feature that is no longer the current one."""

    status_code = 412
    code = "PreconditionFailed"


class PayloadTooLarge(GisServiceError):
    """A request body over GIS_MAX_BODY_BYTES."""

    status_code = 413
    code = "PayloadTooLarge"


class UnsupportedMediaType(GisServiceError):
    status_code = 415
    code = "UnsupportedMediaType"


class ImportRejected(InvalidInputError):
    """An import (or a feature) in which some rows are bad: every problem is listed and nothing is written."""

    status_code = 422
    code = "FeatureRejected"

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


class PreconditionRequired(GisServiceError):
    """A change to an existing feature sent without If-Match."""

    status_code = 428
    code = "PreconditionRequired"


class TooManyWrites(GisServiceError):
    """A token's writes beyond the rate limit (see :mod:`gis_service.api.ratelimit`)."""

    status_code = 429
    code = "TooManyRequests"

    def __init__(self, per_minute: int, retry_after_s: float):
        self.headers = {"Retry-After": str(max(1, math.ceil(retry_after_s)))}
        super().__init__(f"this token has made more than {per_minute} changes in the last minute; wait "
                         f"{self.headers['Retry-After']} s and send the change again (nothing was written)")


# -- 500, 503 ------------------------------------------------------------------------------------------------------

class RecipeError(GisServiceError):
    """A map recipe file that cannot be used: a mistake in the repository, not in the request."""


class SetupError(GisServiceError):
    """The machine lacks something the service needs (PostgreSQL, PostGIS, permissions)."""

    status_code = 503
    code = "ServiceUnavailable"
    exit_code = 2


class Busy(GisServiceError):
    """The service or the feature is busy with other requests just now: the same request can succeed shortly."""

    status_code = 503
    code = "Busy"

    def __init__(self, message: str, *, retry_after_s: int = 1):
        super().__init__(message)
        self.headers = {"Retry-After": str(retry_after_s)}


class AnalysesBusyError(Busy):
    """Every analysis turn is taken and the queue is full, or the wait for a turn was too long."""

    def __init__(self, message: str):
        super().__init__(message, retry_after_s=5)


class NetworkBuildingError(Busy):
    """The road network is being built after a change to the roads: analyses cannot start until it is."""

    def __init__(self, retry_after_s: float):
        retry = max(1, math.ceil(retry_after_s))
        super().__init__(f"the road network is being built after a change to the roads; analyses answer again in "
                         f"about {retry} s: send the request again then", retry_after_s=retry)


class QueryTimeout(GisServiceError):
    """The request asked for more work than its time budget allows and was stopped; ask for less."""

    status_code = 503
    code = "QueryTimeout"

    def __init__(self, message: str, *, retry_after_s: float = 1):
        super().__init__(message)
        self.headers = {"Retry-After": str(max(1, math.ceil(retry_after_s)))}


class AnalysisTimeout(QueryTimeout):
    """An analysis used up its time budget and was stopped. Retry-After is the budget: the same request takes as
    long again, so a client should not repeat it at once (and the service may be less busy by then)."""

    def __init__(self, message: str, *, budget_s: float):
        super().__init__(message, retry_after_s=budget_s)


class DatabaseUnavailable(GisServiceError):
    """The database cannot be reached just now (stopped or restarting); the service answers again by itself."""

    status_code = 503
    code = "DatabaseUnavailable"

    def __init__(self, message: str, *, retry_after_s: int):
        super().__init__(message)
        self.headers = {"Retry-After": str(retry_after_s)}


#: Code of an HTTP error the framework raised with a status no class above has (none is expected).
HTTP_ERROR_CODE = "HTTPError"


def _all_classes(base: type[GisServiceError]) -> list[type[GisServiceError]]:
    found = [base]
    for sub in base.__subclasses__():
        found += _all_classes(sub)
    return found


def _codes() -> dict[str, int]:
    codes: dict[str, int] = {}
    for cls in _all_classes(GisServiceError):
        if codes.setdefault(cls.code, cls.status_code) != cls.status_code:
            raise AssertionError(f"code {cls.code} is used with two statuses")  # a mistake in this module
    return dict(sorted(codes.items(), key=lambda item: (item[1], item[0])))


#: Every code the service answers with, and its HTTP status, ordered by status.
CODES: dict[str, int] = _codes()


def codes_for(status: int) -> list[str]:
    """The codes an answer with ``status`` may carry."""
    return [code for code, code_status in CODES.items() if code_status == status]


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


class SignInNeeded(Exception):
    """Not an error answer: a browser opened a page that needs a token without a session, and is sent (303) to
    ``location``, the sign-in page, which sends it back afterwards (``gis_service.api.session.sign_in_needed``)."""

    def __init__(self, location: str):
        super().__init__("sign in first")
        self.location = location
