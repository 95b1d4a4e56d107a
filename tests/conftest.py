"""Shared fixtures: an isolated CLI runner and tiny configs that train in well under a second."""

from __future__ import annotations

import signal
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from dropout_lab.cli import app
from tests.helpers.configs import TINY
from tests.helpers.fake_sweeps import write_sweep

# A shell starts a background job (`make test &`, nohup) with SIGINT ignored, and Python then
# installs no KeyboardInterrupt handler; the subprocesses the tests start inherit the
# "ignored". The Ctrl-C tests need Ctrl-C to work, wherever the suite was started: restore
# Python's handler here (a handled signal is reset to its default in every child at exec).
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


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


@dataclass(frozen=True)
class Rendered:
    """The plot set and the HTML report of one fake sweep, rendered once per test session."""

    sweep: Path  # read it, never write into it: other tests share it
    plot: tuple[int, str, str]  # (exit code, stdout, stderr) of `plot SWEEP --json`
    report: tuple[int, str, str]  # ... of `report SWEEP --json`

    @property
    def report_path(self) -> Path:
        return self.sweep / "report.html"


# Every figure rendered (statistics present) over two blocks (model.hidden) of three p values
# and three seeds; the numbers are tests/helpers/fake_sweeps.py's, equal in both blocks.
RENDERED_AXES = {"dropout.p": [0.0, 0.2, 0.5], "model.hidden": [[16], [32, 32]],
                 "seed": [0, 1, 2]}


@pytest.fixture(scope="session")
def rendered(tmp_path_factory) -> Rendered:
    """``plot`` and ``report`` of a fake sweep with every statistic, run once through the CLI
    for the whole session (rendering the plot set takes seconds; several tests read it)."""
    root = tmp_path_factory.mktemp("rendered")
    sweep = write_sweep(root / "runs", stats=True, axes=RENDERED_AXES)
    with pytest.MonkeyPatch.context() as mp:  # what _isolated_env sets for each test
        mp.setenv("NO_COLOR", "1")
        mp.setenv("COLUMNS", "200")
        mp.setenv("XDG_CACHE_HOME", str(root / "xdg-cache"))
        mp.delenv("DROPOUT_LAB_DATA", raising=False)
        run = Cli()
        return Rendered(sweep, run("plot", sweep, "--json"), run("report", sweep, "--json"))
