"""What a trial ran on, for result.json ``env``: the BLAS libraries and their thread pools.

Recorded after the network is built (so the libraries the backend loaded are there): which
BLAS/OpenMP libraries the process has loaded, their versions and thread counts, and SciPy's
version when SciPy is loaded. Two BLAS libraries in one process (NumPy's and SciPy's each
bundle an OpenBLAS) each keep a thread pool; see docs/performance.md for what that cost.
"""

from __future__ import annotations

import sys
from importlib import metadata
from typing import Any


def thread_pools() -> list[dict[str, Any]]:
    """``threadpoolctl.threadpool_info()`` reduced to what identifies each library:
    user_api, internal_api, prefix, version, num_threads, filepath."""
    from threadpoolctl import threadpool_info  # import here: only trials need it

    keys = ("user_api", "internal_api", "prefix", "version", "num_threads", "filepath")
    return [{k: info.get(k) for k in keys} for info in threadpool_info()]


def trial_environment() -> dict[str, Any]:
    """The ``thread_pools`` of this process, the installed SciPy version (None if absent) and
    whether SciPy is loaded at this point (the training step never needs it)."""
    try:
        scipy_version: str | None = metadata.version("scipy")
    except metadata.PackageNotFoundError:
        scipy_version = None
    return {"thread_pools": thread_pools(), "scipy": scipy_version,
            "scipy_loaded": "scipy" in sys.modules}
