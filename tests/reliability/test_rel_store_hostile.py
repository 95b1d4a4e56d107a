"""A hostile runs directory (issue 21, the runs-directory half; issue 24, item 1).

A corpus of damaged states (symlinks out of the runs directory, FIFOs in place of every file,
wrong types in result.json, huge and deeply nested files, missing pieces) is run through every
reading command. Each run must end with exit 0 or 2, no traceback, no hang (a SIGALRM watchdog
turns a blocked open() into a failure), and nothing outside the runs directory touched (a
sentinel folder is snapshotted before and compared after). The counts are printed at the end
of the module (``-s``) and stated in docs/reliability.md.

Beside the corpus: the store is the only module that opens files under a sweep folder (an
AST scan of the source), the store prints nothing, grids that extend, gc on a tagged sweep,
and concurrent ``note --tag``.
"""

from __future__ import annotations

import ast
import json
import multiprocessing
import os
import shutil
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.reliability import cli, tiny, write_yaml

REPO = Path(__file__).resolve().parents[2]
WATCHDOG_S = 30

COUNTS: dict[str, int] = {"states": 0, "runs": 0, "exit0": 0, "exit2": 0}


class Hung(BaseException):
    """Raised by the watchdog: a command blocked (a FIFO opened, a lock waited on)."""


@pytest.fixture()
def watchdog() -> Iterator[None]:
    def fire(signum: int, frame: object) -> None:
        raise Hung(f"no answer within {WATCHDOG_S} s")

    previous = signal.signal(signal.SIGALRM, fire)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def run(*args: object) -> Any:
    """The CLI in-process under the watchdog; a hang fails the test instead of blocking it."""
    signal.alarm(WATCHDOG_S)
    try:
        result = cli(*args)
    finally:
        signal.alarm(0)
    COUNTS["runs"] += 1
    return result


def assert_calm(result: Any, what: str) -> None:
    assert result.exception is None, f"{what}: escaped {result.exception!r}\n{result.text}"
    assert "Traceback" not in result.text, f"{what}\n{result.text}"
    assert result.code in (0, 2), f"{what}: exit {result.code}\n{result.text}"
    COUNTS["exit0" if result.code == 0 else "exit2"] += 1


# -- a pristine sweep, copied per case ---------------------------------------------------------

@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("pristine")
    cfg = tiny(eval={**tiny()["eval"], "save_weights": "first"})
    cfg_path = write_yaml(tmp / "tiny.yaml", cfg)
    result = cli("sweep", cfg_path, "--runs-dir", tmp / "runs", "--workers", "1")
    assert result.code == 0, result.text
    return tmp / "runs", cfg_path


def snapshot(folder: Path) -> dict[str, tuple[str, int, bytes]]:
    """Every entry under ``folder`` (links not followed): kind, size, content of files."""
    shot: dict[str, tuple[str, int, bytes]] = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in [*dirnames, *filenames]:
            p = Path(dirpath) / name
            st = os.lstat(p)
            kind = ("link" if os.path.islink(p) else "dir" if p.is_dir() else
                    "fifo" if p.is_fifo() else "file")
            data = p.read_bytes() if kind == "file" else b""
            shot[str(p.relative_to(folder))] = (kind, st.st_size, data)
    return shot


class Case:
    """A copy of the pristine runs directory with a sentinel folder outside it."""

    def __init__(self, pristine: tuple[Path, Path], tmp: Path):
        runs, self.cfg = pristine
        self.runs = tmp / "runs"
        shutil.copytree(runs, self.runs, symlinks=True)
        self.sweep = self.runs / "tiny"
        self.outside = tmp / "outside"
        (self.outside / "keep" / "inner").mkdir(parents=True)
        (self.outside / "keep" / "precious.txt").write_text("do not touch")
        (self.outside / "file.txt").write_text("outside file")
        trials = sorted(p for p in (self.sweep / "trials").iterdir())
        self.trial = trials[0]
        self.other = trials[1]
        # The outside folder looks like a trial folder and a sweep (a link to it must still
        # not be read as one): copies of real files.
        for name in ("result.json", "metrics.jsonl", "config.yaml"):
            shutil.copy(self.trial / name, self.outside / "keep" / name)
        shutil.copy(self.sweep / "sweep.yaml", self.outside / "sweep.yaml")
        self.before: dict[str, tuple[str, int, bytes]] = {}

    def seal(self) -> None:
        self.before = snapshot(self.outside)

    def assert_outside_untouched(self) -> None:
        assert snapshot(self.outside) == self.before, "a file outside the runs dir changed"

    def result(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.trial / "result.json").read_text())
        return data


