"""The parts of the OGC API that need no database: GCJ-02, CRS names, bbox and filter parsing, OpenAPI 3.0."""

from __future__ import annotations

import pytest

from gis_service.errors import InvalidInputError
from gis_service.geo.gcj02 import gcj02_to_wgs84, geojson_geometry_to_gcj02, wgs84_to_gcj02
from gis_service.layers import LAYERS
from gis_service.ogc.crs import CRS84_URI, parse_crs
from gis_service.ogc.filters import FilterError, FilterTranslator, parse_filter
from gis_service.ogc.openapi import to_openapi_30
from gis_service.ogc.params import parse_bbox, parse_datetime, parse_items_query


def test_gcj02_matches_the_published_reference_pair() -> None:
    # The reference pair of the widely used coordtransform library (Tiananmen, WGS84 -> GCJ-02).
    lon, lat = wgs84_to_gcj02(116.404, 39.915)
    assert lon == pytest.approx(116.41024449916938, abs=1e-9)
    assert lat == pytest.approx(39.91640428150164, abs=1e-9)


def test_gcj02_offset_at_the_county_seat_is_hundreds_of_metres_and_inverts() -> None:
    lon, lat = wgs84_to_gcj02(108.9916, 28.4482)
    shift_m = ((lon - 108.9916) * 111_320 * 0.879) ** 2 + ((lat - 28.4482) * 110_574) ** 2
    assert 50 < shift_m ** 0.5 < 700
    back = gcj02_to_wgs84(lon, lat)
    assert back == pytest.approx((108.9916, 28.4482), abs=1e-8)
    assert wgs84_to_gcj02(2.35, 48.85) == (2.35, 48.85)  # outside China: unchanged, as the official converter


def test_gcj02_moves_every_position_of_a_geometry() -> None:
    polygon = {"type": "Polygon", "coordinates": [[[108.9, 28.4], [109.0, 28.4], [109.0, 28.5], [108.9, 28.4]]]}
    moved = geojson_geometry_to_gcj02(polygon)
    assert moved["type"] == "Polygon"
    for (x, y), (gx, gy) in zip(polygon["coordinates"][0], moved["coordinates"][0]):
        assert (gx, gy) == pytest.approx(wgs84_to_gcj02(x, y), abs=1e-7)


def test_crs_names_resolve_and_unknown_ones_list_the_supported() -> None:
    assert parse_crs(None, parameter="crs", measure_srid=4545).uri == CRS84_URI
    assert parse_crs("EPSG:4490", parameter="crs", measure_srid=4545).lat_first
    assert parse_crs("http://www.opengis.net/def/crs/EPSG/0/3857", parameter="crs", measure_srid=4545).srid == 3857
    assert parse_crs("[EPSG:4545]", parameter="crs", measure_srid=4545).lat_first  # northing, easting
    assert parse_crs("gcj02", parameter="crs", measure_srid=4545).gcj02
    with pytest.raises(InvalidInputError, match=r"crs 'EPSG:2000' is not supported; use one of: .*CRS84.*4490"):
        parse_crs("EPSG:2000", parameter="crs", measure_srid=4545)


def test_bbox_is_read_in_the_axis_order_of_its_crs() -> None:
    crs84 = parse_crs(None, parameter="bbox-crs", measure_srid=4545)
    epsg4490 = parse_crs("EPSG:4490", parameter="bbox-crs", measure_srid=4545)
    assert parse_bbox("108.9,28.4,109.0,28.5", crs84) == (108.9, 28.4, 109.0, 28.5)
    assert parse_bbox("28.4,108.9,28.5,109.0", epsg4490) == (108.9, 28.4, 109.0, 28.5)
    assert parse_bbox("108.9,28.4,0,109.0,28.5,100", crs84) == (108.9, 28.4, 109.0, 28.5)
    with pytest.raises(InvalidInputError, match=r"bbox must be minx,miny,maxx,maxy .* got '109,28.4,108.9,28.5'"
                                                r".*minx > maxx"):
        parse_bbox("109,28.4,108.9,28.5", crs84)
    with pytest.raises(InvalidInputError, match=r"bbox must be minx,miny,maxx,maxy .* got '1,2,3'"):
        parse_bbox("1,2,3", crs84)
    with pytest.raises(InvalidInputError, match="not all are numbers"):
        parse_bbox("a,b,c,d", crs84)


