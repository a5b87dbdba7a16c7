"""The service's OpenAPI document: the errors every operation can answer, the bodies read by hand, and the
details that depend on the settings.

Each router says which error statuses its operations send (``responses=error_responses(400, 404, 503)``) and
describes the bodies it reads itself (``openapi_extra=feature_body(...)``); :func:`install_openapi` then
finishes FastAPI's document once, in one place:

- adds the shared schemas (the error body of :func:`gis_service.api.middleware.error_response`, GeoJSON
  features and geometries, an inspection);
- drops the 422 FastAPI lists for every operation with parameters: the service answers a parameter FastAPI
  cannot read with 400 (``InvalidParameterValue``); only writes send 422, for a feature that breaks the layer's
  rules, and they say so themselves;
- makes optional query and header parameters plain (no JSON ``null``: an absent parameter is how "none" is
  sent), and array query parameters comma-separated (``bbox=1,2,3,4``);
- lists the CRSs a request may name and bounds the points a look-up may name, which depend on the county (its
  Gauss-Krüger zone);
- with ``GIS_READ_REQUIRES_TOKEN``, marks every operation but ``/health`` and the sign-in page (and its files) as
  needing a token.

``/api`` serves the same document as OpenAPI 3.0 (:mod:`gis_service.ogc.openapi`).
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI

from gis_service.api.session import open_to_all
from gis_service.edits import FINDING, IF_MATCH_PATTERN, INSPECTED, MAX_NOTES_LENGTH
from gis_service.errors import CODES, HTTP_ERROR_CODE, codes_for
from gis_service.layers import LAYERS, get_layer
from gis_service.limits import BODY_LIMITS_DOC
from gis_service.ogc.crs import content_crs_names, crs_names
from gis_service.search.queries import measure_area
from gis_service.settings import Settings

GEOJSON = "application/geo+json"
ERROR_SCHEMA_REF = "#/components/schemas/Exception"

_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before trying again.",
                                "schema": {"type": "string", "pattern": "^[0-9]+$"}}}
_CHALLENGE = {"WWW-Authenticate": {"description": 'The scheme to use (RFC 6750): Bearer realm="gis-service", with '
                                   'error="invalid_token" when the token sent is unknown, revoked or expired.',
                                   "schema": {"type": "string", "pattern": "^Bearer "}}}
#: What each error status means in this service; the body always says exactly what was wrong.
ERRORS: dict[int, str] = {
    400: "A parameter, header or the body is not valid; `description` names it, says what was expected and "
         "shows what was sent.",
    401: "No bearer token, or one that is unknown, revoked or expired (`Authorization: Bearer <token>`; tokens "
         "expire after a year unless made with another --expires).",
    403: "The token's role may not change this layer (or these fields).",
    404: "No such collection, feature, record or resource.",
    409: "The data does not allow the request now: the roads layer is empty, so there is nothing to measure "
         "along (import roads first).",
    412: "If-Match does not name the feature's current ETag: it changed since it was read. GET it again and "
         "reapply the change.",
    413: "The request body is larger than the service accepts (GIS_MAX_BODY_BYTES, 5 MiB by default).",
    415: "The body is not sent as application/geo+json or application/json.",
    422: "The body was read, but the feature breaks the layer's rules (geometry, fields, codes); every problem is "
         "listed and nothing was written.",
    428: "The change needs If-Match with the feature's ETag from its last GET.",
    429: "This token made too many changes in the last minute; nothing was written. Retry-After says when to "
         "try again.",
    503: "The database stopped the request (too much asked at once), is busy, or cannot be reached just now "
         "(stopped or restarting); Retry-After says when to try again.",
}


def error_responses(*status_codes: int) -> dict[int | str, dict]:
    """``responses=`` entries for the error statuses an operation sends, each with the shared error body."""
    responses: dict[int | str, dict] = {}
    for status in status_codes:
        codes = ", ".join(f"`{code}`" for code in codes_for(status))
        response = {"description": f"{ERRORS[status]} Codes: {codes}.",
                    "content": {"application/json": {"schema": {"$ref": ERROR_SCHEMA_REF}}}}
        if status in (429, 503):
            response["headers"] = _RETRY_AFTER
        if status == 401:
            response["headers"] = _CHALLENGE
        responses[status] = response
    return responses


def feature_body(*, partial: bool) -> dict:
    """``openapi_extra`` describing a feature body (read by hand, so FastAPI cannot see it)."""
    schema = {"$ref": "#/components/schemas/FeaturePatch" if partial else "#/components/schemas/Feature"}
    description = ("A JSON Merge Patch (RFC 7396) of the feature: the properties that change (null clears one) "
                   "and, optionally, the whole new geometry."
                   if partial else "A GeoJSON Feature: the layer's properties (see its /queryables) and a "
                   "geometry of the layer's type, in CRS84 unless Content-Crs names another CRS.")
    return {"requestBody": {"required": True, "description": f"{description} {BODY_LIMITS_DOC}",
                            "content": {**({"application/merge-patch+json": {"schema": schema}} if partial else {}),
                                        GEOJSON: {"schema": schema}, "application/json": {"schema": schema}}}}


def inspection_body() -> dict:
    """``openapi_extra`` describing an inspection record's body."""
    schema = {"$ref": "#/components/schemas/Inspection"}
    return {"requestBody": {"required": True, "description": "The inspection; the inspector is the token's holder. "
                            + BODY_LIMITS_DOC,
                            "content": {"application/json": {"schema": schema}, GEOJSON: {"schema": schema}}}}


