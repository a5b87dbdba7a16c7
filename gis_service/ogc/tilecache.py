"""Vector tiles served like a tile server: rendered once per state of the data, kept gzip-compressed in the data
folder, revalidated with ETags.

**Invariant.** A tile is kept under the database (its instance id: two databases number their versions alike), the
layer, a digest of the SQL that renders it, the layer's data version, z, x and y:
``DATA_DIR/tiles/<database>/<layer>/<sql digest>/<version>/<z>/<x>/<y>.mvt.gz``. A layer's data version changes with
every statement that writes to it and is never reused (``data_versions``, from a sequence), and a kept tile was
rendered in a snapshot in which the layer had that version (the version is read before and after the render; the
tile is kept only when they agree), so a kept tile is exactly what rendering would give now, for as long as the
version is current. A change to the tile SQL changes the digest. An empty tile is kept as an empty file (204).

**Why the data folder, not PostgreSQL.** A hit then costs a file read from the page cache, shared by every worker
of the host, and nothing of the database but the one-row version look-up the request makes anyway; a table would
add a query and, with read replicas, WAL shipped to every standby for each tile rendered (a cache write), and a
standby cannot write it at all. Hosts behind one proxy each keep their own cache; nginx's ``proxy_cache`` in front
(scripts/deploy) is the shared one.

**Bounded.** At most ``GIS_TILE_CACHE_MB`` on disk: each process counts what it writes and, after writing an eighth
of the bound, walks the cache (one process at a time, under a file lock) and removes the oldest written tiles until
the whole is under 80 % of the bound. Tiles of versions no longer current are never read again and go first, being
older.

**Served compressed.** Tiles are stored gzip-compressed (MVT compresses 2-4 times) and sent as they are, with
``Content-Encoding: gzip``, to a client that accepts gzip; decompressed for one that does not. ``Vary:
Accept-Encoding`` keeps shared caches from mixing the two. A response that already has a ``Content-Encoding`` is
one that a general compression layer must pass through untouched.

**Revalidated.** The ETag is a digest of the stored bytes (the identity form's tag without the ``-gzip`` suffix);
``If-None-Match`` naming it is answered 304 without a body. ``Cache-Control: public, max-age=GIS_TILE_MAX_AGE_S``
(``private`` when reading needs a token): browsers and the proxy reuse a tile that long, then revalidate.
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import hashlib
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from gis_service.layers.base import Layer
from gis_service.ogc import tiles
from gis_service.store import features
from gis_service.store import tiles as tile_store

#: After writing this share of the bound, a process prunes the cache.
PRUNE_EVERY = 1 / 8
#: Pruning brings the cache down to this share of the bound.
PRUNE_TO = 0.8
GZIP_LEVEL = 6


@dataclass(frozen=True)
class Tile:
    """A tile as kept: gzip-compressed MVT (``b""`` for an empty tile) and its ETag's base."""

    gzipped: bytes
    etag: str

    @property
    def empty(self) -> bool:
        return not self.gzipped

    def mvt(self) -> bytes:
        return gzip.decompress(self.gzipped) if self.gzipped else b""

    @classmethod
    def of(cls, mvt: bytes) -> Tile:
        """A tile not kept: ``mvt`` (raw MVT bytes, ``b""`` when empty) compressed as a kept one would be."""
        gzipped = gzip.compress(mvt, compresslevel=GZIP_LEVEL, mtime=0) if mvt else b""
        return cls(gzipped, _etag(gzipped))


def _etag(gzipped: bytes) -> str:
    return hashlib.blake2b(gzipped, digest_size=10).hexdigest()


def sql_digest(layer: Layer) -> str:
    """A digest of the SQL that renders the layer's tiles (both property sets): kept tiles of another version of
    the code are not served."""
    text = tile_store.tile_sql(layer, simplify=True, z=tiles.DETAIL_ZOOM) + tile_store.tile_sql(
        layer, simplify=True, z=tiles.DETAIL_ZOOM - 1)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Version:
    """Which database, and the layer table's data version in it."""

    database: str
    version: int


def layer_version(conn: sa.Connection, layer: Layer) -> Version | None:
    """The layer table's data version as ``conn`` sees it (one statement)."""
    row = features.layer_version(conn, layer)
    return None if row is None else Version(*row)