def _fifo(where: Callable[[Case], Path]) -> Callable[[Case], None]:
    def damage(c: Case) -> None:
        p = where(c)
        if os.path.lexists(p):
            os.unlink(p)
        os.mkfifo(p)
    return damage


def _link(where: Callable[[Case], Path], target: Callable[[Case], Path]) -> Callable[[Case], None]:
    def damage(c: Case) -> None:
        p = where(c)
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        elif os.path.lexists(p):
            os.unlink(p)
        p.symlink_to(target(c))
    return damage


def _edit(change: Callable[[dict[str, Any]], None]) -> Callable[[Case], None]:
    def damage(c: Case) -> None:
        r = c.result()
        change(r)
        (c.trial / "result.json").write_text(json.dumps(r))
    return damage


def _write(where: Callable[[Case], Path], data: bytes) -> Callable[[Case], None]:
    def damage(c: Case) -> None:
        p = where(c)
        if os.path.lexists(p) and not p.is_dir():
            os.unlink(p)
        p.write_bytes(data)
    return damage


def _sparse(where: Callable[[Case], Path], size: int) -> Callable[[Case], None]:
    def damage(c: Case) -> None:
        with open(where(c), "wb") as fh:
            fh.truncate(size)
    return damage


def _pending_link(c: Case) -> None:
    """A trial of the grid with no result, whose folder is a symlink out of the runs dir."""
    shutil.rmtree(c.trial)
    c.trial.symlink_to(c.outside / "keep")


def _pending_metrics_link(c: Case) -> None:
    """A pending trial (result.json gone) whose metrics.jsonl links to an outside file."""
    (c.trial / "result.json").unlink()
    (c.trial / "metrics.jsonl").unlink()
    (c.trial / "metrics.jsonl").symlink_to(c.outside / "file.txt")


def _pending_result_link_to_dir(c: Case) -> None:
    (c.trial / "result.json").unlink()
    (c.trial / "result.json").symlink_to(c.outside / "keep")


def _meta(text: str) -> Callable[[Case], None]:
    return _write(lambda c: c.sweep / "meta.json", text.encode())


def _tagged_with_trials_link(c: Case) -> None:
    (c.sweep / "meta.json").write_text('{"tags": ["paper"]}')
    _link(lambda c: c.sweep / "trials", lambda c: c.outside)(c)


RESULT = lambda c: c.trial / "result.json"  # noqa: E731 (a table of places)
METRICS = lambda c: c.trial / "metrics.jsonl"  # noqa: E731
CONFIG = lambda c: c.trial / "config.yaml"  # noqa: E731
ERROR = lambda c: c.trial / "error.txt"  # noqa: E731
WEIGHTS = lambda c: c.trial / "weights.npz"  # noqa: E731
SWEEP_YAML = lambda c: c.sweep / "sweep.yaml"  # noqa: E731
DEEP = b"[" * 50_000 + b"]" * 50_000

