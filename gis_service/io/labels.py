"""A layer's files in Chinese: the column headers a file names fields by, and a layer's rows written the way the
bureau reads them (``export --labels zh``).

Headers are matched by the layer (:meth:`Layer.field_for_header`: a field's name, its ``title_zh`` or its
synonyms); values are read by validation (io/validate.py: a code, a Chinese label or an alias; 是/否; dates as
people write them). A file written here with ``labels="zh"`` holds only what those read, so it is imported back
unchanged. Pure: no database access.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from gis_service.errors import InvalidInputError
from gis_service.layers.base import Layer, header_key, without_unit

#: Headers of a point's coordinates in a CSV or a sheet (compared as :func:`header_key` does, a unit after them
#: ignored: 经度(°)); the first of each is what a file in Chinese is written with.
LON_HEADERS = ("经度", "东经", "lon", "lng", "long", "longitude", "x")
LAT_HEADERS = ("纬度", "北纬", "lat", "latitude", "y")
#: The labels a file in Chinese is written with: Chinese (titles, value labels, 是/否) or the fields' own names and
#: codes.
LABELS = ("en", "zh")
YES, NO = "是", "否"


def find_header(columns: Iterable[object], headers: Iterable[str]) -> object | None:
    """The first of ``columns`` that is one of ``headers`` (as :func:`header_key` compares, a unit after it
    ignored), or None."""
    keys = {header_key(h) for h in headers}
    return next((c for c in columns if header_key(c) in keys or without_unit(header_key(c)) in keys), None)


def name_columns(frame: pd.DataFrame, layer: Layer) -> pd.DataFrame:
    """``frame`` with each column that names a field of ``layer`` (by a Chinese title or a synonym) renamed to the
    field's name; other columns are left as they are (validation names those it does not know).

    Raises InvalidInputError when two columns name one field (名称 and 机构名称): which one holds it is the
    file's author's to say."""
    named: dict[str, object] = {}
    for column in frame.columns:
        spec = layer.field_for_header(column)
        if spec is None:
            continue
        if spec.name in named:
            raise InvalidInputError(f"the columns {named[spec.name]!r} and {column!r} both name the field "
                                    f"{spec.heading} of {layer.id}: keep one, or rename the other")
        named[spec.name] = column
    return frame.rename(columns={column: name for name, column in named.items() if column != name})


def in_chinese(layer: Layer, table: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``table`` (a layer's fields as read from the database, with lon/lat or wkt) as the bureau reads
    them: each field under its Chinese title, enumerated codes as their labels (the code itself where a label is
    shared: 同号双立 is A and B), booleans as 是/否, lon/lat as 经度/纬度; ``id`` and ``wkt`` keep their names."""
    table = table.copy()
    headers = {"lon": LON_HEADERS[0], "lat": LAT_HEADERS[0]}
    for column in table.columns:
        spec = layer.get_field(column)
        if spec is None:
            continue
        if spec.values is not None:
            table[column] = table[column].map(spec.written_label).astype(object)
        elif spec.type == "boolean":
            table[column] = table[column].map(lambda v: None if pd.isna(v) else YES if v else NO).astype(object)
        headers[column] = spec.title_zh or column
    return table.rename(columns=headers)


def check_labels(labels: str, fmt: str) -> None:
    """Refuse ``labels`` that are not one of :data:`LABELS`, and Chinese labels for a format other than a table."""
    if labels not in LABELS:
        raise InvalidInputError(f"--labels is en (field names and codes) or zh (中文表头和值); got {labels!r}")
    if labels == "zh" and fmt not in ("csv", "xlsx"):
        raise InvalidInputError(f"--labels zh applies to csv and xlsx exports (tables people read); {fmt} keeps the "
                                "field names and codes that GIS tools expect")
