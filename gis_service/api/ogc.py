"""OGC API - Features (Part 1 Core, GeoJSON, OpenAPI 3.0; Part 2 CRS; Part 3 Filtering) and vector tiles.

Thin: parameters are parsed by :mod:`gis_service.ogc.params`, SQL lives in :mod:`gis_service.store.features` and
:mod:`gis_service.store.tiles`. Collections are the layers of the registry, nothing else.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from gis_service import __version__
from gis_service.api.deps import ConnectionDep, SettingsDep, TileRunnerDep
from gis_service.api.openapi import error_responses
from gis_service.api.pages import page, portal, prefers_html
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
from gis_service.ogc.tilecache import Tile, TileCache, accepts_gzip, etag_header, not_modified
from gis_service.pages import layers as browser
from gis_service.settings import STORAGE_SRID, Settings
from gis_service.store.features import LayerSummary, fetch_feature, fetch_page
from gis_service.store.tiles import render_crs84_tile

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
    "http://www.opengis.net/spec/cql2/1.0/conf/accent-insensitive-comparison",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions-plus",
    "http://www.opengis.net/spec/cql2/1.0/conf/spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/array-functions",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/mvt",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tileset",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tilesets-list",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/geodata-tilesets",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/oas30",
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
    query = parse_items_query(layer, request.query_params, measure_srid=settings.measure_srid)
    if _browser_asks_html(request):
        query.f = "html"
    if query.f == "html":  # the page draws its features on a map, which takes longitude/latitude (its GeoJSON
        query.crs = parse_crs(None, parameter="crs", measure_srid=settings.measure_srid)  # link keeps crs)
    return query


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


def _negotiated(request: Request, formats: tuple[str, ...] = PAGE_FORMATS) -> str:
    """The format of a resource with an HTML page: ``f`` when given (others refused as :func:`_format_only` does),
    else html for a browser (its ``Accept`` ranks text/html above JSON) and json for everyone else, as OGC API
    - Features' content negotiation has it."""
    fmt = _format_only(request, formats)
    return "html" if _browser_asks_html(request) else fmt


def _browser_asks_html(request: Request) -> bool:
    """No ``f``, and an Accept header that ranks text/html above JSON."""
    return "f" not in request.query_params and prefers_html(request.headers.get("accept"))


#: The answers that depend on the Accept header say so, for caches.
VARY = {"Vary": "Accept"}


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
    if f is None and prefers_html(request.headers.get("accept")):
        return portal(request)  # a browser opening the service: the bureau's pages; clients keep JSON
    fmt = _negotiated(request)
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
            _link(f"{base}/tileMatrixSets", "http://www.opengis.net/def/rel/ogc/1.0/tiling-schemes",
                  "application/json", "tile matrix sets"),
            _link(f"{base}/collections", "data", "application/json", "the collections (layers)"),
        ],
    }
    return _respond(request, body, fmt, "layers/landing.html", titles=browser.LINK_TITLES)


@router.get("/conformance", summary="Conformance classes",
            description="The OGC conformance classes this service implements.",
            responses={**_JSON_OR_HTML, **_NO_DB})
def conformance(request: Request, f: FormatParam = None):
    return _respond(request, {"conformsTo": CONFORMANCE}, _negotiated(request), "layers/conformance.html")


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
    fmt = _negotiated(request)
    base = _base(request)
    summaries = cache.summaries(conn, LAYERS.values())
    body = {
        "links": [_link(f"{base}/collections", "self", "application/json", "this document"),
                  _link(f"{base}/collections?f=html", "alternate", "text/html", "this document as HTML")],
        "crs": [c.uri for c in served_crs_list(settings.measure_srid)],
        "collections": [_collection_doc(layer, summaries[layer.id], base, settings.measure_srid)
                        for layer in LAYERS.values()],
    }
    shown = [{"doc": doc, "href": f"{base}/collections/{doc['id']}?f=html",
              "items": f"{base}/collections/{doc['id']}/items?f=html",
              "queryables": f"{base}/collections/{doc['id']}/queryables?f=html"} for doc in body["collections"]]
    return _respond(request, body, fmt, "layers/collections.html", collections=shown,
                    json_href=f"{base}/collections?f=json", geometry_names=browser.GEOMETRY_NAMES)


