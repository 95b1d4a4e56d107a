"""The CLI's contracts under hostile use (issue 21: exit codes, output contracts, safe output;
issue 24 item 6: one application object per invocation).

- exit codes: a closed stdout is 141 and quiet; --fail-on-collapse is 4; output options are
  checked before any training;
- --json anywhere on the line gives one JSON document, usage errors and interruptions included;
- terminal output shows stored and given text literally (no ESC sequence, no rich markup);
  CSV cells a spreadsheet would run are neutralised;
- ``-o`` writes through to a FIFO, a device or a link's target, never replaces it, never creates
  folders, and leaves nothing behind when refused or interrupted.
"""

from __future__ import annotations

import csv
import errno
import importlib
import io
import json
import os
import re
import shlex
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import dropout_lab.cli as cli_package
from dropout_lab.safe_text import csv_cell, printable
from dropout_lab.store import SweepStore
from tests.helpers.fake_sweeps import write_sweep
from tests.helpers.reliability import cli, env, tiny, write_yaml
from tests.helpers.requires import requires

# the module (dropout_lab.cli re-exports its Typer object under the same name)
app_module = importlib.import_module("dropout_lab.cli.app")

ESC = "\x1b"
HOSTILE = "x\x1b]0;pwned\x07\x1b[2J[bold]b[/]\u202e\ny"  # title, clear, markup, bidi, newline


def _no_injection(text: str) -> None:
    """Nothing a terminal would act on: no ESC, BEL, carriage return or bidi override."""
    for ch in (ESC, "\x07", "\r", "\u202e"):
        assert ch not in text, f"{ch!r} reached the output: {text[:300]!r}"


# -- the application object -------------------------------------------------------------------

def test_no_module_level_console_or_warning_set():
    """Output belongs to the invocation: no console, list or set of warnings at module level
    in the CLI package (two invocations never share a width, a mode or warnings)."""
    from rich.console import Console

    for module in [m for name, m in sys.modules.items()
                   if name.startswith("dropout_lab.cli") and m is not None]:
        for name, value in vars(module).items():
            assert not isinstance(value, Console), f"{module.__name__}.{name} is a console"
            if isinstance(value, (set, list)) and not name.isupper() and not name.startswith("__"):
                pytest.fail(f"{module.__name__}.{name}: module-level mutable {type(value)}")
    assert cli_package.app is app_module.app


def test_each_invocation_gets_its_own_application(tmp_path):
    """--json of one invocation does not leak into the next (the mode lives in the
    invocation's application, not in a module)."""
    write_sweep(tmp_path / "runs", name="fake")
    first = cli("--json", "ls", tmp_path / "runs")
    second = cli("ls", tmp_path / "runs")
    assert first.code == second.code == 0
    assert json.loads(first.out)["sweeps"] and not second.out.lstrip().startswith("{")
    app = app_module.current()  # outside a command: a fresh one, never a shared one
    assert app is not app_module.current()


# -- --json anywhere -----------------------------------------------------------------------------

@pytest.mark.parametrize("args", [
    ["--json", "ls", "{runs}"], ["ls", "{runs}", "--json"], ["ls", "--json", "{runs}"]])
def test_json_before_or_after_the_command(tmp_path, args):
    write_sweep(tmp_path / "runs", name="fake")
    run = cli(*[a.format(runs=tmp_path / "runs") for a in args])
    assert run.code == 0, run.text
    assert [s["name"] for s in json.loads(run.out)["sweeps"]] == ["fake"]


@pytest.mark.parametrize("args, kind", [
    (["--json", "ls", "{runs}/missing"], "StoreError"),
    (["--json", "ls", "{runs}", "--bogus"], "UsageError"),
    (["ls", "{runs}", "--bogus", "--json"], "UsageError"),
    (["--json", "nosuchcommand"], "UsageError"),
    (["--json", "ls", "{runs}", "--sort", "bogus"], "OutputError"),
    (["compare", "{runs}/fake", "-f", "json", "--confidence", "abc"], "UsageError"),
    (["compare", "{runs}/fake", "-f", "json", "--bogus"], "UsageError"),
    (["compare", "{runs}/fake", "--format=json", "--at", "nonsense"], "CompareError"),
    (["--json", "compare", "{runs}/fake", "--seeds-for", "inf"], "CompareError"),
    (["--json", "validate", "{runs}/none.yaml"], "ConfigError"),
    (["--json", "schema", "-o", "{runs}/no/such/folder/s.json"], "OutputError"),
])
def test_json_errors_are_one_document(tmp_path, args, kind):
    write_sweep(tmp_path / "runs", name="fake")
    run = cli(*[a.format(runs=tmp_path / "runs") for a in args])
    assert run.code == 2 and run.exception is None, run.text
    doc = json.loads(run.out)  # exactly one document on stdout
    assert doc["kind"] == kind and doc["code"] == 2 and doc["error"]
    assert "Traceback" not in run.text


