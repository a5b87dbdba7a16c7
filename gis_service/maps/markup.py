"""The maps' markup: Jinja2 templates in ``templates/`` beside this module (the page's panels, its style sheet, the
scripts of its controls and labels, the symbols), rendered here.

HTML templates are autoescaped: what a builder hands over is plain text. Scripts (``.js``) and the style sheet are
not: the values put into them are JSON made by the caller (:func:`json_for_script`) or numbers.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import jinja2

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"


@functools.cache
def environment() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
                              autoescape=jinja2.select_autoescape(["html", "svg"]), undefined=jinja2.StrictUndefined)


def render(template: str, **context) -> str:
    """Template ``template`` (a file name in ``templates/``) rendered with ``context``."""
    return environment().get_template(template).render(**context)


def template(name: str) -> jinja2.Template:
    """A template itself, e.g. a folium macro (``{% macro script(this, kwargs) %}``) for a MacroElement."""
    return environment().get_template(name)


def json_for_script(value: object) -> str:
    """``value`` as JSON to put in a ``<script>``: compact, Chinese kept, and no ``</`` that could end the script."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).replace("</", "<\\/")
