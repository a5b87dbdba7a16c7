"""OGC API - Features (Part 1 Core, GeoJSON, OpenAPI 3.0; Part 2 CRS; Part 3 Filtering) and vector tiles.

Thin: parameters are parsed by :mod:`gis_service.ogc.params`, SQL lives in :mod:`gis_service.store.features` and
:mod:`gis_service.store.tiles`. Collections are the layers of the registry, nothing else.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import threading
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from gis_service import __version__
from gis_service.api import pages
from gis_service.api.deps import ConnectionDep, SettingsDep
from gis_service.api.openapi import error_responses
from gis_service.edits import make_etag
from gis_service.errors import InvalidInputError, NotFoundError
from gis_service.layers import LAYERS, get_layer
from gis_service.layers.base import Layer
from gis_service.ogc import tiles
from gis_service.ogc.cache import SummaryCache
from gis_service.ogc.crs import CRS84_URI, CRS_DOC, epsg_uri, parse_crs, served_crs_list
from gis_service.ogc.openapi import MEDIA_TYPE as OPENAPI_MEDIA_TYPE
from gis_service.ogc.openapi import to_openapi_30
from gis_service.ogc.params import BIGINT_MAX, FORMATS, ItemsQuery, items_parameters, parse_format, parse_items_query
from gis_service.settings import STORAGE_SRID
from gis_service.store import tiles as tile_store
from gis_service.store.features import LayerSummary, fetch_feature, fetch_page

router = APIRouter(tags=["OGC API - Features"])

GEOJSON = "application/geo+json"
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/html",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables-query-parameters",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
    "http://www.opengis.net/spec/cql2/1.0/conf/advanced-comparison-operators",
    "http://www.opengis.net/spec/cql2/1.0/conf/case-insensitive-comparison",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions-plus",
    "http://www.opengis.net/spec/cql2/1.0/conf/spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/array-functions",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/mvt",
]
CollectionIdParam = Annotated[str, Path(description="Collection (layer) id, e.g. elder_care; see /collections.",
                                        json_schema_extra={"enum": list(LAYERS)})]


def get_collection(collectionId: CollectionIdParam) -> Layer:  # noqa: N803 - the OGC path parameter's name
    return get_layer(collectionId)


LayerDep = Annotated[Layer, Depends(get_collection)]


async def items_query(layer: LayerDep, request: Request, settings: SettingsDep) -> ItemsQuery:
    """The items request, parsed once from the query string (the parameters are documented by
    :func:`items_parameters`, not declared to FastAPI, which would parse them a second time); 400 on any bad one,
    and on any parameter that is neither one of them nor a queryable of the layer. (async: tens of microseconds
    of parsing, not worth a trip through the thread pool.)"""
    return parse_items_query(layer, request.query_params, measure_srid=settings.measure_srid)


ItemsQueryDep = Annotated[ItemsQuery, Depends(items_query)]

_summary_cache_lock = threading.Lock()


def get_summary_cache(request: Request) -> SummaryCache:
    """The app's cache of collection summaries (count, extents), made on first use."""
    state = request.app.state
    with _summary_cache_lock:
        if getattr(state, "summary_cache", None) is None:
            state.summary_cache = SummaryCache()
        return state.summary_cache


SummaryCacheDep = Annotated[SummaryCache, Depends(get_summary_cache)]


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _link(href: str, rel: str, type_: str, title: str, **extra) -> dict:
    return {"href": href, "rel": rel, "type": type_, "title": title, **extra}


#: The formats of resources that are not features: JSON, or an HTML page where there is one.
PAGE_FORMATS = ("json", "html")
JSON_ONLY = ("json",)


def _format_only(request: Request, formats: tuple[str, ...] = PAGE_FORMATS) -> str:
    """The ``f`` asked for, refusing any other query parameter: these resources take nothing else."""
    unknown = [k for k in request.query_params if k != "f"]
    if unknown:
        raise InvalidInputError(f"unknown query parameter {unknown[0]!r}; this resource takes only f "
                                f"({' or '.join(formats)})")
    return parse_format(request.query_params.get("f"), formats)


def _format_param(formats: tuple[str, ...]):
    return Annotated[str | None, Query(description=f"Response format: {' or '.join(formats)} (default json).",
                                       json_schema_extra={"enum": list(formats)})]


FormatParam = _format_param(PAGE_FORMATS)
FeatureFormatParam = _format_param(FORMATS)
JsonFormatParam = _format_param(JSON_ONLY)
#: The answer of a resource with an HTML page besides its JSON.
_JSON_OR_HTML = {200: {"content": {"text/html": {"schema": {"type": "string"}}}}}
_NO_DB = error_responses(400)
_DB = error_responses(400, 503)
_COLLECTION = error_responses(400, 404, 503)


