"""Web maps for planners (folium): recipes in the repository's ``maps/`` folder (package data, read through
:mod:`gis_service.resources`), builders here.

:mod:`.recipes` reads a map's recipe, :mod:`.data` reads its layers from PostGIS, :mod:`.builders` adds the
analyses (coverage, floor area, site suggestions), :mod:`.render` draws it offline-first; ``gis-service map build``
(:mod:`gis_service.cli.maps`) writes it as a single file. Nothing here imports folium at import time.
"""
