"""Output that fits an 80-column terminal (issue 22), checked on a real pseudo-terminal: the
CLI runs as a subprocess whose stdout and stderr are a pty of 80 columns (set with
TIOCSWINSZ, COLUMNS unset), and no line it prints is wider. One command per test, every
table-printing command and every ``--help``, a sweep while it trains (the live progress
display) included.

One small real sweep (digits, hidden [16], 2 epochs, p in {0, 0.5, 0.8} x seeds {0, 1}) and
a second one of the same grid with another learning rate (for ``compare A B``) are built
once per session and only read afterwards (``rm`` and ``note`` get copies)."""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest
import yaml

from tests.helpers.fake_sweeps import write_sweep
from tests.helpers.reliability import cli, env
from tests.helpers.requires import requires

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
WIDTH = 80
# the metrics a user names with -m in the tests below (mutual_information: the one the README
# calls clear)
NAMED = ["test_acc", "gap_acc", "gap_loss", "corr[1]", "mutual_information"]


def on_a_terminal(argv: list[str], columns: int = WIDTH, cwd: Path | None = None,
                  script: str | None = None) -> str:
    """Run dropout-lab (or ``python -c script``) with stdout and stderr on a pseudo-terminal
    of ``columns`` columns; return what it printed, ANSI styles removed."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    environment = {k: v for k, v in env().items() if k not in ("COLUMNS", "LINES")}
    environment["TERM"] = "xterm"
    command = ["-c", script] if script else ["-m", "dropout_lab", *argv]
    p = subprocess.Popen([sys.executable, *command], stdout=slave, stderr=slave,
                         stdin=subprocess.DEVNULL, env=environment, cwd=cwd)
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
    p.wait(timeout=300)
    os.close(master)
    text = ANSI.sub("", b"".join(chunks).decode("utf-8", "replace")).replace("\r", "")
    assert p.returncode == 0, f"exit {p.returncode}:\n{text}"
    return text


def assert_fits(text: str, columns: int = WIDTH, min_lines: int = 1) -> list[str]:
    lines = text.splitlines()
    assert len(lines) >= min_lines, text
    too_wide = [line for line in lines if len(line) > columns]
    assert not too_wide, f"{len(max(too_wide, key=len))} columns:\n" + "\n".join(too_wide)
    return lines


SMALL = {
    "name": "small",
    "dataset": {"name": "digits"},
    "model": {"hidden": [16]},
    "train": {"epochs": 2},
    "eval": {"mc_samples": 4, "max_samples": 200, "pair_samples": 4, "ablation_draws": 1},
    "sweep": {"dropout.p": [0.0, 0.5, 0.8], "seed": [0, 1]},
}


@pytest.fixture(scope="session")
def small(tmp_path_factory) -> dict[str, Path]:
    """Two real sweeps under one runs folder: ``small`` and ``small-lr`` (train.lr 0.02)."""
    root = tmp_path_factory.mktemp("width")
    config = root / "small.yaml"
    config.write_text(yaml.safe_dump(SMALL))
    runs = root / "runs"
    # the first one trains on the terminal (its live progress display is checked below)
    trained = on_a_terminal(["sweep", str(config), "--runs-dir", str(runs)], cwd=root)
    (root / "sweep-on-a-terminal.txt").write_text(trained)
    done = cli("sweep", config, "--runs-dir", runs, "--workers", "1",
               "--set", "name=small-lr", "--set", "train.lr=0.02")
    assert done.code == 0, done.text
    return {"root": root, "config": config, "runs": runs, "a": runs / "small",
            "b": runs / "small-lr"}


def test_a_sweep_that_trains_fits_80_columns(small):
    """The live progress display while trials train, and the table at the end."""
    lines = assert_fits((small["root"] / "sweep-on-a-terminal.txt").read_text())
    assert any(line.startswith("trials 6/6") for line in lines), lines
    assert any(line.startswith("┃ dropout.p") for line in lines), lines


@requires("tensorboard")
def test_export_fits_80_columns(small, tmp_path):
    assert_fits(on_a_terminal(["export", str(small["a"]), "--to", "tensorboard",
                               str(tmp_path / "tb")]))


def _trial(sweep: Path) -> Path:
    return sorted((sweep / "trials").iterdir())[0]


# command -> the argv it runs (formatted with the fixture's paths)
COMMANDS = {
    "sweep": ["sweep", "{config}", "--runs-dir", "{runs}"],  # every trial reused: the table
    "sweep --dry-run": ["sweep", "{config}", "--runs-dir", "{runs}", "--dry-run"],
    "validate": ["validate", "{config}"],
    "ls": ["ls", "{runs}"],
    "show": ["show", "{a}"],
    "show trial": ["show", "{trial}"],
    "compare": ["compare", "{a}"],
    "compare -m all": ["compare", "{a}", "-m", "all"],
    "compare --seeds-for": ["compare", "{a}", "--seeds-for", "0.01",
                            *[arg for m in NAMED for arg in ("-m", m)]],
    "compare A B": ["compare", "{a}", "{b}"],
    "plot": ["plot", "{a}"],
    "report": ["report", "{a}"],
    "datasets list": ["datasets", "list"],
    "gc": ["gc", "{a}"],
}


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_command_fits_80_columns(small, name):
    paths = {k: str(v) for k, v in small.items()}
    argv = [a.format(trial=_trial(small["a"]), **paths) for a in COMMANDS[name]]
    lines = assert_fits(on_a_terminal(argv, cwd=small["root"]))
    if name == "compare A B":  # every metric of the pair is a row; none hidden, none cut
        for metric in ("test_acc", "gap_acc", "gap_loss", "train_acc", "corr[1]",
                       "mutual_information"):
            assert sum(line.lstrip("│ ").startswith(metric) for line in lines) == 3, metric
        assert not any(line.startswith("hidden:") or "…" in line for line in lines)
    if name == "compare --seeds-for":  # transposed: a row per metric, none hidden
        for metric in NAMED:
            assert any(line.lstrip("│ ").startswith(metric) for line in lines), metric


def test_a_metric_named_with_m_is_never_hidden(small):
    # Five metrics do not fit 80 columns side by side: the table is transposed (a row per
    # metric), never squeezed into "mutual_inf…" or hidden.
    args = [arg for m in NAMED for arg in ("-m", m)]
    lines = assert_fits(on_a_terminal(["compare", str(small["a"]), *args]))
    words = {w for line in lines for w in re.split(r"[\s│┃]+", line)}
    assert set(NAMED) <= words, sorted(words)
    assert not any(line.startswith("hidden:") for line in lines), lines
    assert not any("…" in line for line in lines), lines  # wrapped, never cut
    piped = cli("compare", small["a"], *args)
    marks = [sum(line.count("*") for line in text if line.startswith("│"))
             for text in (lines, piped.out.splitlines())]
    assert marks[0] == marks[1]  # every significance mark the pipe shows, none cut
    numbers = re.compile(r"[-+]?\d+\.\d+")
    table = [line for line in piped.out.splitlines() if line.startswith("│")]
    shown = [line for line in lines if line.startswith("│")]
    assert sorted(numbers.findall("".join(shown))) == sorted(numbers.findall("".join(table)))


def test_m_all_shows_every_metric(small):
    lines = assert_fits(on_a_terminal(["compare", str(small["a"]), "-m", "all"]))
    assert not any(line.startswith("hidden:") or "…" in line for line in lines), lines
    piped = cli("compare", small["a"], "-m", "all", "-f", "json")
    for metric in json.loads(piped.out)["metrics"]:
        assert any(line.lstrip("│ ").startswith(metric + " ") for line in lines), metric


def test_compare_a_b_on_a_terminal_shows_the_numbers_a_pipe_shows(small):
    lines = assert_fits(on_a_terminal(["compare", str(small["a"]), str(small["b"])]))
    piped = cli("compare", small["a"], small["b"])
    assert piped.code == 0, piped.text
    assert max(map(len, piped.out.splitlines())) > WIDTH  # the pipe gets the wide table
    numbers = re.compile(r"[-+]?\d+\.\d+(?:e-?\d+)?")
    assert sorted(numbers.findall("\n".join(lines))) == sorted(numbers.findall(piped.out))


def test_compare_a_b_wide_keeps_the_natural_table(small):
    text = on_a_terminal(["compare", str(small["a"]), str(small["b"]), "--wide"])
    assert max(map(len, text.splitlines())) > WIDTH
    assert any("B - A" in line and "test" in line for line in text.splitlines())


def test_note_and_rm_fit(small, tmp_path):
    copy = tmp_path / "runs" / "copy"
    shutil.copytree(small["a"], copy)
    assert_fits(on_a_terminal(["note", str(copy), "a note " * 30, "--tag", "paper"]))
    assert_fits(on_a_terminal(["ls", str(tmp_path / "runs")]))  # the long note is shortened
    assert_fits(on_a_terminal(["rm", str(copy), "--yes"]))
    assert not copy.exists()


def test_schema_fits_or_is_json_for_a_file(tmp_path):
    # On a terminal the schema is JSON for a human to read; its long descriptions wrap.
    text = on_a_terminal(["schema"])
    assert '"properties"' in text
    assert_fits(text)


HELP_SCRIPT = """
import sys
from typer.main import get_command
from dropout_lab.cli import app
group = get_command(app)
names = [[]]
for name, cmd in group.commands.items():
    names.append([name])
    for sub in getattr(cmd, "commands", {}) or {}:
        names.append([name, sub])
