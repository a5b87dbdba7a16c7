"""How much of a request the service reads: limits checked before any parser sees the input.

The parsers behind the API recurse, and fail badly on input nested deep enough. The ``cql2`` filter parser (Rust)
overflows its stack and takes the whole server process with it at about 1,700 nested brackets, 2,000-5,000 NOTs or
unary minus signs in a row, or 10,000 chained ``+`` terms; Python's ``json`` raises RecursionError at about 1,000
nested arrays, and ``int()`` refuses numbers of more than 4,300 digits. The checks here are iterative (a tokenizer,
a regular-expression scan, a walk with a stack) and answer 400 with a message that names the limit. The limits are
far below where anything breaks and far above real use: a filter a planner writes nests 2-4 levels, a GeoJSON
MultiPolygon body 6 levels of objects and arrays.
"""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

import numpy as np

from gis_service.errors import InvalidInputError, LimitExceeded

#: A CQL2 filter (text or JSON): its length in characters, how deep its expressions nest (brackets, NOT, signs and
#: arithmetic in text; operators in JSON), and its terms (names, values and operators in text; JSON values).
MAX_FILTER_CHARS = 20_000
MAX_FILTER_DEPTH = 32
MAX_FILTER_TERMS = 5_000
#: JSON (a request body, a CQL2 JSON filter, a list in a text field): levels of objects and arrays; each level of
#: a CQL2 JSON expression takes two (the operator's object and its ``args`` list).
MAX_JSON_DEPTH = 2 * MAX_FILTER_DEPTH
#: Characters of one JSON number (Python's int() refuses more than 4,300 digits).
MAX_NUMBER_CHARS = 100
#: Largest feature id a request may name (PostgreSQL bigint, with room to spare).
MAX_FEATURE_ID = 2**62
#: Largest id an import may give a feature: the largest integer a JSON number holds exactly in JavaScript (and
#: in any double), far below MAX_FEATURE_ID, so that the id sequence set after an import never passes what the
#: API accepts.
MAX_IMPORTED_ID = 2**53 - 1

FILTER_LIMITS_DOC = (f"At most {MAX_FILTER_CHARS:,} characters, {MAX_FILTER_DEPTH} levels of nesting (brackets, "
                     f"NOT, signs) and {MAX_FILTER_TERMS:,} terms.")
BODY_LIMITS_DOC = (f"JSON of at most {MAX_JSON_DEPTH} levels of objects and arrays, numbers of at most "
                   f"{MAX_NUMBER_CHARS} characters, text in valid Unicode.")


# -- CQL2 text ---------------------------------------------------------------------------------------------------

_CQL2_TOKEN = re.compile(r"""
    '[^']*(?:''[^']*)*'?          # a text literal ('' is a quote inside it); unterminated: to the end
  | "[^"]*(?:""[^"]*)*"?          # a quoted property name
  | [^\W\d]\w*                    # a name, a keyword or a function
  | \d+(?:\.\d*)?(?:[eE][+-]?\d+)? # a number (its sign is an operator here)
  | <>|<=|>=|!=                   # two-character comparisons
  | \S                            # a bracket, a comma or any other one-character operator
""", re.VERBOSE)
#: Operators that nest their operand inside themselves: NOT and the signs and arithmetic, which the parser chains
#: into ever deeper trees. AND and OR take lists, so they end such a chain, as do commas and brackets.
_NESTING = {"NOT", "+", "-", "*", "/", "%", "^", "DIV"}
_CHAIN_ENDS = {"AND", "OR", ","}


def check_cql2_text(text: str) -> None:
    """Refuse a CQL2 text filter that is too long, nests too deep or has too many terms (LimitExceeded, 400).

    A tokenizer that skips over text literals and quoted names counts the depth: each open bracket, and each NOT,
    sign or arithmetic operator until the next AND, OR, comma or bracket, adds a level."""
    _check_length(text)
    frozen: list[int] = []  # per open bracket: the chain it was opened in
    base = chain = deepest = terms = 0
    for match in _CQL2_TOKEN.finditer(text):
        token = match.group()
        if token in ("(", "["):
            frozen.append(chain)
            base += 1 + chain
            chain = 0
        elif token in (")", "]"):
            if frozen:
                base -= 1 + frozen.pop()
            chain = 0
        elif token.upper() in _CHAIN_ENDS:
            chain = 0
            terms += token != ","
        else:
            terms += 1
            chain += token.upper() in _NESTING
        deepest = max(deepest, base + chain)
    _check_depth_and_terms(deepest, terms)


def _check_length(text: str) -> None:
    if len(text) > MAX_FILTER_CHARS:
        raise LimitExceeded(f"filter is {len(text):,} characters long; at most {MAX_FILTER_CHARS:,} are accepted: "
                            "ask for less at once (a bbox, fewer values in IN)")


def _check_depth_and_terms(depth: int, terms: int) -> None:
    if depth > MAX_FILTER_DEPTH:
        raise LimitExceeded(f"filter nests {depth:,} levels deep (brackets, NOT, signs and arithmetic count); at "
                            f"most {MAX_FILTER_DEPTH} are accepted: write it flatter, e.g. NOT NOT x as x")
    if terms > MAX_FILTER_TERMS:
        raise LimitExceeded(f"filter has {terms:,} terms (names, values and operators); at most "
                            f"{MAX_FILTER_TERMS:,} are accepted: split it into several requests")