@router.get("/collections/{collectionId}", summary="One layer",
            description="The layer's title, extent (CRS84), CRSs, storage CRS and links to its items, queryables "
            "and tiles.", responses={**_JSON_OR_HTML, **_COLLECTION})
def describe_collection(layer: LayerDep, request: Request, conn: ConnectionDep, settings: SettingsDep,
                        cache: SummaryCacheDep, f: FormatParam = None):
    fmt = _negotiated(request)
    base = _base(request)
    body = _collection_doc(layer, cache.summary(conn, layer), base, settings.measure_srid)
    return _respond(request, body, fmt, "layers/collection.html", layer=layer, doc=body,
                    items_href=f"{base}/collections/{layer.id}/items?f=html",
                    queryables_href=f"{base}/collections/{layer.id}/queryables?f=html",
                    geometry_names=browser.GEOMETRY_NAMES)


_JSON_TYPES = {"text": {"type": "string"}, "integer": {"type": "integer"}, "number": {"type": "number"},
               "boolean": {"type": "boolean"}, "date": {"type": "string", "format": "date"},
               "text_list": {"type": "array", "items": {"type": "string"}}}
_GEOMETRY_FORMATS = {"Point": "geometry-point", "LineString": "geometry-linestring",
                     "MultiLineString": "geometry-multilinestring", "MultiPolygon": "geometry-multipolygon"}


@router.get("/collections/{collectionId}/queryables", summary="Properties a filter may use",
            description="JSON Schema of the properties usable in `filter` (CQL2) and as property filters "
            "(`?name=value`); f=html (or a browser's Accept) shows them as a table.", response_class=Response,
            responses={200: {"description": "JSON Schema of the queryables.",
                             "content": {"application/schema+json": {"schema": {"type": "object"}},
                                         "text/html": {"schema": {"type": "string"}}}},
                       **error_responses(400, 404)})
