"""Only what pyproject.toml cannot say: the repository's ``layers/`` and ``maps/`` folders are installed as the data
packages ``gis_service.resources.layers`` and ``gis_service.resources.maps`` (pyproject's ``packages.find`` finds
packages only inside their parent's folder). Everything else is in pyproject.toml."""

from setuptools import find_namespace_packages, setup

DATA_PACKAGES = {"gis_service.resources.layers": "layers", "gis_service.resources.maps": "maps"}

setup(packages=[*find_namespace_packages(include=["gis_service", "gis_service.*"]), *DATA_PACKAGES],
      package_dir=DATA_PACKAGES)
