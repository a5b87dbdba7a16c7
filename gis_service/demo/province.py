"""A province of demo counties: N copies of the demo county laid side by side, for one database holding a
province (a municipality such as Chongqing: 38 districts and counties).

The first county is the real Xiushan (500241) as :func:`~gis_service.demo.build.build_demo` makes it. Each other is a
copy shifted on a grid of four columns (westward: all stay in the county's Gauss-Krüger zone, EPSG:4545, 106.5-109.5
E) and as many rows as needed (northward), a little more than a county apart so that none overlaps another. A copy
gets a county code of its own (``5090NN``: no real county has it, and it stays under the province code 500000), a
name of its own (模拟NN县), every statistical code, line code and marker number renumbered with it, ids after
those of the counties before it, and ``synthetic copy NN of the demo county`` in front of every row's
``data_source``. Everything else, names of townships and villages included, is the demo county's: that many
counties sharing township names is what a province looks like to a gazetteer.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gis_service import pinyin
from gis_service.demo.build import DEFAULT_SEED, build_demo

REAL_CODE = "500241"
REAL_NAME = "秀山土家族苗族自治县"
REAL_SHORT = "秀山"
#: The grid: columns (westward) and the step between counties, in degrees.
COLUMNS = 4
STEP_LON = 0.6
STEP_LAT = 0.75
MAX_COUNTIES = 99
#: Columns that hold ids of other rows of the same frame set: (frame, column) -> the frame they point into.
ID_REFERENCES = {("marker_inspections", "marker_id"): "boundary_markers",
                 ("place_names", "successor_id"): "place_names"}


def county_code(k: int) -> str:
    """The 6-digit code of county ``k`` (0: Xiushan)."""
    return REAL_CODE if k == 0 else f"5090{k:02d}"


def county_names(k: int) -> tuple[str, str]:
    """County ``k``'s name and short name."""
    return (REAL_NAME, REAL_SHORT) if k == 0 else (f"模拟{k:02d}县", f"模拟{k:02d}")


def offset_deg(k: int) -> tuple[float, float]:
    """How far county ``k`` lies from Xiushan: degrees of longitude (east) and latitude (north)."""
    return -STEP_LON * (k % COLUMNS), STEP_LAT * (k // COLUMNS)


def build_province(counties: int, *, scale: int = 1, seed: int = DEFAULT_SEED,
                   progress=None) -> dict[str, pd.DataFrame]:
    """The demo county and ``counties - 1`` synthetic copies, as frames keyed by table name (see the module)."""
    if not 1 <= counties <= MAX_COUNTIES:
        raise ValueError(f"counties must be between 1 and {MAX_COUNTIES}; got {counties}")
    base = build_demo(scale=scale, seed=seed, progress=progress)
    if counties == 1:
        return base
    report = progress or (lambda message: None)
    parts: dict[str, list[pd.DataFrame]] = {name: [frame] for name, frame in base.items()}
    for k in range(1, counties):
        report(f"county {k + 1} of {counties} ({county_code(k)})")
        for name, frame in base.items():
            parts[name].append(_copy(name, frame, k, base))
    return {name: _concat(frames) for name, frames in parts.items()}


def _copy(name: str, frame: pd.DataFrame, k: int, base: dict[str, pd.DataFrame]) -> pd.DataFrame:
    code, (county, short) = county_code(k), county_names(k)
    copy = frame.copy()
    copy["id"] = copy["id"] + k * len(frame)
    for (frame_name, column), target in ID_REFERENCES.items():
        if frame_name == name:
            copy[column] = [None if v is None or pd.isna(v) else int(v) + k * len(base[target]) for v in copy[column]]
    renamed = None
    for column in copy.columns:
        if column in ("geom", "data_source") or not pd.api.types.is_object_dtype(copy[column].dtype) and \
                not pd.api.types.is_string_dtype(copy[column].dtype):
            continue
        values = copy[column]
        text = values.map(lambda v: v.replace(REAL_CODE, code).replace(REAL_NAME, county).replace(REAL_SHORT, short)
                          if isinstance(v, str) else v)
        if column == "name":
            renamed = text.ne(values)
        copy[column] = text
    if renamed is not None and "pinyin" in copy.columns and renamed.any():
        copy.loc[renamed, "pinyin"] = [pinyin.romanize(n) for n in copy.loc[renamed, "name"]]
    if "data_source" in copy.columns:
        dx, dy = offset_deg(k)
        copy["data_source"] = (f"synthetic copy {k} of the demo county ({county}, {code}), shifted {dx:g}° E "
                               f"{dy:g}° N; the original: ") + copy["data_source"].astype(str)
    if isinstance(copy, gpd.GeoDataFrame):
        dx, dy = offset_deg(k)
        copy["geom"] = shapely.transform(copy.geometry.values, lambda xy: xy + np.array([dx, dy]))
        copy = copy.set_geometry("geom")
    return copy


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    if isinstance(frames[0], gpd.GeoDataFrame):
        return gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), geometry="geom", crs=frames[0].crs)
    return pd.concat(frames, ignore_index=True)
