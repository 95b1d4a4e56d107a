"""The data-set registry: names and options (the leaf :mod:`dropout_lab.specs.datasets`) ->
lazily imported loaders."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from dropout_lab.data.base import Dataset
from dropout_lab.specs.datasets import (
    SPECIFIC_OPTIONS,
    DatasetOptions,
    DatasetSpec,
    get_spec,
    names,
)

__all__ = ["SPECIFIC_OPTIONS", "DatasetOptions", "DatasetSpec", "function", "get_spec",
           "load_fn", "names"]


def function(target: str) -> Callable[..., Any]:
    """The function a spec names as ``"module:function"`` (its module imported now)."""
    module, name = target.split(":")
    fn: Callable[..., Any] = getattr(importlib.import_module(module), name)
    return fn


def load_fn(spec: DatasetSpec) -> Callable[[DatasetOptions, int], Dataset]:
    """The loader of a data set: ``fn(options, seed) -> Dataset``."""
    return function(spec.loader)