def test_an_interrupted_json_sweep_prints_its_document(tmp_path):
    """SIGTERM in the middle of a --json sweep: exit 143, and stdout still holds one JSON
    document with the trials finished so far (the others pending)."""
    cfg = write_yaml(tmp_path / "c.yaml", tiny(
        train={"epochs": 40, "batch_size": 8, "optimizer": "momentum", "lr": 0.05},
        sweep={"seed": list(range(8))}))
    p = subprocess.Popen([sys.executable, "-m", "dropout_lab", "sweep", str(cfg), "--runs-dir",
                          str(tmp_path / "runs"), "--workers", "1", "--threads", "1", "--json"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env())
    assert p.stderr is not None
    for line in p.stderr:  # the first trial finished: stop the sweep
        if line.startswith("done"):
            break
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 143, err
    doc = json.loads(out)
    assert doc["interrupted"] is True and doc["code"] == 143
    statuses = [t["status"] for t in doc["trials"]]
    assert "done" in statuses and len(statuses) == 8
    assert "Traceback" not in err


# -- exit codes ------------------------------------------------------------------------------------

@pytest.mark.parametrize("argv", [["schema"], ["ls", "{runs}"], ["--json", "ls", "{runs}"],
                                  ["show", "{runs}/fake"], ["compare", "{runs}/fake", "-f", "csv"],
                                  ["datasets", "list"]])
def test_a_closed_stdout_exits_141_quietly(tmp_path, argv):
    """`dropout-lab ... | head`: when the reader is gone, the command ends with 141 (128 +
    SIGPIPE, what a shell reports) and says nothing: no traceback, no 'Broken pipe'."""
    write_sweep(tmp_path / "runs", name="fake")
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the first byte
    try:
        p = subprocess.run([sys.executable, "-m", "dropout_lab",
                            *[a.format(runs=tmp_path / "runs") for a in argv]],
                           stdout=write, stderr=subprocess.PIPE, text=True, env=env(),
                           timeout=120)
    finally:
        os.close(write)
    assert p.returncode == 141, p.stderr
    assert p.stderr == ""


def _collapsing(tmp_path: Path) -> Path:
    # lr so small that nothing is learned: every trial is flagged collapsed (loss ~ ln K)
    return write_yaml(tmp_path / "c.yaml", tiny(
        train={"epochs": 1, "batch_size": 32, "optimizer": "sgd", "lr": 1e-9},
        eval={"coadaptation": False, "uncertainty": False}))


def test_every_trial_collapsed_exit_4_with_fail_on_collapse(tmp_path):
    cfg = _collapsing(tmp_path)
    run = cli("sweep", cfg, "--runs-dir", tmp_path / "runs", "--workers", "1", "--json")
    assert run.code == 0, run.text  # the default: a warning, exit 0 (docs/reliability.md)
    assert all("collapsed" in t["health"]["flags"] for t in json.loads(run.out)["trials"])
    assert "warning: every trial of tiny collapsed" in run.err
    run = cli("sweep", cfg, "--runs-dir", tmp_path / "runs", "--workers", "1",
              "--fail-on-collapse")
    run.assert_clean_failure(4, "every trial of tiny collapsed", "exit 4")


@pytest.mark.parametrize("columns, needle", [("test_acc,bogus", "'bogus'"),
                                             (",,,", "names no column"),
                                             ("[bold]x[/]", "[bold]x[/]")])
def test_output_options_are_checked_before_training(tmp_path, columns, needle):
    cfg = write_yaml(tmp_path / "c.yaml", tiny())
    run = cli("sweep", cfg, "--runs-dir", tmp_path / "runs", "--columns", columns)
    run.assert_clean_failure(2, "--columns", needle)
    assert not (tmp_path / "runs").exists()  # nothing trained, nothing written


def test_a_plausible_metric_column_absent_after_training_is_not_an_error(tmp_path):
    cfg = write_yaml(tmp_path / "c.yaml", tiny(sweep={"dropout.p": [0.0]}))
    run = cli("sweep", cfg, "--runs-dir", tmp_path / "runs", "--columns",
              "dropout.p,corr[9],test_acc")
    assert run.code == 0, run.text
    assert "test_acc" in run.out


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "0", "-0.1"])
def test_seeds_for_needs_a_finite_positive_difference(tmp_path, value):
    sweep = write_sweep(tmp_path / "runs")
    cli("compare", sweep, "--seeds-for", value).assert_clean_failure(2, "--seeds-for")


