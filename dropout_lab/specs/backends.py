"""The backends' names and what a backend is given to build a network with.

``target`` names the implementing class as ``"module:Class"``: only
:func:`dropout_lab.backends.registry.create` imports it, when a backend is used, so reading
the names here imports no backend (nor torch).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from dropout_lab.errors import ConfigError

Optimizer = Literal["sgd", "momentum", "adam"]


@dataclass(frozen=True)
class BackendSpec:
    name: str
    target: str  # "module:Class"; the module is imported only when the backend is used
    description: str
    requires: str | None = None  # the package it needs, for a clear message when missing


@dataclass(frozen=True)
class OptimizerSpec:
    """What a network's optimizer needs from ``train:`` (the rest of the section belongs to
    the training loop): the update rule and its starting hyperparameters. ``lr`` and
    ``momentum`` are the values the schedules start from
    (:meth:`~dropout_lab.backends.mlp.MLP.set_hyperparameters` moves them between epochs)."""

    optimizer: Optimizer = "momentum"
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 0.0
    max_norm: float | None = None  # max L2 norm of each unit's incoming weights


_SPECS: Mapping[str, BackendSpec] = MappingProxyType({s.name: s for s in (
    BackendSpec("numpy", "dropout_lab.backends.numpy_backend:NumpyBackend",
                "NumPy reference implementation (CPU), forward and backward written out"),
    BackendSpec("torch", "dropout_lab.backends.torch_backend:TorchBackend",
                "PyTorch (cpu, cuda, mps)", requires="torch"),
)})


def names() -> list[str]:
    return sorted(_SPECS)


def get_spec(name: str) -> BackendSpec:
    try:
        return _SPECS[name]
    except KeyError:
        close = difflib.get_close_matches(name, names(), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"unknown backend {name!r}{hint} (known: {', '.join(names())})") from None
