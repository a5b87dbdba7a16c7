"""The map recipes (one TOML file per map), installed as package data (gis_service.resources.maps: see
gis_service/resources/__init__.py). Not code: this file only makes the folder a package that editable installs can
map."""
