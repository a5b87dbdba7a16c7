"""The layer registry: which tables are published, with which typed fields, and each layer's own rules."""

from gis_service.layers.base import Field, Layer, Value
from gis_service.layers.registry import FACILITY_LAYERS, LAYERS, get_layer, layers_written_by

__all__ = ["FACILITY_LAYERS", "Field", "LAYERS", "Layer", "Value", "get_layer", "layers_written_by"]
