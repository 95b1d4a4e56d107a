"""Tests skip by declared requirement: a test that needs an optional extra (torch, ray,
mlflow, tensorboard) says so, and on an install without it is skipped with the missing
package and the pip command named (``pytest -ra`` lists them), never failed.

The core install (``pip install -e ".[dev]"``) runs the whole suite with no failure."""

from __future__ import annotations

import importlib.util

import pytest

from dropout_lab.backends import registry

# The extra that provides each optional package (pyproject.toml [project.optional-dependencies]).
EXTRA_OF = {"torch": "torch", "ray": "ray", "mlflow": "mlflow", "tensorboard": "tensorboard",
            "optuna": "search"}


def installed(package: str) -> bool:
    """Whether ``package`` can be imported here (without importing it)."""
    return importlib.util.find_spec(package) is not None


def requires(package: str) -> pytest.MarkDecorator:
    """Mark a test (or a parameter) as needing ``package``: skipped, with the reason, where it
    is not installed."""
    extra = EXTRA_OF.get(package, package)
    return pytest.mark.skipif(not installed(package),
                              reason=f"needs {package}: pip install -e '.[{extra}]'")


def backend_params(names: list[str]) -> list[object]:
    """Backend names as pytest parameters, each marked with the package its backend needs
    (the registry's ``requires``): ``@pytest.mark.parametrize("name", backend_params(...))``."""
    params: list[object] = []
    for name in names:
        need = registry.get_spec(name).requires
        marks = [requires(need)] if need else []
        params.append(pytest.param(name, marks=marks, id=name))
    return params