def queryables(layer: LayerDep, request: Request, f: FormatParam = None):
    fmt = _negotiated(request)
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
    if fmt == "html":
        base = _base(request)
        example = next((f"{spec.name}={spec.codes[0]}" for spec in layer.fields if spec.values), "id=1")
        return page("layers/queryables.html", request, layer=layer, rows=browser.queryables_rows(layer),
                    example=example, json_href=f"{base}/collections/{layer.id}/queryables?f=json",
                    collection_href=f"{base}/collections/{layer.id}?f=html",
                    collections_href=f"{base}/collections?f=html", headers=VARY)
    return JSONResponse(body, media_type="application/schema+json", headers=VARY)


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
    found = fetch_page(conn, query)
    url = request.url
    base = _base(request)
    as_html = query.f == "html"
    links = [_link(str(url), "self", "text/html" if as_html else GEOJSON, "this page"),
             _link(str(url.include_query_params(f="json")), "alternate", GEOJSON, "this page as GeoJSON") if as_html
             else _link(str(url.include_query_params(f="html")), "alternate", "text/html", "this page as HTML"),
             _link(f"{base}/collections/{layer.id}", "collection", "application/json", layer.title)]
    if query.offset + found.returned < found.matched:
        links.append(_link(str(url.include_query_params(offset=query.offset + query.limit, limit=query.limit)),
                           "next", GEOJSON, "next page"))
    if query.offset > 0:
        links.append(_link(str(url.include_query_params(offset=max(0, query.offset - query.limit),
                                                        limit=query.limit)), "prev", GEOJSON, "previous page"))
    meta = {
        "numberMatched": found.matched,
        "numberReturned": found.returned,
        "timeStamp": dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "links": links,
    }
    headers = {"Content-Crs": f"<{query.crs.uri}>", **VARY}
    if as_html:
        context = browser.items_context(layer, json.loads(found.features_json), meta, base)
        return page("layers/items.html", request, offset=query.offset, collections_href=f"{base}/collections?f=html",
                    headers=headers, **context)
    body = '{"type":"FeatureCollection","features":' + found.features_json + "," + json.dumps(
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
    fmt = "html" if _browser_asks_html(request) else parse_format(f)
    served = parse_crs(crs, parameter="crs", measure_srid=settings.measure_srid)
    if fmt == "html":  # drawn on the page's map: longitude/latitude (the GeoJSON link keeps crs)
        served = parse_crs(None, parameter="crs", measure_srid=settings.measure_srid)
    known = featureId.isascii() and featureId.isdigit() and int(featureId) <= BIGINT_MAX
    found = fetch_feature(conn, layer, int(featureId), served) if known else None
    if found is None:
        raise NotFoundError(f"{layer.id} has no feature {featureId!r}")
    text, version = found
    base = _base(request)
    url = request.url
    as_json, as_html = (_link(str(url.include_query_params(f="json")), "alternate", GEOJSON, "this feature as GeoJSON"),
                        _link(str(url.include_query_params(f="html")), "alternate", "text/html",
                              "this feature as HTML"))
    links = [_link(str(url), "self", "text/html" if fmt == "html" else GEOJSON, "this feature"),
             as_json if fmt == "html" else as_html,
             _link(f"{base}/collections/{layer.id}", "collection", "application/json", layer.title)]
    headers = {"Content-Crs": f"<{served.uri}>", "ETag": make_etag(layer.id, int(featureId), version), **VARY}
    if fmt == "html":
        context = browser.feature_context(layer, json.loads(text), links, base)
        return page("layers/feature.html", request, collections_href=f"{base}/collections?f=html", headers=headers,
                    **context)
    body = text[:-1] + ',"links":' + json.dumps(links, separators=(",", ":")) + "}"
    return Response(body.encode(), media_type=GEOJSON, headers=headers)


# -- tiles ------------------------------------------------------------------------------------------------------
@router.get("/tileMatrixSets", summary="Tile matrix sets",
            description="The tile grids of the tiles: WebMercatorQuad (web maps) and WorldCRS84Quad (GDAL).",
            responses=error_responses(400))
def tile_matrix_sets(request: Request, f: JsonFormatParam = None):
    _format_only(request, JSON_ONLY)
    base = _base(request)
    return {"tileMatrixSets": [{
        "id": grid.id, "title": grid.title, "uri": grid.uri, "crs": grid.crs,
        "links": [_link(f"{base}/tileMatrixSets/{grid.id}", "self", "application/json", "the tile matrix set")]}
        for grid in tiles.GRIDS.values()]}


@router.get("/tileMatrixSets/WebMercatorQuad", summary="The WebMercatorQuad tile matrix set",
            description="OGC 2D Tile Matrix Set 2.0 JSON: zooms 0 to 22 on EPSG:3857.", responses=error_responses(400))
def tile_matrix_set(request: Request, f: JsonFormatParam = None):
    _format_only(request, JSON_ONLY)
    return tiles.WEB_MERCATOR_QUAD.tile_matrix_set()


@router.get("/tileMatrixSets/WorldCRS84Quad", summary="The WorldCRS84Quad tile matrix set",
            description="OGC 2D Tile Matrix Set 2.0 JSON: zooms 0 to 21 in longitude/latitude degrees (CRS84).",
            responses=error_responses(400))
def tile_matrix_set_crs84(request: Request, f: JsonFormatParam = None):
    _format_only(request, JSON_ONLY)
    return tiles.WORLD_CRS84_QUAD.tile_matrix_set()


@router.get("/collections/{collectionId}/tiles", summary="Vector tilesets of a layer",
            description="The tilesets of the layer (Mapbox Vector Tiles): WebMercatorQuad for web maps, "
            "WorldCRS84Quad for GDAL's OGC API driver.",
            responses=error_responses(400, 404))
def list_tilesets(layer: LayerDep, request: Request, f: JsonFormatParam = None):
    _format_only(request, JSON_ONLY)
    base = _base(request)
    return {
        "links": [_link(f"{base}/collections/{layer.id}/tiles", "self", "application/json", "this list")],
        "tilesets": [tiles.tileset_summary(layer, grid, base_url=base) for grid in tiles.GRIDS.values()],
    }


_TILESET_DESCRIPTION = ("OGC API - Tiles tileset: the tile URL template, the tile matrix set, the tiles that hold "
                        "the layer (tileMatrixSetLimits) and the properties a tile carries.")


@router.get("/collections/{collectionId}/tiles/WebMercatorQuad", summary="A layer's vector tileset",
            description=_TILESET_DESCRIPTION + " TileJSON: tilejson.json beside it.", responses=_COLLECTION)
def tileset(layer: LayerDep, request: Request, conn: ConnectionDep, cache: SummaryCacheDep,
            f: JsonFormatParam = None):
    _format_only(request, JSON_ONLY)
    return tiles.tileset(layer, base_url=_base(request), bbox=cache.summary(conn, layer).bbox)


@router.get("/collections/{collectionId}/tiles/WorldCRS84Quad", summary="A layer's vector tileset in CRS84",
            description=_TILESET_DESCRIPTION + " The tileset GDAL's OGC API driver reads.", responses=_COLLECTION)
def tileset_crs84(layer: LayerDep, request: Request, conn: ConnectionDep, cache: SummaryCacheDep,
                  f: JsonFormatParam = None):
    _format_only(request, JSON_ONLY)
    return tiles.tileset(layer, base_url=_base(request), bbox=cache.summary(conn, layer).bbox,
                         grid=tiles.WORLD_CRS84_QUAD)


@router.get("/collections/{collectionId}/tiles/WebMercatorQuad/tilejson.json",
            summary="TileJSON of a layer's vector tiles",
            description="TileJSON 3.0.0: tile URL template, zooms, bounds and the fields in each tile.",
            responses=_COLLECTION)
def tile_json(layer: LayerDep, request: Request, conn: ConnectionDep, cache: SummaryCacheDep,
              f: JsonFormatParam = None):
    _format_only(request, JSON_ONLY)
    summary = cache.summary(conn, layer)
    return tiles.tilejson(layer, base_url=_base(request), bbox=summary.bbox)


_TILE_RESPONSES = {200: {"content": {tiles.MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}},
                          "description": "The tile."},
                    204: {"description": "No feature in this tile."},
                    304: {"description": "The tile named by If-None-Match is still current."},
                    **error_responses(400, 404, 503)}
