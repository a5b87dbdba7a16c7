"""What several worker processes (or API hosts) must share, they share through PostgreSQL or the data folder:

- the per-token write allowance is one count in the database, however many processes take writes;
- the road graph is saved once in the data folder, keyed by the roads' data version, and memory-mapped by every
  worker (`serve --workers 2`: both map the same files, whose pages each counts half of);
- points are joined to the network in PostGIS, the same answer as the in-memory join;
- while the network is being built elsewhere, an analysis answers 503 with Retry-After instead of waiting.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from gis_service.analysis import graphfiles
from gis_service.analysis import network as net
from gis_service.analysis.coverage import coverage
from gis_service.analysis.travel import AnalysisSettings
from gis_service.api import deps
from gis_service.app import create_app
from gis_service.auth import create_token
from gis_service.db import migrate
from gis_service.db.engine import create_db_engine
from gis_service.settings import Settings

from .helpers import Served, private_cluster, station, wait_for

SPEEDS = AnalysisSettings()


# -- the write allowance ------------------------------------------------------------------------------------------
def test_two_processes_share_one_write_allowance_per_token(client_with, conn: sa.Connection) -> None:
    """Two apps (as two workers would: each its own limiter object) over one database allow 3 writes a minute
    between them, not 3 each."""
    token = create_token(conn, role="planner", name="测试共享限速")[1]
    other = create_token(conn, role="planner", name="测试另一个")[1]
    first, second = client_with(write_rate_per_minute=3), client_with(write_rate_per_minute=3)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/geo+json"}
    statuses = [client.post("/collections/elder_care/items", json=station(f"测试共享{n}"), headers=headers).status_code
                for n, client in enumerate([first, second, first, second])]
    assert statuses == [201, 201, 201, 429]
    refused = first.post("/collections/elder_care/items", json=station("测试共享4"), headers=headers)
    assert refused.status_code == 429 and 15 <= int(refused.headers["Retry-After"]) <= 20  # one write per 20 s
    assert "more than 3 changes in the last minute" in refused.json()["description"]
    other_headers = {**headers, "Authorization": f"Bearer {other}"}
    assert second.post("/collections/elder_care/items", json=station("测试另一个"),
                       headers=other_headers).status_code == 201  # another token is not held up


def test_the_allowance_refills_with_the_database_clock(client_with, conn: sa.Connection) -> None:
    token_id, token = create_token(conn, role="planner", name="测试补充")
    client = client_with(write_rate_per_minute=2)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/geo+json"}
    assert [client.post("/collections/elder_care/items", json=station(f"测试补充{n}"), headers=headers).status_code
            for n in range(3)] == [201, 201, 429]
    # 45 s later (2 a minute: 1.5 writes back), as every worker's clock would say: the database's
    conn.execute(sa.text("UPDATE write_allowance SET counted_at = counted_at - interval '45 seconds' "
                         "WHERE token_id = :id"), {"id": token_id})
    assert [client.post("/collections/elder_care/items", json=station(f"测试补充{n}"), headers=headers).status_code
            for n in range(3, 5)] == [201, 429]
    left = conn.execute(sa.text("SELECT writes_left FROM write_allowance WHERE token_id = :id"),
                        {"id": token_id}).scalar()
    assert left == pytest.approx(0.5, abs=0.05)


# -- the graph, saved once and mapped ------------------------------------------------------------------------------
@pytest.fixture()
def graph_folder(tmp_path: Path, settings: Settings) -> Iterator[Path]:
    """Road graphs kept in a folder of the test's own, with this process's caches emptied before and after."""
    net.clear_caches()
    net.keep_graphs_in(tmp_path / "network")
    yield tmp_path / "network"
    net.clear_caches()
    net.keep_graphs_in(settings.data_dir / "network")


def test_the_graph_is_saved_once_per_roads_version_and_mapped_not_copied(conn: sa.Connection,
                                                                        graph_folder: Path) -> None:
    network = net.ensure_network(conn, measure_srid=4545, settings=SPEEDS)
    folders = [p for p in graph_folder.iterdir() if p.is_dir()]
    assert len(folders) == 1, folders
    folder = folders[0]
    assert folder.name == graphfiles.folder_name(network.instance, network.versions["roads"], 4545,
                                                 SPEEDS.fingerprint())
    for array in ("source", "target", "length_m", "coords", "node_xy"):
        assert isinstance(getattr(network.graph, array), np.memmap), array  # mapped, not read into the process
    roads = conn.execute(sa.text("SELECT count(*) FROM roads")).scalar()
    assert network.graph.n_edges == roads == 17752

    # another process (here: this one with its caches emptied) maps the same files instead of building its own
    written = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    net.clear_caches()
    again = net.ensure_network(conn, measure_srid=4545, settings=SPEEDS)
    assert again.graph is not network.graph and np.array_equal(again.graph.edge_ids, network.graph.edge_ids)
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == written

    # a change to the roads is a new version: a new graph beside the old
    conn.execute(sa.text("DELETE FROM roads WHERE id = (SELECT max(id) FROM roads)"))
    changed = net.ensure_network(conn, measure_srid=4545, settings=SPEEDS)
    assert changed.graph.n_edges == roads - 1
    assert len([p for p in graph_folder.iterdir() if p.is_dir()]) == 2


def test_the_mapped_graph_answers_as_the_graph_read_into_memory(conn: sa.Connection, graph_folder: Path) -> None:
    mapped = coverage(conn, group_by="township", use_cache=False, settings=SPEEDS)
    net.clear_caches()
    net.keep_graphs_in(None)
    in_memory = coverage(conn, group_by="township", use_cache=False, settings=SPEEDS)
    assert not isinstance(net.ensure_network(conn, measure_srid=4545, settings=SPEEDS).graph.source, np.memmap)
    assert mapped["totals"] == in_memory["totals"] and mapped["unserved"] == in_memory["unserved"]
    assert mapped["totals"]["households"] > 0


def test_points_are_joined_in_postgis_as_the_in_memory_join_does(conn: sa.Connection) -> None:
    """The service's join (a nearest-neighbour scan of network_edges' GiST index per point) against shapely's
    STRtree over every edge: the same edge, the same place on it, the same connector, for every settlement."""
    network = net.ensure_network(conn, measure_srid=4545, settings=SPEEDS)
    joined = net.settlements(conn, network)
    expected = network.graph.join(joined.xy)
    assert len(joined.frame) == 2902
    assert np.array_equal(joined.points.edge, expected.edge)
    assert np.allclose(joined.points.frac, expected.frac, atol=1e-9)
    assert np.allclose(joined.points.connector_m, expected.connector_m, atol=1e-6)


# -- 503 while the network is built elsewhere ----------------------------------------------------------------------
@pytest.fixture()
def roads_database(scratch_url: str, settings: Settings, demo_frames: dict) -> str:
    """The scratch database holding the demo county's roads, settlements, divisions and elder-care facilities, its
    network built: a database whose roads a test may change and commit."""
    from gis_service.io.load_demo import load_frames

    migrate.upgrade(scratch_url)
    engine = create_db_engine(scratch_url)
    try:
        load_frames(engine, {name: demo_frames[name] for name in ("admin_divisions", "roads", "settlements",
                                                                   "elder_care")},
                    county_code=settings.county_code, measure_srid=settings.measure_srid)
        with engine.connect() as conn:
            net.ensure_network(conn, measure_srid=4545, settings=SPEEDS)
            conn.commit()
    finally:
        engine.dispose()
    return scratch_url


def test_an_analysis_answers_503_with_retry_after_while_another_process_builds_the_network(
        roads_database: str, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(deps, "NETWORK_WAIT_S", 1.0)
    engine = create_db_engine(roads_database)
    builder = engine.connect()  # another worker or host, building: it holds the network's advisory lock
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE roads SET name = name WHERE id = (SELECT min(id) FROM roads)"))
        builder.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": net._ADVISORY_LOCK})
        app = create_app(settings.model_copy(update={"database_url": roads_database, "data_dir": tmp_path}),
                         engine)
        with TestClient(app) as client:
            started = time.perf_counter()
            waiting = client.get("/analysis/coverage", params={"group_by": "county"})
            assert waiting.status_code == 503, waiting.text
            assert time.perf_counter() - started < 5  # answered after NETWORK_WAIT_S, not after the build
            assert int(waiting.headers["Retry-After"]) >= 1
            assert "road network is being built" in waiting.json()["description"]
            assert client.get("/collections/roads/items", params={"limit": 1}).status_code == 200  # reads go on
            builder.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": net._ADVISORY_LOCK})
            builder.commit()
            answer = wait_for(lambda: (r := client.get("/analysis/coverage", params={"group_by": "county"}))
                              .status_code == 200 and r, timeout_s=60, what="coverage answered after the build",
                              interval_s=0.5)
            assert answer.json()["totals"]["households"] > 0
    finally:
        builder.close()
        engine.dispose()
        net.clear_caches()
        net.keep_graphs_in(settings.data_dir / "network")


# -- `serve --workers 2`: one graph in the host's memory -----------------------------------------------------------
def _mapped_graph_files(pid: int) -> dict[str, tuple[int, int]]:
    """Per road-graph file a worker maps: its resident and proportional kilobytes (from /proc/PID/smaps)."""
    mapped: dict[str, tuple[int, int]] = {}
    name = None
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
            path = line.split()[-1] if len(line.split()) >= 6 else ""
            name = path if "/network/" in path and path.endswith(".npy") else None
        elif name and line.startswith(("Rss:", "Pss:")):
            rss, pss = mapped.get(name, (0, 0))
            kb = int(line.split()[1])
            mapped[name] = (rss + kb, pss) if line.startswith("Rss:") else (rss, pss + kb)
    return mapped


def test_two_workers_map_one_copy_of_the_graph(serve: Callable[..., Served], demo_frames: dict,
                                               settings: Settings, tmp_path: Path) -> None:
    frames = {name: demo_frames[name] for name in ("admin_divisions", "roads", "settlements", "elder_care")}
    with private_cluster("gis-workers-test-", frames, settings) as cluster:
        served = serve({"GIS_DATABASE_URL": cluster.url(), "GIS_DATA_DIR": str(tmp_path / "data")},
                       "--workers", "2")
        workers = wait_for(lambda: len(served.workers()) == 2 and served.workers(), timeout_s=30,
                           what="two workers ran")
        [folder] = [p for p in (tmp_path / "data" / "network").iterdir() if p.is_dir()]  # serve saved it

        def both_mapped() -> bool:
            with httpx.Client(base_url=served.url, timeout=60) as client:
                for minutes in range(10, 14):  # new connections, so that both workers take some
                    assert client.get("/analysis/coverage", params={"minutes": minutes},
                                      headers={"Connection": "close"}).status_code == 200
            return all(_mapped_graph_files(pid) for pid in workers)

        wait_for(both_mapped, timeout_s=60, what="both workers mapped the graph", interval_s=0)
        maps = [_mapped_graph_files(pid) for pid in workers]
        assert set(maps[0]) == set(maps[1]) == {str(folder / f"{a}.npy") for a in graphfiles._ARRAYS}
        lengths = str(folder / "length_m.npy")  # read by every coverage request
        # the same pages, counted once for the host: each worker's share is half of what it has resident
        for mapped in maps:
            rss, pss = mapped[lengths]
            assert rss > 0 and pss <= rss * 0.5 + 8, mapped
