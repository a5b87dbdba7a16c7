"""Changing features one at a time: create, replace, patch, delete, and boundary-marker inspections.

Every change is checked exactly as an import is (geometry valid, of the right type, inside the county; fields
known and well-formed; codes existing), needs the feature's current ETag (``If-Match``) unless it creates one,
and lands in ``audit_log`` in the same transaction, with the feature before and after. What a layer does on a
change is the layer's to say: its pinyin generated from the name (``layer.spelling``), what a rename keeps
(``layer.on_rename``). The statements are :mod:`gis_service.store`'s.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

import geopandas as gpd
import shapely
import shapely.geometry
import sqlalchemy as sa
from pyproj import CRS

from gis_service.auth import Principal
from gis_service.errors import (
    ImportRejected,
    InvalidInputError,
    NotFoundError,
    PreconditionFailed,
    PreconditionRequired,
)
from gis_service.io.layers_io import county_area
from gis_service.io.validate import text_problem, validate_frame
from gis_service.layers import get_layer
from gis_service.layers.base import AppendFormerName, KeepFormerRecord, Layer
from gis_service.pinyin import romanize
from gis_service.settings import STORAGE_SRID, Settings
from gis_service.store import audit, features, inspections

CRS84 = CRS.from_user_input("OGC:CRS84")


@dataclass(frozen=True)
class Change:
    """The outcome of a change: the feature's id, its new version and ETag (None after a delete)."""

    feature_id: int
    version: int | None

    def etag(self, layer_id: str) -> str | None:
        return None if self.version is None else make_etag(layer_id, self.feature_id, self.version)


def make_etag(layer_id: str, feature_id: int, version: int) -> str:
    return f'"{layer_id}.{feature_id}.v{version}"'


# -- reading the body -----------------------------------------------------------------------------------

def feature_frame(body: object, *, crs: CRS = CRS84, geometry_required: bool = True) -> gpd.GeoDataFrame:
    """One GeoJSON Feature as a one-row GeoDataFrame in EPSG:4490. InvalidInputError says what is wrong."""
    if not isinstance(body, dict) or body.get("type") != "Feature":
        raise InvalidInputError('the body must be a GeoJSON Feature: {"type": "Feature", "geometry": {...}, '
                                '"properties": {...}}')
    properties = body.get("properties") or {}
    if not isinstance(properties, dict):
        raise InvalidInputError("properties must be a JSON object")
    geometry = body.get("geometry")
    if geometry is None:
        if geometry_required:
            raise InvalidInputError("the feature has no geometry")
        geom = None
    else:
        geom = _shape(geometry)
    for name, value in properties.items():
        if isinstance(value, dict):
            raise InvalidInputError(f"property {name} is an object; properties must be text, numbers, true/false, "
                                    "dates or lists of names")
    frame = gpd.GeoDataFrame([properties] if properties else [{}], geometry=[geom], crs=crs)
    if geom is not None and crs != CRS.from_epsg(STORAGE_SRID):
        coords = shapely.get_coordinates(geom)
        if coords.size and bool(abs(coords).max() < float("inf")):
            frame = frame.to_crs(STORAGE_SRID)
        else:
            frame = frame.set_crs(STORAGE_SRID, allow_override=True)
    return frame.set_crs(STORAGE_SRID, allow_override=True)


#: How deep each GeoJSON geometry type nests its positions: a Point is one, a LineString a list of them, ...
_NESTING = {"Point": 0, "MultiPoint": 1, "LineString": 1, "MultiLineString": 2, "Polygon": 2, "MultiPolygon": 3}


def _shape(geometry: object):
    if not isinstance(geometry, dict) or "type" not in geometry or "coordinates" not in geometry:
        raise InvalidInputError("geometry must be a GeoJSON geometry object with type and coordinates")
    kind = geometry["type"]
    if not isinstance(kind, str) or kind not in _NESTING:
        raise InvalidInputError(f"geometry type must be one of {', '.join(_NESTING)}; got {str(kind)[:40]!r}")
    if not _nests_positions(geometry["coordinates"], _NESTING[kind]):
        raise InvalidInputError(f"geometry is malformed: the coordinates of a {kind} are "
                                + "lists of " * _NESTING[kind] + "positions [x, y]")
    if _has_open_ring(geometry):
        raise InvalidInputError("geometry is malformed: a polygon ring is not closed (a polygon ring needs at least "
                                "4 positions, the last equal to the first)")
    try:
        return shapely.geometry.shape(geometry)
    except (ValueError, TypeError, IndexError, KeyError, AttributeError, shapely.errors.GEOSException) as exc:
        detail = str(exc) or "coordinates do not fit the geometry type"
        if geometry.get("type") == "Polygon":
            detail += " (a polygon ring needs at least 4 positions, the last equal to the first)"
        raise InvalidInputError(f"geometry is malformed: {detail}") from None


