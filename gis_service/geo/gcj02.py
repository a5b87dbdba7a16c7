"""WGS84 ↔ GCJ-02 (国测局坐标, the obfuscated datum of AMap, Tencent and other Chinese web maps).

GCJ-02 is not an EPSG CRS: it is WGS84 longitude/latitude shifted by a published, non-linear formula
(offsets of 50–500 m). This is the standard formula as used by AMap's own SDKs and the open-source
``coordtransform``/``eviltransform`` implementations (Krasovsky 1940 ellipsoid, a = 6378245 m). Points outside
mainland China's rough bounding box are left unchanged, as the official converter does.

Everything here works on plain floats or numpy arrays; longitude first, then latitude, in degrees.
"""

from __future__ import annotations

import numpy as np

#: Semi-major axis (m) and eccentricity squared of the Krasovsky 1940 ellipsoid used by the formula.
_A = 6378245.0
_EE = 0.00669342162296594323


def _delta_lat(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    pi = np.pi
    ret = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))
    ret += (20.0 * np.sin(6.0 * x * pi) + 20.0 * np.sin(2.0 * x * pi)) * 2.0 / 3.0
    ret += (20.0 * np.sin(y * pi) + 40.0 * np.sin(y / 3.0 * pi)) * 2.0 / 3.0
    ret += (160.0 * np.sin(y / 12.0 * pi) + 320.0 * np.sin(y * pi / 30.0)) * 2.0 / 3.0
    return ret


def _delta_lon(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    pi = np.pi
    ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))
    ret += (20.0 * np.sin(6.0 * x * pi) + 20.0 * np.sin(2.0 * x * pi)) * 2.0 / 3.0
    ret += (20.0 * np.sin(x * pi) + 40.0 * np.sin(x / 3.0 * pi)) * 2.0 / 3.0
    ret += (150.0 * np.sin(x / 12.0 * pi) + 300.0 * np.sin(x / 30.0 * pi)) * 2.0 / 3.0
    return ret


def in_china(lon, lat) -> np.ndarray:
    """True where the formula applies (the rough box of mainland China the official converter uses)."""
    lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    return (lon > 72.004) & (lon < 137.8347) & (lat > 0.8293) & (lat < 55.8271)


def _offset(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    dlat = _delta_lat(lon - 105.0, lat - 35.0)
    dlon = _delta_lon(lon - 105.0, lat - 35.0)
    radlat = lat / 180.0 * np.pi
    magic = 1 - _EE * np.sin(radlat) ** 2
    sqrtmagic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1 - _EE)) / (magic * sqrtmagic) * np.pi)
    dlon = (dlon * 180.0) / (_A / sqrtmagic * np.cos(radlat) * np.pi)
    inside = in_china(lon, lat)
    return np.where(inside, dlon, 0.0), np.where(inside, dlat, 0.0)


def wgs84_to_gcj02(lon, lat):
    """GCJ-02 (lon, lat) in degrees of the WGS84 (or CGCS2000) point(s) ``lon``, ``lat``.

    Scalars in, floats out; arrays in, arrays out.
    """
    lon_a, lat_a = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    dlon, dlat = _offset(lon_a, lat_a)
    out_lon, out_lat = lon_a + dlon, lat_a + dlat
    if out_lon.ndim == 0:
        return float(out_lon), float(out_lat)
    return out_lon, out_lat


def gcj02_to_wgs84(lon, lat, *, iterations: int = 6):
    """WGS84 (lon, lat) of GCJ-02 point(s), by fixed-point iteration on :func:`wgs84_to_gcj02`.

    Six iterations bring the round trip under 1e-9 degrees (sub-millimetre) inside China.
    """
    gcj_lon, gcj_lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    wgs_lon, wgs_lat = gcj_lon.copy(), gcj_lat.copy()
    for _ in range(iterations):
        dlon, dlat = _offset(wgs_lon, wgs_lat)
        wgs_lon, wgs_lat = gcj_lon - dlon, gcj_lat - dlat
    if wgs_lon.ndim == 0:
        return float(wgs_lon), float(wgs_lat)
    return wgs_lon, wgs_lat


def geojson_geometry_to_gcj02(geometry: dict | None) -> dict | None:
    """A copy of a GeoJSON geometry (RFC 7946 lon/lat) with every position moved to GCJ-02."""
    if geometry is None:
        return None
    kind = geometry["type"]
    if kind == "GeometryCollection":
        return {"type": kind, "geometries": [geojson_geometry_to_gcj02(g) for g in geometry["geometries"]]}
    return {"type": kind, "coordinates": _convert_nested(geometry["coordinates"])}


def _convert_nested(coords):
    if not coords:
        return coords
    if isinstance(coords[0], (int, float)):
        lon, lat = wgs84_to_gcj02(coords[0], coords[1])
        return [round(lon, 7), round(lat, 7), *coords[2:]]
    if isinstance(coords[0][0], (int, float)):  # a list of positions: convert it in one numpy call
        array = np.asarray([c[:2] for c in coords], dtype=float)
        lon, lat = wgs84_to_gcj02(array[:, 0], array[:, 1])
        return [[round(float(x), 7), round(float(y), 7), *c[2:]] for x, y, c in zip(lon, lat, coords)]
    return [_convert_nested(c) for c in coords]
