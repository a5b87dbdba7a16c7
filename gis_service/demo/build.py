"""Build the reproducible demo county (Xiushan, 500241) as data frames, one per table.

    from gis_service.demo.build import build_demo, DEFAULT_SEED
    frames = build_demo(scale=1, seed=DEFAULT_SEED, progress=print)

Real: the county outline and its five boundary segments, the codes and names of the 27 township-
and 268 village-level units, the 2020 census population per township. Synthetic (and labelled so in
every row's ``data_source``): all other geometry, the road network, settlements, facilities,
markers, inspections and gazetteer texts. The same (scale, seed) gives identical frames every run.

Frames follow the schema of ``gis_service/db/migrations/versions/0001_layers.py`` column for column
(``marker_inspections`` without ``recorded_at``); geometries are 2-D, valid and in EPSG:4490, in an
active geometry column named ``geom``; ``id`` is 1..n and references between frames use it.
Lengths and areas are measured in EPSG:4545 (CGCS2000 / 3-degree GK CM 108E).
"""

from __future__ import annotations

from collections.abc import Callable

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from .. import pinyin
from . import boundaries, divisions, facilities, geo, network, placenames
from .geography import meijiang_river

__all__ = ["DEFAULT_SEED", "FRAME_NAMES", "build_demo", "meijiang_river"]

DEFAULT_SEED = 20261129
FRAME_NAMES = (
    "admin_divisions",
    "boundary_lines",
    "boundary_markers",
    "marker_inspections",
    "roads",
    "place_names",
    "settlements",
    "cemeteries",
    "elder_care",
    "community_centres",
)

# Column order of every table (the schema's, without the database-filled recorded_at).
COLUMNS: dict[str, tuple[str, ...]] = {
    "admin_divisions": (
        "id",
        "code",
        "name",
        "short_name",
        "level",
        "kind",
        "parent_code",
        "households",
        "population",
        "urban_rural",
        "valid_from",
        "valid_to",
        "data_source",
        "geom",
    ),
    "boundary_lines": (
        "id",
        "code",
        "name",
        "level",
        "left_code",
        "left_name",
        "right_code",
        "right_name",
        "length_m",
        "status",
        "last_inspected",
        "data_source",
        "geom",
    ),
    "boundary_markers": (
        "id",
        "number",
        "marker_type",
        "line_code",
        "material",
        "set_on",
        "condition",
        "last_inspected",
        "data_source",
        "geom",
    ),
    "marker_inspections": ("id", "marker_id", "inspected_on", "inspector", "condition", "notes"),
    "roads": (
        "id",
        "name",
        "pinyin",
        "road_class",
        "is_bridge",
        "width_m",
        "length_m",
        "named_on",
        "approval_no",
        "former_names",
        "data_source",
        "geom",
    ),
    "place_names": (
        "id",
        "name",
        "pinyin",
        "category",
        "division_code",
        "meaning",
        "origin",
        "history",
        "status",
        "successor_id",
        "heritage_listed",
        "data_source",
        "geom",
    ),
    "settlements": ("id", "name", "village_code", "households", "population", "data_source", "geom"),
    "cemeteries": (
        "id",
        "name",
        "kind",
        "urban_rural",
        "public_welfare",
        "capacity",
        "graves_used",
        "status",
        "division_code",
        "data_source",
        "geom",
    ),
    "elder_care": (
        "id",
        "name",
        "kind",
        "beds",
        "nursing_beds",
        "operator",
        "comprehensive",
        "rating",
        "status",
        "division_code",
        "data_source",
        "geom",
    ),
    "community_centres": (
        "id",
        "name",
        "floor_area_m2",
        "volunteer_point",
        "minor_protection_station",
        "division_code",
        "status",
        "data_source",
        "geom",
    ),
}
# Integer columns that may hold NULL: kept as object columns of Python int / None.
NULLABLE_INTEGERS = {
    "cemeteries": ("capacity", "graves_used"),
    "elder_care": ("rating",),
    "place_names": ("successor_id",),
}


