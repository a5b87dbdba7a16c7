"""Files the service ships beside its code: the real source data of the demo county and the map recipes.

They stay at the repository's top level, where people look for them (``layers/``, ``maps/``), and are installed as
the sub-packages ``gis_service.resources.layers`` and ``gis_service.resources.maps``: ``setup.py`` maps those names
onto the two folders (pyproject.toml alone cannot). So they are found the same way from a checkout, an editable
install or a wheel installed anywhere, never through a path relative to this file.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def _folder(package: str) -> Path:
    """The folder of a data sub-package. pip installs wheels unpacked, so it is a real folder, which callers may
    open, list and stat (``Path()`` refuses the virtual one a zipped install would give)."""
    return Path(files(package))


def county_sources(county: str = "xiushan") -> Path:
    """The folder of a county's real source files: ``layers/<county>/`` (see its PROVENANCE.md)."""
    return _folder(f"{__name__}.layers") / county


def map_recipes() -> Path:
    """The folder of the map recipes: ``maps/<name>.toml``."""
    return _folder(f"{__name__}.maps")
