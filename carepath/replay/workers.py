"""The forked worker processes of a large replay, which leave Ctrl-C to the parent.

Ctrl-C at a terminal signals the whole process group. A worker interrupted while it sends its
chunk's result back (a large write, which blocks until the parent reads it) leaves half a
message in the result pipe, and the executor's reader then waits forever for the rest: the
replay hung in CI that way. So SIGINT is blocked while the workers are forked (a signal then
waits for the parent, never reaching a child before it can ignore it), and each worker ignores
it. The parent alone is interrupted: it cancels the chunks not yet begun, waits for those being
replayed (each all or nothing, and soon done), and the caller exits 130.

An executor, not a ``multiprocessing.Pool``: a worker that dies (killed, out of memory) raises
``BrokenProcessPool`` here and the others are terminated, where a Pool waits forever for the
lost chunk (and its ``terminate()`` can hang on the queue's lock).
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

Chunk = TypeVar("Chunk")
Result = TypeVar("Result")


def in_workers(
    work: Callable[[Chunk], Result], chunks: Sequence[Chunk], workers: int
) -> Iterator[Result]:
    """``work(chunk)`` for each chunk in forked processes: the results, in order, as they come.

    ``work`` and what it reads must be set before the call (the workers are forked at once)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    pool = ProcessPoolExecutor(
        min(workers, len(chunks)),
        mp_context=multiprocessing.get_context("fork"),
        initializer=_leave_ctrl_c_to_the_parent,
    )
    try:
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:  # the first submit forks every worker (and the executor's thread) at once
            futures = [pool.submit(work, chunk) for chunk in chunks]
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)  # a Ctrl-C meanwhile: now
        for future in futures:
            yield future.result()
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)  # the chunks being replayed end first
        raise
    pool.shutdown()


def _leave_ctrl_c_to_the_parent() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