# -- landing page, conformance, API ----------------------------------------------------------------------------
@router.get("/", summary="Landing page", description="Links to the API definition, the conformance classes and "
            "the collections.", responses={**_JSON_OR_HTML, **_NO_DB})
def landing_page(request: Request, f: FormatParam = None):
    fmt = _format_only(request)
    if f is None and pages.prefers_html(request):  # a browser gets the portal; API clients keep the JSON default
        return pages.portal(request)
    base = _base(request)
    body = {
        "title": "gis-service",
        "description": "Spatial data of a county civil-affairs bureau (demo: Xiushan, Chongqing): administrative "
        "divisions, boundary lines and markers, named roads, place names, settlements and facilities.",
        "version": __version__,
        "links": [
            _link(f"{base}/", "self", "application/json", "this document"),
            _link(f"{base}/?f=html", "alternate", "text/html", "this document as HTML"),
            _link(f"{base}/api", "service-desc", OPENAPI_MEDIA_TYPE, "the API definition (OpenAPI 3.0)"),
            _link(f"{base}/docs", "service-doc", "text/html", "the API documentation"),
            _link(f"{base}/conformance", "conformance", "application/json", "conformance classes"),
            _link(f"{base}/collections", "data", "application/json", "the collections (layers)"),
        ],
    }
    return _respond(body, fmt, title="gis-service")


@router.get("/conformance", summary="Conformance classes",
            description="The OGC conformance classes this service implements.",
            responses={**_JSON_OR_HTML, **_NO_DB})
def conformance(request: Request, f: FormatParam = None):
    fmt = _format_only(request)
    return _respond({"conformsTo": CONFORMANCE}, fmt, title="Conformance")


@router.get("/api", summary="The API definition (OpenAPI 3.0)",
            description="This service's OpenAPI document, as OpenAPI 3.0.3. (/openapi.json serves it as 3.1.) "
            "f=html redirects to the documentation page, /docs.",
            response_class=Response,
            responses={200: {"description": "The OpenAPI 3.0 document.",
                             "content": {OPENAPI_MEDIA_TYPE: {"schema": {"type": "object"}}}},
                       307: {"description": "f=html: the documentation page is /docs.",
                             "headers": {"Location": {"schema": {"type": "string"}}}},
                       **_NO_DB})
def api_definition(request: Request, f: FormatParam = None):
    if _format_only(request) == "html":
        return HTMLResponse(status_code=307, headers={"Location": str(request.base_url) + "docs"})
    return JSONResponse(to_openapi_30(request.app.openapi()), media_type=OPENAPI_MEDIA_TYPE)


# -- collections ------------------------------------------------------------------------------------------------
def _collection_doc(layer: Layer, summary: LayerSummary, base: str, measure_srid: int) -> dict:
    href = f"{base}/collections/{layer.id}"
    extent: dict = {}
    if summary.bbox is not None:
        extent["spatial"] = {"bbox": [[round(v, 7) for v in summary.bbox]], "crs": CRS84_URI}
    if summary.temporal is not None:
        extent["temporal"] = {"interval": [list(summary.temporal)],
                              "trs": "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"}
    return {
        "id": layer.id,
        "title": layer.title,
        "title_zh": layer.title_zh,
        "description": layer.description,
        "itemType": "feature",
        "geometryType": layer.geometry_type,
        "featureCount": summary.count,
        "extent": extent,
        "crs": [c.uri for c in served_crs_list(measure_srid)],
        "storageCrs": epsg_uri(STORAGE_SRID),
        "datetimeProperty": _datetime_doc(layer),
        "links": [
            _link(href, "self", "application/json", "this collection"),
            _link(f"{href}/items", "items", GEOJSON, "the features"),
            _link(f"{href}/items?f=html", "items", "text/html", "the features as HTML"),
            _link(f"{href}/queryables", "http://www.opengis.net/def/rel/ogc/1.0/queryables",
                  "application/schema+json", "the properties a filter may use"),
            _link(f"{href}/tiles", "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector", "application/json",
                  "vector tiles"),
            _link(f"{href}/tiles/{tiles.TILE_MATRIX_SET}/tilejson.json", "describedby", "application/json",
                  "TileJSON of the vector tiles"),
        ],
    }


def _datetime_doc(layer: Layer) -> str | None:
    if not layer.temporal:
        return None
    if layer.validity is not None:
        return f"{layer.temporal[0]}/{layer.temporal[1]} (the versions in force; current ones without datetime)"
    return layer.temporal[0]


