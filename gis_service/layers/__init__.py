"""The layer registry: which tables are published, with which typed fields."""

from gis_service.layers.base import Field, Layer
from gis_service.layers.registry import LAYERS, get_layer

__all__ = ["Field", "Layer", "LAYERS", "get_layer"]
