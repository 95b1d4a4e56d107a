"""Axes -> trials: the Cartesian grid of the sweep, each point with a stable trial id."""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass
from typing import Any

from dropout_lab.config import ExperimentConfig, set_dotted, validate


@dataclass(frozen=True)
class Trial:
    """One point of the grid: its id, the swept values and the fully resolved config."""

    trial_id: str
    params: dict[str, Any]
    config: ExperimentConfig

    @property
    def config_dict(self) -> dict[str, Any]:
        return self.config.trial_dict()


def trial_id_of(config: ExperimentConfig) -> str:
    """A short hash of the resolved trial config (name and sweep excluded).

    The same point of the grid always gets the same id, whichever sweep file it came from,
    so a re-run finds the trials it already has."""
    content = config.model_dump(mode="json", exclude={"sweep", "name"})
    blob = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def expand(config: ExperimentConfig, where: str = "config") -> list[Trial]:
    """Every combination of the sweep axes, in the order the axes and values are written."""
    axes = list(config.sweep.items())
    base = config.model_dump(mode="json", exclude={"sweep"})
    trials: list[Trial] = []
    seen: dict[str, Trial] = {}
    for combo in itertools.product(*(values for _, values in axes)):
        data = json.loads(json.dumps(base))  # deep copy of plain JSON data
        params = {}
        for (key, _), value in zip(axes, combo, strict=False):
            set_dotted(data, key, value)
            params[key] = value
        label = ", ".join(f"{k}={v!r}" for k, v in params.items())
        cfg = validate(data, where=f"{where}: sweep point {label}" if params else where)
        params = {k: _normalized(cfg, k) for k in params}
        trial = Trial(trial_id_of(cfg), params, cfg)
        if trial.trial_id in seen:  # duplicate values on an axis: keep one trial
            continue
        seen[trial.trial_id] = trial
        trials.append(trial)
    return trials


def _normalized(cfg: ExperimentConfig, key: str) -> Any:
    """The validated value at a dotted key (so ``1`` written for a float p reads back ``1.0``)."""
    node: Any = cfg.model_dump(mode="json")
    for part in key.split("."):
        node = node[part]
    return node
