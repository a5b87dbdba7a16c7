"""Benchmark: how each cost grows with the data, from one county to a province of copies of it (issue 17).

For each ``--counties`` count (default 1 and 10), a throwaway embedded cluster holding ``demo build --counties N``
(the real Xiushan and N - 1 synthetic copies side by side), and in it:

- build + load: building the frames and loading them (all or nothing, as ``demo load`` does);
- network build: ``network_edges``/``network_nodes`` from every county's roads with pgRouting, and the saved graph
  (the files every worker memory-maps, so the memory they share, not one copy per worker);
- the graph read from ``network_edges`` and saved in the data folder, once per roads version (``serve`` does it
  before it listens; it grows with the province);
- Xiushan's coverage (``county=500241``, 15 minutes' walk, result cache off): cold (a worker's first question:
  the saved graph mapped, points joined in PostGIS) and warm (best of ``--repeat``);
- an items page (100 settlements in a box at the county seat) and a z12 roads tile at the seat rendered afresh
  (tile cache off), through the app in-process (best of ``--repeat``);
- memory per worker: one worker as ``serve`` runs it, after those three questions over HTTP: its resident memory
  apart from the road graph, and the graph files it maps (shared by every worker: one copy however many).

Ratios are what count: a cost that grows faster than the data (the county's own questions slower in a province)
is a defect. Run: ``.venv/bin/python scripts/bench_growth.py [--counties 1 10] [--repeat 5] [--only-network]``
(``--only-network``: build + load and the network build only, to measure the build at 40 counties in minutes).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import _bench
import httpx
import sqlalchemy as sa
from fastapi.testclient import TestClient

from gis_service.analysis import network as net
from gis_service.analysis.coverage import coverage
from gis_service.analysis.travel import AnalysisSettings
from gis_service.app import create_app
from gis_service.demo.province import build_province
from gis_service.io.load_demo import load_frames
from gis_service.settings import Settings
from tests.harness.devserver import service_env, uvicorn_process

COUNTY = "500241"
PROVINCE = "500000"
SRID = 4545
SEAT_BBOX = "108.98,28.43,109.00,28.45"
SEAT_TILE = "12/3288/1710"  # WebMercatorQuad z12 tile holding the county seat


def best_of(fn, repeat: int) -> float:
    """The least seconds of ``repeat`` runs: on a shared machine the figure least disturbed by others."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def measure(counties: int, repeat: int, *, only_network: bool = False) -> dict:
    settings = AnalysisSettings(_env_file=None)
    figures: dict = {"counties": counties}
    with _bench.empty_database() as (url, folder):
        engine = sa.create_engine(url)
        started = time.perf_counter()
        frames = build_province(counties, seed=_bench.DEMO_SEED)
        load_frames(engine, frames, county_code=COUNTY if counties == 1 else PROVINCE, measure_srid=SRID)
        figures["build_and_load_s"] = time.perf_counter() - started
        figures["settlements"] = len(frames["settlements"])
        figures["roads"] = len(frames["roads"])
        graphs = folder / "network"
        net.keep_graphs_in(graphs)
        with engine.begin() as conn:
            conn.execute(sa.text("ANALYZE"))
            figures["network_build_s"] = net.rebuild_network(conn, measure_srid=SRID, settings=settings)
        if only_network:
            engine.dispose()
            return figures
        with engine.connect() as conn:
            def county() -> dict:
                return coverage(conn, layer="elder_care", minutes=15, mode="walk", county=COUNTY,
                                measure_srid=SRID, settings=settings, use_cache=False)

            # once per roads version (`serve` does it before it listens): the whole graph read from network_edges
            # and saved for the workers to map; then a worker's first question maps the saved files
            net.clear_caches()
            started = time.perf_counter()
            net.ensure_network(conn, measure_srid=SRID, settings=settings)
            figures["graph_save_s"] = time.perf_counter() - started
            net.clear_caches()
            started = time.perf_counter()
            answer = county()
            figures["coverage_cold_s"] = time.perf_counter() - started
            figures["coverage_warm_s"] = best_of(county, repeat)
            figures["coverage_percent"] = answer["totals"]["coverage_percent"]
        figures["graph_mb"] = sum(f.stat().st_size for f in graphs.rglob("*") if f.is_file()) / 2**20
        app_settings = Settings(_env_file=None, database_url=url, data_dir=folder / "service",
                                tile_cache_mb=0, warm_up=False, county_code=PROVINCE)
        with TestClient(create_app(app_settings)) as client:
            items = f"/collections/settlements/items?limit=100&bbox={SEAT_BBOX}"
            tile = f"/collections/roads/tiles/WebMercatorQuad/{SEAT_TILE}"
            assert client.get(items).status_code == 200 and client.get(tile).status_code == 200
            figures["items_ms"] = best_of(lambda: client.get(items), repeat) * 1000
            figures["tile_ms"] = best_of(lambda: client.get(tile), repeat) * 1000
        net.keep_graphs_in(None)
        figures.update(worker_memory(url, folder / "served", [COVERAGE, items, tile]))
        engine.dispose()
    return figures


