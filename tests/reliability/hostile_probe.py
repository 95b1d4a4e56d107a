"""A hostile probe of the CLI (issue 21): a few hundred bad inputs run in-process, tallied.

Run it from the repository root: ``python -m tests.reliability.hostile_probe``. It prints the
counts (inputs, exit codes, exit-2 messages, tracebacks, hangs, injections, --json runs without
a JSON document) and every input that broke a promise; its exit code is 1 when one did. Not
collected by pytest (the cases the suite keeps are in test_rel_cli_hostile.py and
test_rel_config_strict.py); it takes a minute or two. Inputs: config files (encodings,
duplicate keys, wrong kinds, huge numbers, axes), ``--set`` values, sweep options, compare
options, and the other commands with hostile names, paths (FIFOs, devices, over-long
components) and text (ESC sequences, BEL, rich markup, U+202E, newlines), most also under
--json.
"""

from __future__ import annotations

import collections
import json
import os
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml
from typer.testing import CliRunner

from dropout_lab.cli import app
from tests.helpers.configs import TINY
from tests.helpers.fake_sweeps import write_sweep

ESC = "\x1b"
HOSTILE = "a\x1b]0;t\x07\x1b[2J[bold]b[/]\u202ec\nd"
BIG = "9" * 5000

CONFIG_TEXTS = {
    "bom": "\ufeffname: b\n", "nul": "name: a\x00b\n", "crlf": "name: c\r\nseed: 1\r\n",
    "binary": "\x89PNG\r\n\x1a\n", "dup": "name: d\ndropout: {p: 0.5}\ndropout: {p: 0.1}\n",
    "dup-nested": "name: d\ndropout: {p: 0.5, p: 0.1}\n",
    "p-text": "name: d\ndropout: {p: '0.5'}\n", "epochs-float": "train: {epochs: 1.0e+3}\n",
    "hex": "train: {epochs: 0x10}\n", "seed-float": "seed: 1.0\n", "seed-negative": "seed: -1\n",
    "seed-5000-digits": f"seed: {BIG}\n", "seed-4000-digits": f"seed: {BIG[:4000]}\n",
    "p-inf-list": "dropout: {p: [.inf]}\n", "hidden-float": "model: {hidden: [16.5]}\n",
    "hidden-text": "model: {hidden: ['16']}\n", "axis-name": "sweep: {name: [a, b]}\n",
    "axis-section": "sweep: {dataset: [{name: digits}]}\n",
    "axis-twice": "sweep: {seed: [0, 0]}\n", "axis-0.5-0.50": "sweep: {dropout.p: [0.5, 0.50]}\n",
    "axis-0-0.0": "sweep: {dropout.p: [0, 0.0]}\n", "axis-esc": 'sweep: {seed: ["\\e[2J"]}\n',
    "axis-key-esc": 'sweep: {"\\e[2Jx": [1]}\n', "name-esc": 'name: "\\e]0;t\\a"\n',
    "name-markup": "name: 'x[bold]y'\n", "name-bidi": 'name: "\\u202eabc"\n',
    "name-300-bytes": "name: " + "é" * 150 + "\n",
    "classes": "dataset: {name: synthetic, n_classes: 5000}\n",
    "train-size-1": "dataset: {train_size: 1}\n", "empty": "", "list": "- a\n",
    "tabs": "a:\n\tb: 1\n",
}
SETS = [
    "dropout.p=.nan", "dropout.p=1e400", "model.hidden=[1e400]", "dataset.seed=1e100",
    "seed=1e3", "name=a,b", f"name={HOSTILE}", "name=" + "é" * 130, f"{HOSTILE}=1",
    "train.lr='0.1'", "sweep.seed=[1,1]", "seed=2,2", "dropout.p=0.5,0.50", "sweep.name=[a]",
    "sweep.train=[{}]", "sweep=[]", "sweep.=[1]", "=1", "noequals", "dataset.n_classes=200",
    "dataset.train_size=1", "train.epochs=1.0e+3", f"seed={BIG}", "model.hidden=" + "[" * 200,
    "eval.mc_samples=true", "dtype=float16", f"backend={HOSTILE}", f"dataset.name={HOSTILE}",
    f"dropout.variant={HOSTILE}", f"device={HOSTILE}",
]
SWEEP_OPTIONS = [
    ["--workers", "1" + "0" * 23], ["--threads", "1" + "0" * 23], ["--workers", "1e23"],
    ["--threads", "1e23"], ["--workers", "0"], ["--max-trials", "0"],
    ["--max-trials", "1" + "0" * 30], ["--columns", ",,,"], ["--columns", HOSTILE],
    ["--columns", "bogus"], ["--executor", HOSTILE], ["--max-failures", "0"],
]
COMPARE_OPTIONS = [
    ["--seeds-for", "inf"], ["--seeds-for", "nan"], ["--seeds-for", "-1"],
    ["--confidence", "1"], ["--confidence", "nan"], ["--power", "0"], ["--baseline", HOSTILE],
    ["--by", HOSTILE], ["--by", "../../etc"], ["-m", HOSTILE], ["--best-by", HOSTILE],
    ["--at", HOSTILE], ["--at", "0"], ["--at", "9" * 20], ["-f", HOSTILE],
    ["-f", "json", "--bogus"], ["-f", "json", "--confidence", "x"], ["-e", HOSTILE],
    ["-e", "((((" * 500], ["-e", "test_acc[p=0.5] > 0.5" * 100], ["--columns", ",,,"],
    ["--columns", HOSTILE], ["-f", "csv"], ["-f", "markdown"],
]


