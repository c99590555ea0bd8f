"""Failures that every process hears about: a process whose part of a collective step
raised still takes part in the collective, with its error, so that no process waits for it
and every process raises the same DistributedError."""
from __future__ import annotations

from contextlib import contextmanager

from ._mpi import DistributedError


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def raise_everywhere(comm, failure: BaseException | None, what: str) -> None:
    """Every process calls this once some process failed: gather the failures' messages and
    raise one DistributedError naming each failing rank (chained to the local exception)."""
    messages = comm.allgather(None if failure is None else describe(failure))
    text = "; ".join(f"rank {r} of {len(messages)}: {m}" for r, m in enumerate(messages) if m)
    raise DistributedError(f"{what} failed on {text}") from failure


@contextmanager
def together(comm, what: str):
    """Run the block on every process; if it raised on any, raise on all (one allreduce
    when none failed)."""
    failure = None
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - reported to every process below
        failure = exc
    if comm.allreduce(int(failure is not None)):
        raise_everywhere(comm, failure, what)
