"""Shared fixtures: an isolated CLI runner and tiny configs that train in well under a second."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from dropout_lab.cli import app
from tests.helpers.configs import TINY


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path):
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.delenv("DROPOUT_LAB_DATA", raising=False)


class Cli:
    """Runs dropout-lab in-process; returns (exit_code, stdout, stderr)."""

    def __init__(self) -> None:
        self.runner = CliRunner()

    def __call__(self, *args: str):
        res = self.runner.invoke(app, [str(a) for a in args], catch_exceptions=False)
        return res.exit_code, res.stdout, res.stderr


@pytest.fixture
def cli() -> Cli:
    return Cli()


@pytest.fixture
def write_config(tmp_path):
    """write_config(dict, name='cfg.yaml') -> Path of a YAML file in tmp_path."""

    def write(data: dict, name: str = "cfg.yaml") -> Path:
        path = tmp_path / name
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path

    return write


@pytest.fixture
def tiny_config(write_config) -> Path:
    return write_config(TINY)