IfNoneMatchHeader = Annotated[str | None, Header(description="The ETag of the tile you hold: 304 without a body "
                                                 "while it is current.")]
AcceptEncodingHeader = Annotated[str | None, Header(description="gzip: the tile is sent compressed "
                                                    "(Content-Encoding: gzip).")]


@router.get(
    "/collections/{collectionId}/tiles/WebMercatorQuad/{z}/{x}/{y}",
    summary="A vector tile",
    description="Mapbox Vector Tile (ST_AsMVT) with one layer named after the collection, properties included "
    f"(long texts excepted; below zoom {tiles.DETAIL_ZOOM} only the name, code and class fields), geometry "
    "simplified to the zoom. 204 when the tile holds no feature.",
    response_class=Response,
    responses=_TILE_RESPONSES,
)
async def get_tile(
    layer: LayerDep,
    request: Request,
    read: TileRunnerDep,
    settings: SettingsDep,
    z: Annotated[str, Path(description=f"Zoom level, {tiles.MIN_ZOOM} to {tiles.MAX_ZOOM}.", json_schema_extra={
        "type": "integer", "minimum": tiles.MIN_ZOOM, "maximum": tiles.MAX_ZOOM})],
    x: Annotated[str, Path(description="Column, 0 to 2^z - 1 (404 outside).", json_schema_extra={
        "type": "integer", "minimum": 0, "maximum": 2**tiles.MAX_ZOOM - 1})],
    y: Annotated[str, Path(description="Row from the top, 0 to 2^z - 1 (404 outside).", json_schema_extra={
        "type": "integer", "minimum": 0, "maximum": 2**tiles.MAX_ZOOM - 1})],
    if_none_match: IfNoneMatchHeader = None,
    accept_encoding: AcceptEncodingHeader = None,
):
    zi, xi, yi = _tile_coordinates(tiles.WEB_MERCATOR_QUAD, request, z, x, y)
    cache: TileCache = request.app.state.tile_cache
    tile = await read(lambda conn: cache.kept(conn, layer, zi, xi, yi))
    if tile is None:
        tile = await read(lambda conn: cache.rendered(conn, layer, zi, xi, yi), transaction=True)
    return tile_response(tile, if_none_match=if_none_match, accept_encoding=accept_encoding, settings=settings)


