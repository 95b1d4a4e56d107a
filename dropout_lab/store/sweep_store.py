"""One sweep's folder: where each file goes, writing a trial's results, reading them back.

Only the driver writes here (workers return their outcome), so no shared file system is
needed for distributed sweeps. Readers tolerate damage: a trial whose result.json cannot be
read, is not a result, or names other params than the grid is reported ``corrupt`` (one
warning line naming the file), skipped by every reader, and run again by a resumed sweep.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import shutil
import sys
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
import yaml

from dropout_lab.config.models import RESULT_NEUTRAL_KEYS
from dropout_lab.config.overrides import flatten_dotted
from dropout_lab.errors import ENVIRONMENT_ERRNOS, EnvironmentFault, StoreError
from dropout_lab.result import FINAL_KEYS, Result, Status
from dropout_lab.store.files import atomic_write_bytes, atomic_write_text, dumps, is_stale_temporary
from dropout_lab.store.lock import SweepLock

SWEEP_FILE = "sweep.yaml"
RESULT_FILE = "result.json"
METRICS_FILE = "metrics.jsonl"
CONFIG_FILE = "config.yaml"
ERROR_FILE = "error.txt"
SUMMARY_FILE = "summary.csv"
WEIGHTS_FILE = "weights.npz"

# A result.json may say any status but CORRUPT (which readers report for a damaged one).
_READABLE = tuple(s for s in Status if s is not Status.CORRUPT)
_TRIAL_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # never a path: ids name folders


def _warn(message: str) -> None:
    """One warning line on stderr per damaged file: readers go on without it, and the user
    learns which file to look at (stdout stays clean for --json)."""
    print(message, file=sys.stderr, flush=True)


class SweepStore:
    """One sweep's folder: ``runs_dir/name``."""

    def __init__(self, root: Path):
        self.root = Path(root)

    @classmethod
    def for_config(cls, runs_dir: Path, name: str) -> SweepStore:
        return cls(Path(runs_dir) / name)

    # -- paths --------------------------------------------------------------------------------
    @property
    def trials_dir(self) -> Path:
        return self.root / "trials"

    def trial_dir(self, trial_id: str) -> Path:
        return self.trials_dir / trial_id

    # -- writing ------------------------------------------------------------------------------
    def prepare(self) -> None:
        """Create the sweep folder and check it takes files, before any training: a runs
        directory that cannot be written is one StoreError (exit 2), not a lost sweep."""
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
        """Make room for a trial that runs again: a trial folder that is a file, or a
        result.json that is a folder (damage no atomic write can replace), is removed."""
        d = self.trial_dir(trial_id)
        try:
            if d.exists() and not d.is_dir():
                d.unlink()
            elif (d / RESULT_FILE).is_dir():
                shutil.rmtree(d / RESULT_FILE)
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
                if is_stale_temporary(p) and p.is_file():
                    with contextlib.suppress(OSError):
                        p.unlink()
                        removed.append(p)
        return removed

    def _trial_dirs(self) -> list[Path]:
        try:
            return [p for p in self.trials_dir.iterdir() if p.is_dir()]
        except OSError:
            return []

    def check_compatible(self, base: dict[str, Any], axes: dict[str, list[Any]]) -> None:
        """Refuse to reuse this folder for another experiment: the stored base config must be
        the current one, except for keys that are sweep axes (adding an axis is allowed)."""
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
                        if k != "name" and k not in swept and k not in RESULT_NEUTRAL_KEYS
                        and not any(k.startswith(a + ".") for a in swept)
                        and old[k] != new[k])
        if differ:
            shown = ", ".join(f"{k}: {old[k]!r} -> {new[k]!r}" for k in differ[:3])
            more = f" and {len(differ) - 3} more" if len(differ) > 3 else ""
            raise StoreError(
                f"{self.root} holds a sweep of another config ({shown}{more}); pass --fresh "
                "to replace it, or give this config another name (--set name=NEW)")

    def reset(self) -> None:
        """``--fresh``: remove every stored trial of this sweep."""
        if self.trials_dir.exists():
            shutil.rmtree(self.trials_dir)
        for name in (SUMMARY_FILE,):
            (self.root / name).unlink(missing_ok=True)

    def write_sweep(self, base: dict[str, Any], axes: dict[str, list[Any]],
                    trials: list[tuple[str, dict[str, Any]]]) -> None:
        doc = {
            "config": base,
            "sweep": axes,
            "trials": [{"trial_id": tid, "params": params} for tid, params in trials],
        }
        atomic_write_text(self.root / SWEEP_FILE, yaml.safe_dump(doc, sort_keys=False))

    def write_trial_config(self, trial_id: str, config: dict[str, Any]) -> None:
        atomic_write_text(self.trial_dir(trial_id) / CONFIG_FILE,
                          yaml.safe_dump(config, sort_keys=False))

    def start_metrics(self, trial_id: str) -> None:
        """A trial starts (again): empty its metrics.jsonl, which epochs then append to."""
        path = self.trial_dir(trial_id) / METRICS_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("", encoding="utf-8")

    def append_metrics_row(self, trial_id: str, row: dict[str, Any]) -> None:
        """Append one epoch's row the moment it arrives, flushed, so ``tail -f`` shows it.
        (write_outcome rewrites the file whole at the end: the same rows, atomically.)"""
        with open(self.trial_dir(trial_id) / METRICS_FILE, "a", encoding="utf-8") as fh:
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
        if metrics or not (d / METRICS_FILE).exists():  # keep the rows a lost worker streamed
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
        writer.writerow(["trial_id", "status", *axes, *final_keys, "train_seconds"])
        for r in results:
            final = r.get("final") or {}
            params = r.get("params", {})
            writer.writerow([
                r["trial_id"], r["status"],
                *[json.dumps(params.get(a)) if isinstance(params.get(a), list) else params.get(a)
                  for a in axes],
                *[final.get(k, "") for k in final_keys],
                r.get("timing", {}).get("train_seconds", ""),
            ])
        atomic_write_text(self.root / SUMMARY_FILE, buf.getvalue())

    # -- reading ------------------------------------------------------------------------------
    def check_result(self, trial_id: str, params: dict[str, Any] | None = None
                     ) -> tuple[Result | None, str | None]:
        """(result, None) for a readable result.json, (None, None) when there is none yet,
        (None, reason) when it is damaged: not JSON, not a result of this trial, or params
        that disagree with the grid's (``params``) for the same trial id."""
        path = self.trial_dir(trial_id) / RESULT_FILE
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None, None
        except NotADirectoryError:  # the runs dir or the trial folder is a file
            return None, None if not path.parent.exists() else "not readable"
        except UnicodeDecodeError:
            return None, "not a text file"
        except OSError as exc:
            return None, f"not readable ({exc.strerror or exc})"
        try:
            r = json.loads(text)
        except (json.JSONDecodeError, RecursionError):
            return None, "not valid JSON"
        if not isinstance(r, dict):
            return None, f"not a result (a JSON {type(r).__name__})"
        if r.get("trial_id") != trial_id:
            return None, f"trial_id {r.get('trial_id')!r} is not its folder's id"
        if r.get("status") not in _READABLE:
            return None, f"unknown status {r.get('status')!r}"
        for key, kind in (("params", dict), ("final", dict), ("timing", dict), ("env", dict)):
            if key in r and r[key] is not None and not isinstance(r[key], kind):
                return None, f"{key!r} is a {type(r[key]).__name__}, not a {kind.__name__}"
        if r["status"] == Status.DONE and not isinstance(r.get("final"), dict):
            return None, "status done but no final metrics"
        stored = r.get("params") or {}
        if params is not None:
            wrong = [k for k in set(stored) & set(params) if stored[k] != params[k]]
            if wrong:
                return None, (f"params {', '.join(sorted(wrong))} disagree with the grid "
                              "(sweep.yaml) for this trial id")
        return cast(Result, r), None  # checked above: the keys every reader relies on

    def load_result(self, trial_id: str, params: dict[str, Any] | None = None
                    ) -> Result | None:
        """The stored result, or None when there is none or it is damaged (a warning line
        names the file; the trial counts as not done, so a resume runs it again)."""
        r, problem = self.check_result(trial_id, params)
        if problem:
            self._warn_corrupt(trial_id, problem)
        return r

    def _warn_corrupt(self, trial_id: str, problem: str) -> None:
        path = self.trial_dir(trial_id) / RESULT_FILE
        if str(path) not in _WARNED:  # once per file and process
            _WARNED.add(str(path))
            _warn(f"warning: {path}: corrupt trial skipped ({problem})")

    def is_done(self, trial_id: str, params: dict[str, Any] | None = None) -> bool:
        r = self.load_result(trial_id, params)
        return r is not None and r.get("status") == Status.DONE

    def load_metrics(self, trial_id: str) -> list[dict[str, Any]]:
        """The per-epoch rows; a damaged file gives the rows before the damage (one warning)."""
        path = self.trial_dir(trial_id) / METRICS_FILE
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        except (OSError, UnicodeDecodeError) as exc:
            self._warn_file(path, f"not readable ({exc})")
            return []
        rows = []
        for line in lines:
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except (json.JSONDecodeError, RecursionError):
                row = None
            if not isinstance(row, dict):
                self._warn_file(path, "a line is not a JSON object")
                break
            rows.append(row)
        return rows

    @staticmethod
    def _warn_file(path: Path, problem: str) -> None:
        if str(path) not in _WARNED:
            _WARNED.add(str(path))
            _warn(f"warning: {path}: damaged, skipped ({problem})")

    def load_weights(self, trial_id: str) -> dict[str, np.ndarray]:
        """The arrays of weights.npz ({} when the trial kept none)."""
        path = self.trial_dir(trial_id) / WEIGHTS_FILE
        if not path.exists():
            return {}
        try:
            with np.load(path, allow_pickle=False) as npz:
                return {k: npz[k] for k in npz.files}
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
            self._warn_file(path, f"not readable ({exc})")
            return {}

    def read_sweep(self) -> dict[str, Any]:
        """The sweep document (config, axes, current grid). StoreError if this is no sweep."""
        path = self.root / SWEEP_FILE
        if not self.root.exists():
            raise StoreError(f"{self.root}: no such sweep folder")
        if not path.exists():
            raise StoreError(f"{self.root}: not a sweep folder (no {SWEEP_FILE}); "
                             "pass a folder made by 'dropout-lab sweep', e.g. runs/quickstart")
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise StoreError(f"{path}: unreadable ({first})") from None
        except (OSError, UnicodeDecodeError, RecursionError) as exc:
            raise StoreError(f"{path}: unreadable ({getattr(exc, 'strerror', None) or exc})"
                             ) from None
        problem = _sweep_doc_problem(doc)
        if problem:
            raise StoreError(f"{path}: not a dropout-lab sweep file ({problem})")
        return cast("dict[str, Any]", doc)  # checked by _sweep_doc_problem

    def results(self) -> list[dict[str, Any]]:  # Result-shaped; plain dicts for the readers
        """Results of the current grid, in grid order, with the params of the grid; trials not
        yet run have status 'pending', damaged ones 'corrupt' (readers skip both)."""
        doc = self.read_sweep()
        out: list[dict[str, Any]] = []
        for t in doc["trials"]:
            r, problem = self.check_result(t["trial_id"], t["params"])
            if problem:
                self._warn_corrupt(t["trial_id"], problem)
                out.append({"trial_id": t["trial_id"], "status": Status.CORRUPT,
                            "params": t["params"], "error": f"{RESULT_FILE}: {problem}"})
            elif r is None:
                out.append({"trial_id": t["trial_id"], "status": Status.PENDING,
                            "params": t["params"]})
            else:
                # The grid names the params.
                out.append(dict(cast("dict[str, Any]", r), params=t["params"]))
        return out


_WARNED: set[str] = set()


def _sweep_doc_problem(doc: Any) -> str | None:
    """What makes ``doc`` not a sweep document, or None (checked so readers can trust it)."""
    if not isinstance(doc, dict):
        return f"a {type(doc).__name__}, not a mapping"
    trials = doc.get("trials")
    if not isinstance(trials, list):
        return "no list of trials"
    if not isinstance(doc.get("config", {}), dict) or not isinstance(doc.get("sweep") or {}, dict):
        return "config or sweep is not a mapping"
    for i, t in enumerate(trials):
        if not isinstance(t, dict) or not isinstance(t.get("trial_id"), str) \
                or not _TRIAL_ID.match(t["trial_id"]) or not isinstance(t.get("params"), dict):
            return f"trial {i} is not a trial_id with params"
    return None
