"""Falling back to one thread when the cores are shared, by the rules of the C++ backend
(csrc/common/contention.h).

A threaded kernel waits for every worker at its end. When other processes (or more threads
than cores) keep the cores busy, a worker that is not running delays the call by a
scheduler time slice, milliseconds for a kernel of tens of microseconds. Each kind of
threaded kernel keeps the fastest threaded time it has seen per problem shape; a call that
took more than twice that plus SLACK_SECONDS waited for a descheduled worker. Once
LATE_TO_BACK_OFF of the last JUDGED calls of a kind were late, calls of that kind run on
the calling thread for a while (50 ms, doubling while it recurs up to 0.4 s, back to 50 ms
after JUDGED calls on time). NNFAST_ADAPTIVE_THREADS=0 turns this off. Results do not
change: every kernel gives bitwise the same result on any number of threads.
"""
from __future__ import annotations

import math
import os
import time
from collections import deque

from . import _fork

ADAPTIVE = os.environ.get("NNFAST_ADAPTIVE_THREADS", "") != "0"
SLACK_SECONDS = 0.0005  # a woken worker starts within tens of microseconds, a descheduled one after ms
JUDGED, LATE_TO_BACK_OFF = 4, 2
FIRST_BACKOFF_SECONDS = 0.05
MAX_BACKOFF_SECONDS = 0.4
MAX_SHAPES = 256  # shapes remembered per kind of kernel (training uses a handful)


class ThreadBackoff:
    """Whether the next large call of one kind of kernel should use threads."""

    def __init__(self):
        self.fastest: dict = {}  # shape -> fastest threaded seconds seen
        self.recent: deque = deque(maxlen=JUDGED)  # whether each of the last calls was late
        self.single_until = 0.0
        self.backoff = FIRST_BACKOFF_SECONDS
        self.contended = 0

    def threaded(self) -> bool:
        if _fork.single_threaded:
            return False
        return not ADAPTIVE or time.perf_counter() >= self.single_until

    def report(self, shape, seconds: float) -> None:
        """A threaded call on a problem of `shape` took `seconds`."""
        if not ADAPTIVE:
            return
        fastest = self.fastest.get(shape, math.inf)
        late = seconds > 2 * fastest + SLACK_SECONDS
        self.recent.append(late)
        if not late:
            if seconds < fastest:
                if len(self.fastest) >= MAX_SHAPES:
                    self.fastest.clear()
                self.fastest[shape] = seconds
            if not any(self.recent):
                self.backoff = FIRST_BACKOFF_SECONDS
            return
        self.contended += 1
        if sum(self.recent) < LATE_TO_BACK_OFF:
            return
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