# state -> damage. Every state is run through every command of COMMANDS.
STATES: dict[str, Callable[[Case], None]] = {
    # symlinks out of the runs directory
    "trials-dir-links-outside": _link(lambda c: c.sweep / "trials", lambda c: c.outside),
    "trials-dir-links-outside-tagged": _tagged_with_trials_link,
    "lock-file-links-outside": _link(lambda c: c.sweep / ".lock",
                                     lambda c: c.outside / "file.txt"),
    "meta-lock-links-outside": _link(lambda c: c.sweep / ".meta.lock",
                                     lambda c: c.outside / "file.txt"),
    "sweep-yaml-links-outside": _link(SWEEP_YAML, lambda c: c.outside / "sweep.yaml"),
    "trial-folder-links-outside": _link(lambda c: c.trial, lambda c: c.outside / "keep"),
    "pending-trial-folder-links-outside": _pending_link,
    "pending-metrics-links-outside": _pending_metrics_link,
    "pending-result-links-to-a-folder": _pending_result_link_to_dir,
    "result-links-outside": _link(RESULT, lambda c: c.outside / "keep" / "result.json"),
    "result-links-to-dev-zero": _link(RESULT, lambda c: Path("/dev/zero")),
    "metrics-links-to-dev-zero": _link(METRICS, lambda c: Path("/dev/zero")),
    "error-links-to-dev-urandom": _link(ERROR, lambda c: Path("/dev/urandom")),
    "config-links-outside": _link(CONFIG, lambda c: c.outside / "file.txt"),
    "meta-links-outside": _link(lambda c: c.sweep / "meta.json",
                                lambda c: c.outside / "file.txt"),
    "summary-links-outside": _link(lambda c: c.sweep / "summary.csv",
                                   lambda c: c.outside / "file.txt"),
    # FIFOs in place of every file (an open() for reading would block forever)
    "fifo-result": _fifo(RESULT),
    "fifo-metrics": _fifo(METRICS),
    "fifo-config": _fifo(CONFIG),
    "fifo-error": _fifo(ERROR),
    "fifo-weights": _fifo(WEIGHTS),
    "fifo-sweep-yaml": _fifo(SWEEP_YAML),
    "fifo-meta": _fifo(lambda c: c.sweep / "meta.json"),
    "fifo-lock": _fifo(lambda c: c.sweep / ".lock"),
    # huge files (sparse: no disk used)
    "huge-result": _sparse(RESULT, 200 * 1024 * 1024),
    "huge-metrics": _sparse(METRICS, 200 * 1024 * 1024),
    "huge-error": _sparse(ERROR, 200 * 1024 * 1024),
    "huge-sweep-yaml": _sparse(SWEEP_YAML, 200 * 1024 * 1024),
    "huge-config": _sparse(CONFIG, 20 * 1024 * 1024),
    # wrong types in result.json
    "health-a-string": _edit(lambda r: r.update(health="ok")),
    "health-a-list": _edit(lambda r: r.update(health=["collapsed"])),
    "health-flags-a-string": _edit(lambda r: r["health"].update(flags="collapsed")),
    "health-flags-numbers": _edit(lambda r: r["health"].update(flags=[1, 2])),
    "coadaptation-a-string": _edit(lambda r: r.update(coadaptation="x")),
    "coadaptation-a-list": _edit(lambda r: r.update(coadaptation=[1])),
    "coadaptation-layers-a-string": _edit(lambda r: r["coadaptation"].update(layers="x")),
    "coadaptation-layer-a-string": _edit(lambda r: r["coadaptation"].update(layers=["x"])),
    "coadaptation-corr-a-string": _edit(
        lambda r: r["coadaptation"]["layers"][0].update(mean_abs_corr="high")),
    "coadaptation-ablation-a-list": _edit(lambda r: r["coadaptation"].update(ablation=[1])),
    "uncertainty-a-string": _edit(lambda r: r.update(uncertainty="x")),
    "uncertainty-reliability-a-list": _edit(
        lambda r: r["uncertainty"].update(reliability=[1, 2])),
    "uncertainty-mc-curve-strings": _edit(
        lambda r: r["uncertainty"].update(mc_curve={"T": "x", "acc": ["a"]})),
    "final-a-list": _edit(lambda r: r.update(final=[0.9])),
    "final-huge-int": _edit(lambda r: r["final"].update(test_acc=10 ** 400)),
    "final-5000-digits": _write(RESULT, b'{"trial_id": "x", "final": {"test_acc": 1'
                                + b"0" * 5000 + b"}}"),
    "final-value-a-dict": _edit(lambda r: r["final"].update(test_acc={"a": 1})),
    "final-value-a-bool": _edit(lambda r: r["final"].update(test_acc=True)),
    "best-epoch-a-string": _edit(lambda r: r.update(best_epoch="last")),
    "timing-values-strings": _edit(lambda r: r.update(timing={"train_seconds": "slow"})),
    "params-a-list": _edit(lambda r: r.update(params=[1])),
    "env-a-string": _edit(lambda r: r.update(env="linux")),
    "error-a-number": _edit(lambda r: r.update(error=3)),
    "health-deeply-nested": _edit(lambda r: r["health"].update(checks=json.loads(
        "[" * 200 + "]" * 200))),
    "result-deeply-nested": _write(RESULT, DEEP),
    "result-nan-literals": _write(RESULT, b'{"trial_id": NaN, "status": Infinity}'),
    "result-binary": _write(RESULT, b"\xff\xfe\x00\x81"),
    # damaged files beside the result
    "metrics-mixed-lines": _write(METRICS, b'{"epoch": 1, "test_acc": 0.5}\nnot json\n[1]\n'
                                  b'{"epoch": 2, "test_acc": {"x": 1}}\n{"epoch": 3}\n'),
    "metrics-deep": _write(METRICS, DEEP + b"\n"),
    "metrics-huge-number": _write(METRICS, b'{"epoch": 1, "test_acc": 1e999}\n'),
    "config-yaml-alias-bomb": _write(CONFIG, b"a: &a [x, x, x, x, x, x, x, x, x]\n"
                                     b"b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                                     b"c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
                                     b"d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                                     b"e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
                                     b"f: [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n"),
    "config-yaml-a-list": _write(CONFIG, b"[1, 2]\n"),
    "weights-garbage": _write(WEIGHTS, b"PK\x03\x04garbage"),
    "error-binary": _write(ERROR, b"\xff\x00\x1b[2J\x1b]0;pwned\x07"),
    "meta-tags-a-string": _meta('{"tags": "paper", "note": ["x"]}'),
    "meta-deep": _meta("[" * 50_000 + "]" * 50_000),
    "sweep-yaml-earlier-a-string": _write(SWEEP_YAML, b"trials: []\nearlier: x\n"),
    "sweep-yaml-deep": _write(SWEEP_YAML, b"trials: " + b"[" * 5000 + b"]" * 5000 + b"\n"),
    "sweep-yaml-a-date": _write(SWEEP_YAML, b"2024-01-01\n"),
    # missing pieces
    "no-trials-folder": lambda c: shutil.rmtree(c.sweep / "trials"),
    "trials-a-file": lambda c: (shutil.rmtree(c.sweep / "trials"),
                                (c.sweep / "trials").write_text("x")),
    "empty-trial-folder": lambda c: (shutil.rmtree(c.trial), c.trial.mkdir()),
    "trial-folder-a-file": lambda c: (shutil.rmtree(c.trial), c.trial.write_text("x")),
    "no-config-yaml": lambda c: (c.trial / "config.yaml").unlink(),
    "no-sweep-yaml": lambda c: (c.sweep / "sweep.yaml").unlink(),
    "stray-entry-links-outside": _link(lambda c: c.sweep / "trials" / "zzzz",
                                       lambda c: c.outside / "keep"),
}

