"""dropout-lab: sweep the dropout probability p, train MLPs, measure the gap and co-adaptation.

p is always the probability of DROPPING a unit: a' = 0 with probability p, else a / (1 - p).

The Python API (docs/python.md): :func:`sweep` runs a sweep as ``dropout-lab sweep`` does,
:func:`load` reads a sweep folder; both return a :class:`Sweep`. They live in
:mod:`dropout_lab.api` and are imported on first use, so ``import dropout_lab`` (and every
worker process that imports a submodule) stays light.
"""

from __future__ import annotations

import sys
import types
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from dropout_lab.api import Sweep, TrainedNetwork, Trial, load, sweep

__all__ = ["Sweep", "TrainedNetwork", "Trial", "__version__", "load", "sweep"]
_API = frozenset({"Sweep", "TrainedNetwork", "Trial", "load", "sweep"})


def __getattr__(name: str) -> Any:
    if name in _API:
        from dropout_lab import api

        return getattr(api, name)
    raise AttributeError(f"module 'dropout_lab' has no attribute {name!r}")


class _Package(types.ModuleType):
    """The package module. Importing the submodule ``dropout_lab.sweep`` (the grid) makes
    Python set it as the attribute ``sweep`` of the package, which would hide the function
    ``dropout_lab.sweep()``: that one assignment is skipped (``from dropout_lab.sweep import
    expand`` reads sys.modules and is unaffected)."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _API and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