def _has_open_ring(geometry: dict) -> bool:
    """Whether a GeoJSON Polygon or MultiPolygon has a ring whose last position is not its first (RFC 7946
    3.1.6). Shapely would close it silently, joining the last corner to the first with an edge nobody drew."""
    try:
        polygons = {"Polygon": [geometry["coordinates"]], "MultiPolygon": geometry["coordinates"]}.get(
            geometry["type"], [])
        return any(ring[0] != ring[-1] for polygon in polygons for ring in polygon)
    except (TypeError, IndexError, KeyError):
        return False  # malformed otherwise: shapely says how


def _nests_positions(value: object, depth: int) -> bool:
    """True when ``value`` is ``depth`` levels of lists around positions (lists of numbers)."""
    if not isinstance(value, list):
        return False
    if depth == 0:
        return all(isinstance(n, int | float) and not isinstance(n, bool) for n in value)
    return all(_nests_positions(item, depth - 1) for item in value)


# -- helpers -------------------------------------------------------------------------------------------------

def snapshot(conn: sa.Connection, layer: Layer, feature_id: int, *, lock: bool = False) -> dict | None:
    """The feature as stored (properties, version and GeoJSON geometry in EPSG:4326), or None."""
    return features.snapshot(conn, layer, feature_id, lock=lock)


def _audit(conn: sa.Connection, principal: Principal, layer: Layer, feature_id: int, action: str,
           version: int | None, before: dict | None, after: dict | None, request_id: str | None) -> None:
    audit.record_change(conn, token_id=principal.token_id, actor=principal.name, role=principal.role,
                        layer_id=layer.id, feature_id=feature_id, action=action, version=version, before=before,
                        after=after, request_id=request_id)


def _checked_row(conn: sa.Connection, layer: Layer, frame: gpd.GeoDataFrame, settings: Settings,
                 *, own_id: int | None) -> dict:
    """Validate a one-row frame as an import would; the feature's own values do not clash with themselves."""
    if "id" in frame.columns:
        frame = frame.drop(columns=["id"])
    context = features.validation_context(conn, layer, frame, county_area(
        conn, county_code=settings.county_code, measure_srid=settings.measure_srid))
    if own_id is not None:
        own = features.stored_values(conn, layer, own_id)
        for name, taken in context.taken.items():
            taken.discard(own[name])
        context.existing_ids.discard(own_id)
    rows, problems = validate_frame(layer, frame, context)
    if problems:
        raise ImportRejected(layer.id, problems, 1)
    return rows.iloc[0].to_dict()


#: One or more entity tags, as HTTP writes them: "tag", W/"tag", separated by commas.
IF_MATCH_PATTERN = r'^(W/)?"[^"]*"( *, *(W/)?"[^"]*")*$'


def _check_if_match(layer: Layer, feature_id: int, current_version: int, if_match: str | None) -> None:
    if not if_match:
        raise PreconditionRequired(f"changing {layer.id}/{feature_id} needs an If-Match header with the ETag "
                                   "from your last GET of the feature")
    expected = make_etag(layer.id, feature_id, current_version)
    if not re.fullmatch(IF_MATCH_PATTERN, if_match.strip()):
        raise InvalidInputError(f"If-Match must be the ETag from your last GET of the feature, quotes included, "
                                f"e.g. {expected}; got {if_match[:80]!r}")
    offered = [tag.strip().removeprefix("W/") for tag in if_match.split(",")]
    if expected not in offered:
        raise PreconditionFailed(f"{layer.id}/{feature_id} has changed since you read it (it is now at "
                                 f"version {current_version}, ETag {expected}); GET it again and reapply your change")


# -- the changes ---------------------------------------------------------------------------------------------

def create_feature(conn: sa.Connection, layer: Layer, body: object, *, principal: Principal, settings: Settings,
                   crs: CRS = CRS84, request_id: str | None = None) -> Change:
    frame = feature_frame(body, crs=crs)
    principal.require(layer, set(frame.columns) - {"geometry"})
    row = _checked_row(conn, layer, frame, settings, own_id=None)
    spelling = layer.spelling
    if spelling is not None and row.get(spelling.field) is None:
        row[spelling.field] = romanize(row[spelling.source])
    audit.name_the_writer(conn, principal.name)
    feature_id, version = features.insert_feature(conn, layer, row, measure_srid=settings.measure_srid)
    features.check_constraints_now(conn)
    _audit(conn, principal, layer, feature_id, "create", version, None, snapshot(conn, layer, feature_id),
           request_id)
    return Change(feature_id, version)