@requires("mlflow")
@pytest.mark.slow
def test_mlflow_file_store_is_one_message_suggesting_sqlite(tmp_path):
    import mlflow

    sweep = write_sweep(tmp_path / "runs")
    run = cli("export", sweep, "--to", "mlflow", "--tracking-uri", f"file://{tmp_path}/mlruns")
    if int(mlflow.__version__.split(".")[0]) < 3:
        assert run.code == 0, run.text  # MLflow 2 still logs into a folder
        return
    run.assert_clean_failure(2, "--tracking-uri", f"sqlite:///{tmp_path}/mlruns/mlflow.db")
    suggested = re.search(r"--tracking-uri (sqlite:///\S+)", run.err.split("error:")[1])
    assert suggested is not None
    ok = cli("export", sweep, "--to", "mlflow", "--tracking-uri", suggested.group(1), "--json")
    assert ok.code == 0, ok.text  # the suggestion works as written
    assert json.loads(ok.out)["runs"] == 9


# -- what the help and the errors tell a user to type ----------------------------------------

def test_the_expect_example_in_compare_help_works_as_written(tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "300")
    help_text = cli("compare", "--help").out
    example = re.search(r"gate, e\.g\. '([^']+)'", help_text)
    assert example is not None, help_text
    assert "[p=" in example.group(1)  # the selectors were not eaten as rich markup
    p_values = sorted({float(v) for v in re.findall(r"\[p=([0-9.]+)\]", example.group(1))})
    sweep = write_sweep(tmp_path / "runs", axes={"dropout.p": p_values, "seed": [0, 1, 2]},
                        stats=True)
    run = cli("compare", sweep, "--expect", example.group(1), "--quiet")
    assert run.code in (0, 1), run.text  # evaluated (holds or not), never a bad expression
    assert "/1 expectation(s) hold" in run.err


def test_the_at_best_fix_works_as_written(tmp_path):
    cfg = write_yaml(tmp_path / "c.yaml", tiny(sweep={"dropout.p": [0.0, 0.5]}))
    runs = tmp_path / "runs"
    assert cli("sweep", cfg, "--runs-dir", runs, "--workers", "1").code == 0
    run = cli("compare", runs / "tiny", "--at", "best")
    run.assert_clean_failure(2, "--at best")
    commands = re.findall(r"'(dropout-lab [^']+)'", run.err)
    assert len(commands) == 2, run.err
    for command in commands:
        argv = shlex.split(command.replace("CONFIG", str(cfg)).replace("RUNS/", f"{runs}/")
                           .replace("NEW", "tiny-val"))[1:]
        if argv[0] == "sweep":
            argv += ["--runs-dir", str(runs), "--workers", "1"]
        done = cli(*argv)
        assert done.code == 0, (command, done.text)


# -- safe output ---------------------------------------------------------------------------------