def build_demo(
    scale: int = 1, seed: int = DEFAULT_SEED, progress: Callable[[str], None] | None = None
) -> dict[str, pd.DataFrame | gpd.GeoDataFrame]:
    """All demo tables as frames, keyed by table name (see FRAME_NAMES).

    ``scale`` multiplies the settlements, the road network and the gazetteer (about ``scale``
    times as many rows); divisions, boundaries and facilities do not change with it.
    """
    if not isinstance(scale, int | np.integer) or isinstance(scale, bool) or scale < 1:
        raise ValueError(f"scale must be a positive integer; got {scale!r}")
    if not isinstance(seed, int | np.integer) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer; got {seed!r}")
    report = progress or (lambda message: None)
    rng_layout, rng_network, rng_lines, rng_facilities, rng_names = np.random.default_rng(int(seed)).spawn(5)

    report("divisions: township and village polygons, households")
    layout = divisions.build_layout(rng_layout)
    admin = divisions.admin_divisions_frame(layout, seed)

    report(f"settlements and road network (scale {scale})")
    net = network.build_network(layout, rng_network, int(scale))
    roads = _roads_frame(net, seed)
    settlements = _settlements_frame(layout, net, seed)

    report("boundary lines, markers and inspections")
    lines, markers, inspections = boundaries.frames(layout, rng_lines, seed)

    report("facilities: elder care, cemeteries, community centres")
    elder = facilities.elder_care(layout, rng_facilities, seed)
    cemeteries = facilities.cemeteries(layout, rng_facilities, seed)
    centres = facilities.community_centres(layout, rng_facilities, seed)

    report("place names")
    names = placenames.place_names(layout, net, rng_names, seed)

    frames = {
        "admin_divisions": admin,
        "boundary_lines": lines,
        "boundary_markers": markers,
        "marker_inspections": inspections,
        "roads": roads,
        "place_names": names,
        "settlements": settlements,
        "cemeteries": cemeteries,
        "elder_care": elder,
        "community_centres": centres,
    }
    report("checking columns and geometry")
    return {name: _finish(name, frames[name]) for name in FRAME_NAMES}


def _roads_frame(net: network.Network, seed: int) -> gpd.GeoDataFrame:
    nodes = geo.xy_to_storage(net.nodes)  # each node converted once: segments share end points exactly
    geoms = shapely.linestrings(nodes[net.edges])
    romanized: dict[str, str] = {}
    for name in net.name:
        if name not in romanized:
            romanized[name] = pinyin.romanize(name)
    frame = gpd.GeoDataFrame(
        {
            "name": net.name,
            "pinyin": [romanized[n] for n in net.name],
            "road_class": net.road_class,
            "is_bridge": np.asarray(net.is_bridge, dtype=bool),
            "width_m": np.asarray(net.width_m, dtype=float),
            "length_m": net.lengths_m,
            "named_on": pd.Series(net.named_on, dtype=object),
            "approval_no": pd.Series(net.approval_no, dtype=object),
            "former_names": pd.Series(net.former_names, dtype=object),
            "data_source": f"synthetic (gis-service demo, seed {seed})",
        },
        geometry=geoms,
        crs=geo.CRS_STORAGE,
    ).rename_geometry("geom")
    frame.insert(0, "id", np.arange(1, len(frame) + 1, dtype=np.int64))
    return frame


def _settlements_frame(layout: divisions.Layout, net: network.Network, seed: int) -> gpd.GeoDataFrame:
    st = net.settlements
    frame = gpd.GeoDataFrame(
        {
            "name": st.name,
            "village_code": [layout.villages[v].code for v in st.village],
            "households": st.households.astype(np.int64),
            "population": st.population.astype(np.int64),
            "data_source": f"synthetic; households and population split from the village's figures "
            f"(gis-service demo, seed {seed})",
        },
        geometry=shapely.points(geo.xy_to_storage(st.xy)),
        crs=geo.CRS_STORAGE,
    ).rename_geometry("geom")
    frame.insert(0, "id", np.arange(1, len(frame) + 1, dtype=np.int64))
    return frame


def _finish(name: str, frame: pd.DataFrame) -> pd.DataFrame:
    """Exact schema column order, NULLs as None (text and integer columns), 2-D valid geometry."""
    columns = COLUMNS[name]
    missing = [c for c in columns if c not in frame.columns]
    extra = [c for c in frame.columns if c not in columns]
    if missing or extra:
        raise RuntimeError(f"{name}: columns differ from the schema (missing {missing}, extra {extra})")
    frame = frame[list(columns)]
    for column in columns:  # text columns with NULLs: None, not pandas' NaN
        if column != "geom" and pd.api.types.is_string_dtype(frame[column].dtype) and frame[column].isna().any():
            frame[column] = pd.Series(
                [None if pd.isna(v) else v for v in frame[column].tolist()], index=frame.index, dtype=object
            )
    for column in NULLABLE_INTEGERS.get(name, ()):
        values = frame[column].tolist()
        frame[column] = pd.Series(
            [None if v is None or pd.isna(v) else int(v) for v in values], index=frame.index, dtype=object
        )
    if isinstance(frame, gpd.GeoDataFrame):
        frame = frame.set_geometry("geom")
        geoms = frame.geometry.values
        if shapely.has_z(geoms).any():
            raise RuntimeError(f"{name}: 3-D geometry")
        if not shapely.is_valid(geoms).all() or shapely.is_empty(geoms).any():
            raise RuntimeError(f"{name}: invalid or empty geometry")
    return frame.reset_index(drop=True)
