"""Writes (OGC API - Features Part 4 style): create, replace, patch, delete; history; marker inspections.

Writing needs ``Authorization: Bearer <token>`` with a role allowed to change the layer, and every change to an
existing feature needs ``If-Match`` with the ETag from the last read or ``*`` (428 without, 412 when stale or weak),
unless the token was made with ``--no-if-match``. PATCH takes a JSON Merge Patch (RFC 7396).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Request, Response
from fastapi.responses import JSONResponse
from pyproj import CRS

from gis_service import edits
from gis_service.api import middleware, session
from gis_service.api.deps import NEEDS_TOKEN, ConnectionDep, SessionDep, SettingsDep, bearer_token
from gis_service.api.openapi import GEOJSON, error_responses, feature_body, if_match_header, inspection_body
from gis_service.auth import Principal, authenticate
from gis_service.errors import InvalidInputError, UnsupportedMediaType
from gis_service.layers import LAYERS, get_layer
from gis_service.layers.base import Layer
from gis_service.limits import MAX_FEATURE_ID, load_json
from gis_service.ogc.crs import parse_crs

router = APIRouter(tags=["edits"])

JSON_TYPES = ("application/json", "application/geo+json")
#: RFC 7396 JSON Merge Patch: what QGIS sends, and what OGC API - Features Part 4 describes for PATCH.
MERGE_PATCH = "application/merge-patch+json"
#: What a write can answer besides success; 412 and 428 only where an ETag is needed.
WRITE_ERRORS = (400, 401, 403, 404, 413, 415, 429, 503)


def principal(request: Request, conn: ConnectionDep, _: Annotated[object, Depends(bearer_token)]) -> Principal:
    """The token's holder, once the token is checked and its write counted against the rate limit. (The session
    cookie of a signed-in browser counts only from this service's own pages: :mod:`gis_service.api.session`.)"""
    who = authenticate(conn, session.authorization(request, writing=True))
    request.app.state.write_limiter.spend(conn, who.token_id)
    return who


PrincipalDep = Annotated[Principal, Depends(principal)]
CollectionId = Annotated[str, Path(description="Layer id, e.g. elder_care; see /collections.",
                                   json_schema_extra={"enum": list(LAYERS)})]
FeatureId = Annotated[int, Path(description="Feature id (a positive whole number).", ge=1, le=MAX_FEATURE_ID)]
#: Read by the endpoint (428 when missing); documented by :func:`if_match_header`.
IfMatch = Annotated[str | None, Header(include_in_schema=False)]
ContentCrs = Annotated[str | None, Header(description="CRS of the body's coordinates, one of the CRSs the "
                                          "collections list, written <URI> (OGC API - Features Part 4), e.g. "
                                          "<http://www.opengis.net/def/crs/EPSG/0/4490>, or EPSG:<code>; default "
                                          "CRS84 (lon, lat). Coordinates are read in the axis order of that CRS, "
                                          "as a read in it returns them: latitude first in EPSG:4490 and 4326, "
                                          "northing first in the Gauss-Krüger zone.")]


XRequestId = Annotated[str | None, Header(
    description="Your id for this request (letters, digits, . _ : -, at most 100): logged beside the service's own "
    "id (as client_request_id), so that you can find your request in the log. The audit trail keeps the "
    "service's id, which answers carry in X-Request-ID.")]


def request_id(request: Request, x_request_id: XRequestId = None) -> str:
    return middleware.request_id(request)


RequestId = Annotated[str, Depends(request_id)]


async def json_body(request: Request) -> object:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    patching = request.method == "PATCH"
    if media not in JSON_TYPES and not (patching and media == MERGE_PATCH):
        accepted = "application/merge-patch+json, " if patching else ""
        raise UnsupportedMediaType(f"send the feature as {accepted}application/geo+json or application/json; "
                                   f"got {media or 'no Content-Type'}")
    raw = await request.body()  # at most GIS_MAX_BODY_BYTES: the middleware answers 413 beyond
    return load_json(raw, what="the body")


BodyDep = Annotated[object, Depends(json_body)]


def parse_content_crs(header: str | None, *, measure_srid: int) -> CRS:
    """The CRS of a body's coordinates: one of the served CRSs (GCJ-02 excepted), CRS84 when not given."""
    if header is None:
        return edits.CRS84
    text = header.strip()
    if text.startswith("<") and text.endswith(">"):
        text = text[1:-1].strip()
    if not text:
        raise InvalidInputError("Content-Crs is empty: leave it out for CRS84 (lon, lat), or name a CRS, e.g. "
                                "<http://www.opengis.net/def/crs/EPSG/0/4490>")
    served = parse_crs(text, parameter="Content-Crs", measure_srid=measure_srid)
    if served.gcj02:
        raise InvalidInputError("Content-Crs gcj02 is for display only: send coordinates in CRS84, CGCS2000 "
                                "(EPSG:4490) or another CRS the collections list")
    return edits.CRS84 if not served.lat_first and served.geographic else CRS.from_epsg(served.srid)


