"""Backing off from threads when the cores are shared, as the C++ backend does.

A threaded kernel waits for every worker at its end. When other processes (or more threads
than cores) keep the cores busy, a worker that is not running delays the call by a
scheduler time slice, milliseconds for a kernel of tens of microseconds: on the shared
2-core machine threaded training ran ten times slower than on one thread. Each kind of
threaded kernel keeps the fastest threaded time it has seen per problem shape; a call that
took more than twice that plus LATE_SECONDS waited for a descheduled worker, and calls of
that kind then run on the calling thread for a while (100 ms, doubling up to 3.2 s while it
recurs). Results do not change: every kernel gives bitwise the same result on any number
of threads.
"""
from __future__ import annotations

import math
import time

LATE_SECONDS = 0.0005  # a woken worker starts within tens of microseconds, a descheduled one after ms
FIRST_BACKOFF_SECONDS = 0.1
MAX_BACKOFF_SECONDS = 3.2
MAX_SHAPES = 256  # shapes remembered per kind of kernel (training uses a handful)


class ThreadBackoff:
    """Whether the next large call of one kind of kernel should use threads."""

    def __init__(self):
        self.fastest: dict = {}  # shape -> fastest threaded seconds seen
        self.single_until = 0.0
        self.backoff = FIRST_BACKOFF_SECONDS
        self.contended = 0

    def threaded(self) -> bool:
        return time.perf_counter() >= self.single_until

    def report(self, shape, seconds: float) -> None:
        """A threaded call on a problem of `shape` took `seconds`."""
        fastest = self.fastest.get(shape, math.inf)
        if seconds <= 2 * fastest + LATE_SECONDS:
            if seconds < fastest:
                if len(self.fastest) >= MAX_SHAPES:
                    self.fastest.clear()
                self.fastest[shape] = seconds
            self.backoff = FIRST_BACKOFF_SECONDS
            return
        self.contended += 1
        self.single_until = time.perf_counter() + self.backoff
        self.backoff = min(2 * self.backoff, MAX_BACKOFF_SECONDS)


gemm = ThreadBackoff()
adam = ThreadBackoff()


def contention_stats() -> dict:
    """Threaded calls that waited for a descheduled worker, and whether calls run on one
    thread for now because of them (the C++ backend's contention_stats(), for Numba)."""
    now = time.perf_counter()
    return {"contended_regions": gemm.contended + adam.contended,
            "backing_off": now < gemm.single_until or now < adam.single_until}
