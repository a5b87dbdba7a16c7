"""OGC API - Features (Parts 1, 2 and 3) and vector tiles over the layer registry.

Modules: ``crs`` (the CRSs served and their axis order), ``params`` (parsing of query parameters into an
:class:`~gis_service.ogc.query.ItemsQuery`), ``filters`` (CQL2 text/JSON to SQL), ``query`` (the SQL of
items, counts and extents; GeoJSON is built in the database), ``tiles`` (Mapbox Vector Tiles and TileJSON),
``openapi`` (the OpenAPI 3.0 document at ``/api``).
"""