@router.get("/collections", summary="The published layers",
            description="Every layer the service publishes, with its title, geometry type, extent, the CRSs it "
            "can be served in and its feature count (current features only where a layer keeps history).",
            responses={**_JSON_OR_HTML, **_DB})
def list_collections(request: Request, conn: ConnectionDep, settings: SettingsDep, cache: SummaryCacheDep,
                     f: FormatParam = None):
    fmt = _format_only(request)
    base = _base(request)
    summaries = cache.summaries(conn, LAYERS.values())
    body = {
        "links": [_link(f"{base}/collections", "self", "application/json", "this document"),
                  _link(f"{base}/collections?f=html", "alternate", "text/html", "this document as HTML")],
        "crs": [c.uri for c in served_crs_list(settings.measure_srid)],
        "collections": [_collection_doc(layer, summaries[layer.id], base, settings.measure_srid)
                        for layer in LAYERS.values()],
    }
    return _respond(body, fmt, title="Collections")


@router.get("/collections/{collectionId}", summary="One layer",
            description="The layer's title, extent (CRS84), CRSs, storage CRS and links to its items, queryables "
            "and tiles.", responses={**_JSON_OR_HTML, **_COLLECTION})
def describe_collection(layer: LayerDep, request: Request, conn: ConnectionDep, settings: SettingsDep,
                        cache: SummaryCacheDep, f: FormatParam = None):
    fmt = _format_only(request)
    body = _collection_doc(layer, cache.summary(conn, layer), _base(request), settings.measure_srid)
    return _respond(body, fmt, title=layer.title)


_JSON_TYPES = {"text": {"type": "string"}, "integer": {"type": "integer"}, "number": {"type": "number"},
               "boolean": {"type": "boolean"}, "date": {"type": "string", "format": "date"},
               "text_list": {"type": "array", "items": {"type": "string"}}}
_GEOMETRY_FORMATS = {"Point": "geometry-point", "LineString": "geometry-linestring",
                     "MultiLineString": "geometry-multilinestring", "MultiPolygon": "geometry-multipolygon"}


@router.get("/collections/{collectionId}/queryables", summary="Properties a filter may use",
            description="JSON Schema of the properties usable in `filter` (CQL2) and as property filters "
            "(`?name=value`).", response_class=Response,
            responses={200: {"description": "JSON Schema of the queryables.",
                             "content": {"application/schema+json": {"schema": {"type": "object"}}}},
                       **error_responses(400, 404)})
def queryables(layer: LayerDep, request: Request, f: JsonFormatParam = None):
    _format_only(request, JSON_ONLY)
    properties: dict = {
        "geometry": {"title": "geometry", "format": _GEOMETRY_FORMATS[layer.geometry_type],
                     "x-ogc-role": "primary-geometry",
                     "description": f"{layer.geometry_type} in the filter-crs (CRS84 unless given)."},
        "id": {"title": "id", "type": "integer", "x-ogc-role": "id", "description": "Feature id."},
    }
    for spec in layer.fields:
        schema = {"title": spec.title_zh or spec.name, "description": spec.description, **_JSON_TYPES[spec.type]}
        if spec.values is not None:
            schema["enum"] = list(spec.codes)
        if spec.pattern:
            schema["pattern"] = spec.pattern
        if spec.minimum is not None:
            schema["minimum"] = spec.minimum
        if spec.maximum is not None:
            schema["maximum"] = spec.maximum
        if spec.max_length is not None:
            schema["maxLength"] = spec.max_length
        properties[spec.name] = schema
    body = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{_base(request)}/collections/{layer.id}/queryables",
        "type": "object",
        "title": layer.title,
        "properties": properties,
        "additionalProperties": False,
    }
    return JSONResponse(body, media_type="application/schema+json")