def _hostile_sweep(runs: Path) -> Path:
    """A sweep folder edited by hand: a string axis, an error text, a note, a status field,
    each holding ESC sequences, markup, a bidi override and a newline."""
    sweep = write_sweep(runs, name="fake", axes={
        "dropout.p": [0.0, 0.5], "seed": [0, 1], "dataset.path": [HOSTILE, "=1+2"]},
        status=lambda params: "failed" if params["seed"] == 1 and params["dropout.p"] else "done")
    for d in (sweep / "trials").iterdir():
        result = json.loads((d / "result.json").read_text())
        if result["status"] == "failed":
            result["error"] = "boom " + HOSTILE
            (d / "error.txt").write_text("RuntimeError: boom\n" + HOSTILE + "\n")
            (d / "result.json").write_text(json.dumps(result))
    (sweep / "meta.json").write_text(json.dumps({"note": HOSTILE, "tags": ["ok"]}))
    return sweep


@pytest.mark.parametrize("argv", [
    ["ls", "{runs}"], ["show", "{sweep}"], ["show", "{sweep}/trials/t006"],
    ["show", "{sweep}/trials/t000"], ["compare", "{sweep}"],
    ["compare", "{sweep}", "-f", "markdown"], ["compare", "{sweep}", "--by", "dataset.path"],
    ["compare", "{sweep}", "--seeds-for", "0.01"], ["gc", "{sweep}"],
    ["compare", "{sweep}", "--by", HOSTILE], ["ls", "{runs}", "--columns", HOSTILE],
    ["export", "{sweep}", "--to", HOSTILE], ["note", "{sweep}", HOSTILE],
])
def test_stored_and_given_text_reaches_the_terminal_escaped(tmp_path, argv):
    sweep = _hostile_sweep(tmp_path / "runs")
    (sweep / "trials" / ("stray" + ESC + "[2J[red]")).mkdir()  # a folder name, for gc
    run = cli(*[a.format(runs=tmp_path / "runs", sweep=sweep) for a in argv])
    assert run.exception is None and "Traceback" not in run.text, run.text
    assert run.code in (0, 1, 2), run.text
    _no_injection(run.out)
    _no_injection(run.err)
    if HOSTILE in argv and run.code == 2:
        assert printable(HOSTILE).split("[bold]")[0] in run.err  # shown, escaped


def test_markup_in_a_name_is_shown_literally(tmp_path):
    runs = tmp_path / "exp[/]old"
    cli("ls", runs).assert_clean_failure(2, "exp[/]old: no such runs folder")
    write_sweep(runs, name="x[bold]y[red]z")
    run = cli("ls", runs)
    assert run.code == 0, run.text
    assert "x[bold]y[red]z" in run.out and "exp[/]old" in run.out


def test_summary_csv_and_compare_csv_neutralise_formulas(tmp_path):
    store = SweepStore(tmp_path / "s")
    store.root.mkdir()
    store.write_summary([{"trial_id": "t0", "status": "done",
                          "params": {"a": "=HYPERLINK(\"http://x\")", "b": "+1+cmd|' /C calc'!A0",
                                     "c": "-2+3", "d": "@SUM(A1)", "e": "\tx", "f": -0.5,
                                     "g": "-0.25"},
                          "final": {"test_acc": 0.5}}], list("abcdefg"))
    header, row = list(csv.reader(io.StringIO((store.root / "summary.csv").read_text())))
    cells = dict(zip(header, row, strict=True))
    assert cells["a"] == "'=HYPERLINK(\"http://x\")" and cells["b"].startswith("'+")
    assert cells["c"] == "'-2+3" and cells["d"] == "'@SUM(A1)" and cells["e"] == "'\tx"
    assert cells["f"] == "-0.5" and cells["g"] == "-0.25"  # numbers stay numbers
    sweep = _hostile_sweep(tmp_path / "runs")
    run = cli("compare", sweep, "-f", "csv")
    assert run.code == 0, run.text
    for row in csv.reader(io.StringIO(run.out)):
        for cell in row:
            assert not cell.startswith(("=", "+", "@", "\t", "\r")), row
            assert not cell.startswith("-") or re.fullmatch(r"-[\d.e+-]+", cell), row
    assert "'=1+2" in run.out


def test_csv_cell_known_answers():
    assert [csv_cell(v) for v in ["=1", "+1", "-1", "-x", "@a", "\t", "\r1", "a=1", "", 3, -2.5,
                                  None, "1e-5", "-1e-5"]] == [
        "'=1", "+1", "-1", "'-x", "'@a", "'\t", "'\r1", "a=1", "", 3, -2.5,
        None, "1e-5", "-1e-5"]


