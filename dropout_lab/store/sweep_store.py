"""One sweep's folder: where each file goes, writing a trial's results, reading them back.

Only the driver writes here (workers return their outcome), so no shared file system is
needed for distributed sweeps. Every read goes through :class:`~.trial_view.TrialView` and
:mod:`~.reading` (one damage policy: no symlink followed, regular files only, size caps,
malformed means ``corrupt``); a damaged trial is reported ``corrupt`` (one warning naming the
file, in :attr:`SweepStore.warnings`), skipped by every reader, and run again by a resumed
sweep. No write goes through a symlink: a symlinked ``trials/`` or lock file is refused, a
trial folder that is a symlink is unlinked (never the folder it points to).

``sweep.yaml`` holds the current grid (``trials``) and every trial of earlier grids
(``earlier``), so a re-run with other axis values adds to the sweep instead of hiding what
is on disk (docs/results.md, "Grids that extend").
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
import yaml

from dropout_lab.config import RESULT_NEUTRAL_KEYS, flatten_dotted
from dropout_lab.errors import ENVIRONMENT_ERRNOS, EnvironmentFault, StoreError
from dropout_lab.result import FINAL_KEYS, Result, Status
from dropout_lab.safe_text import csv_cell
from dropout_lab.store.files import atomic_write_bytes, atomic_write_text, dumps, is_stale_temporary
from dropout_lab.store.lock import LOCK_FILE, SweepLock
from dropout_lab.store.reading import SWEEP_CAP, Damaged, lstat_kind, parse_yaml, read_text
from dropout_lab.store.trial_view import (
    CONFIG_FILE,
    ERROR_FILE,
    METRICS_FILE,
    RESULT_FILE,
    WEIGHTS_FILE,
    TrialView,
    Warn,
)

SWEEP_FILE = "sweep.yaml"
SUMMARY_FILE = "summary.csv"
__all__ = ["CONFIG_FILE", "ERROR_FILE", "METRICS_FILE", "RESULT_FILE", "SUMMARY_FILE",
           "SWEEP_FILE", "WEIGHTS_FILE", "SweepStore"]

# Keys that choose how a trial is computed, not what is computed: another value in the same
# sweep folder is allowed (docs/results.md, "One folder, one experiment").
EXECUTION_KEYS = ("backend", "device")
_TRIAL_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # never a path: ids name folders


class SweepStore:
    """One sweep's folder: ``runs_dir/name``.

    ``warnings``: one line per damaged file met while reading (the store prints nothing);
    ``warn``: called with each of them as it is found, when the caller wants to show them."""

    def __init__(self, root: Path, warn: Warn | None = None):
        self.root = Path(root)
        self.warnings: list[str] = []
        self._warn = warn

    @classmethod
    def for_config(cls, runs_dir: Path, name: str, warn: Warn | None = None) -> SweepStore:
        return cls(Path(runs_dir) / name, warn)

    # -- paths --------------------------------------------------------------------------------
    @property
    def trials_dir(self) -> Path:
        return self.root / "trials"

    def trial_dir(self, trial_id: str) -> Path:
        return self.trials_dir / trial_id

    # -- writing ------------------------------------------------------------------------------
    def prepare(self) -> None:
        """Create the sweep folder and check it takes files, before any training: a runs
        directory that cannot be written is one StoreError (exit 2), not a lost sweep; so is
        a folder whose ``trials/``, lock file or ``sweep.yaml`` is a symlink (a write through
        it would land outside the runs directory)."""
        root_kind = lstat_kind(self.root)
        problem = (f"{self.root} is a symlink (not followed)" if root_kind == "link"
                   else self.layout_problem() if root_kind == "dir" else None)
        if problem:
            raise StoreError(f"{problem}: dropout-lab never writes through a symlink in the runs "
                             f"directory; remove it, or choose another --runs-dir")
        try:
            self.trials_dir.mkdir(parents=True, exist_ok=True)
            fd, probe = tempfile.mkstemp(prefix=".write-check.", dir=self.root)
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            message = (f"cannot write the runs directory {self.root}: {reason} "
                       f"({exc.filename or self.root}); choose another with --runs-dir")
            if exc.errno in ENVIRONMENT_ERRNOS:  # the machine refused: exit 3
                raise EnvironmentFault(message) from None
            raise StoreError(message) from None  # not a folder, ...: exit 2

    def discard_damaged(self, trial_id: str) -> None:
        """Make room for a trial that runs again: a trial folder that is a file or a symlink
        is unlinked (never what a link points to); in a real trial folder, one of its files
        that is a folder is removed, and a symlink or FIFO is unlinked (a write would follow
        it or block)."""
        d = self.trial_dir(trial_id)
        try:
            if lstat_kind(self.trials_dir) == "link":  # prepare() refuses it; never write there
                raise StoreError(f"{self.trials_dir} is a symlink (not followed)")
            kind = lstat_kind(d)
            if kind not in (None, "dir"):  # a symlink: the link goes, never what it points to
                d.unlink()
            elif kind == "dir":
                for name in os.listdir(d):  # a file that is a folder or a symlink (a write
                    f = d / name  # would follow it, or fail): removed, never followed
                    k = lstat_kind(f)
                    if k == "dir" and name in (RESULT_FILE, METRICS_FILE, CONFIG_FILE,
                                               ERROR_FILE, WEIGHTS_FILE):
                        shutil.rmtree(f)
                    elif k in ("link", "other"):
                        f.unlink()
        except OSError as exc:
            raise EnvironmentFault.from_os_error(exc, "cannot clean up", d) from None

    def lock(self, wait: bool = False) -> SweepLock:
        """Take this sweep's lock (see :class:`SweepLock`); use it as a context manager."""
        lock = SweepLock(self.root)
        lock.acquire(wait)
        return lock

    def remove_stale_temporaries(self) -> list[Path]:
        """Delete temporary files an earlier killed run left behind (call under the lock:
        another writer's files in flight would look the same)."""
        removed = []
        for folder in [self.root, *self._trial_dirs()]:
            try:
                entries = list(folder.iterdir())
            except OSError:
                continue
            for p in entries:
                if is_stale_temporary(p) and lstat_kind(p) == "file":
                    with contextlib.suppress(OSError):
                        p.unlink()
                        removed.append(p)
        return removed

    def _trial_dirs(self) -> list[Path]:
        """Trial folders that are real folders (never a symlink's target)."""
        return [self.trial_dir(n) for n, kind in self.trial_entries().items() if kind == "dir"]

    def check_compatible(self, base: dict[str, Any], axes: Mapping[str, Any]) -> None:
        """Refuse to reuse this folder for another experiment: the stored base config must be
        the current one, except for keys that are sweep axes (adding an axis is allowed) and
        :data:`EXECUTION_KEYS` (``--set backend=torch``: the same experiment computed another
        way; the other backend's trials stay on disk, shown again when it is chosen again,
        and counted as not shown meanwhile) and the ``search`` section (raising
        ``search.trials`` extends a search)."""
        try:
            doc = self.read_sweep()
        except StoreError:
            return  # no sweep yet, or a broken sweep.yaml: it is rewritten
        stored = doc.get("config")
        if not isinstance(stored, dict):
            return
        swept = set(axes) | set(doc.get("sweep") or {})
        old, new = flatten_dotted(stored), flatten_dotted(base)
        # Keys on one side only (a field a newer version added) are not a difference.
        differ = sorted(k for k in set(old) & set(new)
                        if k != "name" and k not in swept and not k.startswith("search.")
                        and k not in EXECUTION_KEYS
                        and k not in RESULT_NEUTRAL_KEYS
                        and not any(k.startswith(a + ".") for a in swept)
                        and old[k] != new[k])
        if differ:
            shown = ", ".join(f"{k}: {old[k]!r} -> {new[k]!r}" for k in differ[:3])
            more = f" and {len(differ) - 3} more" if len(differ) > 3 else ""
            raise StoreError(
                f"{self.root} holds a sweep of another config ({shown}{more}); pass --fresh "
                "to replace it, or give this config another name (--set name=NEW)")

    def reset(self) -> None:
        """``--fresh``: remove every stored trial of this sweep (a symlinked ``trials/`` is
        unlinked, never emptied)."""
        kind = lstat_kind(self.trials_dir)
        if kind == "dir":
            shutil.rmtree(self.trials_dir)
        elif kind is not None:
            self.trials_dir.unlink()
        for name in (SUMMARY_FILE,):
            (self.root / name).unlink(missing_ok=True)

    def write_sweep(self, base: dict[str, Any], axes: Mapping[str, Any],
                    trials: list[tuple[str, dict[str, Any]]], fresh: bool = False) -> None:
        """The current grid, and the trials of earlier grids kept beside it (``earlier``;
        none after ``--fresh``)."""
        try:
            old: dict[str, Any] | None = None if fresh else self.read_sweep()
        except StoreError:
            old = None  # no sweep yet, or a broken sweep.yaml: rewritten
        doc: dict[str, Any] = {
            "config": base,
            "sweep": axes,
            "trials": [{"trial_id": tid, "params": params} for tid, params in trials],
        }
        earlier = earlier_entries(old, {tid for tid, _ in trials}, list(axes), base)
        if earlier:
            doc["earlier"] = earlier
        atomic_write_text(self.root / SWEEP_FILE, yaml.safe_dump(doc, sort_keys=False))

    def write_trial_config(self, trial_id: str, config: dict[str, Any]) -> None:
        atomic_write_text(self.trial_dir(trial_id) / CONFIG_FILE,
                          yaml.safe_dump(config, sort_keys=False))

    def start_metrics(self, trial_id: str) -> None:
        """A trial starts (again): empty its metrics.jsonl, which epochs then append to."""
        path = self.trial_dir(trial_id) / METRICS_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        # O_NOFOLLOW: a symlink here (discard_damaged unlinks them first) is refused, never
        # truncated through; not an atomic write: no commit point (test_rel_processes counts).
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW
                         | os.O_NONBLOCK, 0o666))

    def append_metrics_row(self, trial_id: str, row: dict[str, Any]) -> None:
        """Append one epoch's row the moment it arrives, flushed, so ``tail -f`` shows it.
        (write_outcome rewrites the file whole at the end: the same rows, atomically.)"""
        path = self.trial_dir(trial_id) / METRICS_FILE
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o666)
        with os.fdopen(fd, "a", encoding="utf-8") as fh:  # O_NOFOLLOW: never through a link
            fh.write(dumps(row) + "\n")
            fh.flush()

    def write_outcome(self, trial_id: str, result: Result,
                      metrics: list[dict[str, Any]], error: str | None,
                      arrays: dict[str, np.ndarray] | None = None) -> None:
        """Weights, metrics, then the error text, then result.json last (the commit point)."""
        d = self.trial_dir(trial_id)
        if arrays:
            buf = io.BytesIO()
            named: dict[str, Any] = dict(arrays)  # (numpy's stub types **kwds as its options)
            np.savez_compressed(buf, **named)
            atomic_write_bytes(d / WEIGHTS_FILE, buf.getvalue())
        # keep the rows a lost worker streamed
        if metrics or lstat_kind(d / METRICS_FILE) != "file":
            atomic_write_text(d / METRICS_FILE, "".join(dumps(r) + "\n" for r in metrics))
        if error:
            atomic_write_text(d / ERROR_FILE, error)
        else:
            (d / ERROR_FILE).unlink(missing_ok=True)
        atomic_write_text(d / RESULT_FILE, dumps(result, indent=2))

    def write_summary(self, results: Sequence[Mapping[str, Any]], axes: list[str]) -> None:
        final_keys = list(FINAL_KEYS)
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow([csv_cell(c) for c in
                         ["trial_id", "status", *axes, *final_keys, "train_seconds"]])
        for r in results:
            final = r.get("final") or {}
            params = r.get("params", {})
            # csv_cell: text a spreadsheet would run as a formula gets a leading apostrophe
            writer.writerow([csv_cell(c) for c in [
                r["trial_id"], r["status"],
                *[json.dumps(params.get(a)) if isinstance(params.get(a), list) else params.get(a)
                  for a in axes],
                *[final.get(k, "") for k in final_keys],
                r.get("timing", {}).get("train_seconds", ""),
            ]])
        atomic_write_text(self.root / SUMMARY_FILE, buf.getvalue())

    # -- reading ------------------------------------------------------------------------------
    def view(self, trial_id: str, params: dict[str, Any] | None = None) -> TrialView:
        """The one reader of a trial folder (:class:`TrialView`); its warnings land in
        :attr:`warnings` (and the ``warn`` callback) of this store."""
        return TrialView(self.root, trial_id, params, self.warnings, self._warn)

    def check_result(self, trial_id: str, params: dict[str, Any] | None = None
                     ) -> tuple[Result | None, str | None]:
        """(result, None) for a readable result.json, (None, None) when there is none yet,
        (None, reason) when it is damaged: see :class:`TrialView`."""
        return self.view(trial_id, params).check_result()

    def load_result(self, trial_id: str, params: dict[str, Any] | None = None
                    ) -> Result | None:
        """The stored result, or None when there is none or it is damaged (a warning line
        names the file; the trial counts as not done, so a resume runs it again)."""
        return self.view(trial_id, params).result()

    def is_done(self, trial_id: str, params: dict[str, Any] | None = None) -> bool:
        r = self.load_result(trial_id, params)
        return r is not None and r.get("status") == Status.DONE

    def load_metrics(self, trial_id: str) -> list[dict[str, Any]]:
        """The per-epoch rows: good lines kept, bad ones left out (one warning)."""
        return self.view(trial_id).metrics()

    def load_weights(self, trial_id: str) -> dict[str, np.ndarray]:
        """The arrays of weights.npz ({} when the trial kept none, or it is damaged)."""
        return self.view(trial_id).weights()

    def read_sweep(self) -> dict[str, Any]:
        """The sweep document (config, axes, current grid). StoreError if this is no sweep."""
        path = self.root / SWEEP_FILE
        kind = lstat_kind(self.root)
        if kind is None:
            raise StoreError(f"{self.root}: no such sweep folder")
        if not self.root.is_dir():
            raise StoreError(f"{self.root}: not a sweep folder (not a folder)")
        try:
            text = read_text(path, SWEEP_CAP, self.root)
            if text is None:
                raise StoreError(f"{self.root}: not a sweep folder (no {SWEEP_FILE}); "
                                 "pass a folder made by 'dropout-lab sweep', e.g. "
                                 "runs/quickstart")
            doc = parse_yaml(text)
        except Damaged as exc:
            raise StoreError(f"{path}: unreadable ({exc})") from None
        problem = _sweep_doc_problem(doc)
        if problem:
            raise StoreError(f"{path}: not a dropout-lab sweep file ({problem})")
        return cast("dict[str, Any]", doc)  # checked by _sweep_doc_problem

    def trial_entries(self) -> dict[str, str]:
        """Every entry under ``trials/`` (current grid or not) -> its kind: 'dir', 'link',
        'file' or 'other'; nothing when ``trials/`` is missing or itself a symlink (see
        :meth:`layout_problem`). Symlinks are listed, never followed."""
        if lstat_kind(self.trials_dir) != "dir":
            return {}
        try:
            names = sorted(os.listdir(self.trials_dir))
        except OSError:
            return {}
        kinds = {n: lstat_kind(self.trials_dir / n) for n in names}
        return {n: k for n, k in kinds.items() if k is not None}

    def layout_problem(self) -> str | None:
        """Why this folder must not be read below its top or written at all: ``trials/``,
        ``.lock`` or ``sweep.yaml`` a symlink (or ``trials/`` not a folder). None if sound."""
        for name in ("trials", LOCK_FILE, SWEEP_FILE):
            kind = lstat_kind(self.root / name)
            if kind == "link":
                return f"{self.root / name} is a symlink (not followed)"
        if lstat_kind(self.trials_dir) not in (None, "dir"):
            return f"{self.trials_dir} is not a folder"
        return None

    def _entries(self, doc: dict[str, Any], earlier: bool
                 ) -> list[tuple[str, dict[str, Any], bool]]:
        """(trial_id, params, in the current grid) of the current grid, then (``earlier``)
        the trials of earlier grids that belong to this sweep's config (:func:`visible`)."""
        out = [(t["trial_id"], t["params"], True) for t in doc["trials"]]
        if earlier:
            axes = list(doc.get("sweep") or {})
            base = flatten_dotted(doc.get("config") or {})
            taken = {canon_params(p) for _, p, _ in out}
            ids = {tid for tid, _, _ in out}
            for t in doc.get("earlier") or []:
                shown = visible(t["params"], axes, base)
                if shown is None or t["trial_id"] in ids or canon_params(shown) in taken:
                    continue
                out.append((t["trial_id"], shown, False))
                ids.add(t["trial_id"])
                taken.add(canon_params(shown))
        return out

    def results(self, earlier: bool = True) -> list[dict[str, Any]]:  # Result-shaped
        """Results of the sweep, with the params of the grid: the current grid in grid order
        (trials not yet run have status 'pending', damaged ones 'corrupt'), then, with
        ``earlier``, the finished trials of earlier grids of the same config (added axis
        values, ``--set "sweep.seed=[2]"``), each with ``"grid": "earlier"``. Earlier trials
        never run, of other config values, or replaced by a trial of the current grid with
        the same params are left out: :meth:`history` counts them."""
        doc = self.read_sweep()
        out: list[dict[str, Any]] = []
        for tid, params, current in self._entries(doc, earlier):
            r, problem = self.check_result(tid, params)
            if problem:
                self.view(tid, params).result()  # the one warning naming the file
                entry: dict[str, Any] = {"trial_id": tid, "status": Status.CORRUPT,
                                         "params": params, "error": f"{RESULT_FILE}: {problem}"}
            elif r is None:
                if not current:
                    continue  # an earlier grid's trial never run: it will not be
                entry = {"trial_id": tid, "status": Status.PENDING, "params": params}
            else:
                entry = dict(cast("dict[str, Any]", r), params=params)  # the grid names them
            if not current:
                entry["grid"] = "earlier"
            out.append(entry)
        return out

    def history(self, doc: dict[str, Any] | None = None) -> dict[str, int]:
        """What is on disk against what readers show: ``on_disk`` trial folders (and links);
        ``in_grid``: those of the current grid; ``earlier``: finished trials of earlier grids
        shown with it; ``hidden``: every other folder (another value of a non-axis key,
        replaced by a current trial with the same params, a symlink, or not in sweep.yaml at
        all); ``gc`` lists them."""
        doc = doc if doc is not None else self.read_sweep()
        on_disk = self.trial_entries()
        grid = {t["trial_id"] for t in doc["trials"]}
        shown = {tid for tid, _, current in self._entries(doc, True) if not current
                 and self.view(tid).status() not in (Status.PENDING,)}
        in_grid = sum(1 for t in on_disk if t in grid)
        earlier = sum(1 for t in on_disk if t in shown and t not in grid)
        return {"on_disk": len(on_disk), "in_grid": in_grid, "earlier": earlier,
                "hidden": len(on_disk) - in_grid - earlier,
                "other": len(on_disk) - in_grid}