def check_cql2_expression(expression: object) -> None:
    """Refuse parsed CQL2 JSON whose operators nest more than MAX_FILTER_DEPTH levels inside the outermost one, or
    that holds more than MAX_FILTER_TERMS values (names, numbers, text; a walk with a stack, so it cannot recurse).
    """
    deepest = terms = 0
    stack: list[tuple[object, int]] = [(expression, -1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            depth += "op" in node
            deepest = max(deepest, depth)
            stack.extend((child, depth) for child in node.values())
        elif isinstance(node, list):
            stack.extend((child, depth) for child in node)
        else:
            terms += 1
    _check_depth_and_terms(deepest, terms)


def check_cql2_json_text(text: str) -> None:
    """The limits of a CQL2 JSON filter before it is parsed: length and levels of objects and arrays."""
    _check_length(text)
    json_depth(text, what="filter")


# -- JSON --------------------------------------------------------------------------------------------------------

#: A JSON string (escapes included), to be skipped when counting brackets.
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
#: Every byte but brackets and braces, to be deleted before counting.
_NOT_BRACKETS = bytes(sorted(set(range(256)) - set(b"[]{}")))


def json_depth(text: str | bytes, *, what: str, max_depth: int = MAX_JSON_DEPTH) -> int:
    """How many levels of objects and arrays ``text`` nests; LimitExceeded beyond ``max_depth``. Vectorised
    (strings removed, then a running sum over the brackets): a 5 MB body takes milliseconds."""
    brackets = np.frombuffer(_JSON_STRING.sub(b'""', _as_bytes(text)).translate(None, _NOT_BRACKETS), np.uint8)
    steps = np.where((brackets == ord("[")) | (brackets == ord("{")), 1, -1)
    depth = int(np.cumsum(steps).max()) if len(steps) else 0
    if depth > max_depth:
        levels = f"{max_depth} level" + ("s are" if max_depth != 1 else " is")
        raise LimitExceeded(f"{what} nests objects and arrays {depth:,} levels deep; at most {levels} accepted")
    return depth


def load_json(text: str | bytes, *, what: str, max_depth: int = MAX_JSON_DEPTH) -> object:
    """``text`` parsed as JSON within the limits: at most ``max_depth`` levels, numbers of at most MAX_NUMBER_CHARS
    characters, no NaN or Infinity, text that is valid Unicode (no lone surrogates). LimitExceeded names the
    limit; InvalidInputError says where the JSON is malformed."""
    json_depth(text, what=what, max_depth=max_depth)

    def number(kind):
        def parse(literal: str):
            if len(literal) > MAX_NUMBER_CHARS:
                raise LimitExceeded(f"{what} holds a number written with {len(literal):,} characters; at most "
                                    f"{MAX_NUMBER_CHARS} are accepted")
            return kind(literal)
        return parse

    def constant(name: str):
        raise InvalidInputError(f"{what} contains {name}, which is not a JSON number")

    try:
        value = json.loads(text, parse_int=number(int), parse_float=number(float), parse_constant=constant)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"{what} is not valid JSON: {exc}") from None
    where = lone_surrogate_path(value) if _MAYBE_SURROGATE.search(_as_bytes(text)) else None
    if where is not None:
        raise InvalidInputError(f"{what} holds text that is not valid Unicode (a lone surrogate, \\ud800-\\udfff, "
                                f"at {where or 'the top'}); send text as UTF-8")
    return value


_SURROGATE = re.compile("[\ud800-\udfff]")
#: A surrogate written as an escape (\ud800) or encoded as UTF-8 bytes (which json.loads lets through): only JSON
#: that holds one needs the walk below.
_MAYBE_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]|\xed[\xa0-\xbf]")


def _as_bytes(text: str | bytes) -> bytes:
    return text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text


def lone_surrogate_path(value: object) -> str | None:
    """Where in parsed JSON a string (or key) holds a lone surrogate, as ``properties.name``; None if nowhere."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
        return None
    except UnicodeEncodeError:
        pass
    stack: list[tuple[object, str]] = [(value, "")]
    while stack:
        node, path = stack.pop()
        if isinstance(node, str) and _SURROGATE.search(node):
            return path
        if isinstance(node, dict):
            for key, child in node.items():
                if _SURROGATE.search(key):
                    return f"{path}.{key!r}".lstrip(".")
                stack.append((child, f"{path}.{key}".lstrip(".")))
        elif isinstance(node, list):
            stack.extend((child, f"{path}[{i}]") for i, child in enumerate(node))
    return ""


#: Limits on what a zip (a zipped Shapefile, an XLSX workbook) may expand to, against zip bombs.
MAX_ZIP_MEMBERS = 1000
MAX_ZIP_BYTES = 2 * 1024**3


def check_zip(path: Path) -> None:
    """Refuse a zip that is unreadable, expands beyond the limits above or names a path outside itself."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except zipfile.BadZipFile:
        raise InvalidInputError(f"{path.name} is not a readable zip file") from None
    if len(members) > MAX_ZIP_MEMBERS or sum(m.file_size for m in members) > MAX_ZIP_BYTES:
        raise InvalidInputError(f"{path.name} expands to more than {MAX_ZIP_MEMBERS} files or "
                                f"{MAX_ZIP_BYTES // 1024**3} GiB; refusing to open it")
    for member in members:
        if member.filename.startswith("/") or ".." in Path(member.filename).parts:
            raise InvalidInputError(f"{path.name} holds an unsafe path {member.filename!r}")
