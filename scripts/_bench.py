"""Helpers the benchmark scripts share: a throwaway database holding the demo county, and place-name queries
typed the ways users type them.

Every benchmark imports this module first: it puts the repository root on ``sys.path``, so that the scripts use the
test harness (``tests/harness``: the service in a subprocess, headless Chromium, the NetworkX baseline) rather than
copies of it, and the harness stays out of the installed package. A script runs with only ``scripts/`` on its path.
"""

from __future__ import annotations

import random
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

from gis_service.db import migrate
from gis_service.db.cluster import EmbeddedCluster
from gis_service.demo.build import build_demo
from gis_service.io.load_demo import load_frames

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

DEMO_SEED = 20261129


@contextmanager
def empty_database() -> Iterator[tuple[str, Path]]:
    """Yield the URL of a migrated, empty database in a throwaway embedded cluster and a temporary folder beside it
    (never the user's data), both removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="gis-bench-") as folder:
        Path(folder).chmod(0o755)  # as root the cluster runs as postgres, which must enter the folder
        with EmbeddedCluster(Path(folder) / "data").running() as cluster:
            url = cluster.url()
            migrate.upgrade(url)
            yield url, Path(folder)


@contextmanager
def demo_database(database_url: str | None = None, *, scale: int = 1) -> Iterator[str]:
    """Yield the URL of a database holding the demo county at ``scale``: ``database_url`` as it is when given,
    else a throwaway one (:func:`empty_database`)."""
    if database_url:
        yield database_url
        return
    with empty_database() as (url, _):
        engine = sa.create_engine(url)
        load_frames(engine, build_demo(scale=scale, seed=DEMO_SEED), county_code="500241", measure_srid=4545,
                    replace=True)
        with engine.begin() as conn:
            conn.execute(sa.text("ANALYZE"))
        engine.dispose()
        yield url


def query_lists(url: str, *, seed: int) -> tuple[list[str], list[str]]:
    """A mixed list of search queries (real and synthetic names typed every way) and of type-ahead prefixes."""
    from gis_service.pinyin import toneless

    rng = random.Random(seed)
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        divisions = [n for (n,) in conn.execute(sa.text(
            "SELECT name FROM place_names WHERE category = 'administrative' AND status = 'current' ORDER BY id"))]
        # a pseudo-random sample fixed by the seed: the same queries in every run over the same data
        others = [n for (n,) in conn.execute(sa.text(
            "SELECT name FROM place_names WHERE category <> 'administrative' "
            "ORDER BY md5(id::text || :seed), id LIMIT 400"), {"seed": str(seed)})]
    engine.dispose()
    search: list[str] = ["孝溪乡", "清溪场镇", "涌洞乡", "石堤镇高桥村", "秀山县中和街道", "qxc", "sdz"]
    for name in rng.sample(divisions, 120) + rng.sample(others, 80):
        syllables = toneless(name).split()
        variants = [name, name[:-1] if len(name) > 2 else name, "".join(syllables), " ".join(syllables),
                    "".join(s[0] for s in syllables)]
        if len(name) >= 3:
            i = rng.randrange(len(name) - 1)
            variants.append(name[:i] + "甲" + name[i + 1:])  # one wrong character
            variants.append(name[:i] + name[i + 1:])  # one missing
        search.append(rng.choice(variants))
    complete: list[str] = []
    for name in rng.sample(divisions, 100) + rng.sample(others, 50):
        key = "".join(toneless(name).split())
        complete += [name[: rng.randint(1, max(1, len(name) - 1))], key[: rng.randint(1, max(1, len(key) - 1))]]
    rng.shuffle(search)
    rng.shuffle(complete)
    return search, complete
