"""The service's OpenAPI document as OpenAPI 3.0 (``/api``), from FastAPI's 3.1 document.

FastAPI writes OpenAPI 3.1 (JSON Schema 2020-12); OGC API - Features Part 1 names OpenAPI 3.0, and some
clients (GDAL's OAPIF driver among them) read 3.0. The differences in what FastAPI emits are few: nullable
types, ``examples`` lists, ``const`` and numeric ``exclusiveMinimum``/``exclusiveMaximum``.
"""

from __future__ import annotations

import copy

OPENAPI_30 = "3.0.3"
MEDIA_TYPE = "application/vnd.oai.openapi+json;version=3.0"


def to_openapi_30(document: dict) -> dict:
    """A copy of an OpenAPI 3.1 document rewritten to OpenAPI 3.0.3."""
    result = copy.deepcopy(document)
    result["openapi"] = OPENAPI_30
    result.pop("jsonSchemaDialect", None)
    result.pop("webhooks", None)
    return _walk(result)


def _walk(node):
    if isinstance(node, list):
        return [_walk(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _walk(value) for key, value in node.items()}
    for key in ("anyOf", "oneOf"):
        options = node.get(key)
        if isinstance(options, list) and any(_is_null(o) for o in options):
            rest = [o for o in options if not _is_null(o)]
            node.pop(key)
            node["nullable"] = True
            if len(rest) == 1 and "$ref" not in rest[0]:
                node.update({k: v for k, v in rest[0].items() if k not in node})
            elif len(rest) == 1:
                node["allOf"] = rest
            else:
                node[key] = rest
    if isinstance(node.get("type"), list):
        types = [t for t in node["type"] if t != "null"]
        if len(types) < len(node["type"]):
            node["nullable"] = True
        node["type"] = types[0] if len(types) == 1 else types[0] if types else "string"
    if "const" in node:
        node["enum"] = [node.pop("const")]
    if isinstance(node.get("examples"), list) and "type" in node:
        examples = node.pop("examples")
        if examples:
            node["example"] = examples[0]
    for bound, limit in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        value = node.get(bound)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            node[limit] = value
            node[bound] = True
    node.pop("contentMediaType", None)
    node.pop("$schema", None)
    return node


def _is_null(schema) -> bool:
    return isinstance(schema, dict) and schema.get("type") == "null" and len(schema) == 1