def if_match_header() -> dict:
    """``openapi_extra`` declaring If-Match as required. (The endpoint reads it itself, to answer a missing one
    with 428 rather than FastAPI's 400.)"""
    return {"parameters": [{
        "name": "If-Match", "in": "header", "required": True,
        "description": 'The ETag from your last GET of the feature, e.g. "elder_care.12.v3", a comma-separated '
                       "list of them, or * (any version). 428 without it (unless the token was made with "
                       "--no-if-match: the last write wins), 412 when the feature has changed since or the tag is "
                       'weak (W/"...": RFC 9110 strong comparison).',
        "schema": {"type": "string", "pattern": IF_MATCH_PATTERN}}]}


_POSITION = {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2,
             "description": "x, y: longitude, latitude in CRS84 (the default); easting, northing or latitude, "
             "longitude in the Content-Crs's axis order otherwise. 2-D only."}
_LINE = {"type": "array", "items": _POSITION, "minItems": 2}
_RING = {"type": "array", "items": _POSITION, "minItems": 4,
         "description": "A closed ring: at least 4 positions, the last equal to the first."}
_POLYGON = {"type": "array", "items": _RING, "minItems": 1}
_GEOMETRY_COORDINATES = {
    "Point": _POSITION,
    "MultiPoint": {"type": "array", "items": _POSITION, "minItems": 1},
    "LineString": _LINE,
    "MultiLineString": {"type": "array", "items": _LINE, "minItems": 1},
    "Polygon": _POLYGON,
    "MultiPolygon": {"type": "array", "items": _POLYGON, "minItems": 1},
}
_PROPERTY_VALUE = {"anyOf": [{"type": "string"}, {"type": "number"}, {"type": "boolean"},
                             {"type": "array", "items": {"type": "string"}}, {"type": "null"}]}


def _geometry_schema(kind: str) -> dict:
    return {"type": "object", "title": kind, "required": ["type", "coordinates"],
            "properties": {"type": {"type": "string", "enum": [kind]}, "coordinates": _GEOMETRY_COORDINATES[kind]}}


def _feature_schema(*, partial: bool) -> dict:
    geometry: dict = {"$ref": "#/components/schemas/Geometry"}
    if partial:
        geometry = {"anyOf": [geometry, {"type": "null"}], "description": "The new geometry; absent or null: "
                    "the geometry stays."}
    return {
        "type": "object",
        "title": "FeaturePatch" if partial else "Feature",
        "required": [] if partial else ["type", "geometry"],
        "properties": {
            "type": {"type": "string", "enum": ["Feature"]},
            "id": {"description": "The feature's id, assigned by the service (ignored in a request body)."},
            "geometry": geometry,
            "properties": {
                "anyOf": [{"type": "object", "additionalProperties": _PROPERTY_VALUE}, {"type": "null"}],
                "description": "The layer's fields (see /collections/{collectionId}/queryables): text, numbers, "
                "true/false, dates as YYYY-MM-DD, lists of names. Computed fields (length_m) are ignored.",
            },
        },
    }