def test_datetime_instants_and_open_intervals() -> None:
    import datetime as dt

    assert parse_datetime("2020-06-01") == (dt.date(2020, 6, 1), dt.date(2020, 6, 1))
    assert parse_datetime("2020-06-01T12:00:00Z/..") == (dt.date(2020, 6, 1), None)
    assert parse_datetime("../2021-01-01") == (None, dt.date(2021, 1, 1))
    with pytest.raises(InvalidInputError, match="datetime must be a date"):
        parse_datetime("yesterday")


def test_limit_offset_and_unknown_parameters_are_plain_400s() -> None:
    layer = LAYERS["elder_care"]
    for params, message in [({"limit": "0"}, "limit must be between 1 and 10000; got 0"),
                            ({"limit": "ten"}, "limit must be a whole number; got 'ten'"),
                            ({"offset": "-1"}, "offset must be at least 0; got -1"),
                            ({"colour": "red"}, "unknown query parameter 'colour'"),
                            ({"beds": "many"}, "beds must be a whole number; got 'many'"),
                            ({"kind": "hotel"}, "kind must be one of welfare_institution"),
                            ({"sortby": "-height"}, "sortby: elder_care has no property 'height'"),
                            ({"properties": "name,height"}, "properties: elder_care has no property 'height'")]:
        with pytest.raises(InvalidInputError, match=message):
            parse_items_query(layer, params, measure_srid=4545)
    for asked in ("10001", str(10**12), str(10**30)):  # above the maximum: capped, as the OGC test suite expects
        assert parse_items_query(layer, {"limit": asked}, measure_srid=4545).limit == 10000
    query = parse_items_query(layer, {"kind": "township_home", "sortby": "-beds,name"}, measure_srid=4545)
    assert query.limit == 100 and query.property_filters == {"kind": "township_home"}
    assert query.sortby == [("beds", True), ("name", False)]


def test_cql2_text_and_json_give_the_same_sql() -> None:
    layer = LAYERS["elder_care"]
    crs84 = parse_crs(None, parameter="filter-crs", measure_srid=4545)
    text = parse_filter("kind = 'township_home' AND beds BETWEEN 10 AND 50 AND rating IS NULL", None)
    as_json = parse_filter('{"op": "and", "args": [{"op": "=", "args": [{"property": "kind"}, "township_home"]}, '
                           '{"op": "between", "args": [{"property": "beds"}, 10, 50]}, '
                           '{"op": "isNull", "args": [{"property": "rating"}]}]}', "cql2-json")
    first, second = FilterTranslator(layer, crs84), FilterTranslator(layer, crs84)
    assert first.translate(text) == second.translate(as_json)
    assert first.params == second.params == {"cql0": "township_home", "cql1": 10, "cql2": 50}


def test_invalid_filters_say_where_they_failed() -> None:
    with pytest.raises(FilterError, match=r"(?s)failed here.*1:8.*beds >"):
        parse_filter("beds > ", None)
    with pytest.raises(FilterError, match="not valid JSON"):
        parse_filter('{"op": "=", ', "cql2-json")
    layer = LAYERS["elder_care"]
    crs84 = parse_crs(None, parameter="filter-crs", measure_srid=4545)
    with pytest.raises(FilterError, match=r"unknown property 'bedz'.*queryables of elder_care are: id, name"):
        FilterTranslator(layer, crs84).translate(parse_filter("kind = 'x' OR bedz > 3", None))
    with pytest.raises(FilterError, match=r"beds > 'many'|a number was expected, got 'many'"):
        FilterTranslator(layer, crs84).translate(parse_filter("beds > 'many'", None))
    with pytest.raises(FilterError, match="LIKE applies to text"):
        FilterTranslator(layer, crs84).translate(parse_filter("beds LIKE '1%'", None))


def test_openapi_31_is_rewritten_as_30() -> None:
    document = {"openapi": "3.1.0", "paths": {"/x": {"get": {"parameters": [{"name": "limit", "schema": {
        "anyOf": [{"type": "integer"}, {"type": "null"}], "exclusiveMinimum": 0, "examples": [5]}}]}}}}
    schema = to_openapi_30(document)["paths"]["/x"]["get"]["parameters"][0]["schema"]
    assert to_openapi_30(document)["openapi"] == "3.0.3"
    assert schema == {"type": "integer", "nullable": True, "minimum": 0, "exclusiveMinimum": True, "example": 5}
