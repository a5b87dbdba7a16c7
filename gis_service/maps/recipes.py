"""Map recipes: which layers a map draws, in which order and style, read from ``maps/<name>.toml`` (package data).

A recipe is data, not code: the builders in :mod:`gis_service.maps.builders` compute the sources a recipe names
(``townships``, ``settlements``, ``service_areas`` …) and :mod:`gis_service.maps.render` draws them as the recipe
says. Editing a colour or a tooltip is a change to the recipe only. An overlay that draws a layer of the registry
names it (``layer = "elder_care"``) and takes the layer's map style where the recipe says nothing: its symbol, the
colour and shape of each value of its styling field, and the Chinese labels of its coded values.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from gis_service.errors import RecipeError, UnknownMapError
from gis_service.layers import LAYERS
from gis_service.resources import map_recipes

#: The maps, in the order the index lists them.
MAP_NAMES = ("overview", "coverage", "facility_area", "boundaries", "site_suggestions")


def recipes_dir() -> Path:
    """The folder of the recipes: the repository's ``maps/``, installed as :mod:`gis_service.resources` data."""
    return map_recipes()


@dataclass(frozen=True)
class LayerRecipe:
    """One overlay (or one group of overlays, with ``split_by``) of a map."""

    key: str
    source: str
    title_zh: str
    geometry: str  # polygon, line or point
    #: the registry layer the overlay draws, whose map style fills what the recipe leaves out.
    layer: str | None = None
    show: bool = True
    style: dict = field(default_factory=dict)
    #: point symbol: circle (an SVG circle marker) or icon (an inline-SVG shape in a div icon).
    symbol: str = "circle"
    shape: str = "circle"
    size: int = 14
    #: categorical or binned colours: {field, colors, labels_group | labels, bins, none_color, none_label}.
    color_by: dict = field(default_factory=dict)
    #: circle radius by a number: {field, min, max}; sqrt scale.
    radius_by: dict = field(default_factory=dict)
    #: one overlay per value of this field (titles from color_by's labels).
    split_by: str | None = None
    #: [[field, label_zh], ...]; values of fields in ``value_labels`` are shown by their Chinese label.
    tooltip: tuple = ()
    popup: tuple = ()
    value_labels: dict = field(default_factory=dict)
    #: a field whose sum per category the legend shows (e.g. households).
    legend_sum: str | None = None
    legend_unit_zh: str = ""
    #: the measure word of the legend's counts: 个, 条 (lines), 处 (sites).
    count_unit_zh: str = "个"
    #: whether the legend counts the features (false: only the ``legend_sum``, e.g. of one merged area).
    legend_count: bool = True
    #: drawn only from this zoom on (0: always), e.g. settlements from where they separate.
    min_zoom: int = 0


@dataclass(frozen=True)
class MapRecipe:
    name: str
    title_zh: str
    description_zh: str
    layers: tuple[LayerRecipe, ...]
    parameters: dict = field(default_factory=dict)
    note_zh: str = ""
    #: the data source printed under the map.
    source_zh: str = "本系统空间数据库"


def _layer(raw: dict, path: Path) -> LayerRecipe:
    try:
        known = set(LayerRecipe.__dataclass_fields__)
        unknown = set(raw) - known
        if unknown:
            raise RecipeError(f"{path}: unknown layer keys {sorted(unknown)}; known: {sorted(known)}")
        values = _with_layer_style(dict(raw), path)
        for name in ("tooltip", "popup"):
            values[name] = tuple(tuple(pair) for pair in values.get(name, ()))
        layer = LayerRecipe(**values)
    except TypeError as exc:
        raise RecipeError(f"{path}: layer {raw.get('key')!r}: {exc}") from None
    if layer.geometry not in ("polygon", "line", "point"):
        raise RecipeError(f"{path}: layer {layer.key!r}: geometry must be polygon, line or point")
    return layer


def _with_layer_style(values: dict, path: Path) -> dict:
    """The recipe's keys over the defaults of the layer it names (``layer``): symbol, shape, size and colour, the
    styling field's colours (``color_by``) and shapes (``style.shapes``), and ``value_labels`` for every coded
    field."""
    if values.get("layer") is None:
        return values
    layer = LAYERS.get(values["layer"])
    if layer is None:
        raise RecipeError(f"{path}: layer {values.get('key')!r}: no layer {values['layer']!r}; the layers are: "
                          f"{', '.join(LAYERS)}")
    style = layer.map_style
    defaults: dict = {"symbol": style.symbol, "shape": style.shape, "size": style.size,
                      "value_labels": {f.name: f"{layer.id}.{f.name}" for f in layer.fields if f.values is not None}}
    drawn = {"fillColor" if values.get("geometry") == "point" else "color": style.color}
    if style.by:
        coded = layer.field_named(style.by).values
        defaults["color_by"] = {"field": style.by, "labels_group": f"{layer.id}.{style.by}",
                                "colors": {v.code: v.color for v in coded if v.color}}
        shapes = {v.code: v.shape for v in coded if v.shape}
        if shapes:
            drawn.update(shape_by=style.by, shapes=shapes)
    merged = {**defaults, **values}
    merged["style"] = {**drawn, **values.get("style", {})}
    merged["value_labels"] = {**defaults["value_labels"], **values.get("value_labels", {})}
    if "color_by" in values and "color_by" in defaults:
        merged["color_by"] = {**defaults["color_by"], **values["color_by"]}
    return merged


def load_recipe(name: str, folder: Path | None = None) -> MapRecipe:
    """The recipe of map ``name``; :class:`UnknownMapError` (404) for a name that is not a map."""
    if name not in MAP_NAMES:
        raise UnknownMapError(name, MAP_NAMES)
    path = (folder or recipes_dir()) / f"{name}.toml"
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RecipeError(f"the recipe of map {name!r} is missing: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise RecipeError(f"{path}: {exc}") from None
    return MapRecipe(name=name, title_zh=raw["title_zh"], description_zh=raw.get("description_zh", ""),
                     layers=tuple(_layer(layer, path) for layer in raw.get("layers", ())),
                     parameters=raw.get("parameters", {}), note_zh=raw.get("note_zh", ""),
                     source_zh=raw.get("source_zh", MapRecipe.source_zh))
