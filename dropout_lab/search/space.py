"""The space a search draws from, and the block of trials of one suggestion.

A list axis is a categorical choice (its values written as JSON text, so a list value such as
``model.hidden: [[64], [128]]`` is one choice); a range axis is a float distribution
(``log``, ``step`` as written). The seed axis is never searched: every suggestion runs over
all of its seeds.
"""

from __future__ import annotations

import json
import math
from typing import Any, Protocol

from dropout_lab.config import ExperimentConfig, RangeAxis, set_dotted, validate
from dropout_lab.sweep import GridPoint, trial_id_of, value_at

SEED_KEY = "seed"
DIGITS = 4  # significant digits of a value drawn from a range


class Suggests(Protocol):
    """What of an Optuna trial the space uses (``optuna.Trial``)."""

    def suggest_float(self, name: str, low: float, high: float, *, step: float | None = None,
                      log: bool = False) -> float: ...

    def suggest_categorical(self, name: str, choices: Any) -> Any: ...


def searched_axes(config: ExperimentConfig) -> dict[str, list[Any] | RangeAxis]:
    """Every axis but the seed axis, in the order written."""
    return {k: v for k, v in config.sweep.items() if k != SEED_KEY}


def seeds_of(config: ExperimentConfig) -> list[Any]:
    """The seeds of a block: the seed axis, or the config's one seed."""
    axis = config.sweep.get(SEED_KEY)
    return list(axis) if isinstance(axis, list) else [config.seed]


def grid_space(config: ExperimentConfig) -> dict[str, list[str]]:
    """Method grid: every searched axis (all lists) as its choices (JSON text)."""
    return {k: [json.dumps(x) for x in v] for k, v in searched_axes(config).items()
            if isinstance(v, list)}


def grid_size(config: ExperimentConfig) -> int:
    return math.prod(len(v) for v in grid_space(config).values())


def suggest(trial: Suggests, config: ExperimentConfig) -> dict[str, Any]:
    """One value of every searched axis, drawn through ``trial`` (the sampler decides); a
    range's value :func:`rounded`."""
    params: dict[str, Any] = {}
    for key, axis in searched_axes(config).items():
        if isinstance(axis, RangeAxis):
            drawn = trial.suggest_float(key, axis.min, axis.max, step=axis.step, log=axis.log)
            params[key] = rounded(drawn, axis)
        else:
            params[key] = json.loads(trial.suggest_categorical(
                key, [json.dumps(x) for x in axis]))
    return params


def rounded(value: float, axis: RangeAxis) -> float:
    """A drawn value to :data:`DIGITS` significant digits, inside the range: what the trial
    trains with, its id hashes and tables show (0.4904, not 0.49039486469720717; a step's
    0.30000000000000004 is 0.3). The study keeps the value drawn."""
    return min(axis.max, max(axis.min, float(f"{value:.{DIGITS}g}")))


def block(config: ExperimentConfig, params: dict[str, Any]) -> list[GridPoint]:
    """The trials of one suggestion: ``params`` at every seed of the seed axis, each an
    ordinary grid point (same id as the grid point with the same values)."""
    base = config.model_dump(mode="json", exclude={"sweep", "search"})
    axes = list(config.sweep)
    points = []
    for seed in seeds_of(config):
        data = json.loads(json.dumps(base))
        values = {**params, **({SEED_KEY: seed} if SEED_KEY in config.sweep else {})}
        for key, value in values.items():
            set_dotted(data, key, value)
        label = ", ".join(f"{k}={v!r}" for k, v in values.items())
        cfg = validate(data, where=f"search point {label}")
        dump = cfg.model_dump(mode="json")
        point_params = {k: value_at(dump, k) for k in axes}
        points.append(GridPoint(trial_id_of(cfg), point_params, cfg))
    return points

