"""What bounds one analysis in the service: a time budget for its work, Python included, and the memory it gives
back afterwards.

**The time budget** (``GIS_ANALYSIS_TIMEOUT_S``): the API runs each analysis inside :func:`time_budget`; the loops
of the analyses call :func:`check_time` between steps, and past the deadline it raises :class:`AnalysisTimeout`
(503), so the work stops there and its arrays are freed. Without a budget (the command line) it does nothing.

Why checks in the analysis's own thread rather than a process that could be killed: an analysis reads through the
request's connection, inside its transaction (which alone sees a test's hand-drawn roads, or roads being
changed), and uses this process's caches of the road graph, the point joins and the answers, which a worker process
would have to rebuild (seconds at demo scale 10) and whose answers it would pickle back (tens of MB for service
areas). What runs between two checks is a vectorised call on a bounded chunk: 16 shortest-path searches or 2,000
strips unioned for service areas, 32 candidate sites for site suggestions, about 0.5-1 s of CPU at most at demo
scale 10. The database part of an analysis is bounded by the statement timeout.

**Memory**: the geometry libraries allocate many small blocks, and glibc keeps freed ones in the process for
reuse, so a large answer left the server hundreds of MB larger for good. :func:`give_memory_back` asks glibc to
return free memory to the system (``malloc_trim``); the API calls it when the last of the analyses running at once
has answered, if the process grew by more than :data:`TRIM_AFTER_GROWTH_MB` since the last trim. Measured with
``scripts/bench_analysis_limits.py``: see the README.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import os
import time
from collections.abc import Iterator
from contextvars import ContextVar

from gis_service.errors import AnalysisTimeout

#: Trim the heap when the process's resident set grew by more than this since the last trim.
TRIM_AFTER_GROWTH_MB = 32.0

_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


class _Deadline:
    def __init__(self, budget_s: float, advice: str):
        self.budget_s = budget_s
        self.advice = advice
        self.at = time.monotonic() + budget_s


_DEADLINE: ContextVar[_Deadline | None] = ContextVar("analysis_deadline", default=None)


@contextlib.contextmanager
def time_budget(budget_s: float | None, *, advice: str) -> Iterator[None]:
    """Within this block, :func:`check_time` raises :class:`AnalysisTimeout` once ``budget_s`` seconds have
    passed; ``advice`` ends its message and says what to ask for instead ("fewer minutes, ..."). ``None``: no
    budget. The deadline belongs to the current thread's context (each request has its own)."""
    token = _DEADLINE.set(_Deadline(budget_s, advice) if budget_s else None)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def check_time() -> None:
    """Raise :class:`AnalysisTimeout` when the current analysis is past its budget; otherwise return at once."""
    deadline = _DEADLINE.get()
    if deadline is not None and time.monotonic() > deadline.at:
        raise AnalysisTimeout(
            f"this analysis was stopped after {deadline.budget_s:g} s, the time one analysis may take "
            f"(GIS_ANALYSIS_TIMEOUT_S); ask for less at once: {deadline.advice}", budget_s=deadline.budget_s)


def remaining_s() -> float | None:
    """Seconds left in the current analysis's budget (at least 0), or None without a budget. For work that cannot
    call :func:`check_time` itself, such as a solver given a time limit."""
    deadline = _DEADLINE.get()
    return None if deadline is None else max(0.0, deadline.at - time.monotonic())


def resident_mb() -> float:
    """This process's resident set, MB."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * _PAGE_BYTES / 2**20


@functools.cache
def _malloc_trim():
    """glibc's ``malloc_trim``, or None on a C library without it (musl, macOS)."""
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        return None


def give_memory_back() -> bool:
    """Return the heap's free memory to the system (glibc ``malloc_trim(0)``); False where it is not available."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
