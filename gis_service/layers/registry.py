"""The published layers, in the order they are listed and loaded."""

from __future__ import annotations

from gis_service.errors import UnknownLayerError
from gis_service.layers.base import Layer
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


def get_layer(layer_id: str) -> Layer:
    try:
        return LAYERS[layer_id]
    except KeyError:
        raise UnknownLayerError(layer_id, list(LAYERS)) from None
