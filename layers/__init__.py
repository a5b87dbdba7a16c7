"""Real source data of the demo county, one folder per county, installed as package data
(gis_service.resources.layers: see gis_service/resources/__init__.py). Not code: this file only makes the folder a
package that editable installs can map."""
