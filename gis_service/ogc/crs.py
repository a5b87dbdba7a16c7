"""The coordinate reference systems the service reads and writes (OGC API - Features Part 2).

Storage is EPSG:4490 (CGCS2000). For web use CGCS2000 is treated as WGS84: CRS84/EPSG:4326 output is the stored
coordinates, untransformed (a sub-metre difference). Axis order follows each CRS's definition, as Part 2 asks:
CRS84 and EPSG:3857 are east/north; EPSG:4326 and EPSG:4490 are latitude/longitude; the Gauss-Krüger zone
EPSG:4545 is northing/easting.

``gcj02`` is not an EPSG CRS: it is the obfuscated datum of AMap/Tencent maps (longitude, latitude), offered as
output (``crs=gcj02``) and bbox input (``bbox-crs=gcj02``) for overlays on those basemaps.
"""

from __future__ import annotations

from dataclasses import dataclass

from gis_service.errors import InvalidInputError
from gis_service.settings import STORAGE_SRID

CRS84_URI = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
GCJ02_URI = "urn:x-gis-service:def:crs:GCJ-02"
#: The CRSs a request may name, as the API document describes them.
CRS_DOC = ("CRS84 (default, longitude/latitude), EPSG:4490 (CGCS2000, latitude/longitude), EPSG:4326 "
           "(latitude/longitude), EPSG:3857 (Web Mercator) or the county's Gauss-Krüger zone (EPSG:4545, "
           "northing/easting); as OGC URIs (http://www.opengis.net/def/crs/EPSG/0/4490) or EPSG:<code>. "
           f"Also `gcj02` ({GCJ02_URI}): GCJ-02 longitude/latitude for overlays on AMap/Tencent basemaps. GCJ-02 "
           "is not an EPSG CRS but an obfuscated offset of WGS 84 (50–500 m); never store or measure in it.")


@dataclass(frozen=True)
class ServedCrs:
    """A CRS a client may ask for: its URI, the SRID coordinates are computed in and its axis order."""

    uri: str
    srid: int
    #: True when the first axis is latitude/northing: coordinates are swapped relative to PostGIS's x, y.
    lat_first: bool
    #: True for degrees, False for metres (decides the decimals written).
    geographic: bool
    title: str
    #: Computed in Python from CRS84 (GCJ-02), not by PostGIS.
    gcj02: bool = False

    @property
    def decimals(self) -> int:
        """Decimal digits written: 7 for degrees (about 1 cm), 3 for metres (1 mm)."""
        return 7 if self.geographic else 3

    @property
    def transform_needed(self) -> bool:
        """False when output coordinates are the stored ones (CGCS2000 treated as WGS84)."""
        return self.srid not in (STORAGE_SRID, 4326)


def epsg_uri(code: int) -> str:
    return f"http://www.opengis.net/def/crs/EPSG/0/{code}"


def served_crs_list(measure_srid: int) -> list[ServedCrs]:
    """The CRSs listed in every collection's ``crs``: CRS84 first (the default), GCJ-02 excluded."""
    return [
        ServedCrs(CRS84_URI, 4326, False, True, "WGS 84 longitude/latitude (CGCS2000 treated as WGS 84)"),
        ServedCrs(epsg_uri(4490), STORAGE_SRID, True, True, "CGCS2000 latitude/longitude (storage CRS)"),
        ServedCrs(epsg_uri(4326), 4326, True, True, "WGS 84 latitude/longitude"),
        ServedCrs(epsg_uri(3857), 3857, False, False, "Web Mercator easting/northing, metres"),
        ServedCrs(epsg_uri(measure_srid), measure_srid, True, False,
                  f"CGCS2000 3-degree Gauss-Krüger (EPSG:{measure_srid}) northing/easting, metres"),
    ]


GCJ02 = ServedCrs(GCJ02_URI, 4326, False, True, "GCJ-02 longitude/latitude (AMap/Tencent; not an EPSG CRS)",
                  gcj02=True)


def crs_names(measure_srid: int) -> list[str]:
    """How the API document spells the CRSs a request may name (``crs``, ``bbox-crs``, ``filter-crs``): each
    CRS's URI and its short form. :func:`parse_crs` accepts these, and a few more spellings of the same CRSs."""
    names = [CRS84_URI, "CRS84"]
    for crs in served_crs_list(measure_srid)[1:]:
        names += [crs.uri, f"EPSG:{crs.srid}"]
    return [*names, GCJ02_URI, "gcj02"]


def content_crs_names(measure_srid: int) -> list[str]:
    """The values of a ``Content-Crs`` header the API document lists: ``<URI>`` (as OGC API - Features Part 4
    writes it) of every served CRS, or its bare URI or short form. GCJ-02 is for display only, never written."""
    bare = [name for name in crs_names(measure_srid) if name not in (GCJ02_URI, "gcj02")]
    return [f"<{crs.uri}>" for crs in served_crs_list(measure_srid)] + bare


def parse_crs(value: str | None, *, parameter: str, measure_srid: int) -> ServedCrs:
    """The :class:`ServedCrs` named by a request parameter (``crs``, ``bbox-crs`` or ``filter-crs``).

    Accepts the OGC URIs, ``EPSG:n``, ``urn:ogc:def:crs:EPSG::n``, ``CRS84``/``OGC:CRS84`` and ``gcj02``;
    anything else (an empty value too) is a 400 listing the supported values. None (not given) means CRS84.
    """
    served = served_crs_list(measure_srid)
    if value is None:
        return served[0]
    text = value.strip()
    if text.startswith("[") and text.endswith("]"):  # safe CURIE form, e.g. [EPSG:4490]
        text = text[1:-1]
    lowered = text.lower()
    if lowered in ("gcj02", "gcj-02", GCJ02_URI.lower()):
        return GCJ02
    if lowered in ("crs84", "ogc:crs84", CRS84_URI.lower(), "urn:ogc:def:crs:ogc:1.3:crs84",
                   "http://www.opengis.net/def/crs/ogc/0/crs84"):
        return served[0]
    code = _epsg_code(lowered)
    for crs in served[1:]:
        if code is not None and crs.srid == code:
            return crs
    supported = ", ".join([c.uri for c in served] + ["gcj02"])
    raise InvalidInputError(f"{parameter} {value!r} is not supported; use one of: {supported} "
                            f"(EPSG:<code> is accepted for the EPSG ones)")


def _epsg_code(text: str) -> int | None:
    for prefix in ("http://www.opengis.net/def/crs/epsg/0/", "https://www.opengis.net/def/crs/epsg/0/",
                   "urn:ogc:def:crs:epsg::", "urn:ogc:def:crs:epsg:0:", "epsg:"):
        if text.startswith(prefix):
            rest = text[len(prefix):]
            return int(rest) if rest.isdigit() else None
    return None
