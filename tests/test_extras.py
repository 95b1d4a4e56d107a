"""The optional extras: CI installs every one of them, so no test is skipped there."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parent.parent
EXTRAS = {"torch": "torch", "ray": "ray", "mlflow": "mlflow", "tensorboard": "tensorboard",
          "search": "optuna"}


def test_torch_is_an_extra_not_a_core_dependency():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = " ".join(project["dependencies"])
    assert "torch" not in core and "ray" not in core and "mlflow" not in core
    assert set(EXTRAS) | {"dev"} <= set(project["optional-dependencies"])


def test_make_test_installs_every_extra_and_make_demo_none():
    makefile = (ROOT / "Makefile").read_text()
    assert "TEST_EXTRAS := dev,torch,ray,mlflow,tensorboard" in makefile
    assert '-e .\n' in makefile  # the demo's install: the package alone


@pytest.mark.skipif(not os.environ.get("CI"), reason="CI installs every extra (make test)")
@pytest.mark.parametrize("extra, module", sorted(EXTRAS.items()))
def test_ci_has_every_extra(extra, module):
    assert importlib.util.find_spec(module) is not None, \
        f"CI must install the [{extra}] extra so that its tests run"
