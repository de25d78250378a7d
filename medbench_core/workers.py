"""Independent work (fine-tuning runs, pre-training chains) in parallel worker processes, sized to the machine.

On a CPU the small demo models do not keep two threads of one process busy: one fine-tune takes 7.2 s with two
threads, while two one-thread processes side by side take 11.1 s each, 1.3x the throughput on a 2-core machine
(``benchmarks/README.md``). So by default a CPU machine runs one process per core, each with ``THREADS_PER_WORKER``
threads; a GPU runs one process (it owns the device). ``MEDBENCH_WORKERS`` sets the number of processes
(``1``: everything in the calling process, as before) and ``MEDBENCH_THREADS_PER_WORKER`` their threads.

Workers are started with ``spawn``: a process forked from one that already ran OpenMP threads (torch) can hang.
What each job writes is guarded as when two commands share a store: a run by its claim (``claims``), a
pre-training stage by a claim on its cache file, so nothing is made twice, whichever process asks first.
"""
from __future__ import annotations

import logging
import multiprocessing
import os
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from contextlib import contextmanager

from .errors import BadValueError

log = logging.getLogger("medbench")

THREADS_PER_WORKER = 1  # measured on 2 cores (benchmarks/README.md): 2 x 1 thread beats 1 x 2 threads by 1.3x
MIN_JOBS = 3  # fewer jobs than this run in the calling process: a worker's start (about 5 s of imports) would not pay
MIN_JOB_S = 2.0  # nor for jobs shorter than this (the first one, timed here, tells)
WORKER_MEMORY_GB = 1.5  # peak resident memory of one demo worker (measured 1.2 GB), so that workers never swap


def _env_int(name: str) -> int | None:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise BadValueError(f"{name}={raw!r}: give a whole number >= 1 (or unset it for the default)")
    return value


def _memory_gb() -> float | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        return None


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def check_environment() -> None:
    """Refuse a malformed ``MEDBENCH_WORKERS`` or ``MEDBENCH_THREADS_PER_WORKER`` (one line, before any work)."""
    _env_int("MEDBENCH_WORKERS")
    _env_int("MEDBENCH_THREADS_PER_WORKER")


def resolve_workers(jobs: int, device: str = "cpu") -> tuple[int, int]:
    """(processes, threads per process) for ``jobs`` independent jobs on ``device`` (``cpu`` or ``cuda``...).

    Example:
        >>> resolve_workers(0)[0], resolve_workers(1)[0]
        (1, 1)
    """
    given, threads = _env_int("MEDBENCH_WORKERS"), _env_int("MEDBENCH_THREADS_PER_WORKER")
    cores = _cores()
    if given is None:
        if not str(device).startswith("cpu") or jobs < MIN_JOBS:
            return 1, 0  # 0: leave the calling process's threads as they are
        threads = threads or THREADS_PER_WORKER
        given = max(1, cores // threads)
        mem = _memory_gb()
        if mem:
            given = max(1, min(given, int(mem // WORKER_MEMORY_GB)))
    n = max(1, min(given, jobs))
    if n == 1:
        return 1, 0
    return n, threads or max(1, cores // n)


def _init_worker(threads: int) -> None:
    import torch

    os.environ["MEDBENCH_WORKERS"] = "1"  # a worker never starts workers of its own
    if threads:
        torch.set_num_threads(threads)
        os.environ["OMP_NUM_THREADS"] = str(threads)
    logging.basicConfig(level=logging.WARNING)


@contextmanager
def _main_not_rerun():
    """Start workers without running the caller's main script again in each of them. ``spawn`` re-imports the
    ``__main__`` module by its path; a researcher's script that calls ``run_grid`` without an ``if __name__ ==
    "__main__":`` guard would then start its whole work again in every worker (and fail). The jobs' functions live in
    medbench's own modules, so the workers never need the caller's main module: it is hidden while they start."""
    main = sys.modules.get("__main__")
    saved = {k: getattr(main, k) for k in ("__file__", "__spec__") if main is not None and hasattr(main, k)}
    if "__file__" in saved:
        delattr(main, "__file__")
    if "__spec__" in saved:
        main.__spec__ = None  # multiprocessing reads it; None means "no module to import"
    try:
        yield
    finally:
        for k, v in saved.items():
            setattr(main, k, v)


def run_parallel(fn, jobs: list, *, workers: int, threads: int, on_done=None, probe: bool = True) -> list:
    """``fn(job)`` for every job (``fn`` a module-level function, ``jobs`` picklable), ``workers`` at a time in
    spawned processes; ``on_done(job, result)`` in this process as each finishes. Returns the results in the
    order of ``jobs``. The first job that raises cancels the ones not started and its error is raised here, after
    the running ones have finished (each leaves the store as a run of its own would).

    With ``probe`` the first job runs here and is timed: when it took less than ``MIN_JOB_S`` (the smoke profile's
    runs take a fraction of a second) the rest run here too, since starting workers would cost more than it saves."""
    out = []

    def inline(js) -> None:
        for j in js:
            out.append(fn(j))
            if on_done:
                on_done(j, out[-1])

    if workers <= 1 or len(jobs) <= 1:
        inline(jobs)
        return out
    if probe:
        t0 = time.perf_counter()
        inline(jobs[:1])
        if time.perf_counter() - t0 < MIN_JOB_S or len(jobs) == 2:
            inline(jobs[1:])
            return out
        return out + run_parallel(fn, jobs[1:], workers=min(workers, len(jobs) - 1), threads=threads,
                                  on_done=on_done, probe=False)
    results: dict[int, object] = {}
    error: BaseException | None = None
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=(threads,)) as pool:
        with _main_not_rerun():  # the workers are started by the first submissions
            pending = {pool.submit(fn, j): k for k, j in enumerate(jobs)}
        try:
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for f in done:
                    k = pending.pop(f)
                    if f.cancelled():
                        continue
                    exc = f.exception()
                    if exc is not None:
                        if error is None:
                            error = exc
                            for other in pending:
                                other.cancel()
                        continue
                    results[k] = f.result()
                    if on_done:
                        on_done(jobs[k], results[k])
        except BaseException:  # Ctrl-C: stop handing out jobs; the pool's exit waits for the running ones
            for other in pending:
                other.cancel()
            raise
    if error is not None:
        raise error
    return [results[k] for k in range(len(jobs))]
