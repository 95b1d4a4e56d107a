"""Documentation that runs (issue 21, item 8 of the trust-numbers brief).

Every ``dropout-lab ...`` command in the ``bash``/``console`` blocks of README.md and docs/*.md
is run, in the order the pages are read (README first, then docs/ by name), in one fresh
folder holding a copy of the repository's configs, in this process (as the other CLI tests
run it: Typer's runner, the working directory changed to that folder; a subprocess per
command cost an interpreter start-up and the CLI's imports, about 1 s of CPU each, for some
35 commands; ``python -m dropout_lab`` itself is run by the process tests). Each
must exit 0 (or the code an ``<!-- exit: N -->`` comment before its block states), and in a
``console`` block the output quoted under a ``$ dropout-lab`` line must be in what the command
printed (lines with words but no digits verbatim, up to spacing; for lines with numbers,
their words; table borders are not compared).

A block that needs downloaded data, a GPU, a cluster, or that deletes what later examples
read is skipped only when the line before it says so: ``<!-- no-run: why -->``. A block whose
commands need an optional extra (torch, mlflow, tensorboard) runs only where it is
installed. The examples in the commands' ``--help`` texts (``e.g. ...``) are run the same way.
A command already run with the same expected exit code is not run again.
"""

from __future__ import annotations

import importlib.util
import re
import shlex
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dropout_lab.cli import app

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LANGUAGES = {"bash", "console", "sh", "shell"}
NO_RUN = re.compile(r"<!--\s*no-run(:.*)?-->")
EXIT = re.compile(r"<!--\s*exit:\s*(\d+)\s*-->")
# the extra a command needs, by a word it contains
EXTRAS = {"torch": "torch", "mlflow": "mlflow", "tensorboard": "tensorboard", "ray": "ray",
          "search": "optuna"}

pytestmark = pytest.mark.slow


@dataclass
class Command:
    where: str  # page:line
    argv: list[str]
    exit_code: int = 0
    quoted: list[str] = field(default_factory=list)  # output lines the text shows


def _blocks(page: Path) -> list[tuple[int, str, list[str], str]]:
    """(line of the fence, language, lines, the marker line before it) of every fenced block."""
    lines = page.read_text(encoding="utf-8").splitlines()
    out = []
    i = 0
    while i < len(lines):
        m = re.match(r"^```(\w*)\s*$", lines[i])
        if not m:
            i += 1
            continue
        start, lang = i, m.group(1)
        j = i + 1
        while j < len(lines) and not lines[j].startswith("```"):
            j += 1
        before = next((lines[k] for k in range(start - 1, -1, -1) if lines[k].strip()), "")
        out.append((start + 1, lang, lines[start + 1:j], before))
        i = j + 1
    return out


def documented_commands() -> tuple[list[Command], list[str]]:
    """The commands to run, and 'page:line (reason)' for every block skipped by a marker."""
    commands: list[Command] = []
    skipped: list[str] = []
    for page in PAGES:
        name = page.relative_to(ROOT).as_posix()
        for line_no, lang, body, before in _blocks(page):
            if lang not in LANGUAGES:
                continue
            runs = [ln for ln in body if ln.lstrip("$ ").startswith("dropout-lab")]
            if not runs:
                continue
            if (m := NO_RUN.search(before)):
                skipped.append(f"{name}:{line_no} ({(m.group(1) or ':').lstrip(':').strip()})")
                continue
            code = int(m.group(1)) if (m := EXIT.search(before)) else 0
            current: Command | None = None
            pending = ""
            for k, raw in enumerate(body):
                text = raw
                if lang == "console":
                    if not text.startswith("$ "):
                        if current is not None and text.strip():
                            current.quoted.append(text)
                        continue
                    text = text[2:]
                text = pending + text
                if text.rstrip().endswith("\\"):
                    pending = text.rstrip()[:-1] + " "
                    continue
                pending = ""
                if not text.startswith("dropout-lab"):
                    current = None
                    continue
                argv = shlex.split(text, comments=True)
                current = Command(f"{name}:{line_no + 1 + k}", argv[1:], code)
                commands.append(current)
    return commands, skipped


def help_examples() -> list[Command]:
    """The commands the ``--help`` texts' examples imply (HELP_EXAMPLES below), after
    checking that every ``e.g.`` example in the help has an entry there."""
    from typer.main import get_command

    from dropout_lab.cli import app

    group = get_command(app)
    found: list[tuple[str, str, str]] = []  # (command, option, example)
    for name, cmd in group.commands.items():  # type: ignore[attr-defined]
        subs = getattr(cmd, "commands", None)
        for sub_name, sub in ({name: cmd} if subs is None else
                              {f"{name} {k}": v for k, v in subs.items()}).items():
            for param in sub.params:
                text = getattr(param, "help", None) or ""
                for example in re.findall(r"e\.g\. (.+?)(?:\)|$| \(|;)", text):
                    found.append((sub_name, param.opts[0] if param.opts else param.name,
                                  example.strip().strip("'").replace("\\[", "[")))
    unknown = [f for f in found if f not in HELP_EXAMPLES]
    assert not unknown, f"help examples without a command in HELP_EXAMPLES: {unknown}"
    found.sort(key=lambda f: f[0] == "rm")  # rm deletes the sweep: last
    return [Command(f"--help of {c} {o}", shlex.split(HELP_EXAMPLES[(c, o, e)]))
            for c, o, e in found]