def cases(tmp: Path) -> list[list[str]]:
    """Every input of the probe, as argv lists (files and folders made under ``tmp``)."""
    cfg = tmp / "c.yaml"
    cfg.write_text(yaml.safe_dump(TINY))
    fake = write_sweep(tmp / "runs", name="fake", stats=True)
    fifo = tmp / "fifo"
    os.mkfifo(fifo)
    out: list[list[Any]] = []
    for key, text in CONFIG_TEXTS.items():
        path = tmp / f"{key}.yaml"
        path.write_bytes(text.encode("utf-8", "surrogatepass"))
        out += [["validate", path], ["sweep", path, "--dry-run"]]
    for s in SETS:
        out += [["validate", cfg, "--set", s], ["validate", cfg, "--json", "--set", s]]
    for o in SWEEP_OPTIONS:
        out += [["sweep", cfg, "--dry-run", *o], ["sweep", cfg, *o, "--runs-dir", tmp / "r"]]
    for runs in ("/dev/null", cfg, "a" * 300, fifo):
        out += [["sweep", cfg, "--dry-run", "--runs-dir", runs], ["sweep", cfg, "--runs-dir", runs]]
    for o in COMPARE_OPTIONS:
        out += [["compare", fake, *o], ["--json", "compare", fake, *o]]
    others: list[list[Any]] = [
        ["ls", HOSTILE], ["ls", fifo], ["ls", "a" * 300], ["ls", tmp / "runs", "--sort", HOSTILE],
        ["ls", tmp / "runs", "--filter", HOSTILE], ["ls", tmp / "runs", "--columns", ",,,"],
        ["show", HOSTILE], ["show", fifo], ["show", fake, "--columns", HOSTILE], ["gc", HOSTILE],
        ["rm", HOSTILE, "--yes"], ["note", fake, HOSTILE], ["note", fake, "--tag", HOSTILE],
        ["note", fake, "--tag", "a\nb"], ["note", fake, "--tag", "x" * 100],
        ["note", fake, "--untag", HOSTILE], ["export", fake, "--to", HOSTILE],
        ["export", fake, "--to", "tensorboard"],
        ["export", fake, "--to", "mlflow", "--tracking-uri", f"file://{tmp}/ml"],
        ["datasets", "fetch", HOSTILE], ["schema", "-o", tmp / "no" / "x.json"],
        ["schema", "-o", tmp], ["schema", "-o", fifo], ["schema", "-o", "/dev/full"],
        ["report", fake, "-o", "/dev/full"], ["report", fake, "-o", tmp / "no" / "r.html"],
        ["plot", fake, "-o", cfg], ["plot", fake, "-o", tmp / "n" / "m"], ["nosuch"],
        ["ls", "--bogus"], [], ["--bogus"], [HOSTILE], ["validate", fifo],
        ["validate", "a" * 300 + ".yaml"], ["validate", "/dev/zero"], ["validate", tmp],
    ]
    for argv in others:
        out += [argv, ["--json", *argv]]
    return [[str(a) for a in argv] for argv in out]


class _Hang(Exception):
    pass


def _alarm(signum: int, frame: object) -> None:
    raise _Hang


def main() -> int:
    os.environ.update(NO_COLOR="1", COLUMNS="120")
    tmp = Path(tempfile.mkdtemp(prefix="hostile-probe-"))
    os.chdir(tmp)
    signal.signal(signal.SIGALRM, _alarm)
    tally: collections.Counter[str] = collections.Counter()
    broken: list[tuple[str, list[str], str]] = []
    for argv in cases(tmp):
        signal.alarm(120)
        try:
            r = CliRunner().invoke(app, argv, catch_exceptions=True)
        except _Hang:
            tally["hangs"] += 1
            broken.append(("hang", argv, ""))
            continue
        finally:
            signal.alarm(0)
        text = r.stdout + r.stderr
        tally["inputs"] += 1
        tally[f"exit {r.exit_code}"] += 1
        exc = r.exception if not isinstance(r.exception, SystemExit) else None
        if exc is not None or "Traceback" in text:
            tally["tracebacks"] += 1
            broken.append(("traceback", argv, repr(exc)))
        if any(c in text for c in (ESC, "\x07", "\u202e", "\r")):
            tally["injections"] += 1
            broken.append(("injection", argv, text[:200]))
        if r.exit_code == 2:
            has_message = "error:" in r.stderr or "Error" in r.stderr
            tally["exit-2 messages" if has_message else "exit 2 without a message"] += 1
        if "--json" in argv and r.exit_code != 0:
            try:
                json.loads(r.stdout)
            except ValueError:
                tally["--json without a document"] += 1
                broken.append(("json", argv, r.stdout[:100]))
    print(json.dumps(dict(sorted(tally.items())), indent=2))
    for kind, argv, detail in broken:
        print(kind, argv, detail, file=sys.stderr)
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
