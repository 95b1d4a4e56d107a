""":class:`TrialView`: the one reader of a trial folder (issue 24, item 1).

Every command (ls, show, compare, plot, report, gc, rm, export, a resumed sweep) reads a
trial's files through a ``TrialView``, so there is one damage policy (:mod:`.reading`):

- ``result.json`` that is missing means the trial is ``pending``; one that is a symlink, not a
  regular file, too large, not JSON, not a result of this trial, or holding a field of the
  wrong type (``health`` a string, ``final`` a list or a huge number, ...) makes the trial
  ``corrupt``: :meth:`TrialView.result` says why, and the trial is skipped by the readers and
  run again by a resumed sweep;
- ``metrics.jsonl``: the good lines are kept and the bad ones (torn, not JSON, not an epoch
  row) skipped and counted; one warning names the file and the count. A torn last line is
  what a killed trial leaves, so the rows before and after it are still worth showing;
- ``config.yaml``, ``error.txt`` and ``weights.npz`` that are damaged read as absent, with a
  warning naming the file.

A view prints nothing: warnings go to :attr:`TrialView.warnings` (and to the ``warn``
callback the caller passed, once per file).
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import numpy as np

from dropout_lab.result import Result, Status
from dropout_lab.store.reading import (
    CONFIG_CAP,
    ERROR_CAP,
    METRICS_CAP,
    RESULT_CAP,
    WEIGHTS_CAP,
    Damaged,
    is_number,
    lstat_kind,
    parse_json,
    parse_lines,
    parse_yaml,
    read_file,
    read_text,
)

RESULT_FILE = "result.json"
METRICS_FILE = "metrics.jsonl"
CONFIG_FILE = "config.yaml"
ERROR_FILE = "error.txt"
WEIGHTS_FILE = "weights.npz"

# A result.json may say any status but these two (which readers report, never write).
_WRITTEN = (Status.DONE, Status.FAILED, Status.DIVERGED)

Warn = Callable[[str], None]


def _numbers(section: str, value: Any, allow_lists: bool = False,
             allow_text: bool = False) -> str | None:
    """``value`` must be a mapping of numbers or nulls (with ``allow_lists``, also lists of
    them; with ``allow_text``, also text or booleans: a per-layer block may grow a descriptive
    field in a later version, and readers take only numbers from it); what is wrong, or
    None."""
    if not isinstance(value, dict):
        return f"{section!r} is a {type(value).__name__}, not a mapping"
    for k, v in value.items():
        if v is None or is_number(v) or allow_text and isinstance(v, (str, bool)):
            continue
        if allow_lists and isinstance(v, list) and all(x is None or is_number(x) for x in v):
            continue
        return f"{section}.{k} is a {type(v).__name__}, not a number"
    return None


def _health_problem(h: Any) -> str | None:
    if not isinstance(h, dict):
        return f"'health' is a {type(h).__name__}, not a mapping"
    flags = h.get("flags", [])
    if not isinstance(flags, list) or not all(isinstance(f, str) for f in flags):
        return "health.flags is not a list of strings"
    for key in ("checks", "thresholds"):
        if key in h and not isinstance(h[key], dict):
            return f"health.{key} is not a mapping"
    return None


def _coadaptation_problem(c: Any) -> str | None:
    if not isinstance(c, dict):
        return f"'coadaptation' is a {type(c).__name__}, not a mapping"
    layers = c.get("layers", [])
    if not isinstance(layers, list):
        return "coadaptation.layers is not a list"
    for i, layer in enumerate(layers):
        problem = _numbers(f"coadaptation.layers[{i}]", layer, allow_lists=True,
                           allow_text=True)
        if problem:
            return problem
    ablation = c.get("ablation")
    if ablation is not None:
        if not isinstance(ablation, dict):
            return "coadaptation.ablation is not a mapping"
        for k, v in ablation.items():
            problem = _numbers(f"coadaptation.ablation.{k}", v) if isinstance(v, dict) else (
                None if v is None or is_number(v) or (isinstance(v, list) and all(
                    x is None or is_number(x) for x in v))
                else f"coadaptation.ablation.{k} is a {type(v).__name__}, not a number")
            if problem:
                return problem
    return None


def _uncertainty_problem(u: Any) -> str | None:
    if not isinstance(u, dict):
        return f"'uncertainty' is a {type(u).__name__}, not a mapping"
    for k, v in u.items():
        if k == "reliability":
            if not isinstance(v, dict):
                return "uncertainty.reliability is not a mapping"
            for rk, rv in v.items():
                problem = (_numbers(f"uncertainty.reliability.{rk}", rv, allow_lists=True)
                           if isinstance(rv, dict) else _numbers(
                               "uncertainty.reliability", {rk: rv}, allow_lists=True))
                if problem:
                    return problem
        elif isinstance(v, dict):
            problem = _numbers(f"uncertainty.{k}", v, allow_lists=True)
            if problem:
                return problem
        elif not (v is None or is_number(v) or isinstance(v, (str, bool))):
            return f"uncertainty.{k} is a {type(v).__name__}, not a number"
    return None


def _best_epoch_problem(b: Any) -> str | None:
    if not isinstance(b, dict):
        return f"'best_epoch' is a {type(b).__name__}, not a mapping"
    if b.get("by") is not None and not isinstance(b.get("by"), str):
        return "best_epoch.by is not a string"
    for k, v in b.items():
        if k == "by":
            continue
        problem = (_numbers(f"best_epoch.{k}", v) if isinstance(v, dict)
                   else None if v is None or is_number(v)
                   else f"best_epoch.{k} is a {type(v).__name__}, not a number")
        if problem:
            return problem
    return None


def result_problem(r: Any, trial_id: str, params: dict[str, Any] | None) -> str | None:
    """Why ``r`` (parsed result.json) cannot be trusted as ``trial_id``'s result, or None.

    Every key a reader relies on is checked for its type, so no reader meets a string where
    it expects a number (docs/results.md lists the keys)."""
    if not isinstance(r, dict):
        return f"not a result (a JSON {type(r).__name__})"
    if r.get("trial_id") != trial_id:
        return f"trial_id {r.get('trial_id')!r} is not its folder's id"
    if r.get("status") not in _WRITTEN:
        return f"unknown status {r.get('status')!r}"
    for key in ("params", "timing", "env"):
        if key in r and r[key] is not None and not isinstance(r[key], dict):
            return f"{key!r} is a {type(r[key]).__name__}, not a mapping"
    for key in ("reason", "error", "stopped_by"):
        if key in r and r[key] is not None and not isinstance(r[key], str):
            return f"{key!r} is a {type(r[key]).__name__}, not a string"
    if "epochs_trained" in r and r["epochs_trained"] is not None and not is_number(
            r["epochs_trained"]):
        return "'epochs_trained' is not a number"
    final = r.get("final")
    if final is not None:
        problem = _numbers("final", final)
        if problem:
            return problem
    elif r["status"] == Status.DONE:
        return "status done but no final metrics"
    timing = r.get("timing")
    if isinstance(timing, dict):
        problem = _numbers("timing", timing)
        if problem:
            return problem
    checks: list[tuple[str, Callable[[Any], str | None]]] = [
        ("health", _health_problem), ("coadaptation", _coadaptation_problem),
        ("uncertainty", _uncertainty_problem), ("best_epoch", _best_epoch_problem)]
    for key, check in checks:
        if r.get(key) is not None:
            problem = check(r[key])
            if problem:
                return problem
    stored = r.get("params") or {}
    if params is not None:
        wrong = [k for k in set(stored) & set(params) if stored[k] != params[k]]
        if wrong:
            return (f"params {', '.join(sorted(wrong))} disagree with the grid "
                    "(sweep.yaml) for this trial id")
    return None


def _is_row(value: Any) -> bool:
    """An epoch row of metrics.jsonl: a mapping whose values are numbers, nulls or strings,
    or lists of numbers and nulls (concrete dropout's ``learned_p``, one per unit layer)."""
    return isinstance(value, dict) and all(
        v is None or is_number(v) or isinstance(v, str)
        or (isinstance(v, list) and all(x is None or is_number(x) for x in v))
        for v in value.values())


class TrialView:
    """Read-only access to one trial folder ``root/trials/<trial_id>`` under the policy above.

    ``root`` is the sweep folder (trusted: the user named it); nothing below it is followed
    if it is a symlink. ``params``: the grid's params for this trial, checked against the
    stored ones. Results are read once and remembered."""

    def __init__(self, root: Path, trial_id: str, params: dict[str, Any] | None = None,
                 warnings: list[str] | None = None, warn: Warn | None = None):
        self.root = Path(root)
        self.trial_id = trial_id
        self.params = params
        self.dir = self.root / "trials" / trial_id
        self.warnings: list[str] = warnings if warnings is not None else []
        self._warn = warn
        self._result: tuple[Result | None, str | None] | None = None

    # -- warnings -------------------------------------------------------------------------
    def _note(self, message: str) -> None:
        if message not in self.warnings:  # once per file and reader
            self.warnings.append(message)
            if self._warn is not None:
                self._warn(message)

    def _damaged_file(self, name: str, problem: str) -> None:
        self._note(f"warning: {self.dir / name}: damaged, skipped ({problem})")

    # -- the folder -----------------------------------------------------------------------
    def exists(self) -> bool:
        return lstat_kind(self.dir) is not None

    def _read(self, name: str, cap: int) -> bytes | None:
        return read_file(self.dir / name, cap, self.root)

    # -- result.json ----------------------------------------------------------------------
    def check_result(self) -> tuple[Result | None, str | None]:
        """(result, None); (None, None) when there is none yet; (None, why) when damaged."""
        if self._result is None:
            self._result = self._check_result()
        return self._result

    def _check_result(self) -> tuple[Result | None, str | None]:
        if lstat_kind(self.root / "trials") == "link":
            return None, f"{self.root / 'trials'} is a symlink (not followed)"
        kind = lstat_kind(self.dir)
        if kind is None:
            return None, None
        if kind == "link":
            return None, "the trial folder is a symlink (not followed)"
        if kind != "dir":
            return None, "the trial folder is not a folder"
        try:
            text = read_text(self.dir / RESULT_FILE, RESULT_CAP, self.root)
            if text is None:
                return None, None
            r = parse_json(text)
        except Damaged as exc:
            return None, str(exc)
        problem = result_problem(r, self.trial_id, self.params)
        if problem:
            return None, problem
        return cast(Result, r), None

    def result(self) -> Result | None:
        """The stored result, or None when there is none or it is damaged (then one warning
        names the file)."""
        r, problem = self.check_result()
        if problem:
            self._note(f"warning: {self.dir / RESULT_FILE}: corrupt trial skipped ({problem})")
        return r

    def status(self) -> Status:
        """done / failed / diverged as stored; pending without a result; corrupt if damaged."""
        r, problem = self.check_result()
        if problem:
            return Status.CORRUPT
        return Status.PENDING if r is None else Status(r["status"])

    # -- the other files --------------------------------------------------------------------
    def metrics(self) -> list[dict[str, Any]]:
        """The epoch rows of metrics.jsonl: good lines kept, bad ones skipped (one warning
        with their count); [] when the file is missing or cannot be read."""
        return self.metrics_and_bad()[0]

    def metrics_and_bad(self) -> tuple[list[dict[str, Any]], int]:
        """(rows, bad lines) of metrics.jsonl; an unreadable file counts as one bad line."""
        try:
            text = read_text(self.dir / METRICS_FILE, METRICS_CAP, self.root)
        except Damaged as exc:
            self._damaged_file(METRICS_FILE, str(exc))
            return [], 1
        if text is None:
            return [], 0
        rows, bad = parse_lines(text, _is_row)
        if bad:
            self._damaged_file(METRICS_FILE, f"{bad} unreadable line(s) left out, "
                                             f"{len(rows)} kept")
        return cast("list[dict[str, Any]]", rows), bad

    def config(self) -> dict[str, Any] | None:
        """The resolved config (config.yaml), or None when missing or damaged."""
        try:
            text = read_text(self.dir / CONFIG_FILE, CONFIG_CAP, self.root)
            if text is None:
                return None
            doc = parse_yaml(text)
        except Damaged as exc:
            self._damaged_file(CONFIG_FILE, str(exc))
            return None
        if not isinstance(doc, dict):
            self._damaged_file(CONFIG_FILE, f"a {type(doc).__name__}, not a mapping")
            return None
        return doc

    def error_text(self) -> str | None:
        """error.txt (undecodable bytes replaced), or None when missing or damaged."""
        try:
            data = self._read(ERROR_FILE, ERROR_CAP)
        except Damaged as exc:
            self._damaged_file(ERROR_FILE, str(exc))
            return None
        return None if data is None else data.decode("utf-8", errors="replace")

    def error_line(self) -> str:
        """The last non-blank line of error.txt ('' when there is none)."""
        lines = [x for x in (self.error_text() or "").splitlines() if x.strip()]
        return lines[-1] if lines else ""

    def weights(self) -> dict[str, np.ndarray]:
        """The arrays of weights.npz ({} when the trial kept none or the file is damaged).
        The archive's unpacked size is checked before any array is inflated."""
        try:
            data = self._read(WEIGHTS_FILE, WEIGHTS_CAP)
            if data is None:
                return {}
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                unpacked = sum(info.file_size for info in archive.infolist())
            if unpacked > WEIGHTS_CAP:
                raise Damaged(f"unpacks to {unpacked} bytes, over the limit")
            with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                return {k: npz[k] for k in npz.files}
        except Damaged as exc:
            self._damaged_file(WEIGHTS_FILE, str(exc))
        except (OSError, ValueError, zipfile.BadZipFile, EOFError, KeyError) as exc:
            self._damaged_file(WEIGHTS_FILE, f"not readable ({exc})")
        return {}
