"""What a request may tell the service about itself, and what every answer tells the browser.

Pure functions, used by :class:`gis_service.api.middleware.RequestContext`:

- **tokens never in URLs**: a URL is written to access logs, browser history and ``Referer`` headers, so a
  query string that holds a token (a parameter named like one, or any name or value shaped like a service
  token, ``gis_…``) is refused, and token-shaped text is cut from every logged path;
- **forwarded headers only from trusted proxies**: ``X-Forwarded-For`` and ``Forwarded`` name the client only
  when the peer is one of ``GIS_TRUSTED_PROXIES``; anyone else could write any address there;
- **links from the service's own address**: ``GIS_PUBLIC_URL`` when set, else the address and port the request
  reached (the socket's, which a client cannot choose), never the ``Host`` header;
- **security headers** on every answer, with a Content-Security-Policy fitting each kind of answer.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

#: A token as :func:`gis_service.auth.create_token` makes it (``gis_`` and 43 URL-safe characters), or a
#: piece of one long enough to be worth hiding.
TOKEN_SHAPE = re.compile(r"gis_[A-Za-z0-9_-]{20,}")
#: Query parameters that carry credentials in other services' APIs; none of them is a parameter of this one
#: (tests/test_security_privacy.py checks that no layer has a field so named). Compared lower-case, ``-`` as ``_``.
TOKEN_PARAMETERS = frozenset({
    "token", "access_token", "id_token", "refresh_token", "auth_token", "api_token", "bearer", "authorization",
    "auth", "api_key", "apikey", "secret", "password", "jwt",
})


def token_in_query(query_string: bytes) -> str | None:
    """The name of the first query parameter that holds a token (by its name or by the shape of its name or
    value), or None."""
    if not query_string:
        return None
    for name, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        if name.strip().lower().replace("-", "_") in TOKEN_PARAMETERS or TOKEN_SHAPE.search(name) \
                or TOKEN_SHAPE.search(value):
            return name
    return None


def without_tokens(text: str) -> str:
    """``text`` (a path, for the log) with every token-shaped piece replaced by ``gis_[redacted]``."""
    return TOKEN_SHAPE.sub("gis_[redacted]", text)


# -- forwarded headers ---------------------------------------------------------------------------------------

Networks = tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]


def networks(cidrs: Iterable[str]) -> Networks:
    return tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An address from a forwarded-for entry (``192.0.2.1``, ``"[2001:db8::1]:4711"``, ``10.0.0.1:80``)."""
    text = text.strip().strip('"')
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:  # IPv4 with a port
        text = text.partition(":")[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _trusted(address, trusted: Networks) -> bool:
    return address is not None and any(address in network for network in trusted)


def forwarded_for(headers: dict[str, str]) -> list[str]:
    """The hops named by ``Forwarded`` (RFC 7239, its ``for=``), or else by ``X-Forwarded-For``, nearest last."""
    if "forwarded" in headers:
        hops = []
        for element in headers["forwarded"].split(","):
            pairs = dict(p.strip().partition("=")[::2] for p in element.split(";") if "=" in p)
            hops.append(next((v for k, v in pairs.items() if k.strip().lower() == "for"), ""))
        return hops
    return [h for h in headers.get("x-forwarded-for", "").split(",") if h.strip()]


def client_address(peer: str, headers: dict[str, str], trusted: Networks) -> str:
    """The client's address: the peer's, unless the peer is a trusted proxy; then the nearest hop its forwarded
    headers name that is not itself a trusted proxy (read from the right: the left part is what the client wrote).
    A hop that is not an address ends the walk at the last proxy."""
    current = _address(peer)
    if not _trusted(current, trusted):
        return peer
    for hop in reversed(forwarded_for(headers)):
        address = _address(hop)
        if address is None:
            break
        current = address
        if not _trusted(address, trusted):
            break
    return str(current)


# -- links ----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PublicAddress:
    """Where links point: scheme, host[:port] and path prefix (``""`` or ``/gis``) of ``GIS_PUBLIC_URL``."""

    scheme: str
    netloc: str
    prefix: str

    @classmethod
    def parse(cls, url: str) -> PublicAddress:
        parts = urlsplit(url)
        return cls(parts.scheme, parts.netloc, parts.path.rstrip("/"))


def socket_netloc(server: tuple[str, int] | list | None, scheme: str, fallback: str) -> str:
    """``host[:port]`` of the address the request reached (``scope["server"]``), the port left out when it is
    the scheme's default; ``fallback`` when the server does not say (a unix socket)."""
    if not server:
        return fallback
    host, port = server[0], server[1]
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return host if port in (None, {"http": 80, "https": 443}.get(scheme)) else f"{host}:{port}"


# -- headers on every answer -----------------------------------------------------------------------------------

#: JSON, tiles, files: nothing in them may run or load anything, nor be framed.
API_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
#: The HTML views (?f=html): an inline style sheet and links, no script.
PAGE_POLICY = ("default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; "
               "base-uri 'none'; form-action 'none'")
#: /docs and /redoc (gis_service/api/docs.py): Swagger UI and ReDoc from this service, started by FastAPI's inline
#: script (the pages hold no data of ours, so 'unsafe-inline' risks nothing there); ReDoc runs a worker from a blob.
DOCS_POLICY = ("default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
               "font-src 'self' data:; img-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; "
               "frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
#: Tile servers of each basemap of the web maps (GIS_MAP_BASEMAP).
BASEMAP_HOSTS = {"none": "", "osm": " https://tile.openstreetmap.org", "tianditu": " https://*.tianditu.gov.cn",
                 "amap": " https://*.is.autonavi.com"}


def map_policy(basemap: str, tile_url: str | None = None) -> str:
    """The web maps (/maps): folium writes the map as inline scripts and styles (so 'unsafe-inline': the data in
    them is escaped when the page is built), Leaflet comes from /maps/static, tiles from the basemap's servers
    (and GIS_MAP_TILE_URL's host), the search box asks this service, and the index's form opens a map of it."""
    from urllib.parse import urlsplit

    tiles = urlsplit(tile_url) if tile_url else None
    extra = f" {tiles.scheme}://{tiles.netloc}" if tiles and tiles.netloc else ""
    return ("default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
            f"img-src 'self' data:{BASEMAP_HOSTS[basemap]}{extra}; connect-src 'self'; object-src 'none'; "
            "frame-ancestors 'none'; base-uri 'none'; form-action 'self'")


#: Answers to browsers: no Referer beyond this service, except from the web maps (MAP_REFERRER).
REFERRER_POLICY = "no-referrer"
#: The web maps send their origin (never the path) to tile servers: Tianditu checks a browser key's site by it.
MAP_REFERRER_POLICY = "strict-origin-when-cross-origin"
#: HSTS only where the public address is https: a year, this host only (other hosts of the domain are not ours).
HSTS = "max-age=31536000"


def security_headers(given: Iterable[tuple[bytes, bytes]], *, https: bool,
                     policy_for_html: str = PAGE_POLICY) -> list[tuple[bytes, bytes]]:
    """The headers to add to an answer that has ``given``: each security header the answer does not set itself
    (a router may set a policy of its own, as /maps does), the CSP chosen by the answer's media type."""
    present = {name.lower(): value for name, value in given}
    html = present.get(b"content-type", b"").startswith(b"text/html")
    wanted = {b"x-content-type-options": b"nosniff",
              b"referrer-policy": REFERRER_POLICY.encode(),
              b"x-frame-options": b"DENY",
              b"content-security-policy": (policy_for_html if html else API_POLICY).encode()}
    if https:
        wanted[b"strict-transport-security"] = HSTS.encode()
    return [(name, value) for name, value in wanted.items() if name not in present]
