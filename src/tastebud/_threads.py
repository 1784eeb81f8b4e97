"""Thread control: ``TASTEBUD_NUM_THREADS`` (default: all cores) for numba kernels,
and a guard that keeps BLAS single-threaded inside our own parallel regions."""

from __future__ import annotations

import contextlib
import os
from typing import Iterator


def _cap() -> int:
    """No request gets more threads than this (a saved or mistyped ``num_threads=10**9`` must not
    make torch's or OpenMP's pool try to start a billion threads)."""
    return max(64, 4 * (os.cpu_count() or 1))


def num_threads(requested: int | None = None) -> int:
    """Threads to use: ``requested`` if given (>0), else ``$TASTEBUD_NUM_THREADS``, else all cores;
    at most ``max(64, 4 × cores)``."""
    if requested is not None and requested > 0:
        return min(int(requested), _cap())
    env = os.environ.get("TASTEBUD_NUM_THREADS")
    if env:
        try:
            n = int(env)
        except ValueError as e:
            raise ValueError(f"TASTEBUD_NUM_THREADS must be an integer, got {env!r}") from e
        if n > 0:
            return min(n, _cap())
    return os.cpu_count() or 1


def numba_thread_count(n: int | None = None) -> int:
    """``num_threads(n)`` capped at the number of threads numba was started with."""
    import numba

    return max(1, min(num_threads(n), numba.config.NUMBA_NUM_THREADS))


@contextlib.contextmanager
def numba_threads(n: int | None = None) -> Iterator[int]:
    """Run the block with numba's thread count set to ``numba_thread_count(n)``.

    With numba's OpenMP threading layer, ``numba.set_num_threads`` calls ``omp_set_num_threads``,
    which torch's OpenMP pool (same ``libgomp`` symbols) also obeys: without care, running a
    kernel here would silently reset a caller's ``torch.set_num_threads(1)`` to numba's count.
    The torch thread count is therefore restored on exit when torch is loaded."""
    import sys

    import numba

    torch = sys.modules.get("torch")
    torch_threads = torch.get_num_threads() if torch is not None and hasattr(torch, "get_num_threads") else None
    want = numba_thread_count(n)
    old = numba.get_num_threads()
    numba.set_num_threads(want)
    try:
        yield want
    finally:
        numba.set_num_threads(old)
        if torch_threads is not None and torch.get_num_threads() != torch_threads:
            torch.set_num_threads(torch_threads)


@contextlib.contextmanager
def torch_threads(n: int | None = None) -> Iterator[int]:
    """Run the block with torch's CPU thread count at ``num_threads(n)``, or 1 when ``n`` is None.

    One thread by default for the torch models: their per-batch work is small, and intra-op
    threads that spin-wait on a busy machine made epochs 4–15× slower on the 2-core machine
    (SASRec: 44.8 s vs 10.4 s per amazon-games epoch with 2 threads vs 1; docs/sasrec.md).
    Pass ``num_threads`` to use more. The previous count is restored on exit."""
    import torch

    old = torch.get_num_threads()
    want = 1 if n is None else num_threads(n)
    torch.set_num_threads(want)
    try:
        yield want
    finally:
        torch.set_num_threads(old)


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Limit BLAS to one thread (threadpoolctl if available); our kernels parallelise instead."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl ships with scipy stacks usually
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield
