"""The reproducible demo county (秀山, 500241): real codes, names and outline, synthetic everything else.

``gis_service.demo.build.build_demo(scale, seed, progress)`` returns one frame per table.
"""