@router.get(
    "/collections/{collectionId}/tiles/WorldCRS84Quad/{z}/{x}/{y}",
    summary="A vector tile in CRS84",
    description="As the WebMercatorQuad tile, on the WorldCRS84Quad grid (2^(z+1) columns, 2^z rows of 180/2^z "
    "degrees; zoom z carries the properties of WebMercatorQuad zoom z + 1). Rendered on each request, not kept: "
    "its reader, GDAL, reads each tile once.",
    response_class=Response,
    responses=_TILE_RESPONSES,
)
async def get_tile_crs84(
    layer: LayerDep,
    request: Request,
    read: TileRunnerDep,
    settings: SettingsDep,
    z: Annotated[str, Path(description=f"Zoom level, {tiles.WORLD_CRS84_QUAD.min_zoom} to "
                           f"{tiles.WORLD_CRS84_QUAD.max_zoom}.", json_schema_extra={
        "type": "integer", "minimum": tiles.WORLD_CRS84_QUAD.min_zoom, "maximum": tiles.WORLD_CRS84_QUAD.max_zoom})],
    x: Annotated[str, Path(description="Column from longitude -180, 0 to 2^(z+1) - 1 (404 outside).",
                           json_schema_extra={"type": "integer", "minimum": 0})],
    y: Annotated[str, Path(description="Row from latitude 90, 0 to 2^z - 1 (404 outside).",
                           json_schema_extra={"type": "integer", "minimum": 0})],
    if_none_match: IfNoneMatchHeader = None,
    accept_encoding: AcceptEncodingHeader = None,
):
    zi, xi, yi = _tile_coordinates(tiles.WORLD_CRS84_QUAD, request, z, x, y)
    mvt = await read(lambda conn: render_crs84_tile(conn, layer, zi, xi, yi), transaction=True)
    return tile_response(Tile.of(mvt), if_none_match=if_none_match, accept_encoding=accept_encoding,
                         settings=settings)


def _tile_coordinates(grid: tiles.TileGrid, request: Request, z: str, x: str, y: str) -> tuple[int, int, int]:
    """The tile's z, x, y on ``grid`` (400/404 as :meth:`TileGrid.check_tile`); 400 for any query parameter."""
    coordinates = grid.check_tile(z, x, y)
    if request.query_params:
        raise InvalidInputError(f"unknown query parameter {next(iter(request.query_params))!r}; a tile takes none")
    return coordinates


def tile_response(tile: Tile, *, if_none_match: str | None, accept_encoding: str | None,
                  settings: Settings) -> Response:
    """200 with the tile (gzip-compressed when accepted), 204 when it is empty, 304 when the client holds it; each
    with its ETag and how long it may be reused."""
    gzipped = accepts_gzip(accept_encoding) and not tile.empty
    scope = "private" if settings.read_requires_token else "public"
    headers = {"ETag": etag_header(tile, gzipped=gzipped), "Vary": "Accept-Encoding",
               "Cache-Control": f"{scope}, max-age={settings.tile_max_age_s}"}
    if not_modified(if_none_match, tile):
        return Response(status_code=304, headers=headers)
    if tile.empty:
        return Response(status_code=204, headers=headers)
    if gzipped:
        return Response(tile.gzipped, media_type=tiles.MEDIA_TYPE, headers={**headers, "Content-Encoding": "gzip"})
    return Response(tile.mvt(), media_type=tiles.MEDIA_TYPE, headers=headers)


# -- HTML -------------------------------------------------------------------------------------------------------
def _respond(request: Request, body: dict, fmt: str, template: str, **context):
    """``body`` as JSON, or as the layer browser's page ``template`` (gis_service/pages/templates/layers)."""
    if fmt == "html":
        return page(template, request, body=body, collections_href=f"{_base(request)}/collections?f=html",
                    headers=VARY, **context)
    return JSONResponse(body, headers=VARY)
