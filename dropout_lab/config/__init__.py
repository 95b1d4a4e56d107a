"""Typed experiment config: pydantic models, YAML loading, ``--set`` overrides.

A config is a short delta over the defaults in :mod:`dropout_lab.config.models`. Every key is
checked before any training: unknown keys (with a near-miss suggestion), wrong types and
out-of-range values raise :class:`~dropout_lab.errors.ConfigError` with the dotted key in the
message. This package re-exports the public names, so ``from dropout_lab.config import X``
is the one way in.
"""

from __future__ import annotations

from dropout_lab.config.models import (
    MAX_CONFIG_BYTES,
    MAX_EXAMPLES,
    MAX_LAYERS,
    MAX_TRIALS,
    MAX_WIDTH,
    MAX_YAML_NODES,
    P_KEY,
    VARIANTS,
    CommaList,
    DatasetConfig,
    DropoutConfig,
    EarlyStopping,
    EvalConfig,
    ExperimentConfig,
    LRSchedule,
    ModelConfig,
    MomentumSchedule,
    TrainConfig,
    apply_overrides,
    check_grid_size,
    load_config,
    load_yaml_text,
    parse_override,
    read_yaml,
    set_dotted,
    validate,
)
from dropout_lab.errors import ConfigError

__all__ = [
    "MAX_CONFIG_BYTES", "MAX_EXAMPLES", "MAX_LAYERS", "MAX_TRIALS", "MAX_WIDTH", "MAX_YAML_NODES",
    "P_KEY", "VARIANTS", "CommaList", "ConfigError", "DatasetConfig", "DropoutConfig",
    "EarlyStopping", "EvalConfig", "ExperimentConfig", "LRSchedule", "ModelConfig",
    "MomentumSchedule", "TrainConfig", "apply_overrides", "check_grid_size", "load_config",
    "load_yaml_text", "parse_override", "read_yaml", "set_dotted", "validate",
]