COVERAGE = f"/analysis/coverage?layer=elder_care&minutes=15&mode=walk&county={COUNTY}"


def worker_memory(url: str, data_dir: Path, paths: list[str]) -> dict:
    """One worker as ``serve`` runs it (a uvicorn process over the province, warm-up on), after it has answered
    Xiushan's coverage, the items page and the tile: its resident memory apart from the road graph (what each
    further worker adds) and the graph files it maps from the data folder (one copy in the page cache, shared by
    every worker), from /proc/PID/smaps."""
    env = service_env(url, GIS_COUNTY_CODE=PROVINCE, GIS_DATA_DIR=str(data_dir), GIS_TILE_CACHE_MB="0")
    with uvicorn_process(env=env, ready_path="/health", timeout_s=900) as server:
        for path in paths:
            deadline = time.monotonic() + 900
            while (answer := httpx.get(server.url + path, timeout=900)).status_code == 503:  # network being read
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{path} still answered 503 after 900 s")
                time.sleep(float(answer.headers.get("Retry-After", "1")))
            answer.raise_for_status()
        rss_kb = graph_kb = 0
        mapping = ""
        for line in Path(f"/proc/{server.process.pid}/smaps").read_text().splitlines():
            first = line.split(maxsplit=5)
            if ":" not in first[0]:  # a mapping's header: address range, perms, offset, device, inode, path
                mapping = first[5] if len(first) > 5 else ""
            elif first[0] == "Rss:":
                rss_kb += int(first[1])
                if mapping.startswith(str(data_dir)):
                    graph_kb += int(first[1])
    return {"worker_private_mb": (rss_kb - graph_kb) / 1024, "worker_graph_mb": graph_kb / 1024}


ROWS = [
    ("settlements", "settlements", "{:,}"),
    ("roads (segments)", "roads", "{:,}"),
    ("build + load, s", "build_and_load_s", "{:.1f}"),
    ("network build, s", "network_build_s", "{:.2f}"),
    ("graph read and saved for the workers (once per roads version), s", "graph_save_s", "{:.1f}"),
    ("saved graph (shared by workers), MB", "graph_mb", "{:.1f}"),
    ("Xiushan coverage cold, s", "coverage_cold_s", "{:.2f}"),
    ("Xiushan coverage warm, s", "coverage_warm_s", "{:.3f}"),
    ("Xiushan coverage, %", "coverage_percent", "{:.1f}"),
    ("items page (100 at the seat), ms", "items_ms", "{:.1f}"),
    ("z12 roads tile at the seat, ms", "tile_ms", "{:.1f}"),
    ("one worker's memory apart from the graph (after coverage, items, tile), MB", "worker_private_mb", "{:.0f}"),
    ("graph files it maps (shared by all workers), MB resident", "worker_graph_mb", "{:.1f}"),
]


def report(results: list[dict]) -> None:
    header = ["counties"] + [str(r["counties"]) for r in results]
    if len(results) > 1:
        header.append(f"ratio {results[-1]['counties']}/{results[0]['counties']}")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for label, key, fmt in ROWS:
        if key not in results[0]:
            continue
        cells = [fmt.format(r[key]) for r in results]
        if len(results) > 1:
            cells.append(f"{results[-1][key] / results[0][key]:.2f}" if results[0][key] else "—")
        print(f"| {label} | " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--counties", type=int, nargs="+", default=[1, 10])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--only-network", action="store_true",
                        help="measure building and loading the data and the network build only")
    args = parser.parse_args()
    results = []
    for n in args.counties:
        results.append(measure(n, args.repeat, only_network=args.only_network))
        print(f"measured {n} counties", flush=True)
    report(results)


if __name__ == "__main__":
    main()