# -- items ------------------------------------------------------------------------------------------------------
@router.get(
    "/collections/{collectionId}/items",
    summary="Features of a layer",
    description="GeoJSON FeatureCollection, paged with `limit`/`offset` and `next`/`prev` links. Besides the "
    "parameters below, any queryable is a property filter: `?kind=community_station` (equality; for a list "
    "property, membership). Any other parameter is a 400. Layers that keep history (admin_divisions) return "
    "current features unless `datetime` is given.",
    response_class=Response,
    responses={200: {"content": {GEOJSON: {"schema": {"type": "object"}}, "text/html": {"schema": {"type": "string"}}},
                     "description": "The features."}, **_COLLECTION},
    openapi_extra={"parameters": items_parameters()},
)
def list_items(query: ItemsQueryDep, request: Request, conn: ConnectionDep):
    layer = query.layer
    page = fetch_page(conn, query)
    url = request.url
    base = _base(request)
    links = [_link(str(url), "self", GEOJSON if query.f == "json" else "text/html", "this page"),
             _link(str(url.include_query_params(f="html")), "alternate", "text/html", "this page as HTML"),
             _link(f"{base}/collections/{layer.id}", "collection", "application/json", layer.title)]
    if query.offset + page.returned < page.matched:
        links.append(_link(str(url.include_query_params(offset=query.offset + query.limit, limit=query.limit)),
                           "next", GEOJSON, "next page"))
    if query.offset > 0:
        links.append(_link(str(url.include_query_params(offset=max(0, query.offset - query.limit),
                                                        limit=query.limit)), "prev", GEOJSON, "previous page"))
    meta = {
        "numberMatched": page.matched,
        "numberReturned": page.returned,
        "timeStamp": dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "links": links,
    }
    headers = {"Content-Crs": f"<{query.crs.uri}>"}
    if query.f == "html":
        return HTMLResponse(_items_html(layer, json.loads(page.features_json), meta), headers=headers)
    body = '{"type":"FeatureCollection","features":' + page.features_json + "," + json.dumps(
        meta, ensure_ascii=False, separators=(",", ":"))[1:]
    return Response(body.encode(), media_type=GEOJSON, headers=headers)


@router.get(
    "/collections/{collectionId}/items/{featureId}",
    summary="One feature",
    description="A GeoJSON Feature by id (any version of a layer that keeps history).",
    response_class=Response,
    responses={200: {"content": {GEOJSON: {"schema": {"type": "object"}}, "text/html": {"schema": {"type": "string"}}},
                     "description": "The feature."}, **_COLLECTION},
)
def get_item(
    layer: LayerDep,
    request: Request,
    conn: ConnectionDep,
    settings: SettingsDep,
    featureId: Annotated[str, Path(description="Feature id (a whole number).",  # noqa: N803
                                   json_schema_extra={"pattern": "^[0-9]+$"})],
    f: FeatureFormatParam = None,
    crs: Annotated[str | None, Query(description="CRS of the returned geometry: " + CRS_DOC)] = None,
):
    unknown = [k for k in request.query_params if k not in ("f", "crs")]
    if unknown:
        raise InvalidInputError(f"unknown query parameter {unknown[0]!r}; a feature takes f and crs")
    fmt = parse_format(f)
    served = parse_crs(crs, parameter="crs", measure_srid=settings.measure_srid)
    known = featureId.isascii() and featureId.isdigit() and int(featureId) <= BIGINT_MAX
    found = fetch_feature(conn, layer, int(featureId), served) if known else None
    if found is None:
        raise NotFoundError(f"{layer.id} has no feature {featureId!r}")
    text, version = found
    base = _base(request)
    links = [_link(str(request.url), "self", GEOJSON, "this feature"),
             _link(f"{base}/collections/{layer.id}", "collection", "application/json", layer.title)]
    headers = {"Content-Crs": f"<{served.uri}>", "ETag": make_etag(layer.id, int(featureId), version)}
    if fmt == "html":
        feature = json.loads(text)
        return HTMLResponse(_items_html(layer, [feature], {"links": links}), headers=headers)
    body = text[:-1] + ',"links":' + json.dumps(links, separators=(",", ":")) + "}"
    return Response(body.encode(), media_type=GEOJSON, headers=headers)


# -- tiles ------------------------------------------------------------------------------------------------------
@router.get("/collections/{collectionId}/tiles", summary="Vector tilesets of a layer",
            description="The tilesets of the layer (one: WebMercatorQuad, Mapbox Vector Tiles).",
            responses=error_responses(400, 404))
def list_tilesets(layer: LayerDep, request: Request, f: JsonFormatParam = None):
    _format_only(request, JSON_ONLY)
    href = f"{_base(request)}/collections/{layer.id}/tiles/{tiles.TILE_MATRIX_SET}"
    return {"tilesets": [{
        "title": f"{layer.title} ({tiles.TILE_MATRIX_SET})",
        "dataType": "vector",
        "crs": epsg_uri(3857),
        "tileMatrixSetURI": "http://www.opengis.net/def/tilematrixset/OGC/1.0/WebMercatorQuad",
        "links": [
            _link(href, "self", "application/json", "TileJSON of this tileset"),
            _link(f"{href}/{{z}}/{{x}}/{{y}}", "item", tiles.MEDIA_TYPE, "a tile", templated=True),
            _link(f"{href}/tilejson.json", "describedby", "application/json", "TileJSON"),
        ],
    }]}


