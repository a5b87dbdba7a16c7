"""Pages for the bureau's people (issue 13): a portal, 地名查询, 界线界桩, 规划指标.

Jinja2 templates under ``templates/``, a style sheet and scripts under ``static/``; Leaflet is the copy the maps
serve (/maps/static/leaflet), so nothing is loaded from another host.
"""

from __future__ import annotations

import functools
from pathlib import Path

import jinja2

PAGES_DIR = Path(__file__).resolve().parent
STATIC_DIR = PAGES_DIR / "static"


@functools.cache
def environment() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(PAGES_DIR / "templates"),
                              autoescape=True, trim_blocks=True, lstrip_blocks=True)


def render(template: str, **context) -> str:
    return environment().get_template(template).render(**context)