def update_feature(conn: sa.Connection, layer: Layer, feature_id: int, body: object, *, principal: Principal,
                   settings: Settings, if_match: str | None, partial: bool, crs: CRS = CRS84,
                   request_id: str | None = None) -> Change:
    """PUT (``partial=False``: the body is the whole new feature) or PATCH (only the properties and geometry given
    change)."""
    frame = feature_frame(body, crs=crs, geometry_required=not partial)
    given = set(frame.columns) - {"geometry"}
    principal.require(layer, given | ({"geometry"} if frame.geometry.iloc[0] is not None else set()))
    before = snapshot(conn, layer, feature_id, lock=True)
    if before is None:
        raise NotFoundError(f"{layer.id} has no feature {feature_id}")
    _check_if_match(layer, feature_id, before["version"], if_match)
    if partial:
        stored = features.stored_frame(conn, layer, feature_id)
        for name in given:
            stored[name] = frame[name].values
        if frame.geometry.iloc[0] is not None:
            stored = stored.set_geometry(frame.geometry.values, crs=STORAGE_SRID)
        frame = stored
    row = _checked_row(conn, layer, frame, settings, own_id=feature_id)
    audit.name_the_writer(conn, principal.name)
    _apply_rename(conn, principal, layer, feature_id, before, row, given, request_id)
    version = features.update_feature(conn, layer, feature_id, before["version"], row,
                                      measure_srid=settings.measure_srid)
    if version is None:  # cannot happen under the row lock, but never lose an update silently
        raise PreconditionFailed(f"{layer.id}/{feature_id} changed while it was being written; GET it again")
    features.check_constraints_now(conn)
    _audit(conn, principal, layer, feature_id, "update", version, before, snapshot(conn, layer, feature_id),
           request_id)
    return Change(feature_id, version)


def _apply_rename(conn: sa.Connection, principal: Principal, layer: Layer, feature_id: int, before: dict, row: dict,
                  given: set[str], request_id: str | None) -> None:
    """What a change of the feature's name does, as the layer says: its generated spelling follows the new name
    (unless the change sets one), and the old name is kept (``layer.on_rename``)."""
    spelling = layer.spelling
    source = spelling.source if spelling else layer.label_field
    if row[source] == before[source]:
        return
    if spelling is not None:
        if spelling.field not in given:
            row[spelling.field] = romanize(row[spelling.source])  # the old spelling spelled the old name
        if spelling.manual is not None and spelling.manual not in given:
            row[spelling.manual] = None
    rename = layer.on_rename
    if isinstance(rename, KeepFormerRecord):
        _keep_former_record(conn, principal, layer, rename, feature_id, before, row, source, request_id)
    elif isinstance(rename, AppendFormerName) and before[source] not in (row[rename.field] or []):
        row[rename.field] = [*(row[rename.field] or []), before[source]]


def _keep_former_record(conn: sa.Connection, principal: Principal, layer: Layer, rename: KeepFormerRecord,
                        feature_id: int, before: dict, row: dict, source: str, request_id: str | None) -> None:
    """A renamed feature keeps its id; its old name becomes a historical record pointing at it, and the history
    says when. (地名更名: the old name stays findable and answers the new one.)"""
    if before[rename.status] != rename.current:
        return
    former_id = features.insert_copy(conn, layer, feature_id, changes={rename.status: rename.historical},
                                     pointing_back=rename.successor)
    _audit(conn, principal, layer, former_id, "create", 1, None, snapshot(conn, layer, former_id), request_id)
    line = f"{dt.date.today().isoformat()} {before[source]}更名为{row[source]}"
    if row.get(rename.history) == before.get(rename.history):
        row[rename.history] = f"{row[rename.history]}；{line}" if row.get(rename.history) else line


def delete_feature(conn: sa.Connection, layer: Layer, feature_id: int, *, principal: Principal,
                   if_match: str | None, request_id: str | None = None) -> Change:
    principal.require(layer, None)
    before = snapshot(conn, layer, feature_id, lock=True)
    if before is None:
        raise NotFoundError(f"{layer.id} has no feature {feature_id}")
    _check_if_match(layer, feature_id, before["version"], if_match)
    audit.name_the_writer(conn, principal.name)
    try:
        with conn.begin_nested():
            features.delete_feature(conn, layer, feature_id)
            features.check_constraints_now(conn)
    except sa.exc.IntegrityError as exc:
        raise InvalidInputError(f"{layer.id}/{feature_id} cannot be deleted while other features refer to it: "
                                f"{exc.orig.diag.message_primary}") from None
    _audit(conn, principal, layer, feature_id, "delete", None, before, None, request_id)
    return Change(feature_id, None)