@router.get("/collections/{collectionId}/tiles/WebMercatorQuad", summary="TileJSON of a layer's vector tiles",
            description="TileJSON 3.0.0: tile URL template, zooms, bounds and the fields in each tile.",
            responses=_COLLECTION)
@router.get("/collections/{collectionId}/tiles/WebMercatorQuad/tilejson.json", include_in_schema=False)
def tile_json(layer: LayerDep, request: Request, conn: ConnectionDep, cache: SummaryCacheDep,
              f: JsonFormatParam = None):
    _format_only(request, JSON_ONLY)
    summary = cache.summary(conn, layer)
    return tiles.tilejson(layer, base_url=_base(request), bbox=summary.bbox)


@router.get(
    "/collections/{collectionId}/tiles/WebMercatorQuad/{z}/{x}/{y}",
    summary="A vector tile",
    description="Mapbox Vector Tile (ST_AsMVT) with one layer named after the collection, properties included "
    f"(long texts excepted; below zoom {tiles.DETAIL_ZOOM} only the name, code and class fields), geometry "
    "simplified to the zoom. 204 when the tile holds no feature.",
    response_class=Response,
    responses={200: {"content": {tiles.MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}},
                     "description": "The tile."},
               204: {"description": "No feature in this tile."},
               **error_responses(400, 404, 503)},
)
def get_tile(
    layer: LayerDep,
    request: Request,
    conn: ConnectionDep,
    z: Annotated[str, Path(description=f"Zoom level, {tiles.MIN_ZOOM} to {tiles.MAX_ZOOM}.", json_schema_extra={
        "type": "integer", "minimum": tiles.MIN_ZOOM, "maximum": tiles.MAX_ZOOM})],
    x: Annotated[str, Path(description="Column, 0 to 2^z - 1 (404 outside).", json_schema_extra={
        "type": "integer", "minimum": 0, "maximum": 2**tiles.MAX_ZOOM - 1})],
    y: Annotated[str, Path(description="Row from the top, 0 to 2^z - 1 (404 outside).", json_schema_extra={
        "type": "integer", "minimum": 0, "maximum": 2**tiles.MAX_ZOOM - 1})],
):
    zi, xi, yi = tiles.check_tile(z, x, y)
    if request.query_params:
        raise InvalidInputError(f"unknown query parameter {next(iter(request.query_params))!r}; a tile takes none")
    data = tile_store.render_tile(conn, layer, zi, xi, yi)
    if not data:
        return Response(status_code=204)
    return Response(data, media_type=tiles.MEDIA_TYPE)


# -- HTML -------------------------------------------------------------------------------------------------------
def _respond(body: dict, fmt: str, *, title: str):
    if fmt == "html":
        return HTMLResponse(_page(title, _html_links(body.get("links", [])) + _html_value(body)))
    return JSONResponse(body)


def _page(title: str, content: str) -> str:
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            "<style>body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:2px 6px;font-size:90%}</style></head>"
            f"<body><h1>{html.escape(title)}</h1>{content}</body></html>")


def _html_links(links: list[dict]) -> str:
    items = "".join(f"<li><a href='{html.escape(link['href'])}'>{html.escape(link.get('title') or link['rel'])}"
                    f"</a> ({html.escape(link['rel'])})</li>" for link in links)
    return f"<ul>{items}</ul>" if items else ""


def _html_value(body: dict) -> str:
    shown = {k: v for k, v in body.items() if k != "links"}
    return f"<pre>{html.escape(json.dumps(shown, ensure_ascii=False, indent=2))}</pre>"


def _items_html(layer: Layer, features: list[dict], meta: dict) -> str:
    names = list(features[0]["properties"]) if features else list(layer.field_names)
    head = "<tr><th>id</th>" + "".join(f"<th>{html.escape(n)}</th>" for n in names) + "</tr>"
    rows = "".join(
        f"<tr><td>{feature['id']}</td>"
        + "".join(f"<td>{html.escape('' if feature['properties'].get(n) is None else str(feature['properties'][n]))}"
                  f"</td>" for n in names) + "</tr>"
        for feature in features)
    counts = ""
    if "numberMatched" in meta:
        counts = f"<p>{meta['numberReturned']} of {meta['numberMatched']} features</p>"
    content = _html_links(meta["links"]) + counts + f"<table>{head}{rows}</table>"
    return _page(f"{layer.title} ({layer.title_zh})", content)
