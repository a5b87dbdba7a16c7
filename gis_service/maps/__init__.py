"""Web maps for planners (folium): recipes in the repository's ``maps/`` folder, builders here.

:mod:`.recipes` reads a map's recipe, :mod:`.data` reads its layers from PostGIS, :mod:`.builders` adds the
analyses (coverage, floor area, site suggestions), :mod:`.render` draws it offline-first, :mod:`.cli` writes it as
a single file and :mod:`.browser` opens pages in headless Chromium for the tests and the benchmark. Nothing here
imports folium at import time.
"""