_ETAG_HEADER = {"description": "The feature's version: send it as If-Match to change the feature.",
                "schema": {"type": "string"}}
_FEATURE_ANSWER = {"description": "The feature as stored (GeoJSON, EPSG:4326), with its new ETag.",
                   "content": {GEOJSON: {"schema": {"$ref": "#/components/schemas/Feature"}}},
                   "headers": {"ETag": _ETAG_HEADER}}


def merge_patch_feature(body: object, feature_id: int, *, strict: bool) -> dict:
    """A PATCH body (RFC 7396 merge patch of the feature, ``type`` optional) as the partial Feature it amounts to:
    the properties it names (null clears one) and the geometry when given (a geometry is replaced whole).
    ``strict`` (sent as application/merge-patch+json): a null geometry would remove it, which a feature cannot do;
    as (geo+)json a null geometry has always meant "unchanged", and still does."""
    if not isinstance(body, dict):
        raise InvalidInputError('a PATCH body is a JSON object: {"properties": {"name": "..."}} and optionally '
                                '"geometry"; a property set to null is cleared')
    if body.get("type", "Feature") != "Feature":
        raise InvalidInputError(f'a PATCH body changes a Feature: its "type" may only be "Feature"; '
                                f"got {str(body['type'])[:40]!r}")
    if "id" in body and body["id"] not in (feature_id, str(feature_id)):
        raise InvalidInputError(f"a feature's id cannot be changed (the body says {str(body['id'])[:40]!r}, "
                                f"the path {feature_id})")
    if strict and "geometry" in body and body["geometry"] is None:
        raise InvalidInputError("a feature cannot lose its geometry: leave geometry out to keep it")
    unknown = set(body) - {"type", "id", "geometry", "properties", "links", "bbox"}
    if unknown:
        raise InvalidInputError(f"unknown member {sorted(unknown)[0]!r}; a PATCH body has properties and "
                                "optionally geometry")
    return {**body, "type": "Feature"}


def writable_layer(collection_id: str) -> Layer:
    return get_layer(collection_id)


def _feature_response(layer: Layer, snapshot: dict, *, status_code: int, etag: str, base: str) -> JSONResponse:
    properties = {k: v for k, v in snapshot.items() if k not in ("id", "geometry", "version")}
    body = {"type": "Feature", "id": snapshot["id"], "geometry": snapshot["geometry"], "properties": properties}
    location = f"{base}/collections/{layer.id}/items/{snapshot['id']}"
    return JSONResponse(body, status_code=status_code, media_type="application/geo+json",
                        headers={"ETag": etag, "Location": location})


@router.post("/collections/{collectionId}/items", status_code=201, summary="Create a feature",
             description="Body: a GeoJSON Feature in CRS84 (or the CRS named by Content-Crs). It is checked as an "
             "import is; 201 with Location and ETag.",
             response_class=Response, openapi_extra=feature_body(partial=False),
             responses={201: _FEATURE_ANSWER, **error_responses(*WRITE_ERRORS, 422)})
def create_item(request: Request, collectionId: CollectionId, body: BodyDep, session: SessionDep,
                settings: SettingsDep, who: PrincipalDep, rid: RequestId,
                content_crs: ContentCrs = None) -> JSONResponse:
    layer = writable_layer(collectionId)
    conn = session.connection()
    change = edits.create_feature(conn, layer, body, principal=who, settings=settings,
                                  crs=parse_content_crs(content_crs, measure_srid=settings.measure_srid),
                                  request_id=rid)
    snapshot = edits.snapshot(conn, layer, change.feature_id)
    session.commit()
    return _feature_response(layer, snapshot, status_code=201, etag=change.etag(layer.id),
                             base=str(request.base_url).rstrip("/"))


def _update(request: Request, collection_id: str, feature_id: int, body: object, session, settings, who,
            if_match, content_crs, request_id, *, partial: bool) -> JSONResponse:
    layer = writable_layer(collection_id)
    if partial:
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        body = merge_patch_feature(body, feature_id, strict=media == MERGE_PATCH)
    conn = session.connection()
    change = edits.update_feature(conn, layer, feature_id, body, principal=who, settings=settings,
                                  if_match=if_match, partial=partial,
                                  crs=parse_content_crs(content_crs, measure_srid=settings.measure_srid),
                                  request_id=request_id)
    snapshot = edits.snapshot(conn, layer, feature_id)
    session.commit()
    return _feature_response(layer, snapshot, status_code=200, etag=change.etag(layer.id),
                             base=str(request.base_url).rstrip("/"))


