"""The backend registry: names -> lazily imported backend classes."""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dropout_lab.errors import BackendError, ConfigError

if TYPE_CHECKING:  # the Protocol only: base imports config, which imports this registry
    from dropout_lab.backends.base import Backend


@dataclass(frozen=True)
class BackendSpec:
    name: str
    target: str  # "module:Class"; the module is imported only when the backend is used
    description: str
    requires: str | None = None  # the package it needs, for a clear message when missing


_REGISTRY: dict[str, BackendSpec] = {}


def register(spec: BackendSpec) -> None:
    _REGISTRY[spec.name] = spec


def names() -> list[str]:
    return sorted(_REGISTRY)


def get_spec(name: str) -> BackendSpec:
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, names(), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"unknown backend {name!r}{hint} (known: {', '.join(names())})") from None


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


register(BackendSpec("numpy", "dropout_lab.backends.numpy_backend:NumpyBackend",
                     "NumPy reference implementation (CPU), forward and backward written out"))
register(BackendSpec("torch", "dropout_lab.backends.torch_backend:TorchBackend",
                     "PyTorch (cpu, cuda, mps)", requires="torch"))
