"""Writes (OGC API - Features Part 4 style): create, replace, patch, delete; history; marker inspections.

Writing needs ``Authorization: Bearer <token>`` with a role allowed to change the layer, and every change to an
existing feature needs ``If-Match`` with the ETag from the last read (428 without, 412 when stale).
"""

from __future__ import annotations

import json
import re
from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Header, Path, Request, Response
from fastapi.responses import JSONResponse
from pyproj import CRS
from pyproj.exceptions import CRSError

from gis_service import edits
from gis_service.api import middleware
from gis_service.api.deps import ConnectionDep, SessionDep, SettingsDep
from gis_service.auth import Principal, authenticate
from gis_service.errors import GisServiceError, InvalidInputError, NotFoundError
from gis_service.layers import get_layer
from gis_service.layers.base import Layer

router = APIRouter(tags=["edits"])

JSON_TYPES = ("application/json", "application/geo+json")


class UnsupportedMediaType(GisServiceError):
    status_code = 415


def principal(request: Request, conn: ConnectionDep, authorization: Annotated[str | None, Header(
        description="Bearer token: `Bearer gis_...` (see `gis-service token create`).")] = None) -> Principal:
    """The token's holder, once the token is checked and its write counted against the rate limit."""
    who = authenticate(conn, authorization)
    request.app.state.write_limiter.spend(who.token_id)
    return who


PrincipalDep = Annotated[Principal, Depends(principal)]
CollectionId = Annotated[str, Path(description="Layer id, e.g. elder_care.", max_length=64)]
FeatureId = Annotated[int, Path(description="Feature id (a positive whole number).", ge=1, le=2**62)]
IfMatch = Annotated[str | None, Header(description="The ETag from your last GET of the feature.")]
ContentCrs = Annotated[str | None, Header(description="CRS of the body's coordinates, e.g. "
                                          "<http://www.opengis.net/def/crs/EPSG/0/4490>; default CRS84 (lon, lat).")]


def request_id(request: Request, x_request_id: Annotated[str | None, Header(
        description="Your id for this request (letters, digits, . _ : -, at most 100), kept in the audit trail and "
        "the log; one is made when absent. Answers carry it in X-Request-ID.")] = None) -> str:
    return middleware.request_id(request)


RequestId = Annotated[str, Depends(request_id)]


async def json_body(request: Request) -> object:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in JSON_TYPES:
        raise UnsupportedMediaType(f"send the feature as application/geo+json or application/json; "
                                   f"got {media or 'no Content-Type'}")
    raw = await request.body()  # at most GIS_MAX_BODY_BYTES: the middleware answers 413 beyond
    try:
        return json.loads(raw, parse_constant=_refuse_constant)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"the body is not valid JSON: {exc}") from None


def _refuse_constant(name: str):
    raise InvalidInputError(f"the body contains {name}, which is not a JSON number")


BodyDep = Annotated[object, Depends(json_body)]


def parse_content_crs(header: str | None) -> CRS:
    if not header:
        return edits.CRS84
    text = header.strip().strip("<>").strip()
    match = re.fullmatch(r"https?://www\.opengis\.net/def/crs/(EPSG|OGC)/[0-9.]+/([0-9A-Za-z]+)", text)
    if match:
        text = f"{match.group(1)}:{match.group(2)}"
    try:
        return CRS.from_user_input(text)
    except CRSError:
        raise InvalidInputError(f"Content-Crs {header[:80]!r} is not a CRS; use e.g. "
                                "<http://www.opengis.net/def/crs/EPSG/0/4490>") from None


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
             "import is; 201 with Location and ETag.")
def create_item(request: Request, collectionId: CollectionId, body: BodyDep, session: SessionDep,
                settings: SettingsDep, who: PrincipalDep, rid: RequestId,
                content_crs: ContentCrs = None) -> JSONResponse:
    layer = writable_layer(collectionId)
    conn = session.connection()
    change = edits.create_feature(conn, layer, body, principal=who, settings=settings,
                                  crs=parse_content_crs(content_crs), request_id=rid)
    snapshot = edits.snapshot(conn, layer, change.feature_id)
    session.commit()
    return _feature_response(layer, snapshot, status_code=201, etag=change.etag(layer.id),
                             base=str(request.base_url).rstrip("/"))


