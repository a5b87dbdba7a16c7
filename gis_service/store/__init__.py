"""Data access: the tables (SQLAlchemy Core, GeoAlchemy2) and the only place feature SQL is written."""