for argv in names:
    print("=== " + " ".join(argv), flush=True)
    try:
        app([*argv, "--help"], prog_name="dropout-lab")
    except SystemExit:
        pass
    sys.stdout.flush()
"""


def test_every_help_fits_80_columns_and_shows_flags_as_flags():
    text = on_a_terminal([], script=HELP_SCRIPT)
    pages = re.split(r"^=== ?(.*)$", text, flags=re.M)[1:]
    helps = dict(zip(pages[::2], pages[1::2], strict=True))
    assert {"", "sweep", "compare", "ls", "show", "datasets list", "export", "schema", "rm",
            "gc", "note", "plot", "report", "validate"} <= set(helps), sorted(helps)
    for name, page in helps.items():
        assert "Usage:" in page, (name, page)
        too_wide = [line for line in page.splitlines() if len(line) > WIDTH]
        assert not too_wide, (name, too_wide)
        assert "<bool>" not in page and "BOOLEAN" not in page, (name, page)


def test_wide_fake_sweep_tables_fit(tmp_path):
    # A sweep written by the test helpers with every statistic: compare's widest default.
    sweep = write_sweep(tmp_path / "runs", stats=True)
    assert_fits(on_a_terminal(["compare", str(sweep), "--seeds-for", "0.01", "-m", "all"]))


def test_compare_a_b_refuses_columns_rather_than_ignoring_them(small):
    run = cli("compare", small["a"], small["b"], "--columns", "metric,A")
    assert run.code == 2 and "--columns: not for two sweeps" in run.err, run.text
    assert not run.out
