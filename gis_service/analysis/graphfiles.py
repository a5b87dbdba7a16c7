"""The road graph saved in the data folder, memory-mapped by every worker process.

``serve --workers N`` would otherwise hold N copies of the graph: each worker read ``network_edges`` and built
its own arrays and shapely geometries (at demo scale 1 that is 23 MB per worker, at scale 10 about 170 MB, for 40
counties over a gigabyte). Instead the first process that needs the graph of a state of the roads writes it here
once, as numpy arrays (``.npy``), and every process maps the files read-only (``np.load(mmap_mode="r")``): the pages
are the kernel's page cache, shared by the workers, read from disk on first touch and counted once in the host's
memory however many workers map them.

Layout: ``DATA_DIR/network/<instance>-r<roads version>-<srid>-<speeds>/`` with one ``.npy`` per array of
:class:`~gis_service.analysis.graph.RoadGraph` and ``graph.json`` (road class names, node count). A folder is named
by everything the graph depends on (the database instance, the roads' data version, the measure CRS, the speeds),
so it is never stale: a change to the roads gives a new version and so a new folder. A folder appears whole or not at
all (written under another name, then renamed); a file lock in the folder keeps the host's workers from writing it
twice at once (the network tables themselves are built once per database, under a PostgreSQL advisory lock, see
:mod:`.network`). The newest :data:`KEEP` folders are kept; removing an older one while a worker still maps it is
harmless (the mapping outlives the name).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import sqlalchemy as sa

from gis_service.analysis.graph import RoadGraph

#: Graph folders kept: the current one and the previous ones, which workers may still map for a moment.
KEEP = 3
_ARRAYS = ("edge_ids", "source", "target", "length_m", "class_code", "coords", "coord_start", "node_xy")


def folder_name(instance: str, roads_version: int, srid: int, speeds: dict) -> str:
    """The name of the folder of one graph: what it was built from."""
    digest = hashlib.sha256(json.dumps(speeds, sort_keys=True).encode()).hexdigest()[:12]
    return f"{instance}-r{roads_version}-{srid}-{digest}"


def open_graph(folder: Path) -> RoadGraph | None:
    """The graph saved in ``folder``, its arrays memory-mapped read-only; None when there is none."""
    meta = folder / "graph.json"
    if not meta.exists():
        return None
    info = json.loads(meta.read_text())
    arrays = {name: np.load(folder / f"{name}.npy", mmap_mode="r") for name in _ARRAYS}
    return RoadGraph(**arrays, class_names=tuple(info["class_names"]), n_nodes=int(info["n_nodes"]))


def save_graph(graph: RoadGraph, folder: Path) -> None:
    """Write ``graph`` to ``folder`` whole: into a partial folder beside it, renamed when complete."""
    partial = folder.with_name(f".{folder.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    for name in _ARRAYS:
        np.save(partial / f"{name}.npy", np.ascontiguousarray(getattr(graph, name)))
    (partial / "graph.json").write_text(json.dumps({"class_names": list(graph.class_names),
                                                    "n_nodes": graph.n_nodes, "edges": graph.n_edges}))
    try:
        partial.rename(folder)
    except OSError:  # another process saved it first
        shutil.rmtree(partial, ignore_errors=True)


def read_graph(conn: sa.Connection) -> RoadGraph:
    """The graph as the ``network_edges`` table holds it, with the edges' vertices (measure CRS), in memory."""
    import shapely

    rows = conn.exec_driver_sql(
        "SELECT id, source, target, length_m, road_class, ST_AsBinary(geom) FROM network_edges ORDER BY id").fetchall()
    if not rows:
        return RoadGraph.from_edges([], [], [], [], [], [])
    ids, source, target, length, road_class, wkb = zip(*rows)
    return RoadGraph.from_edges(ids, source, target, length, road_class, shapely.from_wkb([bytes(w) for w in wkb]))


def mapped_graph(root: Path, name: str, conn: sa.Connection) -> RoadGraph:
    """The graph ``name`` from the data folder, written there first (from ``conn``) if no process has yet."""
    folder = root / name
    graph = open_graph(folder)
    if graph is not None:
        return graph
    with _locked(root):
        graph = open_graph(folder)
        if graph is None:
            save_graph(read_graph(conn), folder)
            _prune(root, keep=folder)
            graph = open_graph(folder)
    return graph


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[None]:
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _prune(root: Path, *, keep: Path) -> None:
    """Remove all but the KEEP most recently written graph folders (``keep`` among them) and any partial folder
    a killed process left."""
    folders = [p for p in root.iterdir() if p.is_dir() and p != keep]
    for partial in [p for p in folders if p.name.startswith(".")]:
        shutil.rmtree(partial, ignore_errors=True)
    graphs = sorted((p for p in folders if not p.name.startswith(".")), key=lambda p: p.stat().st_mtime,
                    reverse=True)
    for old in graphs[KEEP - 1:]:
        shutil.rmtree(old, ignore_errors=True)

