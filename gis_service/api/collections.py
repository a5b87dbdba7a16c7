"""The collections (one per published layer)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from gis_service.api.deps import ConnectionDep
from gis_service.io.load_demo import layer_counts
from gis_service.layers import LAYERS

router = APIRouter(tags=["collections"])


@router.get("/collections", summary="The published layers",
            description="Every layer the service publishes, with its title, geometry type and feature count "
            "(current features only where a layer keeps history).")
def list_collections(request: Request, conn: ConnectionDep) -> dict:
    counts = layer_counts(conn)
    base = str(request.base_url).rstrip("/")
    return {
        "links": [{"href": f"{base}/collections", "rel": "self", "type": "application/json",
                   "title": "this document"}],
        "collections": [
            {
                "id": layer.id,
                "title": layer.title,
                "title_zh": layer.title_zh,
                "description": layer.description,
                "itemType": "feature",
                "geometryType": layer.geometry_type,
                "featureCount": counts[layer.id],
                "crs": ["http://www.opengis.net/def/crs/OGC/1.3/CRS84"],
                "storageCrs": "http://www.opengis.net/def/crs/EPSG/0/4490",
            }
            for layer in LAYERS.values()
        ],
    }
