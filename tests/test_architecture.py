"""Structure checks read with ``ast`` (issue 24, items 6 and 7): no hidden global state, no
library module that prints, no long function in the core path; and the data cache cannot be
changed by the trials it serves.

Each scanner is first run on a small source text with a known answer, so it can fail."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

import dropout_lab
from dropout_lab import data as data_pkg
from dropout_lab.config import validate
from tests.helpers.configs import TINY

PACKAGE = Path(dropout_lab.__file__).parent

# Calls that make an empty mutable container.
_CONTAINERS = {"set", "dict", "list", "OrderedDict", "Counter", "defaultdict", "deque"}
_MUTATORS = {"add", "append", "update", "setdefault", "pop", "popitem", "clear", "extend",
             "insert", "remove", "discard", "move_to_end"}

# Module-level containers that are mutated, each with the reason it is not hidden state.
ALLOWED_STATE = {
    ("variants.py", "_REGISTRY"): "the variant registry: filled by register() when the module "
    "is imported, read-only afterwards",
    ("data/__init__.py", "_RAW_CACHE"): "the data sets loaded in this process (least recently "
    "used dropped): their arrays are read-only (test_a_trial_cannot_change_the_data_cache)",
    ("data/fingerprint.py", "_memory"): "a memo of file hashes keyed by (path, size, mtime): "
    "the same answer recomputed is the same answer",
}

# The core path: no function over MAX_LINES lines (docstring included).
CORE = ["training.py", "evaluation.py", "trial.py", "prepared.py", "comparison", "packs",
        "backends"]
MAX_LINES = 60
ALLOWED_LONG: dict[tuple[str, str], str] = {}  # (file, function) -> why; none today


def _call_name(node: ast.AST) -> str | None:
    if not isinstance(node, ast.Call):
        return None
    f = node.func
    return f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None


def module_state(source: str) -> tuple[list[str], list[str]]:
    """(module-level names bound to a Console, module-level containers that are mutated)."""
    tree = ast.parse(source)
    consoles, containers = [], set()
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        for name in (t.id for t in targets if isinstance(t, ast.Name)):
            called = _call_name(value)
            if called and called.endswith("Console"):
                consoles.append(name)
            if isinstance(value, (ast.Dict, ast.List, ast.Set)) or called in _CONTAINERS:
                containers.add(name)
    mutated = set()
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name) and node.func.attr in _MUTATORS):
            mutated.add(node.func.value.id)
        targets = (node.targets if isinstance(node, (ast.Assign, ast.Delete))
                   else [node.target] if isinstance(node, ast.AugAssign) else [])
        mutated.update(t.value.id for t in targets
                       if isinstance(t, ast.Subscript) and isinstance(t.value, ast.Name))
    return consoles, sorted(containers & mutated)


def prints(source: str) -> list[int]:
    """Lines that print: print(), or sys.stdout / sys.stderr named at all."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and \
                node.func.id == "print":
            found.append(node.lineno)
        elif (isinstance(node, ast.Attribute) and node.attr in ("stdout", "stderr")
              and isinstance(node.value, ast.Name) and node.value.id == "sys"):
            found.append(node.lineno)
    return found


def long_functions(source: str, limit: int = MAX_LINES) -> list[tuple[str, int]]:
    return [(n.name, n.end_lineno - n.lineno + 1) for n in ast.walk(ast.parse(source))
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
            and n.end_lineno is not None and n.end_lineno - n.lineno + 1 > limit]


def _files(*parts: str) -> list[Path]:
    out: list[Path] = []
    for part in parts:
        path = PACKAGE / part
        out.extend(sorted(path.rglob("*.py")) if path.is_dir() else [path])
    return out


def _rel(path: Path) -> str:
    return path.relative_to(PACKAGE).as_posix()


# -- the scanners, on known answers -----------------------------------------------------------

def test_the_state_scanner_finds_consoles_and_mutated_containers():
    source = ("from rich.console import Console\nimport rich.console\n"
              "_console = Console(stderr=True)\nerr = rich.console.Console()\n"
              "_warned: set[str] = set()\n_cache = {}\n_names = []\n_fixed = {'a': 1}\n"
              "def warn(m):\n    if m not in _warned:\n        _warned.add(m)\n"
              "def put(k, v):\n    _cache[k] = v\n"
              "def read():\n    return _fixed['a'], list(_names)\n")
    consoles, mutated = module_state(source)
    assert consoles == ["_console", "err"]
    assert mutated == ["_cache", "_warned"]  # _names and _fixed are only read


def test_the_print_scanner_and_the_length_scanner():
    assert prints("import sys\nprint('x')\nsys.stderr.write('y')\nui.print('fine')\n") == [2, 3]
    body = "\n".join(f"    x{i} = {i}" for i in range(60))
    assert long_functions(f"def f():\n{body}\n") == [("f", 61)]
    assert long_functions(f"def f():\n{body[:-12]}\n") == []


# -- the package -----------------------------------------------------------------------------

def test_no_module_level_console_or_mutated_state():
    found = {}
    for path in _files("."):
        consoles, mutated = module_state(path.read_text())
        for name in consoles + [m for m in mutated if (_rel(path), m) not in ALLOWED_STATE]:
            found[f"{_rel(path)}:{name}"] = "console" if name in consoles else "mutated"
    assert found == {}, ("module-level mutable state (the application object owns output "
                         "and warnings; pass state explicitly)")


def test_every_allowed_piece_of_state_still_exists():
    # an allow-list entry whose state is gone is dead weight: remove it
    for (file, name), why in ALLOWED_STATE.items():
        assert why and name in module_state((PACKAGE / file).read_text())[1], (file, name)


def test_library_code_never_prints():
    # only the CLI (its application object) writes to the terminal; the rest returns or
    # reports through a callback it is given
    found = {_rel(p): prints(p.read_text()) for p in _files(".")
             if not _rel(p).startswith("cli/")}
    assert {k: v for k, v in found.items() if v} == {}


def test_no_function_in_the_core_path_is_longer_than_60_lines():
    found = {}
    for path in _files(*CORE):
        for name, lines in long_functions(path.read_text()):
            if (_rel(path), name) not in ALLOWED_LONG:
                found[f"{_rel(path)}:{name}"] = lines
    assert found == {}, f"split these (at most {MAX_LINES} lines)"


# -- the data cache ------------------------------------------------------------------------------

def test_a_trial_cannot_change_the_data_cache():
    """Every trial of a process is served the same cached arrays: writing into one raises
    instead of changing the data of the trials after it."""
    from dropout_lab.trial import prepare

    config = validate(dict(TINY, sweep={}))
    prep = prepare(config)
    raw = data_pkg._load_raw(config.dataset)
    cached = [a for a in (raw.x_train, raw.y_train, raw.x_test, raw.y_test) if a is not None]
    assert cached and not any(a.flags.writeable for a in cached)
    shared = [a for a in (prep.data.x_train, prep.data.y_train, prep.data.x_test,
                          prep.data.y_test) if any(np.shares_memory(a, c) for c in cached)]
    assert shared, "the trial got copies only: nothing to protect (the test is moot)"
    labels = prep.data.y_train.copy()
    for array in shared:
        with pytest.raises(ValueError, match="read-only"):
            array[0] = 2
    again = prepare(config)
    assert np.array_equal(again.data.y_train, labels)