class TileCache:
    """Tiles kept in ``root`` (see the module docstring), at most ``max_bytes`` of them. Thread-safe; shared by the
    processes using the same folder. ``prune_while_writing=False``: only :meth:`prune` prunes."""

    def __init__(self, root: Path, *, max_bytes: int, prune_while_writing: bool = True):
        self.root = Path(root)
        self.max_bytes = max_bytes
        self.prune_while_writing = prune_while_writing
        self._digests: dict[str, str] = {}
        self._written = 0
        self._lock = threading.Lock()
        self._pruning = False

    def path(self, layer: Layer, version: Version, z: int, x: int, y: int) -> Path:
        digest = self._digests.get(layer.id)
        if digest is None:
            digest = self._digests[layer.id] = sql_digest(layer)
        return (self.root / version.database / layer.id / digest / str(version.version) / str(z) / str(x)
                / f"{y}.mvt.gz")

    def get(self, layer: Layer, version: Version, z: int, x: int, y: int) -> Tile | None:
        """The kept tile, or None."""
        try:
            gzipped = self.path(layer, version, z, x, y).read_bytes()
        except FileNotFoundError:
            return None
        return Tile(gzipped, _etag(gzipped))

    def put(self, layer: Layer, version: Version, z: int, x: int, y: int, mvt: bytes) -> Tile:
        """Keep ``mvt`` (raw MVT bytes) as the tile of ``version``; return it as kept."""
        gzipped = gzip.compress(mvt, compresslevel=GZIP_LEVEL, mtime=0) if mvt else b""
        tile = Tile(gzipped, _etag(gzipped))
        if self.max_bytes <= 0:
            return tile
        path = self.path(layer, version, z, x, y)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
        partial.write_bytes(gzipped)
        partial.replace(path)  # whole or not at all: a reader never sees part of a tile
        with self._lock:
            self._written += len(gzipped) + 4096  # a file takes at least a block
            due = self.prune_while_writing and self._written >= self.max_bytes * PRUNE_EVERY and not self._pruning
            if due:
                self._written, self._pruning = 0, True
        if due:
            threading.Thread(target=self._prune_in_background, name="tile-cache-prune", daemon=True).start()
        return tile

    def kept(self, conn: sa.Connection, layer: Layer, z: int, x: int, y: int) -> Tile | None:
        """The kept tile for the data ``conn`` sees (one look-up of the layer's version), or None."""
        version = layer_version(conn, layer)
        return None if version is None else self.get(layer, version, z, x, y)

    def rendered(self, conn: sa.Connection, layer: Layer, z: int, x: int, y: int, *,
                 render: Callable[[sa.Connection, Layer, int, int, int], bytes] = tile_store.render_tile) -> Tile:
        """Render the tile (``conn`` inside a transaction) and keep it under the version it was rendered from,
        when the layer's version did not change during the render."""
        before = layer_version(conn, layer)
        mvt = render(conn, layer, z, x, y)
        if before is not None and layer_version(conn, layer) == before:
            return self.put(layer, before, z, x, y, mvt)
        gzipped = gzip.compress(mvt, compresslevel=GZIP_LEVEL, mtime=0) if mvt else b""
        return Tile(gzipped, _etag(gzipped))

    # -- the bound ---------------------------------------------------------------------------------------------
    def _prune_in_background(self) -> None:
        try:
            self.prune()
        finally:
            with self._lock:
                self._pruning = False

    def size_bytes(self) -> int:
        """Bytes the kept tiles take on disk (a walk of the folder)."""
        return sum(size for _, size, _ in self._files())

    def prune(self) -> int:
        """Remove the oldest written tiles until the cache holds at most PRUNE_TO of its bound (nothing when under
        the bound); return the number removed. One process at a time."""
        with self._locked() as got:
            if not got:
                return 0
            files = list(self._files())
            total = sum(size for _, size, _ in files)
            if total <= self.max_bytes:
                return 0
            removed = 0
            for path, size, _ in sorted(files, key=lambda f: f[2]):
                if total <= self.max_bytes * PRUNE_TO:
                    break
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    total -= size
                    removed += 1
            self._remove_empty_folders()
            return removed

    def _files(self) -> Iterator[tuple[Path, int, float]]:
        """(path, bytes on disk, when written) of every kept tile."""
        for folder, _, names in os.walk(self.root):
            for name in names:
                if name.endswith(".mvt.gz"):
                    path = Path(folder) / name
                    with contextlib.suppress(FileNotFoundError):
                        info = path.stat()
                        yield path, max(info.st_blocks * 512, info.st_size), info.st_mtime

    def _remove_empty_folders(self) -> None:
        for folder, subfolders, names in os.walk(self.root, topdown=False):
            if not subfolders and not names and Path(folder) != self.root:
                with contextlib.suppress(OSError):
                    os.rmdir(folder)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[bool]:
        """The cache's prune lock, if no other process holds it (False then)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".prune.lock", "w") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


# -- HTTP: conditional requests and content coding ----------------------------------------------------------------
def accepts_gzip(accept_encoding: str | None) -> bool:
    """Whether an ``Accept-Encoding`` header accepts gzip (``gzip`` or ``*`` with a q-value above 0)."""
    if not accept_encoding:
        return False
    accepted = {}
    for part in accept_encoding.split(","):
        coding, _, params = part.strip().partition(";")
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        accepted[coding.strip().lower()] = q
    return accepted.get("gzip", accepted.get("x-gzip", accepted.get("*", 0.0))) > 0


def etag_header(tile: Tile, *, gzipped: bool) -> str:
    """The ETag of the representation sent: strong, and different for the gzip and the identity form."""
    return f'"{tile.etag}-gzip"' if gzipped else f'"{tile.etag}"'


def not_modified(if_none_match: str | None, tile: Tile) -> bool:
    """Whether ``If-None-Match`` names this tile (either form; weak comparison, as RFC 9110 asks for it)."""
    if not if_none_match:
        return False
    for tag in if_none_match.split(","):
        tag = tag.strip()
        if tag == "*":
            return True
        tag = tag.removeprefix("W/").strip('"').removesuffix("-gzip")
        if tag == tile.etag:
            return True
    return False