SCHEMAS: dict[str, dict] = {
    "Exception": {
        "type": "object",
        "title": "Exception",
        "description": "Every error: the OGC API exception shape plus the request id the log line carries.",
        "required": ["code", "description", "request_id"],
        "properties": {
            "code": {"type": "string", "enum": [*CODES, HTTP_ERROR_CODE],
                     "description": "What failed: a stable code, one per meaning, each always with the same HTTP "
                     "status (listed with each status's answer); branch on it, not on the description. "
                     f"{HTTP_ERROR_CODE}: a status the service does not otherwise send."},
            "description": {"type": "string", "description": "What was wrong and how to fix it."},
            "request_id": {"type": "string", "description": "The request's id (X-Request-ID): quote it when "
                           "reporting a problem."},
        },
    },
    "Geometry": {"title": "Geometry", "description": "A GeoJSON geometry of the layer's type (a Polygon is "
                 "accepted for a MultiPolygon layer, a LineString for a MultiLineString one).",
                 "oneOf": [{"$ref": f"#/components/schemas/{kind}"} for kind in _GEOMETRY_COORDINATES]},
    **{kind: _geometry_schema(kind) for kind in _GEOMETRY_COORDINATES},
    "Feature": _feature_schema(partial=False),
    "FeaturePatch": _feature_schema(partial=True),
    "Inspection": {
        "type": "object",
        "title": "Inspection",
        "required": ["condition"],
        "additionalProperties": False,
        "properties": {
            "condition": {"type": "string", "enum": list(get_layer(INSPECTED).field_named(FINDING).codes),
                          "description": "What the inspector found."},
            "inspected_on": {"anyOf": [{"type": "string", "format": "date", "pattern": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"},
                                       {"type": "null"}],
                             "description": "YYYY-MM-DD, not in the future; absent or null: today."},
            "notes": {"anyOf": [{"type": "string", "maxLength": MAX_NOTES_LENGTH, "pattern": r"^[^\x00-\x08]*$"},
                                {"type": "null"}],
                      "description": f"Free text, at most {MAX_NOTES_LENGTH:,} characters."},
        },
    },
}

_UNUSED_BY_SERVICE = ("HTTPValidationError", "ValidationError")


def install_openapi(app: FastAPI, settings: Settings) -> None:
    """Make ``app.openapi()`` return FastAPI's document finished as the module docstring says (built once)."""
    build: Callable[[], dict] = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            finish(build(), settings)  # build() stores the document in app.openapi_schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def finish(document: dict, settings: Settings) -> dict:
    """Finish FastAPI's document in place (see the module docstring) and return it."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name in _UNUSED_BY_SERVICE:
        schemas.pop(name, None)
    schemas.update(SCHEMAS)
    west, south, east, north = measure_area(settings.measure_srid)
    by_name = {  # parameter name -> schema keywords that depend on the settings
        "crs": {"type": "string", "enum": crs_names(settings.measure_srid)},
        "bbox-crs": {"type": "string", "enum": crs_names(settings.measure_srid)},
        "filter-crs": {"type": "string", "enum": crs_names(settings.measure_srid)},
        "content-crs": {"type": "string", "enum": content_crs_names(settings.measure_srid)},
        "lon": {"minimum": west, "maximum": east},
        "lat": {"minimum": south, "maximum": north},
    }
    for path, operations in document.get("paths", {}).items():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            if _refs(responses.get("422"), "HTTPValidationError"):
                del responses["422"]
            for parameter in operation.get("parameters", []):
                if parameter.get("in") != "path":
                    parameter["schema"] = _without_null(parameter.get("schema", {}))
                if parameter.get("in") == "query" and parameter["schema"].get("type") == "array":
                    parameter.update(style="form", explode=False)  # bbox=1,2,3,4, as OGC API writes it
                parameter["schema"].update(by_name.get(parameter["name"].lower(), {}))
            if settings.read_requires_token and not open_to_all(path):
                operation.setdefault("security", [{"bearer": []}])
                responses.update({str(k): v for k, v in error_responses(401).items()})
    declare_property_filters(document)
    if settings.read_requires_token:
        schemes = document["components"].setdefault("securitySchemes", {})
        schemes.setdefault("bearer", {"type": "http", "scheme": "bearer"})
    return document


#: The JSON Schema type of a property filter's value, per field type.
_FILTER_TYPES = {"integer": {"type": "integer"}, "number": {"type": "number"}, "boolean": {"type": "boolean"},
                 "date": {"type": "string", "format": "date"}}


def declare_property_filters(document: dict) -> None:
    """Each collection's items path spelled out (``/collections/roads/items``) with its queryables as query
    parameters (OGC API - Features Part 1, 7.15.5): GDAL's OAPIF driver reads them there, and only then sends an
    ``-where`` on those fields to the server instead of downloading the whole collection."""
    paths = document.get("paths", {})
    template = paths.get("/collections/{collectionId}/items", {}).get("get")
    if template is None:
        return
    for layer in LAYERS.values():
        parameters = [p for p in template.get("parameters", []) if p.get("in") != "path"]
        for field in layer.fields:
            schema = dict(_FILTER_TYPES.get(field.type, {"type": "string"}))
            if field.values is not None:
                schema["enum"] = list(field.codes)
            parameters.append({"name": field.name, "in": "query", "required": False, "style": "form",
                               "explode": False, "schema": schema,
                               "description": f"Only features whose {field.name} is this value"
                               + (" (for a list, that contains it)." if field.type == "text_list" else ".")})
        paths[f"/collections/{layer.id}/items"] = {"get": {
            **{k: v for k, v in template.items() if k not in ("parameters", "operationId")},
            "operationId": f"items_{layer.id}", "summary": f"Features of {layer.id}", "parameters": parameters}}


def _refs(node: object, name: str) -> bool:
    if isinstance(node, dict):
        return node.get("$ref", "").endswith(f"/{name}") or any(_refs(v, name) for v in node.values())
    if isinstance(node, list):
        return any(_refs(v, name) for v in node)
    return False


def _without_null(schema: dict) -> dict:
    """``anyOf: [X, {type: null}]`` (FastAPI's ``str | None``) as X; keywords set beside the anyOf (by
    ``json_schema_extra``) win over X's."""
    options = schema.get("anyOf")
    if not isinstance(options, list):
        return schema
    rest = [o for o in options if o != {"type": "null"}]
    if len(rest) != 1 or len(rest) == len(options):
        return schema
    return {**rest[0], **{k: v for k, v in schema.items() if k != "anyOf"}}
