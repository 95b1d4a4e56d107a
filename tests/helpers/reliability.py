"""Shared by the fault-injection suite: run the CLI in-process or as a real process, and
check the promise every failure keeps (one message, the right exit code, no traceback)."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import yaml
from typer.testing import CliRunner

from dropout_lab.cli import app
from tests.helpers.configs import TINY


def tiny(**changes: object) -> dict:
    """TINY with top-level keys replaced."""
    cfg = copy.deepcopy(TINY)
    cfg.update(changes)
    return cfg


def write_yaml(path: Path, data: object) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


class Run:
    """The outcome of one command: exit code, stdout, stderr, and an escaped exception."""

    def __init__(self, code: int, out: str, err: str, exception: BaseException | None = None):
        self.code, self.out, self.err, self.exception = code, out, err, exception

    @property
    def text(self) -> str:
        return self.out + self.err

    def assert_clean_failure(self, code: int, *needles: str) -> None:
        """Exit ``code``, an ``error:`` line holding every needle, no traceback."""
        assert self.exception is None, f"escaped: {self.exception!r}\n{self.text}"
        assert self.code == code, f"exit {self.code}, wanted {code}\n{self.text}"
        assert "Traceback" not in self.text, self.text
        assert "error:" in self.err, self.text
        message = self.err[self.err.index("error:"):]
        for needle in needles:
            assert needle in message, f"{needle!r} not in {message!r}"


def cli(*args: object) -> Run:
    """dropout-lab in-process (what a user sees, minus the process boundary)."""
    res = CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=True)
    exc = res.exception if not isinstance(res.exception, SystemExit) else None
    return Run(res.exit_code, res.stdout, res.stderr, exc)


def env() -> dict[str, str]:
    return dict(os.environ, NO_COLOR="1", COLUMNS="200")


def cli_process(*args: object, timeout: float = 120) -> Run:
    """dropout-lab as a real process (signals, locks, kill -9)."""
    p = subprocess.run([sys.executable, "-m", "dropout_lab", *[str(a) for a in args]],
                       capture_output=True, text=True, env=env(), timeout=timeout)
    return Run(p.returncode, p.stdout, p.stderr)
