"""Collection summaries (feature count, spatial and temporal extent) cached per layer and data version.

Counting and measuring a layer costs a full scan (230 ms for all layers at demo scale 10), and ``/collections``
did it on every call. Every layer table has a ``data_versions`` row (migrations 0003 and 0005), bumped by a
statement-level trigger on each INSERT, UPDATE, DELETE or TRUNCATE to the next value of a sequence, so a version
names one state of the table's data and is never reused, even when the transaction that took it rolls back.

A summary is computed in the same statement that reads the version it is stored under (one snapshot), so a
cached summary always describes exactly its version. A request first reads the current versions (one primary-key
lookup each) and computes only the layers whose version it has not seen. A transaction that changed a layer sees
its own, uncommitted version, so it never gets the summary of the data before its change.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

import sqlalchemy as sa

from gis_service.layers.base import Layer
from gis_service.store.features import LayerSummary, data_versions, summarize_layer_versioned


class SummaryCache:
    """LayerSummary per (layer id, data version), the latest version of each layer only. Thread-safe."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, int], LayerSummary] = {}
        self._lock = threading.Lock()
        #: Summaries served from the cache and computed: for tests and the curious.
        self.hits = 0
        self.misses = 0

    def summaries(self, conn: sa.Connection, layers: Iterable[Layer]) -> dict[str, LayerSummary]:
        """The summary of each layer (by id), computing only those whose current version is not cached."""
        layers = list(layers)
        versions = data_versions(conn, [layer.table for layer in layers])
        found: dict[str, LayerSummary] = {}
        for layer in layers:
            version = versions.get(layer.table)
            with self._lock:
                cached = self._entries.get((layer.id, version)) if version is not None else None
                if cached is not None:
                    self.hits += 1
                    found[layer.id] = cached
                    continue
                self.misses += 1
            summary, seen_version = summarize_layer_versioned(conn, layer)
            if seen_version is not None:
                self._store(layer.id, seen_version, summary)
            found[layer.id] = summary
        return found

    def summary(self, conn: sa.Connection, layer: Layer) -> LayerSummary:
        return self.summaries(conn, [layer])[layer.id]

    def _store(self, layer_id: str, version: int, summary: LayerSummary) -> None:
        with self._lock:
            for key in [key for key in self._entries if key[0] == layer_id and key[1] != version]:
                del self._entries[key]
            self._entries[(layer_id, version)] = summary
