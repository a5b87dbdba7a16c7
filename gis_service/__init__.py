"""gis-service: a PostGIS-backed GIS service for a county civil-affairs bureau."""

__version__ = "0.1.0"
