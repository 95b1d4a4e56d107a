"""Export a stored sweep to the viewers people already use: MLflow, TensorBoard.

One registry of targets; each target module imports its library lazily (it is an optional
extra: ``pip install "dropout-lab[mlflow]"`` / ``"dropout-lab[tensorboard]"``), so the core
install needs neither. A target reads the sweep through :func:`load_sweep` and returns a short
summary of what it wrote.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from dropout_lab.errors import OutputError, StoreError
from dropout_lab.result import Status
from dropout_lab.store import CONFIG_FILE, SweepStore

# target name -> (module, the extra that provides its library, the module to import)
TARGETS: dict[str, tuple[str, str, str]] = {
    "mlflow": ("dropout_lab.export.mlflow_target", "mlflow", "mlflow"),
    "tensorboard": ("dropout_lab.export.tensorboard_target", "tensorboard", "tensorboard"),
}


@dataclass
class TrialRecord:
    """One stored trial as the exporters see it."""

    trial_id: str
    status: str
    params: dict[str, Any]
    config: dict[str, Any]
    final: dict[str, Any]
    rows: list[dict[str, Any]]
    started_at: float | None


@dataclass
class SweepRecord:
    name: str
    root: Path
    axes: dict[str, list[Any]]
    config: dict[str, Any]
    trials: list[TrialRecord]


def load_sweep(sweep_dir: Path) -> SweepRecord:
    """The current grid's trials with their config, final metrics and per-epoch rows."""
    store = SweepStore(sweep_dir)
    doc = store.read_sweep()
    trials = []
    for r in store.results():
        tid = r["trial_id"]
        cfg_path = store.trial_dir(tid) / CONFIG_FILE
        try:
            config = yaml.safe_load(cfg_path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError, UnicodeDecodeError):
            config = {}
        try:
            rows = store.load_metrics(tid)
        except (ValueError, OSError) as exc:
            raise StoreError(f"{store.trial_dir(tid)}: metrics unreadable ({exc})") from None
        trials.append(TrialRecord(
            tid, r.get("status", Status.PENDING), r.get("params") or {}, config,
            r.get("final") or {}, rows, (r.get("timing") or {}).get("started_at")))
    return SweepRecord(Path(sweep_dir).name, Path(sweep_dir), doc.get("sweep") or {},
                       doc.get("config") or {}, trials)


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """``{"train": {"lr": 0.1}}`` -> ``{"train.lr": 0.1}`` (lists stay values)."""
    if not isinstance(data, dict):
        return {prefix: data} if prefix else {}
    flat: dict[str, Any] = {}
    for k, v in data.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, dict) and v:
            flat.update(flatten(v, key))
        else:
            flat[key] = v
    return flat


def numeric(value: Any) -> float | None:
    """A metric value to log, or None for what is not a finite number (stored NaN is null)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if value == value and abs(value) != float("inf") else None


def export(sweep_dir: Path, to: str, **options: Any) -> dict[str, Any]:
    """Export with the target named ``to``; OutputError for an unknown target or a missing
    extra (with the pip command that installs it)."""
    if to not in TARGETS:
        raise OutputError(f"--to {to}: choose one of {', '.join(TARGETS)}")
    module_name, extra, library = TARGETS[to]
    sweep = load_sweep(sweep_dir)  # a bad sweep folder fails before the library is imported
    if importlib.util.find_spec(library) is None:
        raise OutputError(f"export --to {to} needs the package '{library}': "
                          f'pip install "dropout-lab[{extra}]"')
    module = importlib.import_module(module_name)
    return module.export(sweep, **options)
