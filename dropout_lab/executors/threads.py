"""The thread budget of the process a trial runs in (the worker layer's, not a backend's).

A trial gets ``threads`` threads: every BLAS/OpenMP pool loaded now is limited with
threadpoolctl, and the ``*_NUM_THREADS`` variables are set for a runtime loaded later in the
trial (SciPy's BLAS, by some statistic), which reads its pool size from the environment when
it loads. The backend limits its own library as well (``Backend.set_threads``: NumPy's BLAS,
torch's intra-op pool). Equal threads give equal bits whatever the number of workers
(``executors/budget.py``).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from threadpoolctl import threadpool_limits

# Read once by each BLAS/OpenMP runtime when it loads.
THREAD_ENV_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                   "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


@contextlib.contextmanager
def thread_env(threads: int) -> Iterator[None]:
    """The thread variables set to ``threads`` inside the block (a process spawned there
    copies them), the previous values restored after it."""
    saved = {k: os.environ.get(k) for k in THREAD_ENV_VARS}
    os.environ.update({k: str(threads) for k in THREAD_ENV_VARS})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def thread_budget(threads: int | None) -> Iterator[None]:
    """Run the block with ``threads`` threads in this process (None: no limit): the thread
    variables for runtimes loaded inside it, and threadpoolctl for those loaded already."""
    if not threads:
        yield
        return
    with thread_env(threads), threadpool_limits(limits=threads):
        yield
