"""Timing helper shared by the benchmarks: the best of several runs (the least disturbed by other jobs)."""

from __future__ import annotations

import time


def best_of(fn, repeat: int = 5, clock=time.perf_counter):
    """Run ``fn`` ``repeat`` times; return ``(fastest time in seconds, result of the last run)``.

    ``clock=time.process_time`` measures CPU seconds of this process, steadier on a shared machine.
    """
    if repeat < 1:
        raise ValueError(f"repeat must be at least 1, got {repeat!r}")
    best, out = float("inf"), None
    for _ in range(repeat):
        start = clock()
        out = fn()
        best = min(best, clock() - start)
    return best, out
