"""Loading a config file: YAML, ``--set`` overrides, validation, and the grid-size limit."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from dropout_lab.config.limits import MAX_TRIALS
from dropout_lab.config.models import ExperimentConfig
from dropout_lab.config.overrides import apply_overrides
from dropout_lab.config.validation import validate
from dropout_lab.config.yaml_io import read_yaml
from dropout_lab.errors import ConfigError


def check_grid_size(axes: dict[str, list[Any]], max_trials: int = MAX_TRIALS,
                    where: str = "config") -> int:
    """The number of grid points, from the axis lengths alone (nothing is expanded); a
    ConfigError when it exceeds ``max_trials``."""
    n = math.prod(len(v) for v in axes.values())
    if n > max_trials:
        shape = " x ".join(f"{k} ({len(v)})" for k, v in axes.items())
        raise ConfigError(f"{where}: the grid has {n:,} trials ({shape}), more than the limit "
                          f"of {max_trials:,}; pass --max-trials {n} if you mean it")
    return n


def load_config(path: str | Path, overrides: list[str] | None = None,
                max_trials: int = MAX_TRIALS) -> ExperimentConfig:
    """Read a YAML config, apply ``--set`` overrides, validate the base config and check the
    grid size from the axis lengths. The grid itself is expanded (each point validated once)
    by its single caller, :func:`dropout_lab.sweep.expand`."""
    path = Path(path)
    raw = read_yaml(path)
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys")
    raw.setdefault("name", path.stem)
    data = apply_overrides(raw, overrides or [])
    cfg = validate(data, where=str(path))
    check_size(cfg, max_trials, where=str(path))
    return cfg


def check_size(cfg: ExperimentConfig, max_trials: int = MAX_TRIALS, where: str = "config"
               ) -> int:
    """:func:`check_grid_size` of a grid; for a search, its trials x the seeds of a block."""
    if cfg.search is None:
        return check_grid_size(cfg.grid_axes(), max_trials, where)
    seeds = len(cfg.grid_axes().get("seed", [cfg.seed]))
    grid = math.prod(len(v) for k, v in cfg.grid_axes().items() if k != "seed")
    trials = cfg.search.trials or grid  # method grid: the grid's points by default
    if trials * seeds > max_trials:
        raise ConfigError(f"{where}: the search runs up to {trials * seeds:,} trials "
                          f"({trials} suggestions x {seeds} seeds), more than the limit of "
                          f"{max_trials:,}; pass --max-trials {trials * seeds} if you mean it")
    return trials * seeds