# Every reading (and removing) command, by how it is called. Report and plot render figures
# (seconds each under load), so they run on the states of their own list below.
COMMANDS: dict[str, Callable[[Case], tuple[object, ...]]] = {
    "ls": lambda c: ("ls", c.runs),
    "ls --json": lambda c: ("ls", c.runs, "--json"),
    "show": lambda c: ("show", c.sweep),
    "show --json": lambda c: ("show", c.sweep, "--json"),
    "show TRIAL": lambda c: ("show", c.trial),
    "show TRIAL --json": lambda c: ("show", c.trial, "--json"),
    "compare": lambda c: ("compare", c.sweep),
    "compare -f json": lambda c: ("compare", c.sweep, "--format", "json"),
    "gc": lambda c: ("gc", c.sweep),
    "gc --apply": lambda c: ("gc", c.sweep, "--apply"),
    "note --tag": lambda c: ("note", c.sweep, "--tag", "seen"),
}
SLOW_COMMANDS: dict[str, Callable[[Case], tuple[object, ...]]] = {
    "report": lambda c: ("report", c.sweep, "-o", c.runs.parent / "report.md"),
    "plot": lambda c: ("plot", c.sweep, "-o", c.runs.parent / "plots"),
    "export tensorboard": lambda c: ("export", c.sweep, "--to", "tensorboard", "--dest",
                                     c.runs.parent / "tb"),
    "resume": lambda c: ("sweep", c.cfg, "--runs-dir", c.runs, "--workers", "1"),
    "rm --yes": lambda c: ("rm", c.sweep, "--yes"),
}
SLOW_STATES = ["trials-dir-links-outside", "lock-file-links-outside", "sweep-yaml-links-outside",
               "pending-trial-folder-links-outside", "pending-metrics-links-outside",
               "pending-result-links-to-a-folder", "fifo-result", "fifo-metrics", "fifo-error",
               "fifo-weights", "fifo-config", "huge-result", "health-a-string",
               "coadaptation-a-list", "final-huge-int", "uncertainty-reliability-a-list",
               "metrics-mixed-lines", "trial-folder-links-outside"]