def canon_params(params: dict[str, Any]) -> str:
    """A key under which params that differ only as 0 and 0.0 are the same grid point."""
    return json.dumps({k: _canon(v) for k, v in sorted(params.items())})


def _canon(value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, list):
        return [_canon(v) for v in value]
    if isinstance(value, dict):
        return {k: _canon(v) for k, v in sorted(value.items())}
    return str(value)


def visible(params: dict[str, Any], axes: list[str], base: dict[str, Any]
            ) -> dict[str, Any] | None:
    """An earlier grid's trial as the current sweep sees it: its values of the current
    ``axes``, when every other key it was swept on has the current base config's value
    (``base``: flattened); None when it belongs to another config (hidden)."""
    for k, v in params.items():
        if k not in axes and (k not in base or _canon(base[k]) != _canon(v)):
            return None
    if any(a not in params for a in axes):
        return None
    return {a: params[a] for a in axes}


def earlier_entries(old: dict[str, Any] | None, grid_ids: set[str],
                    axes: list[str], base: dict[str, Any]) -> list[dict[str, Any]]:
    """The ``earlier`` list of a new sweep.yaml: every trial of the old document (its grid and
    its own earlier list) not in the new grid, with its params completed from the old base
    config for the new ``axes`` and for every key whose value the new ``base`` changes
    (``backend``), so the trial can be placed on the new grid, or hidden from it."""
    if not old:
        return []
    old_base = flatten_dotted(old.get("config") or {})
    new_base = flatten_dotted(base)
    changed = [k for k in set(old_base) & set(new_base) if k != "name"
               and _canon(old_base[k]) != _canon(new_base[k])]
    out: list[dict[str, Any]] = []
    seen: set[str] = set(grid_ids)
    for t in [*old.get("trials", []), *(old.get("earlier") or [])]:
        if t["trial_id"] in seen:
            continue
        seen.add(t["trial_id"])
        params = dict(t["params"])
        for a in [*axes, *changed]:
            if a not in params and a in old_base:
                params[a] = old_base[a]
        out.append({"trial_id": t["trial_id"], "params": params})
    return out




def _sweep_doc_problem(doc: Any) -> str | None:
    """What makes ``doc`` not a sweep document, or None (checked so readers can trust it)."""
    if not isinstance(doc, dict):
        return f"a {type(doc).__name__}, not a mapping"
    trials = doc.get("trials")
    if not isinstance(trials, list):
        return "no list of trials"
    if not isinstance(doc.get("config", {}), dict) or not isinstance(doc.get("sweep") or {}, dict):
        return "config or sweep is not a mapping"
    earlier = doc.get("earlier") or []
    if not isinstance(earlier, list):
        return "earlier is not a list"
    for what, entries in (("trial", trials), ("earlier trial", earlier)):
        for i, t in enumerate(entries):
            if not isinstance(t, dict) or not isinstance(t.get("trial_id"), str) \
                    or not _TRIAL_ID.match(t["trial_id"]) or not isinstance(t.get("params"), dict):
                return f"{what} {i} is not a trial_id with params"
    return None
