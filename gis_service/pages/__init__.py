"""The bureau's browser pages (issue 13): Jinja2 templates in ``templates/``, their scripts and style in ``static/``.

Every page is served by this service alone: Leaflet comes from /maps/static, the data from the JSON API the pages
call with ``fetch`` (same origin), so nothing is requested from another host.
"""

from __future__ import annotations

import functools
from pathlib import Path

import jinja2

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"


@functools.cache
def environment() -> jinja2.Environment:
    """Templates with HTML autoescaping: every value from the database is escaped when a page is rendered."""
    return jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"),
                              autoescape=jinja2.select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True)


def render(template: str, **values) -> str:
    return environment().get_template(template).render(**values)