# (command, option, the example its help gives) -> the command line it implies, run after the
# documentation's commands (runs/quickstart exists then)
HELP_EXAMPLES: dict[tuple[str, str, str], str] = {
    ("sweep", "--columns", "dropout.p,test_acc"):
        "sweep configs/quickstart.yaml --columns dropout.p,test_acc",
    ("compare", "sweep_dir", "runs/quickstart"): "compare runs/quickstart",
    ("compare", "--expect", "mutual_information[p=0.8] > mutual_information[p=0.0]"):
        "compare runs/quickstart --expect 'mutual_information[p=0.8] > "
        "mutual_information[p=0.0]'",
    ("compare", "--columns", "dropout.p,test_acc"):
        "compare runs/quickstart --columns dropout.p,test_acc",
    ("plot", "sweep_dir", "runs/quickstart"): "plot runs/quickstart",
    ("report", "sweep_dir", "runs/quickstart"): "report runs/quickstart",
    ("gc", "sweep_dir", "runs/quickstart"): "gc runs/quickstart",
    ("note", "sweep_dir", "runs/quickstart"): "note runs/quickstart 'from the help'",
    ("export", "sweep_dir", "runs/quickstart"):
        "export runs/quickstart --to tensorboard tb-help",
    ("rm", "sweep_dir", "runs/quickstart"): "rm runs/quickstart --yes",
    ("ls", "--columns", "name,done,tags"): "ls --columns name,done,tags",
    ("show", "--columns", "trial,status,test_acc"):
        "show runs/quickstart --columns trial,status,test_acc",
}


def _needs_missing_extra(argv: list[str]) -> str | None:
    text = " ".join(argv)
    for word, module in EXTRAS.items():
        if word in text and importlib.util.find_spec(module) is None:
            return module
    if "device=cuda" in text:  # documented as the message on a machine without a GPU
        import torch

        if torch.cuda.is_available():
            return "a machine without CUDA"
    return None


def _resolve(argv: list[str], cwd: Path) -> list[str]:
    """``runs/NAME/trials/<id>``: the first trial folder of that sweep."""
    out = []
    for arg in argv:
        if "<id>" in arg:
            trials = Path(arg.split("<id>")[0])
            first = sorted(p.name for p in (cwd / trials).iterdir())[0]
            arg = arg.replace("<id>", first)
        out.append(arg)
    return out


def _words(line: str) -> list[str]:
    return [w for w in re.split(r"[\s│┃|]+", line) if w and not re.search(r"\d", w)]


def _run(cmd: Command, cwd: Path) -> None:
    """Run one command in this process, in ``cwd`` (the caller changed to it)."""
    missing = _needs_missing_extra(cmd.argv)
    if missing:
        return  # the optional extra is not installed here (see the module docstring)
    argv = _resolve(cmd.argv, cwd)
    # catch_exceptions=False: an exception escaping a command fails here with its traceback
    proc = CliRunner().invoke(app, argv, catch_exceptions=False)
    shown = f"{cmd.where}: dropout-lab {shlex.join(argv)}\n{proc.stdout[-3000:]}\n" \
            f"{proc.stderr[-3000:]}"
    assert proc.exit_code == cmd.exit_code, shown
    assert "Traceback" not in proc.stderr, shown
    printed = " ".join((proc.stdout + proc.stderr).split())
    for line in cmd.quoted:
        if not re.search(r"[A-Za-z]", line):
            continue  # a table border: its widths follow the numbers
        if re.search(r"\d", line):
            for word in _words(line):
                assert word in printed, f"{shown}\nquoted word {word!r} not printed"
        else:
            assert " ".join(line.split()) in printed, f"{shown}\nquoted line not printed: {line}"


def test_every_documented_command_runs_as_written(tmp_path, monkeypatch):
    commands, skipped = documented_commands()
    assert len(commands) >= 20, commands  # the parser found the examples
    assert skipped, "the MNIST examples are marked no-run"
    shutil.copytree(ROOT / "configs", tmp_path / "configs")
    # NO_COLOR, COLUMNS=200, a fresh XDG_CACHE_HOME, no DROPOUT_LAB_DATA: tests/conftest.py
    monkeypatch.chdir(tmp_path)
    seen: set[tuple[tuple[str, ...], int]] = set()
    for cmd in commands:
        # the same command with the same expected exit again adds nothing but time (compare,
        # plot and report of the quickstart appear in several pages), unless it quotes output
        key = (tuple(cmd.argv), cmd.exit_code)
        if key in seen and not cmd.quoted:
            continue
        seen.add(key)
        _run(cmd, tmp_path)
    assert (tmp_path / "runs" / "quickstart" / "report.html").is_file()
    assert (tmp_path / "runs" / "quickstart" / "plots").is_dir()
    for cmd in help_examples():
        if (tuple(cmd.argv), cmd.exit_code) not in seen:
            _run(cmd, tmp_path)
