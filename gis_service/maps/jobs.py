"""Maps computed in the background, so that a map asked with parameters no one asked before opens at once.

A map page that is not ready within a short wait (``GIS_MAP_WAIT_S``) is answered with a small page saying what is
being computed (正在计算…: the map, mode, minutes, kind, and the step: the road network's build, the coverage, the
service areas, the drawing), which asks again until the map is ready. The work goes on in a job keyed by the page's
parameters: every request for the same page while it runs waits for that one job (a reload does not start the work
again), and the job ends with the page, which :func:`gis_service.maps.builders.build_map` keeps, so the next
request finds it at once. Jobs are bounded as the analyses are: the API's job waits for the network build (503
Busy with Retry-After past its limit), takes one of the analysis turns (503 when too many wait) and computes under
the analysis time budget (:mod:`gis_service.analysis.limits`); this module only keeps the table of running jobs and
their steps (asyncio, no FastAPI).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from contextvars import ContextVar
from dataclasses import dataclass, field

from gis_service.errors import AnalysesBusyError

#: The step a job is at, in the words of the waiting page.
QUEUED_ZH = "排队等候计算"
NETWORK_ZH = "建立道路网络"
READING_ZH = "读取图层数据"
DRAWING_ZH = "绘制地图"

_STEP: ContextVar[Callable[[str], None] | None] = ContextVar("map_job_step", default=None)


def step(what_zh: str) -> None:
    """Say what the map being built computes now (shown on its waiting page); nothing outside a job."""
    report = _STEP.get()
    if report is not None:
        report(what_zh)


def reporting_to(job: MapJob, work: Callable[..., str]) -> Callable[..., str]:
    """``work`` that reports its :func:`step` calls to ``job`` (run it in the job's worker thread)."""
    def run(*args) -> str:
        token = _STEP.set(job.at)
        try:
            return work(*args)
        finally:
            _STEP.reset(token)
    return run


@dataclass
class MapJob:
    """One map being computed: which, what it has come to, since when."""

    key: Hashable
    title_zh: str
    #: (label, value) pairs the waiting page lists: 方式 骑行, 时间 24 分钟, 设施 养老服务设施 …
    asked_zh: tuple[tuple[str, str], ...] = ()
    step_zh: str = QUEUED_ZH
    started: float = field(default_factory=time.monotonic)
    task: asyncio.Task | None = None

    def at(self, step_zh: str) -> None:
        self.step_zh = step_zh

    @property
    def elapsed_s(self) -> float:
        return time.monotonic() - self.started


class MapJobs:
    """The maps being computed in this process, one job per page (its key); at most ``max_jobs`` at once."""

    def __init__(self, *, max_jobs: int):
        self.max_jobs = max_jobs
        self._running: dict[Hashable, MapJob] = {}

    def __len__(self) -> int:
        return len(self._running)

    async def page(self, job: MapJob, work: Callable[[MapJob], Awaitable[str]], *, wait_s: float) -> str | MapJob:
        """The page of ``job`` if it is ready within ``wait_s`` seconds (the job that computes it is started unless
        one for the same key runs), else the running job (to say what it computes). The job's error, if it fails
        meanwhile, is raised here."""
        running = self._running.get(job.key)
        if running is None:
            if len(self._running) >= self.max_jobs:
                raise AnalysesBusyError(f"the service is computing {len(self._running)} maps, as many as it may at "
                                        "once; try again in a few seconds. Maps already computed come back at once")
            running = self._running[job.key] = job
            running.task = asyncio.ensure_future(self._run(running, work))
            running.task.add_done_callback(_retrieved)
        done, _ = await asyncio.wait({running.task}, timeout=wait_s)
        return running.task.result() if done else running

    async def _run(self, job: MapJob, work: Callable[[MapJob], Awaitable[str]]) -> str:
        try:
            return await work(job)
        finally:
            self._running.pop(job.key, None)


def _retrieved(task: asyncio.Task) -> None:
    """Mark a job's error as seen: when no request waits for it any more, the next one asks again."""
    if not task.cancelled():
        task.exception()
