"""Export a stored sweep to the viewers people already use: MLflow, TensorBoard.

One registry of targets; each target module imports its library lazily (it is an optional
extra: ``pip install "dropout-lab[mlflow]"`` / ``"dropout-lab[tensorboard]"``), so the core
install needs neither. A target reads the sweep through :func:`load_sweep` (the Python API's
:class:`~dropout_lab.api.Sweep`, built on the comparison's reader) and returns a short summary
of what it wrote. Each trial carries its params, config, per-epoch rows, final numbers, every
statistic (:func:`trial_statistics`) and its health flags (:func:`health_tags`).
"""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dropout_lab.config import flatten_dotted
from dropout_lab.errors import OutputError
from dropout_lab.health import FLAGS
from dropout_lab.store import Warn

if TYPE_CHECKING:
    from dropout_lab.api import Sweep, Trial

# target name -> (module, the extra that provides its library, the module to import)
TARGETS: dict[str, tuple[str, str, str]] = {
    "mlflow": ("dropout_lab.export.mlflow_target", "mlflow", "mlflow"),
    "tensorboard": ("dropout_lab.export.tensorboard_target", "tensorboard", "tensorboard"),
}


def load_sweep(sweep_dir: Path, warn: Warn | None = None) -> Sweep:
    """The sweep as the Python API reads it (:func:`dropout_lab.api.load`): the exporters take
    the same :class:`~dropout_lab.api.Trial` records, each trial's curve read on demand.
    ``warn`` is called once per damaged file skipped (the store prints nothing)."""
    from dropout_lab.api import load

    return load(sweep_dir, warn=warn)


def trial_config(trial: Trial) -> dict[str, Any]:
    """A trial's resolved config as dotted keys: the sweep's base config with the trial's
    params (what its config.yaml holds), without validating it again."""
    return {**flatten_dotted(trial.base_config), **trial.params}


# Sections of result.json whose every number is a per-trial statistic to export
# (learned_p: concrete dropout's p per unit layer, learned_p/0 the input, learned_p/1 ...).
STAT_SECTIONS = ("coadaptation", "uncertainty", "best_epoch", "timing", "learned_p")


def epoch_values(row: dict[str, Any]) -> dict[str, float]:
    """The numbers of one metrics.jsonl row to log at its epoch (not ``epoch`` and
    ``epoch_seconds``): each number by its key, and each number of a list by ``key/i``
    (concrete dropout's ``learned_p``: ``learned_p/1`` is hidden layer 1, as ``corr[1]``)."""
    out: dict[str, float] = {}
    for key, raw in row.items():
        if key in ("epoch", "epoch_seconds"):
            continue
        items = enumerate(raw) if isinstance(raw, list) else [(None, raw)]
        for i, item in items:
            value = numeric(item)
            if value is not None:
                out[key if i is None else f"{key}/{i}"] = value
    return out


def trial_statistics(trial: Trial) -> dict[str, float]:
    """Every finite number of the statistics sections of a trial's result, by a path name
    that MLflow and TensorBoard both take: ``coadaptation/layers/1/mean_abs_corr`` (hidden
    layers counted from 1, as ``corr[1]``), ``uncertainty/mc_acc``, ``health/test_acc`` (the
    checks the flags were decided on), ``best_epoch/epoch``, ``timing/train_seconds``."""
    out: dict[str, float] = {}
    for section in STAT_SECTIONS:
        _numbers(trial.result.get(section), section, out)
    _numbers((trial.health or {}).get("checks"), "health", out)
    return out


def _numbers(node: Any, prefix: str, out: dict[str, float]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            _numbers(value, f"{prefix}/{key}", out)
    elif isinstance(node, list):
        first = 1 if prefix.endswith("/layers") else 0  # layers as corr[l] counts them
        for i, value in enumerate(node):
            _numbers(value, f"{prefix}/{i + first}", out)
    else:
        value = numeric(node)
        if value is not None:
            out[prefix] = value


def health_tags(trial: Trial) -> dict[str, str]:
    """The health flags as tags: ``flags`` (comma-joined, ``none`` when healthy) and one
    ``true``/``false`` per flag; empty for a trial that did not finish."""
    if trial.health is None:
        return {}
    flags = list(trial.health.get("flags") or [])
    return {"flags": ",".join(flags) or "none",
            **{flag: str(flag in flags).lower() for flag in FLAGS}}


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
