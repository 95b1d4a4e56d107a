"""The runs directory: a naming convention, atomic writes, and reading results back.

    runs/<name>/sweep.yaml                 resolved base config, axes, and the current grid
    runs/<name>/summary.csv                one row per trial of the current grid
    runs/<name>/trials/<id>/config.yaml    fully resolved trial config
    runs/<name>/trials/<id>/metrics.jsonl  one JSON object per epoch
    runs/<name>/trials/<id>/result.json    written last: a trial is done only when it says so
    runs/<name>/trials/<id>/error.txt      traceback of a failed trial

Only the driver writes here (workers return their outcome), so no shared file system is
needed for distributed sweeps.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import yaml

from dropout_lab.errors import StoreError

SWEEP_FILE = "sweep.yaml"
RESULT_FILE = "result.json"
METRICS_FILE = "metrics.jsonl"
CONFIG_FILE = "config.yaml"
ERROR_FILE = "error.txt"
SUMMARY_FILE = "summary.csv"


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def atomic_write_text(path: Path, text: str) -> None:
    """Write to a temporary file in the same folder, fsync, then rename over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; results are ordinary files
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _clean(value: Any) -> Any:
    """JSON has no NaN/inf: store them as null so every reader can parse the files."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def dumps(value: Any) -> str:
    return json.dumps(_clean(value), allow_nan=False)


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
            raise StoreError(f"cannot write the runs directory {self.root}: {reason} "
                             f"({exc.filename or self.root}); choose another with --runs-dir"
                             ) from None

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

    def write_outcome(self, trial_id: str, result: dict[str, Any],
                      metrics: list[dict[str, Any]], error: str | None) -> None:
        """Metrics, then the error text, then result.json last (the commit point)."""
        d = self.trial_dir(trial_id)
        atomic_write_text(d / METRICS_FILE, "".join(dumps(r) + "\n" for r in metrics))
        if error:
            atomic_write_text(d / ERROR_FILE, error)
        else:
            (d / ERROR_FILE).unlink(missing_ok=True)
        atomic_write_text(d / RESULT_FILE, json.dumps(_clean(result), indent=2, allow_nan=False))

    def write_summary(self, results: list[dict[str, Any]], axes: list[str]) -> None:
        final_keys = ["train_loss", "train_acc", "test_loss", "test_acc", "gap_acc", "gap_loss"]
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
    def load_result(self, trial_id: str) -> dict[str, Any] | None:
        path = self.trial_dir(trial_id) / RESULT_FILE
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except OSError:  # absent (or the runs dir is not a folder): not done
            return None
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None  # unreadable: treated as not done, the trial runs again

    def is_done(self, trial_id: str) -> bool:
        r = self.load_result(trial_id)
        return r is not None and r.get("status") == "done"

    def load_metrics(self, trial_id: str) -> list[dict[str, Any]]:
        path = self.trial_dir(trial_id) / METRICS_FILE
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

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
            raise StoreError(f"{path}: unreadable ({exc})") from None
        if not isinstance(doc, dict) or "trials" not in doc:
            raise StoreError(f"{path}: not a dropout-lab sweep file")
        return doc

    def results(self) -> list[dict[str, Any]]:
        """Results of the current grid, in grid order; trials not yet run have status 'pending'."""
        doc = self.read_sweep()
        out = []
        for t in doc["trials"]:
            r = self.load_result(t["trial_id"])
            out.append(r if r is not None else
                       {"trial_id": t["trial_id"], "status": "pending", "params": t["params"]})
        return out
