"""The backend registry: names (the leaf :mod:`dropout_lab.specs.backends`) -> lazily
imported backend classes."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from dropout_lab.errors import BackendError
from dropout_lab.specs.backends import BackendSpec, OptimizerSpec, get_spec, names

if TYPE_CHECKING:  # the Protocol only (base imports nothing of this module either)
    from dropout_lab.backends.base import Backend

__all__ = ["BackendSpec", "OptimizerSpec", "create", "get_spec", "names"]


def create(name: str) -> Backend:
    """Instantiate a backend by name; a missing package is a BackendError naming it."""
    spec = get_spec(name)
    module, cls = spec.target.split(":")
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        need = spec.requires or exc.name
        how = f"pip install 'dropout-lab[{name}]'" if spec.requires else f"pip install {need}"
        raise BackendError(
            f"backend {name!r} needs the package {need!r}, which is not installed "
            f"({how})"
        ) from None
    backend: Backend = getattr(mod, cls)()  # the registry's entries name Backend classes
    return backend
