"""``python -m gis_service.cli`` is ``gis-service``."""

from gis_service.cli import main

main()