@pytest.mark.parametrize("state", list(STATES))
def test_every_reader_survives_a_hostile_state(pristine, tmp_path, watchdog, state):
    c = Case(pristine, tmp_path)
    STATES[state](c)
    c.seal()
    COUNTS["states"] += 1
    for name, args in COMMANDS.items():
        assert_calm(run(*args(c)), f"{state}: {name}")
        c.assert_outside_untouched()


@pytest.mark.slow
@pytest.mark.parametrize("state", SLOW_STATES)
def test_report_plot_export_resume_and_rm_survive(pristine, tmp_path, watchdog, state):
    c = Case(pristine, tmp_path)
    STATES[state](c)
    c.seal()
    for name, args in SLOW_COMMANDS.items():
        assert_calm(run(*args(c)), f"{state}: {name}")
        c.assert_outside_untouched()


# -- the worst cases, one by one ---------------------------------------------------------------

def test_gc_apply_never_deletes_through_a_symlinked_trials_folder(pristine, tmp_path, watchdog):
    """``ln -s ~ runs/x/trials`` then ``gc --apply`` used to delete every folder in ~."""
    c = Case(pristine, tmp_path)
    _link(lambda c: c.sweep / "trials", lambda c: c.outside)(c)
    c.seal()
    result = run("gc", c.sweep, "--apply")
    assert result.code == 2 and "symlink" in result.err, result.text
    c.assert_outside_untouched()


@pytest.mark.parametrize("state", ["trials-dir-links-outside", "lock-file-links-outside"])
def test_sweep_and_rm_refuse_to_write_through_links(pristine, tmp_path, watchdog, state):
    c = Case(pristine, tmp_path)
    STATES[state](c)
    c.seal()
    swept = run("sweep", c.cfg, "--runs-dir", c.runs, "--workers", "1")
    assert swept.code == 2 and "symlink" in swept.err, swept.text
    removed = run("rm", c.sweep, "--yes")
    assert_calm(removed, "rm")
    c.assert_outside_untouched()


def test_a_pending_trial_folder_that_is_a_link_is_rerun_inside(pristine, tmp_path, watchdog):
    """The link is replaced by a real folder; the folder it pointed to keeps every file."""
    c = Case(pristine, tmp_path)
    _pending_link(c)
    c.seal()
    shown = json.loads(run("show", c.sweep, "--json").out)
    assert [t["status"] for t in shown["trials"]].count("corrupt") == 1
    swept = run("sweep", c.cfg, "--runs-dir", c.runs, "--workers", "1")
    assert swept.code == 0, swept.text
    assert not c.trial.is_symlink() and (c.trial / "result.json").is_file()
    c.assert_outside_untouched()


