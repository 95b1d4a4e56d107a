"""Output that fits an 80-column terminal (issue 22), checked on a real pseudo-terminal: the
process sees a terminal 80 columns wide, and no line it prints is wider."""

from __future__ import annotations

import fcntl
import os
import re
import struct
import subprocess
import sys
import termios

import pytest

from tests.helpers.fake_sweeps import write_sweep
from tests.helpers.reliability import cli, env

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def on_a_terminal(argv: list[str], columns: int = 80) -> str:
    """Run dropout-lab with stdout and stderr on a pseudo-terminal of ``columns`` columns;
    return what it printed, ANSI styles removed."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    environment = {k: v for k, v in env().items() if k != "COLUMNS"}
    p = subprocess.Popen([sys.executable, "-m", "dropout_lab", *argv], stdout=slave,
                         stderr=slave, env=environment)
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the last writer closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    p.wait(timeout=120)
    os.close(master)
    return ANSI.sub("", b"".join(chunks).decode("utf-8", "replace")).replace("\r", "")


@pytest.mark.parametrize("argv", [["datasets", "list"],
                                  ["compare", "{sweep}", "--seeds-for", "0.01", "-m", "all"]])
def test_wide_tables_fit_80_columns(tmp_path, argv):
    sweep = write_sweep(tmp_path / "runs", stats=True)
    text = on_a_terminal([a.format(sweep=sweep) for a in argv])
    lines = text.splitlines()
    assert len(lines) > 3, text
    widest = max(lines, key=len)
    assert len(widest) <= 80, f"{len(widest)} columns: {widest!r}"
    if "--seeds-for" in argv:  # transposed: every metric is a row, none hidden
        for name in ("test_acc", "gap_acc", "corr[1]", "mutual_information"):
            assert any(line.lstrip("│ ").startswith(name) for line in lines), text


def test_a_metric_named_with_m_is_never_hidden(tmp_path):
    sweep = write_sweep(tmp_path / "runs", stats=True)
    lines = on_a_terminal(["compare", str(sweep), "-m", "test_acc", "-m", "gap_acc",
                           "-m", "mutual_information"]).splitlines()
    assert any("mutual_information" in line for line in lines), lines
    hidden = [line for line in lines if line.startswith("hidden:")]
    assert not any(m in line for line in hidden for m in ("test_acc", "gap_acc", "mutual"))
    assert not any("…" in line for line in lines), lines  # wrapped, never cut
    piped = cli("compare", sweep, "-m", "test_acc", "-m", "gap_acc", "-m", "mutual_information")
    marks = [sum(line.count("*") for line in text if line.startswith("│"))
             for text in (lines, piped.out.splitlines())]
    assert marks[0] == marks[1] > 0  # every significance mark the pipe shows, none cut
    assert max(map(len, lines)) <= 80
