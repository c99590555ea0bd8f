"""Running one function in several Python threads at once from a test, with a timeout that
fails instead of hanging."""
from __future__ import annotations

import threading


def run_in_threads(fn, count: int, timeout: float, what: str) -> list:
    """[fn(0), ..., fn(count - 1)], each called in its own thread, all started together. A
    thread still running after `timeout` s fails the test ("<what> hung"); an exception in a
    thread is raised again here."""
    outcomes: list = [None] * count

    def worker(index):
        try:
            outcomes[index] = fn(index)
        except BaseException as exc:  # reported by the calling thread
            outcomes[index] = exc

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=timeout)
    assert not any(t.is_alive() for t in threads), f"{what} hung"
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
    return outcomes