def test_printable_known_answers():
    assert printable("a\x1b[2Jb") == "a\\x1b[2Jb"
    assert printable("a\nb") == "a\\nb" and printable("a\nb", newlines=True) == "a\nb"
    assert printable("\u202eabc") == "\\u202eabc" and printable("ü é ✓") == "ü é ✓"


@pytest.mark.parametrize("tag", ["a\nb", "\x1b]0;t\x07", "a\u202eb", "x" * 65, "a\tb"])
def test_note_refuses_control_characters_in_tags(tmp_path, tag):
    sweep = write_sweep(tmp_path / "runs")
    cli("note", sweep, "--tag", tag).assert_clean_failure(2, "--tag")
    assert not (sweep / "meta.json").exists()


# -- -o: write through, never replace, never create, leave nothing ------------------------------

def test_schema_o_into_a_fifo_writes_through(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    run = cli("schema", "-o", fifo)
    reader.join(timeout=30)
    assert run.code == 0, run.text
    assert json.loads(got[0])["title"] == "dropout-lab config"
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)  # still a FIFO, not a regular file


def test_schema_o_into_a_fifo_nobody_reads_is_refused_at_once(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    start = time.monotonic()
    cli("schema", "-o", fifo).assert_clean_failure(2, "nobody reads")
    assert time.monotonic() - start < 60  # refused, not waited on (a generous bound)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_schema_o_into_a_terminal_device_writes_through():
    """A character device (here a pseudo-terminal, never the machine's /dev/null: a
    regression would replace it with a regular file for every process) is written
    through and stays a device."""
    master, slave = os.openpty()
    path = os.ttyname(slave)
    got = bytearray()

    def drain() -> None:  # the terminal's buffer is smaller than the schema
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO once the last writer closed
                return
            if not chunk:
                return
            got.extend(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        run = cli("schema", "-o", path)
        assert run.code == 0, run.text
        assert stat.S_ISCHR(os.stat(path).st_mode)
    finally:
        os.close(slave)
        reader.join(timeout=30)
        os.close(master)
    assert json.loads(bytes(got).replace(b"\r\n", b"\n"))["title"] == "dropout-lab config"


def test_schema_o_through_a_symlink_updates_its_target(tmp_path):
    target = tmp_path / "real" / "schema.json"
    target.parent.mkdir()
    target.write_text("old")
    link = tmp_path / "latest.json"
    link.symlink_to(target)
    run = cli("schema", "-o", link)
    assert run.code == 0, run.text
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert json.loads(target.read_text())["title"] == "dropout-lab config"


@pytest.mark.parametrize("make, needle", [
    (lambda p: None, "does not exist"),  # a missing folder is never created
    (lambda p: p.parent.mkdir(parents=True) or p.mkdir(), "is a folder"),
    (lambda p: p.parent.mkdir(parents=True) or p.symlink_to(p.parent / "missing"),
     "link to a missing file"),
])
def test_schema_o_refusals_leave_nothing(tmp_path, make, needle):
    out = tmp_path / "a" / "b" / "s.json"
    make(out)
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    cli("schema", "-o", out).assert_clean_failure(2, needle)
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before


def test_an_interrupted_o_write_leaves_nothing(tmp_path, monkeypatch):
    def interrupted(fd: int) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted)
    run = cli("schema", "-o", tmp_path / "s.json")
    assert run.code == 130, run.text
    assert list(tmp_path.iterdir()) == []
    run = cli("--json", "schema", "-o", tmp_path / "s.json")  # still one JSON document
    assert run.code == 130 and json.loads(run.out)["kind"] == "Interrupted"
    assert list(tmp_path.iterdir()) == []


def test_plot_on_a_full_disk_names_the_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    # no statistics: three figures, not eight (the first write fails all the same)
    sweep = write_sweep(tmp_path / "runs")
    real = os.fsync

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    run = cli("plot", sweep)
    monkeypatch.setattr(os, "fsync", real)
    run.assert_clean_failure(3, str(sweep / "plots"), ".png", os.strerror(errno.ENOSPC))
    assert not [p for p in (sweep / "plots").iterdir() if p.name.endswith(".tmp")]
