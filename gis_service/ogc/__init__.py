"""OGC API - Features (Parts 1, 2 and 3) and vector tiles over the layer registry: the pure side.

Modules: ``crs`` (the CRSs served and their axis order), ``params`` (an items request parsed once into an
:class:`~gis_service.ogc.params.ItemsQuery`), ``filters`` (CQL2 text/JSON to a SQL condition on a layer's table),
``tiles`` (the tile grid, the fields a tile carries, TileJSON), ``cache`` (collection summaries per data version),
``openapi`` (the OpenAPI 3.0 document at ``/api``). The statements are :mod:`gis_service.store`'s
(:mod:`~gis_service.store.features` for items, counts and extents, :mod:`~gis_service.store.tiles` for tiles).
"""
