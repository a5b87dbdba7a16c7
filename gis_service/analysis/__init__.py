"""Coverage along the road network: service areas, served households, floor area per 100 households, the plan's
indicators and site suggestions.

Layout: :mod:`.travel` (modes, speeds, limits), :mod:`.graph` (pure numpy/scipy computations: a graph and points
on its edges in, costs out), :mod:`.network` (the SQL side: building the network with pgRouting, data versions,
joining points to edges, the in-process caches), then one module per answer (:mod:`.coverage`,
:mod:`.service_areas`, :mod:`.facility_area`, :mod:`.indicators`, :mod:`.sites`). Everything is measured in metres
in the county's Gauss-Krüger zone (EPSG:4545 for Xiushan), never in degrees.
"""