def test_gc_removes_a_link_under_trials_not_its_target(pristine, tmp_path, watchdog):
    c = Case(pristine, tmp_path)
    STATES["stray-entry-links-outside"](c)
    c.seal()
    result = run("gc", c.sweep, "--apply", "--json")
    assert result.code == 0, result.text
    assert "zzzz" in json.loads(result.out)["corrupt"]
    assert not os.path.lexists(c.sweep / "trials" / "zzzz")
    c.assert_outside_untouched()


def test_sweep_refuses_a_sweep_folder_that_is_a_symlink(pristine, tmp_path, watchdog):
    c = Case(pristine, tmp_path)
    shutil.rmtree(c.sweep)
    c.sweep.symlink_to(c.outside / "keep")
    c.seal()
    swept = run("sweep", c.cfg, "--runs-dir", c.runs, "--workers", "1")
    assert swept.code == 2 and "symlink" in swept.err, swept.text
    c.assert_outside_untouched()


def test_rm_refuses_a_sweep_folder_that_is_a_symlink(pristine, tmp_path, watchdog):
    c = Case(pristine, tmp_path)
    moved = tmp_path / "outside" / "real-sweep"
    shutil.move(str(c.sweep), moved)
    c.sweep.symlink_to(moved)
    c.seal()
    result = run("rm", c.sweep, "--yes")
    assert result.code == 2 and "symlink" in result.err, result.text
    c.assert_outside_untouched()


@pytest.mark.parametrize("state", ["health-a-string", "coadaptation-a-list", "final-huge-int",
                                   "final-a-list", "uncertainty-reliability-a-list",
                                   "fifo-result", "huge-result", "result-links-outside"])
def test_a_damaged_result_is_corrupt_everywhere(pristine, tmp_path, watchdog, state):
    c = Case(pristine, tmp_path)
    STATES[state](c)
    shown = json.loads(run("show", c.sweep, "--json").out)
    statuses = [t["status"] for t in shown["trials"]]
    assert statuses.count("corrupt") == 1 and statuses.count("done") == 3, statuses
    listed = json.loads(run("ls", c.runs, "--json").out)["sweeps"][0]
    assert listed["corrupt"] == 1
    compared = run("compare", c.sweep, "--format", "json")
    assert compared.code == 0 and "corrupt" in compared.err, compared.text
    one = run("show", c.trial)
    assert one.code == 2 and "corrupt" in one.err, one.text


# -- one reader --------------------------------------------------------------------------------

# Modules that read files which are not under a sweep folder (data sets, config files, the
# cgroup's CPU quota). Everything else must go through dropout_lab/store/.
# The TensorBoard exporter lists and removes its own earlier event files in the log folder
# the user names (a re-export rewrites a run instead of doubling its points), never a sweep's.
ALLOWED = {"dropout_lab/data/", "dropout_lab/config/yaml_io.py", "dropout_lab/executors/budget.py",
           "dropout_lab/export/tensorboard_target.py"}
# (yaml.safe_load and json.load of a file need an open() first, which is flagged; of a string
# they parse text the user typed.)
OPENERS = {"open", "read_text", "read_bytes", "load", "loadtxt", "fromfile", "ZipFile", "glob",
           "rglob", "iterdir", "listdir", "scandir", "walk", "rmtree", "unlink"}


def _openers(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) \
            else ""
        if name == "load" and not (isinstance(f, ast.Attribute) and isinstance(
                f.value, ast.Name) and f.value.id in ("np", "numpy", "json", "pickle")):
            continue  # a load() of our own (comparison.load): not a file read
        if name == "load" and node.args and isinstance(node.args[0], ast.Call) and (
                getattr(node.args[0].func, "attr", None) == "BytesIO"
                or getattr(node.args[0].func, "id", None) == "BytesIO"):
            continue  # np.load(io.BytesIO(data)) parses bytes already read through the store
        if name in OPENERS:
            found.append(f"{path.relative_to(REPO)}:{node.lineno} {name}()")
    return found


