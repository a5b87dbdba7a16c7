"""Configuration, read from the environment (prefix ``GIS_``) or a ``.env`` file.

Nothing here runs at import time: call :func:`get_settings` (the app and the CLI do it once).
"""

from __future__ import annotations

import ipaddress
import os
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

import platformdirs
from pydantic import Field, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

#: Storage CRS: CGCS2000 geographic.
STORAGE_SRID = 4490
#: CRS of served GeoJSON (RFC 7946).
SERVE_SRID = 4326


def default_data_dir() -> Path:
    """The folder that holds the embedded cluster and caches.

    The user's data directory, except for root: PostgreSQL refuses to run as root, so the
    cluster runs as the ``postgres`` user, which cannot enter ``/root``; root gets ``/var/lib/gis-service``.
    """
    if os.geteuid() == 0:
        return Path("/var/lib/gis-service")
    return Path(platformdirs.user_data_dir("gis-service"))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GIS_", env_file=".env", extra="ignore")

    database_url: str | None = Field(
        default=None,
        description="postgresql+psycopg:// URL of an existing PostGIS server. Unset: run an embedded cluster.",
    )
    admin_database_url: str | None = Field(
        default=None,
        description="With GIS_DATABASE_URL: the URL of a role that may create databases and extensions (a superuser), "
        "for `db restore` and `db backup --verify`; the data itself is always written as GIS_DATABASE_URL's role.",
    )
    # NoDecode: a comma-separated list in the environment, not JSON
    database_read_urls: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(),
        description="postgresql+psycopg:// URLs of hot standbys of the database (streaming replication), "
        "separated by commas: reads are spread over them and the primary; writes, and the reads that must see a "
        "write, go to the primary.",
    )
    replica_max_lag_s: float = Field(default=5.0, gt=0, le=3600, description="A standby that has not caught up "
                                     "with the primary for longer than this is not read from until it has.")
    data_dir: Path = Field(default_factory=default_data_dir, description="Folder of the embedded cluster.")
    cluster_listen: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(), description="The embedded cluster also listens on these TCP addresses (e.g. 10.0.0.5), for API "
        "hosts and standbys on other machines; empty: its unix socket only.")
    cluster_clients: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(), description="Networks (CIDR) allowed into the embedded cluster over TCP, as the service role and "
        "as the replication role, each with its password.")
    cluster_port: int = Field(default=5432, ge=1, le=65535, description="TCP port of the embedded cluster when it "
                              "listens on GIS_CLUSTER_LISTEN.")
    pg_bin_dir: Path | None = Field(default=None, description="Folder of initdb/pg_ctl; found when unset.")
    cors_origins: str = Field(default="", description="Comma-separated origins (e.g. http://maps.intranet:8080) "
                              "whose web pages may read the API (CORS); empty: none.")
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = Field(default_factory=lambda: min(64, os.cpu_count() or 1), ge=1, le=64,
                         description="Worker processes of `serve` (default: one per core); a supervisor replaces one "
                         "that dies (also when there is only one).")
    header_timeout_s: float = Field(default=10, gt=0, le=600, description="A connection that has not sent a "
                                    "request's whole head (request line and headers) this many seconds after "
                                    "connecting, or after the first byte of its next request, is closed (408).")
    body_timeout_s: float = Field(default=60, gt=0, le=3600, description="A request's body must have arrived "
                                  "this many seconds after its head; else the connection is closed (408).")
    keep_alive_timeout_s: float = Field(default=5, gt=0, le=600, description="An idle kept-alive connection is "
                                        "closed after this many seconds.")
    max_connections: int = Field(default=1000, ge=1, description="Open connections per worker. Beyond it a new "
                                 "connection pushes out the one waiting longest for a request, or is refused (503) "
                                 "when all are busy.")
    county_code: str = Field(default="500241", description="6-digit code of the county the service holds, or of a "
                             "prefecture (500100) or province (500000) for a database of several counties: features "
                             "must lie in it.")
    measure_srid: int = Field(default=4545, description="Projected CRS for lengths, areas and distances.")
    load_demo: bool = Field(default=True, description="Load the demo county when the database is empty.")
    demo_scale: int = Field(default=1, ge=1, le=100)
    demo_seed: int = 20261129
    demo_counties: int = Field(default=1, ge=1, le=99, description="Demo counties side by side (the real Xiushan "
                               "and synthetic copies): a province in one database.")
    log_level: str = "info"
    read_requires_token: bool = Field(default=False, description="Reading needs a bearer token too (any role); "
                                      "by default reading is open and only writing needs one.")
    statement_timeout_s: float = Field(default=30, gt=0, le=3600, description="A request's database work is "
                                       "stopped after this many seconds and answered 503 with a message.")
    analysis_timeout_s: float = Field(default=20, gt=0, le=3600, description="An analysis (coverage, service "
                                      "areas, site suggestions, indicators, the maps that show them) is stopped "
                                      "after this many seconds of work, Python included, and answered 503 with a "
                                      "message; it also waits at most this long for its turn.")
    inspection_interval_years: int = Field(default=5, ge=1, le=50, description="A boundary marker not inspected "
                                           "for more than this many years is overdue (/analysis/inspections-due).")
    analysis_queue: int = Field(default=64, ge=0, le=10_000, description="Analyses that may wait for their turn "
                                "(two compute at once per worker); more are answered 503 with Retry-After at once.")
    write_rate_per_minute: int = Field(default=300, ge=0, description="Changes one token may make per minute "
                                       "(429 beyond); 0 turns the limit off.")
    max_body_bytes: int = Field(default=5 * 1024 * 1024, ge=1024, description="Largest request body (413 beyond).")
    tile_cache_mb: int = Field(default=512, ge=0, description="Largest size of the vector tile cache in the data "
                               "folder (DATA_DIR/tiles), in MB; 0 keeps no tiles.")
    tile_max_age_s: int = Field(default=60, ge=0, le=86400, description="How long browsers and proxies may reuse a "
                                "tile before they revalidate it (Cache-Control max-age; 304 when unchanged).")
    warm_up: bool = Field(default=True, description="At start-up, build the road network and import the map "
                          "library in the background.")
    map_basemap: Literal["none", "tianditu", "osm", "amap"] = Field(
        default="none",
        description="Basemap under the web maps: none (a plain background: works on an offline intranet), tianditu "
        "(needs GIS_TIANDITU_KEY), osm, or amap (overlays are then drawn in GCJ-02).",
    )
    tianditu_key: str | None = Field(default=None, description="Tianditu key (tk) for GIS_MAP_BASEMAP=tianditu.")
    map_tile_url: str | None = Field(
        default=None, description="An intranet tile service drawn under the maps' own basemap (roads and names from "
        "the service's data, always drawn): an XYZ or WMTS template with {z}, {x} and {y}, e.g. a provincial "
        "Tianditu mirror. Unset: no tiles, nothing asked of any other server.")
    map_tile_attribution: str = Field(default="", description="The attribution written under GIS_MAP_TILE_URL's "
                                      "tiles, e.g. © 天地图·重庆.")
    map_organisation: str = Field(default="", description="制图单位 printed under every map, e.g. 秀山县民政局.")
    map_wait_s: float = Field(default=3, ge=0, le=60, description="How long a map page waits for a map not yet "
                              "computed before it answers 正在计算… (a page saying what is being computed, which asks "
                              "again until the map is ready).")
    public_url: str | None = Field(
        default=None,
        description="The address people reach the service at (https://gis.example.gov.cn, or with a path behind a "
        "proxy: https://intranet.example/gis): every link in an answer starts with it, whatever Host header a "
        "client sends. Unset: links name the address and port the request reached the server at.",
    )
    # NoDecode: a comma-separated list in the environment, not JSON
    trusted_proxies: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(),
        description="IPs or networks (CIDR) of the reverse proxies in front of the service: only their "
        "X-Forwarded-For / Forwarded headers are believed (for the client's address in the log). Empty: nobody's.",
    )

    @field_validator("database_url", "admin_database_url")
    @classmethod
    def _psycopg_url(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value in (None, ""):
            return None
        if not value.startswith(("postgresql://", "postgresql+psycopg://", "postgres://")):
            raise ValueError(f"GIS_{info.field_name.upper()} must be a postgresql+psycopg:// URL, "
                             "e.g. postgresql+psycopg://user@host/db")
        return "postgresql+psycopg://" + value.split("://", 1)[1]

    @field_validator("database_read_urls", mode="before")
    @classmethod
    def _read_urls(cls, value: object) -> tuple[str, ...]:
        items = value.split(",") if isinstance(value, str) else list(value or ())
        urls = []
        for item in (str(i).strip() for i in items):
            if not item:
                continue
            if not item.startswith(("postgresql://", "postgresql+psycopg://", "postgres://")):
                raise ValueError(f"GIS_DATABASE_READ_URLS must list postgresql+psycopg:// URLs separated by commas; "
                                 f"got {item.split('@')[-1]!r}")
            urls.append("postgresql+psycopg://" + item.split("://", 1)[1])
        return tuple(urls)

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment \
                or parts.username is not None:
            raise ValueError(f"GIS_PUBLIC_URL must be http(s)://host[:port][/path] with no query, e.g. "
                             f"https://gis.example.gov.cn; got {value!r}")
        return f"{parts.scheme}://{parts.netloc.lower()}{parts.path.rstrip('/')}"

    @field_validator("cluster_listen", mode="before")
    @classmethod
    def _addresses(cls, value: object) -> tuple[str, ...]:
        items = value.split(",") if isinstance(value, str) else list(value or ())
        return tuple(item for item in (str(i).strip() for i in items) if item)

    @field_validator("trusted_proxies", "cluster_clients", mode="before")
    @classmethod
    def _networks(cls, value: object, info: ValidationInfo) -> tuple[str, ...]:
        items = value.split(",") if isinstance(value, str) else list(value or ())
        networks = []
        for item in (str(i).strip() for i in items):
            if not item:
                continue
            try:
                networks.append(str(ipaddress.ip_network(item, strict=False)))
            except ValueError:
                raise ValueError(f"GIS_{info.field_name.upper()} must list IP addresses or networks (10.0.0.5, "
                                 f"10.0.0.0/24, ::1), separated by commas; {item!r} is neither") from None
        return tuple(networks)

    @cached_property
    def embedded(self) -> bool:
        """True when the service runs its own cluster (no database URL configured)."""
        return self.database_url is None


def get_settings(**overrides) -> Settings:
    return Settings(**overrides)
