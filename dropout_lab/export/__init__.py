"""Export a stored sweep to the viewers people already use: MLflow, TensorBoard.

One registry of targets; each target module imports its library lazily (it is an optional
extra: ``pip install "dropout-lab[mlflow]"`` / ``"dropout-lab[tensorboard]"``), so the core
install needs neither. A target reads the sweep through :func:`load_sweep` (built on the
comparison's reader, :mod:`dropout_lab.comparison.source`) and returns a short summary of what
it wrote.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dropout_lab.comparison import source
from dropout_lab.errors import OutputError
from dropout_lab.store import SweepStore, Warn

# target name -> (module, the extra that provides its library, the module to import)
TARGETS: dict[str, tuple[str, str, str]] = {
    "mlflow": ("dropout_lab.export.mlflow_target", "mlflow", "mlflow"),
    "tensorboard": ("dropout_lab.export.tensorboard_target", "tensorboard", "tensorboard"),
}


@dataclass
class ExportedTrial:
    """One stored trial as the exporters see it."""

    trial_id: str
    status: str
    params: dict[str, Any]
    config: dict[str, Any]
    final: dict[str, Any]
    rows: list[dict[str, Any]]
    started_at: float | None


@dataclass
class ExportedSweep:
    name: str
    root: Path
    axes: dict[str, list[Any]]
    config: dict[str, Any]
    trials: list[ExportedTrial]


def load_sweep(sweep_dir: Path, warn: Warn | None = None) -> ExportedSweep:
    """The current grid's trials with their config, final metrics and per-epoch rows.

    The trials come from the one reader of a sweep, :func:`dropout_lab.comparison.source.load`;
    what only an export needs is added here: each trial's config.yaml and its metrics.jsonl
    rows, for every status (a failed trial's epochs are exported too, as they were logged)."""
    data = source.load(sweep_dir, warn=warn)
    store = SweepStore(sweep_dir, warn=warn)
    trials = [ExportedTrial(rec.trial_id, rec.status, rec.params,
                            store.view(rec.trial_id).config() or {},
                            rec.result.get("final") or {}, store.load_metrics(rec.trial_id),
                            (rec.result.get("timing") or {}).get("started_at"))
              for rec in data.trials]
    # the folder's name, not the config's: it names the MLflow experiment and the TensorBoard
    # folder, as before
    return ExportedSweep(Path(sweep_dir).name, data.sweep_dir, data.axes, data.base_config, trials)


def numeric(value: Any) -> float | None:
    """A metric value to log, or None for what is not a finite number (stored NaN is null)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if value == value and abs(value) != float("inf") else None


def export(sweep_dir: Path, to: str, warn: Warn | None = None,
           **options: Any) -> dict[str, Any]:
    """Export with the target named ``to``; OutputError for an unknown target or a missing
    extra (with the pip command that installs it)."""
    if to not in TARGETS:
        raise OutputError(f"--to {to}: choose one of {', '.join(TARGETS)}")
    module_name, extra, library = TARGETS[to]
    sweep = load_sweep(sweep_dir, warn)  # a bad sweep folder fails before the library is imported
    if importlib.util.find_spec(library) is None:
        raise OutputError(f"export --to {to} needs the package '{library}': "
                          f'pip install "dropout-lab[{extra}]"')
    module = importlib.import_module(module_name)
    summary: dict[str, Any] = module.export(sweep, **options)  # every target returns one
    return summary