def test_no_module_outside_the_store_opens_a_file_of_a_sweep_folder():
    """Issue 24, item 1: open/read_text/np.load/json.load/... appear only in dropout_lab/store/
    and in the few modules that read other files (ALLOWED)."""
    offenders = []
    for path in sorted((REPO / "dropout_lab").rglob("*.py")):
        rel = str(path.relative_to(REPO))
        if rel.startswith("dropout_lab/store/") or any(rel.startswith(a) for a in ALLOWED):
            continue
        offenders += _openers(path)
    assert not offenders, "read through dropout_lab.store instead:\n" + "\n".join(offenders)


def test_the_scan_catches_a_read(tmp_path):
    """The scan above can fail: it flags each kind of read it is meant to catch."""
    sample = REPO / "dropout_lab" / "_scan_probe_test.py"
    sample.write_text("import json, numpy as np\nfrom pathlib import Path\n"
                      "a = Path('x').read_text()\nb = np.load('w.npz')\nc = json.load(f)\n"
                      "d = open('r')\nPath('x').iterdir()\nload('x')\n")
    try:
        assert len(_openers(sample)) == 5
    finally:
        sample.unlink()


def test_the_store_prints_nothing_and_has_no_global_warned_set(pristine, tmp_path, capfd):
    from dropout_lab.store import SweepStore, sweep_store

    c = Case(pristine, tmp_path)
    (c.trial / "result.json").write_text("[]")
    (c.other / "metrics.jsonl").write_text('{"epoch": 1}\nbad\n{"epoch": 2}\n')
    seen: list[str] = []
    store = SweepStore(c.sweep, warn=seen.append)
    results = store.results()
    rows = store.load_metrics(c.other.name)
    assert [r["epoch"] for r in rows] == [1, 2]  # good lines kept around the bad one
    assert capfd.readouterr() == ("", "")
    assert len(store.warnings) == 2 and seen == store.warnings
    assert "corrupt" in store.warnings[0] and "1 unreadable line(s)" in store.warnings[1]
    assert [r["status"] for r in results].count("corrupt") == 1
    assert not hasattr(sweep_store, "_WARNED")
    # Read again: warned again (no hidden state across readers).
    again = SweepStore(c.sweep)
    again.results()
    assert len(again.warnings) == 1


def test_result_problem_names_the_field_and_accepts_a_real_result(pristine, tmp_path):
    from dropout_lab.store.trial_view import result_problem

    c = Case(pristine, tmp_path)
    r = c.result()
    tid = r["trial_id"]
    assert result_problem(r, tid, r["params"]) is None
    layer = r["coadaptation"]["layers"][0]
    assert result_problem({**r, "coadaptation": {**r["coadaptation"], "layers": [
        {**layer, "note": "a text field a later version adds"}]}}, tid, None) is None
    cases = {
        "health": ("x", "'health' is a str"),
        "final": ({"test_acc": [1]}, "final.test_acc is a list"),
        "timing": ({"train_seconds": "1"}, "timing.train_seconds is a str"),
        "uncertainty": ({"reliability": {"mc": {"confidence": "x"}}},
                        "uncertainty.reliability.mc.confidence is a str"),
        "best_epoch": ({"by": 3}, "best_epoch.by is not a string"),
    }
    for key, (value, words) in cases.items():
        problem = result_problem({**r, key: value}, tid, None)
        assert problem is not None and words in problem, (key, problem)
    assert "disagree" in (result_problem(r, tid, {**r["params"], "seed": 99}) or "")


# -- grids that extend -------------------------------------------------------------------------

def _seeds_per_row(sweep: Path) -> list[int]:
    result = cli("compare", sweep, "--format", "json")
    assert result.code == 0, result.text
    return [r["trials"]["done"] for b in json.loads(result.out)["blocks"] for r in b["rows"]]


