"""What a trial ran on, for result.json ``env``: the code version, the BLAS libraries and
their thread pools.

The code version (:func:`code_version`) is the package version and, when the package runs
from a git checkout, the commit and whether the working tree had uncommitted changes to
tracked files. ``show`` and ``compare`` report it; a changed code version does not re-train
a stored trial (docs/results.md says why).

Recorded after the network is built (so the libraries the backend loaded are there): which
BLAS/OpenMP libraries the process has loaded, their versions and thread counts, and SciPy's
version when SciPy is loaded. Two BLAS libraries in one process (NumPy's and SciPy's each
bundle an OpenBLAS) each keep a thread pool; see docs/performance.md for what that cost.
"""

from __future__ import annotations

import functools
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

GIT_TIMEOUT = 5.0  # seconds for each git call (a hung git must not hang a trial)


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


@functools.lru_cache(maxsize=1)
def code_version() -> dict[str, Any]:
    """``{"dropout_lab": version, "commit": sha or None, "dirty": bool or None}``: commit and
    dirty are None when the package does not run from a git checkout (an installed wheel) or
    git is unavailable. Computed once per process."""
    from dropout_lab import __version__

    out: dict[str, Any] = {"dropout_lab": __version__, "commit": None, "dirty": None}
    root = Path(__file__).resolve().parent.parent  # the checkout holding dropout_lab/
    if not (root / ".git").exists():  # a folder in a checkout, a file in a worktree
        return out
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"],
                              capture_output=True, text=True, timeout=GIT_TIMEOUT, check=True)
        status = subprocess.run(["git", "-C", str(root), "status", "--porcelain",
                                 "--untracked-files=no", "--", "dropout_lab"],
                                capture_output=True, text=True, timeout=GIT_TIMEOUT, check=True)
    except (OSError, subprocess.SubprocessError):
        return out
    out["commit"] = head.stdout.strip() or None
    out["dirty"] = bool(status.stdout.strip())
    return out


def describe_code(code: Any) -> str:
    """'0.1.0 @ 1a2b3c4d5e6f (dirty)' for an ``env.code`` entry; '?' when it is missing."""
    if not isinstance(code, dict):
        return "?"
    text = str(code.get("dropout_lab") or "?")
    commit = code.get("commit")
    if isinstance(commit, str) and commit:
        text += f" @ {commit[:12]}" + (" (dirty)" if code.get("dirty") else "")
    return text
