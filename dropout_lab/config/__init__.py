"""Typed experiment config: pydantic models, YAML loading, ``--set`` overrides.

A config is a short delta over the defaults in :mod:`dropout_lab.config.models`. Every key is
checked before any training: unknown keys (with a near-miss suggestion), wrong types and
out-of-range values raise :class:`~dropout_lab.errors.ConfigError` with the dotted key in the
message. This package re-exports the public names, so ``from dropout_lab.config import X``
is the one way in. Its modules, in the order a config goes through them:

- ``limits``: the size limits (grid points, widths, examples, YAML size);
- ``yaml_io``: reading YAML with the size and alias-expansion guards;
- ``overrides``: ``--set`` parsing and applying;
- ``strict`` and ``models``: the pydantic schema and its range checks;
- ``validation``: a raw dict -> :class:`ExperimentConfig`, with readable errors;
- ``load``: :func:`load_config` (all of the above) and the grid-size check.
"""

from __future__ import annotations

from dropout_lab.config.limits import (
    MAX_CONFIG_BYTES,
    MAX_EXAMPLES,
    MAX_LAYERS,
    MAX_TRIALS,
    MAX_WIDTH,
    MAX_YAML_DEPTH,
    MAX_YAML_NODES,
)
from dropout_lab.config.load import check_grid_size, check_size, load_config
from dropout_lab.config.models import (
    P_KEY,
    RESULT_NEUTRAL_KEYS,
    VARIANTS,
    DatasetConfig,
    DropoutConfig,
    EarlyStopping,
    EvalConfig,
    ExperimentConfig,
    LRSchedule,
    ModelConfig,
    MomentumSchedule,
    TrainConfig,
)
from dropout_lab.config.overrides import (
    CommaList,
    apply_overrides,
    flatten_dotted,
    parse_override,
    set_dotted,
)
from dropout_lab.config.search import EPOCH_METRICS, RangeAxis, SearchConfig, grid_values
from dropout_lab.config.validation import validate
from dropout_lab.config.yaml_io import flow_depth, load_yaml_text, read_yaml
from dropout_lab.errors import ConfigError

__all__ = [
    "EPOCH_METRICS", "MAX_CONFIG_BYTES", "MAX_EXAMPLES", "MAX_LAYERS", "MAX_TRIALS", "MAX_WIDTH",
    "MAX_YAML_DEPTH", "MAX_YAML_NODES", "P_KEY", "RESULT_NEUTRAL_KEYS", "VARIANTS", "CommaList",
    "ConfigError", "DatasetConfig", "DropoutConfig", "EarlyStopping", "EvalConfig",
    "ExperimentConfig", "LRSchedule", "ModelConfig", "MomentumSchedule", "RangeAxis",
    "SearchConfig", "TrainConfig", "apply_overrides", "check_grid_size", "check_size",
    "flatten_dotted", "flow_depth", "grid_values", "load_config", "load_yaml_text",
    "parse_override", "read_yaml", "set_dotted", "validate",
]
