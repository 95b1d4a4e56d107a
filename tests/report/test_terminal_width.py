"""Tables fit the terminal: columns hidden by priority and named; pipes get everything."""

from __future__ import annotations

import io
import json
import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console
from rich.table import Table

from dropout_lab.errors import OutputError
from dropout_lab.report.terminal_width import fit_table, print_table, select_columns
from tests.helpers.fake_sweeps import write_sweep

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _table(headers: list[str], cell: str = "0.1234") -> Table:
    t = Table(title="t")
    for h in headers:
        t.add_column(h)
    t.add_row(*[cell] * len(headers))
    return t


def _console(width: int, terminal: bool = True) -> tuple[Console, io.StringIO]:
    buf = io.StringIO()
    return Console(file=buf, width=width, force_terminal=terminal, no_color=True,
                   legacy_windows=False), buf


def test_hides_the_highest_priority_number_first_until_it_fits():
    headers = ["name", "a", "b", "c", "d", "e", "f", "g", "h", "i", "j"]
    table = _table(headers, cell="0.123456789")  # 13 per column with borders: 11 x 14 > 80
    con, _ = _console(80)
    fitted = fit_table(table, 80, con, {"name": 0, "a": 0, "j": 9, "b": 8, "c": 1})
    # j (9) first, then b (8), then the unlisted columns (5) right-most first: i, h, g, ...
    assert fitted.hidden[:2] == ["j", "b"]
    assert fitted.hidden[2:] == ["i", "h", "g", "f"][: len(fitted.hidden) - 2]
    assert "name" not in fitted.hidden and "a" not in fitted.hidden
    con.print(fitted.table)
    assert _longest(ANSI.sub("", con.file.getvalue())) <= 80


def test_a_table_that_fits_is_left_alone():
    con, _ = _console(200)
    fitted = fit_table(_table(["x", "y"]), 200, con)
    assert fitted.hidden == [] and fitted.footnote() is None


def test_text_columns_are_shortened_before_columns_are_hidden():
    t = Table()
    for h in ("name", "done", "note"):
        t.add_column(h)
    t.add_row("alpha", "9", "a very long note " * 8)
    con, buf = _console(60)
    fitted = print_table(t, con)
    assert fitted.hidden == [] and fitted.shortened == ["note"]
    text = ANSI.sub("", buf.getvalue())
    assert "…" in text and "shortened: note" in text
    assert max(len(x) for x in text.splitlines()) <= 60


def test_columns_picks_and_names_the_rest_and_an_unknown_one_is_an_error():
    table = _table(["trial", "a", "b", "c"])
    fitted = select_columns(table, ["B"])
    assert [str(c.header) for c in fitted.table.columns] == ["trial", "b"]
    assert fitted.hidden == ["a", "c"]
    with pytest.raises(OutputError, match="no column 'zz'.*this table has: trial, a, b, c"):
        select_columns(table, ["zz"])


def test_a_pipe_gets_every_column_at_natural_width():
    table = _table([f"column{i}" for i in range(12)])
    con, buf = _console(80, terminal=False)
    fitted = print_table(table, con)
    assert fitted.hidden == [] and "hidden" not in buf.getvalue()
    assert max(len(x) for x in buf.getvalue().splitlines()) > 80


# -- through the CLI on a real terminal at COLUMNS=80 -----------------------------------------

def _on_terminal(args: list[str], cwd: Path, columns: int = 80) -> str:
    """Run dropout-lab with stdout on a pseudo-terminal of ``columns`` columns; its output.
    (Run in ``cwd`` with relative paths: a long temporary path is not a table line.)"""
    main, child = pty.openpty()
    env = dict(os.environ, COLUMNS=str(columns), LINES="50", NO_COLOR="1", TERM="xterm")
    proc = subprocess.Popen([sys.executable, "-m", "dropout_lab", *args], stdin=subprocess.DEVNULL,
                            stdout=child, stderr=subprocess.PIPE, env=env, cwd=cwd)
    os.close(child)
    chunks = []
    while True:
        try:
            data = os.read(main, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=300)
    os.close(main)
    assert proc.returncode == 0, proc.stderr.read().decode()
    return ANSI.sub("", b"".join(chunks).decode()).replace("\r", "")


def _longest(text: str) -> int:
    return max(len(x) for x in text.splitlines())


@pytest.mark.slow
def test_sweep_ls_show_fit_80_columns_and_name_what_they_hide(tiny_config, tmp_path):
    runs = Path("runs")
    out = _on_terminal(["sweep", tiny_config.name, "--runs-dir", "runs", "--workers", "1"],
                       tmp_path)
    assert _longest(out) <= 80, out
    assert "hidden: " in out and "ablation_auc" in out.split("hidden: ")[1]
    sweep = runs / "tiny"
    subprocess.run([sys.executable, "-m", "dropout_lab", "note", str(sweep),
                    "a long note about this sweep " * 5, "--tag", "baseline"], check=True,
                   capture_output=True, cwd=tmp_path)
    out = _on_terminal(["ls", str(runs)], tmp_path)
    assert _longest(out) <= 80, out
    assert "tiny" in out and ("shortened: note" in out or "hidden: " in out)
    out = _on_terminal(["show", str(sweep)], tmp_path)
    assert _longest(out) <= 80, out
    trial = next((tmp_path / sweep / "trials").iterdir()).relative_to(tmp_path)
    out = _on_terminal(["show", str(trial)], tmp_path)
    assert _longest(out) <= 80, out
    # --wide is the full table, even on the terminal
    out = _on_terminal(["sweep", tiny_config.name, "--runs-dir", "runs", "--wide"], tmp_path)
    assert _longest(out) > 80 and "hidden" not in out


def test_ls_columns_option(cli, tmp_path):
    write_sweep(tmp_path, "alpha")
    code, out, err = cli("ls", tmp_path, "--columns", "name,total")
    assert code == 0, err
    header = next(x for x in out.splitlines() if "name" in x)
    assert "total" in header and "done" not in header and "hidden: done" in out
    code, _, err = cli("ls", tmp_path, "--columns", "size")
    assert code == 2 and "no column 'size'" in err


def test_pipe_output_of_sweep_is_the_full_table(cli, tiny_config, tmp_path):
    code, out, err = cli("sweep", tiny_config, "--runs-dir", tmp_path / "runs", "--workers", "1")
    assert code == 0, err
    assert "ablation_auc" in out and "hidden" not in out
    assert json.loads(cli("ls", tmp_path / "runs", "--json")[1])["sweeps"][0]["name"] == "tiny"
    assert Path(tmp_path / "runs" / "tiny").is_dir()


def test_a_text_column_short_enough_is_not_called_shortened():
    t = Table()
    for h in ("name", "tags", "note", "x" * 30):
        t.add_column(h)
    t.add_row("alpha", "a, b", "a note far longer than ten characters", "1")
    con, _ = _console(64)
    fitted = fit_table(t, 64, con)  # 90 wide; 62 with the note cut to 10 characters
    assert fitted.shortened == ["note"] and fitted.hidden == []
