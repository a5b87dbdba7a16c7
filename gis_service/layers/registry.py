"""The published layers, in the order they are listed and loaded, and the questions asked across them."""

from __future__ import annotations

from gis_service.errors import UnknownLayerError
from gis_service.layers.base import POPULATIONS, ROLES, AppendFormerName, KeepFormerRecord, Layer
from gis_service.layers.boundaries import boundary_lines, boundary_markers
from gis_service.layers.divisions import admin_divisions
from gis_service.layers.facilities import cemeteries, community_centres, elder_care, settlements
from gis_service.layers.placenames import place_names
from gis_service.layers.roads import roads

LAYERS: dict[str, Layer] = {
    layer.id: layer
    for layer in (admin_divisions, boundary_lines, boundary_markers, roads, place_names, settlements,
                  cemeteries, elder_care, community_centres)
}
#: The layers whose features serve the settlements, by id (what ``layer=`` of an analysis names).
FACILITY_LAYERS: dict[str, Layer] = {
    layer.id: layer for layer in LAYERS.values() if layer.network and layer.network.role == "facility"}
#: The layer whose households the analyses serve.
DEMAND_LAYER: Layer = next(layer for layer in LAYERS.values() if layer.network and layer.network.role == "demand")
#: The layer of the road network.
ROADS: Layer = roads
#: The layer of the administrative divisions: what references to a division name, and how results are grouped.
DIVISIONS: Layer = admin_divisions
#: The gazetteer: the layer place-name search reads (the database keeps its search keys; see store.tables).
GAZETTEER: Layer = place_names


def get_layer(layer_id: str) -> Layer:
    try:
        return LAYERS[layer_id]
    except KeyError:
        raise UnknownLayerError(layer_id, list(LAYERS)) from None


def layers_written_by(role: str) -> list[str]:
    """The ids of the layers ``role`` may change (some perhaps only in part), in registry order."""
    return [layer.id for layer in LAYERS.values() if role in layer.writers or role == "admin"]


def _check(layers: dict[str, Layer]) -> None:
    """Refuse a registry whose layers name what does not exist: a mistake in this package, found at import."""
    for layer in layers.values():
        names = set(layer.field_names)
        wrong = [f"references {f.references.layer}.{f.references.field}" for f in layer.fields if f.references
                 and (f.references.layer not in layers or f.references.field not in
                      {"id", *layers[f.references.layer].field_names})]
        wrong += [f"rule reads {name}" for rule in layer.rules for name in (*rule.reads, rule.field)
                  if name not in names]
        wrong += [f"writer {role}" for role in layer.writers if role not in ROLES]
        wrong += [f"writer {role} field {name}" for role, allowed in layer.writers.items() for name in allowed or ()
                  if name not in names]
        if layer.network:
            wrong += [f"network reads {name}" for name in (*layer.network.columns, *dict(layer.network.counts),
                                                           layer.network.kind, layer.network.village)
                      if name is not None and name not in names]
        if layer.network and layer.network.serves:
            wrong += [f"serves {kind}: {population}" for kind, population in layer.network.serves
                      if kind not in layer.kinds or population not in POPULATIONS]
        if layer.spelling:
            wrong += [f"spelling {name}" for name in (layer.spelling.field, layer.spelling.source,
                                                      layer.spelling.manual) if name and name not in names]
        if isinstance(layer.on_rename, KeepFormerRecord):
            rename = layer.on_rename
            wrong += [f"rename {name}" for name in (rename.status, rename.successor, rename.history)
                      if name not in names]
        if isinstance(layer.on_rename, AppendFormerName) and layer.on_rename.field not in names:
            wrong.append(f"rename {layer.on_rename.field}")
        if layer.map_style.by and (layer.get_field(layer.map_style.by) is None
                                   or layer.get_field(layer.map_style.by).values is None):
            wrong.append(f"map style by {layer.map_style.by}")
        if layer.validity and not set(layer.validity) <= names:
            wrong.append(f"validity {layer.validity}")
        if wrong:
            raise ValueError(f"layer {layer.id}: {', '.join(wrong)}")


_check(LAYERS)