def _update(request: Request, collection_id: str, feature_id: int, body: object, session, settings, who,
            if_match, content_crs, request_id, *, partial: bool) -> JSONResponse:
    layer = writable_layer(collection_id)
    conn = session.connection()
    change = edits.update_feature(conn, layer, feature_id, body, principal=who, settings=settings,
                                  if_match=if_match, partial=partial, crs=parse_content_crs(content_crs),
                                  request_id=request_id)
    snapshot = edits.snapshot(conn, layer, feature_id)
    session.commit()
    return _feature_response(layer, snapshot, status_code=200, etag=change.etag(layer.id),
                             base=str(request.base_url).rstrip("/"))


@router.put("/collections/{collectionId}/items/{featureId}", summary="Replace a feature",
            description="Body: the whole new GeoJSON Feature. Needs If-Match with the feature's ETag.")
def replace_item(request: Request, collectionId: CollectionId, featureId: FeatureId, body: BodyDep,
                 session: SessionDep, settings: SettingsDep, who: PrincipalDep, rid: RequestId,
                 if_match: IfMatch = None, content_crs: ContentCrs = None) -> JSONResponse:
    return _update(request, collectionId, featureId, body, session, settings, who, if_match, content_crs,
                   rid, partial=False)


@router.patch("/collections/{collectionId}/items/{featureId}", summary="Change some properties of a feature",
              description="Body: a GeoJSON Feature with only the properties (and optionally the geometry) that "
              "change. Needs If-Match with the feature's ETag.")
def patch_item(request: Request, collectionId: CollectionId, featureId: FeatureId, body: BodyDep,
               session: SessionDep, settings: SettingsDep, who: PrincipalDep, rid: RequestId,
               if_match: IfMatch = None, content_crs: ContentCrs = None) -> JSONResponse:
    return _update(request, collectionId, featureId, body, session, settings, who, if_match, content_crs,
                   rid, partial=True)


@router.delete("/collections/{collectionId}/items/{featureId}", status_code=204, summary="Delete a feature",
               description="Needs If-Match with the feature's ETag. The audit trail keeps the deleted feature.")
def delete_item(collectionId: CollectionId, featureId: FeatureId, session: SessionDep, who: PrincipalDep,
                rid: RequestId, if_match: IfMatch = None) -> Response:
    layer = writable_layer(collectionId)
    edits.delete_feature(session.connection(), layer, featureId, principal=who, if_match=if_match,
                         request_id=rid)
    session.commit()
    return Response(status_code=204)


@router.get("/collections/{collectionId}/items/{featureId}/history", summary="A feature's past versions",
            description="Every accepted change of the feature, oldest first: who, when, the action, and the "
            "feature before and after (GeoJSON geometry in EPSG:4326).")
def item_history(collectionId: CollectionId, featureId: FeatureId, conn: ConnectionDep) -> dict:
    layer = writable_layer(collectionId)
    history = edits.feature_history(conn, layer, featureId)
    return {"collection": layer.id, "featureId": featureId, "numberOfVersions": len(history), "changes": history}


@router.post("/collections/boundary_markers/items/{featureId}/inspections", status_code=201,
             summary="Record an inspection of a boundary marker",
             description='Body: {"inspected_on": "YYYY-MM-DD", "condition": "intact|damaged|missing|displaced", '
             '"notes": "..."}; the inspector is the token\'s holder. Updates the marker\'s condition and '
             "last-inspected date in the same transaction.")
def create_inspection(featureId: FeatureId, body: BodyDep, session: SessionDep, who: PrincipalDep,
                      rid: RequestId) -> JSONResponse:
    record = edits.record_inspection(session.connection(), featureId, body, principal=who, request_id=rid)
    session.commit()
    return JSONResponse(record, status_code=201, headers={"ETag": record["etag"]})


@router.get("/collections/boundary_markers/items/{featureId}/inspections", summary="A marker's inspections",
            description="The inspection records of a boundary marker, newest first.")
def list_inspections(featureId: FeatureId, conn: ConnectionDep) -> dict:
    if conn.execute(sa.text("SELECT 1 FROM boundary_markers WHERE id = :id"), {"id": featureId}).scalar() is None:
        raise NotFoundError(f"boundary_markers has no feature {featureId}")
    rows = conn.execute(sa.text(
        "SELECT id, inspected_on, inspector, condition, notes FROM marker_inspections WHERE marker_id = :id "
        "ORDER BY inspected_on DESC, id DESC"), {"id": featureId}).mappings().all()
    return {"markerId": featureId, "inspections": [
        {**row, "inspected_on": row["inspected_on"].isoformat()} for row in rows]}