def test_added_seeds_add_trials_and_every_reader_sees_them(pristine, tmp_path, watchdog):
    c = Case(pristine, tmp_path)
    assert _seeds_per_row(c.sweep) == [2, 2]
    added = run("sweep", c.cfg, "--runs-dir", c.runs, "--workers", "1",
                "--set", "sweep.seed=[2]")
    assert added.code == 0, added.text
    assert _seeds_per_row(c.sweep) == [3, 3]  # seeds 0, 1 of the first grid and 2
    shown = json.loads(run("show", c.sweep, "--json").out)
    assert len(shown["trials"]) == 6 and shown["history"]["earlier"] == 4
    assert sorted(t["grid"] for t in shown["trials"]) == ["current"] * 2 + ["earlier"] * 4
    listed = json.loads(run("ls", c.runs, "--json").out)["sweeps"][0]
    assert listed["done"] == 6 and listed["on_disk"] == 6
    # A tagged sweep: gc keeps the earlier grids' finished trials and says so.
    run("note", c.sweep, "--tag", "paper")
    dry = run("gc", c.sweep, "--apply")
    assert dry.code == 0 and "kept 4 finished trial(s)" in dry.out, dry.text
    assert _seeds_per_row(c.sweep) == [3, 3]
    forced = run("gc", c.sweep, "--apply", "--force")
    assert forced.code == 0 and forced.out.index("removing") < forced.out.index("removed 4")
    assert _seeds_per_row(c.sweep) == [1, 1]


def test_another_backend_in_the_same_folder_runs_and_hides_the_first(pristine, tmp_path,
                                                                     watchdog):
    """The README's next step after the quickstart (``--set backend=torch``) exits 0; the
    numpy trials stay on disk, are not mixed into the torch ones, and ``show`` says so."""
    pytest.importorskip("torch")
    c = Case(pristine, tmp_path)
    torch_run = run("sweep", c.cfg, "--runs-dir", c.runs, "--workers", "1",
                    "--set", "backend=torch")
    assert torch_run.code == 0, torch_run.text
    assert _seeds_per_row(c.sweep) == [2, 2]  # the torch trials only
    shown = run("show", c.sweep)
    assert "4 not shown" in shown.out, shown.out
    compared = run("compare", c.sweep)  # says what it leaves out, and how to see it
    assert "4 trial folder(s)" in compared.err and "dropout-lab show" in compared.err
    back = run("sweep", c.cfg, "--runs-dir", c.runs, "--workers", "1", "--json")
    assert back.code == 0 and not any(t["executed"] for t in json.loads(back.out)["trials"])
    other = run("sweep", c.cfg, "--runs-dir", c.runs, "--workers", "1", "--set", "train.lr=0.3")
    assert other.code == 2  # another experiment under the same name is still refused


# -- note under a lock -------------------------------------------------------------------------

def _tag(args: tuple[str, str, Any]) -> None:
    from dropout_lab.store.manage import write_meta

    sweep, tag, barrier = args
    barrier.wait()
    write_meta(Path(sweep), add_tags=[tag])


def test_twelve_concurrent_note_tags_keep_all_twelve(pristine, tmp_path):
    c = Case(pristine, tmp_path)
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(12)
    procs = [ctx.Process(target=_tag, args=((str(c.sweep), f"t{i}", barrier),))
             for i in range(12)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    tags = json.loads((c.sweep / "meta.json").read_text())["tags"]
    assert sorted(tags) == sorted(f"t{i}" for i in range(12))


def test_a_tag_with_control_characters_is_refused(pristine, tmp_path):
    c = Case(pristine, tmp_path)
    cli("note", c.sweep, "--tag", "a\x1b[2Jb").assert_clean_failure(2, "--tag")


def test_zz_counts(capsys):
    """The corpus counts (run last in this module; shown with -s)."""
    with capsys.disabled():
        print(f"\nstore corpus: {len(STATES)} states x {len(COMMANDS)} commands, "
              f"+ {len(SLOW_STATES)} x {len(SLOW_COMMANDS)} slow; this run: {COUNTS}")