def feature_history(conn: sa.Connection, layer: Layer, feature_id: int) -> list[dict]:
    """Every recorded change of a feature, oldest first: who, when, what, and the feature before and after."""
    history = audit.feature_history(conn, layer.id, feature_id)
    if not history and snapshot(conn, layer, feature_id) is None:
        raise NotFoundError(f"{layer.id} has no feature {feature_id} and never had")
    for entry in history:
        entry["changed_at"] = entry["changed_at"].isoformat()
    return history


MAX_NOTES_LENGTH = 2000
#: The layer whose features are inspected, and its field that an inspection's finding sets.
INSPECTED = "boundary_markers"
FINDING = "condition"


def record_inspection(conn: sa.Connection, marker_id: int, body: object, *, principal: Principal,
                      request_id: str | None = None) -> dict:
    """Record an inspection of a boundary marker and update its condition and last-inspected date, atomically."""
    layer = get_layer(INSPECTED)
    conditions = layer.field_named(FINDING).codes
    principal.require(layer, {FINDING, "last_inspected"})
    if not isinstance(body, dict):
        raise InvalidInputError('the body must be a JSON object: {"inspected_on": "YYYY-MM-DD", '
                                '"condition": "intact", "notes": "..."}')
    unknown = set(body) - {"inspected_on", "condition", "notes"}
    if unknown:
        raise InvalidInputError(f"unknown fields {', '.join(sorted(unknown))}; an inspection has inspected_on, "
                                "condition and notes (the inspector is the token's holder)")
    condition = body.get("condition")
    if condition not in conditions:
        raise InvalidInputError(f"condition must be one of {', '.join(conditions)}; got {condition!r}")
    inspected_on = _inspection_date(body.get("inspected_on"))
    if inspected_on > dt.date.today():
        raise InvalidInputError(f"inspected_on {inspected_on} is in the future")
    notes = body.get("notes")
    if notes is not None and (not isinstance(notes, str) or len(notes) > MAX_NOTES_LENGTH):
        raise InvalidInputError(f"notes must be text of at most {MAX_NOTES_LENGTH:,} characters")
    problem = text_problem(notes, multiline=True) if notes is not None else None
    if problem:
        raise InvalidInputError(f"notes {problem}; write the notes without them")
    return write_inspection(conn, layer, marker_id, inspected_on=inspected_on, condition=condition, notes=notes,
                            inspector=principal.name, principal=principal, request_id=request_id)


def write_inspection(conn: sa.Connection, layer: Layer, marker_id: int, *, inspected_on: dt.date, condition: str,
                     notes: str | None, inspector: str, principal: Principal, request_id: str | None) -> dict:
    """Record a checked inspection of a marker and bring the marker's condition and last-inspected date up to date,
    with its audit entry, in the caller's transaction. An older inspection entered late goes into the history but
    does not overwrite a newer one's findings. NotFoundError when there is no such marker."""
    before = snapshot(conn, layer, marker_id, lock=True)
    if before is None:
        raise NotFoundError(f"boundary_markers has no feature {marker_id}")
    inspection_id = inspections.record_inspection(conn, marker_id=marker_id, inspected_on=inspected_on,
                                                  inspector=inspector, condition=condition, notes=notes)
    version = inspections.apply_to_marker(conn, layer, marker_id, inspected_on=inspected_on, condition=condition)
    _audit(conn, principal, layer, marker_id, "inspect", version, before, snapshot(conn, layer, marker_id),
           request_id)
    return {"id": inspection_id, "marker_id": marker_id, "inspected_on": inspected_on.isoformat(),
            "inspector": inspector, "condition": condition, "notes": notes,
            "etag": make_etag(layer.id, marker_id, version)}


def list_inspections(conn: sa.Connection, marker_id: int) -> list[dict]:
    """The inspections of a boundary marker, newest first (dates as YYYY-MM-DD)."""
    if snapshot(conn, get_layer(INSPECTED), marker_id) is None:
        raise NotFoundError(f"boundary_markers has no feature {marker_id}")
    return [{**row, "inspected_on": row["inspected_on"].isoformat()} for row in inspections.for_marker(conn, marker_id)]


def _inspection_date(value: object) -> dt.date:
    """``inspected_on`` as a date: text YYYY-MM-DD, or today when absent or null."""
    if value is None:
        return dt.date.today()
    try:
        if not isinstance(value, str) or not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
            raise ValueError
        return dt.date.fromisoformat(value)
    except ValueError:
        raise InvalidInputError(f"inspected_on must be a date written YYYY-MM-DD; got {value!r}") from None