@router.put("/collections/{collectionId}/items/{featureId}", summary="Replace a feature",
            description="Body: the whole new GeoJSON Feature. Needs If-Match with the feature's ETag.",
            response_class=Response, openapi_extra={**feature_body(partial=False), **if_match_header()},
            responses={200: _FEATURE_ANSWER, **error_responses(*WRITE_ERRORS, 412, 422, 428)})
def replace_item(request: Request, collectionId: CollectionId, featureId: FeatureId, body: BodyDep,
                 session: SessionDep, settings: SettingsDep, who: PrincipalDep, rid: RequestId,
                 if_match: IfMatch = None, content_crs: ContentCrs = None) -> JSONResponse:
    return _update(request, collectionId, featureId, body, session, settings, who, if_match, content_crs,
                   rid, partial=False)


@router.patch("/collections/{collectionId}/items/{featureId}", summary="Change some properties of a feature",
              description="Body: a JSON Merge Patch (RFC 7396, application/merge-patch+json; application/json "
              "and application/geo+json are read the same way) of the feature: the properties that change (null "
              "clears one) and optionally the whole new geometry; `type` may be left out. Needs If-Match with "
              "the feature's ETag (or `*`).",
              response_class=Response, openapi_extra={**feature_body(partial=True), **if_match_header()},
              responses={200: _FEATURE_ANSWER, **error_responses(*WRITE_ERRORS, 412, 422, 428)})
def patch_item(request: Request, collectionId: CollectionId, featureId: FeatureId, body: BodyDep,
               session: SessionDep, settings: SettingsDep, who: PrincipalDep, rid: RequestId,
               if_match: IfMatch = None, content_crs: ContentCrs = None) -> JSONResponse:
    return _update(request, collectionId, featureId, body, session, settings, who, if_match, content_crs,
                   rid, partial=True)


@router.delete("/collections/{collectionId}/items/{featureId}", status_code=204, summary="Delete a feature",
               description="Needs If-Match with the feature's ETag. The audit trail keeps the deleted feature. "
               "400 while other features refer to it.",
               openapi_extra=if_match_header(),
               responses=error_responses(400, 401, 403, 404, 412, 428, 429, 503))
def delete_item(collectionId: CollectionId, featureId: FeatureId, session: SessionDep, who: PrincipalDep,
                rid: RequestId, if_match: IfMatch = None) -> Response:
    layer = writable_layer(collectionId)
    edits.delete_feature(session.connection(), layer, featureId, principal=who, if_match=if_match,
                         request_id=rid)
    session.commit()
    return Response(status_code=204)


@router.get("/collections/{collectionId}/items/{featureId}/history", summary="A feature's past versions",
            description="Every accepted change of the feature, oldest first: who, when, the action, and the "
            "feature before and after (GeoJSON geometry in EPSG:4326). Needs a bearer token of any role: it names "
            "the bureau's staff and keeps full copies of deleted features.",
            responses=error_responses(400, 401, 404, 503), dependencies=NEEDS_TOKEN)
def item_history(collectionId: CollectionId, featureId: FeatureId, conn: ConnectionDep) -> dict:
    layer = writable_layer(collectionId)
    history = edits.feature_history(conn, layer, featureId)
    return {"collection": layer.id, "featureId": featureId, "numberOfVersions": len(history), "changes": history}


@router.post("/collections/boundary_markers/items/{featureId}/inspections", status_code=201,
             summary="Record an inspection of a boundary marker",
             description='Body: {"inspected_on": "YYYY-MM-DD", "condition": "intact|damaged|missing|displaced", '
             '"notes": "..."}; the inspector is the token\'s holder. Updates the marker\'s condition and '
             "last-inspected date in the same transaction.",
             openapi_extra=inspection_body(),
             responses={201: {"description": "The inspection as recorded, with the marker's new ETag.",
                              "headers": {"ETag": _ETAG_HEADER}}, **error_responses(*WRITE_ERRORS)})
def create_inspection(featureId: FeatureId, body: BodyDep, session: SessionDep, who: PrincipalDep,
                      rid: RequestId) -> JSONResponse:
    record = edits.record_inspection(session.connection(), featureId, body, principal=who, request_id=rid)
    session.commit()
    return JSONResponse(record, status_code=201, headers={"ETag": record["etag"]})


@router.get("/collections/boundary_markers/items/{featureId}/inspections", summary="A marker's inspections",
            description="The inspection records of a boundary marker, newest first, with the inspectors' names. "
            "Needs a bearer token of any role. (A marker's condition and last inspection date are open: see the "
            "marker itself.)",
            responses=error_responses(400, 401, 404, 503), dependencies=NEEDS_TOKEN)
def list_inspections(featureId: FeatureId, conn: ConnectionDep) -> dict:
    return {"markerId": featureId, "inspections": edits.list_inspections(conn, featureId)}
