"""Typed experiment config: pydantic models, YAML loading, ``--set`` overrides.

A config is a short delta over the defaults below. Every key is checked before any training:
unknown keys (with a near-miss suggestion), wrong types and out-of-range values raise
:class:`~dropout_lab.errors.ConfigError` with the dotted key in the message.
"""

from __future__ import annotations

import copy
import difflib
import math
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from dropout_lab.errors import ConfigError

VARIANTS = ("inverted", "standard", "gaussian", "dropconnect", "unscaled")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=False)


class DatasetConfig(_Strict):
    """Which data set, and options shared by every data set (each data set says which it takes)."""

    name: str = "digits"
    seed: int = Field(0, ge=0, description="the data set's own seed (generation, test split)")
    path: str | None = Field(None, description="folder (or .npz file) holding the data set's files")
    test_fraction: float | None = Field(None, gt=0, lt=1, description="digits: held-out fraction")
    n_train: int | None = Field(None, gt=0, description="synthetic: training examples")
    n_test: int | None = Field(None, gt=0, description="synthetic: test examples")
    n_features: int | None = Field(None, gt=0, description="synthetic: input dimension")
    n_classes: int | None = Field(None, ge=2, description="synthetic: number of classes")
    noise: float | None = Field(None, ge=0, description="synthetic: label/feature noise level")
    train_size: int | None = Field(None, gt=0, description="stratified training subset size")
    val_fraction: float = Field(0.0, ge=0, lt=1,
                                description="validation split of the training data")
    normalize: Literal["scale01", "standardize"] = "scale01"

    @model_validator(mode="after")
    def _options_fit_dataset(self) -> DatasetConfig:
        from dropout_lab.data import registry

        spec = registry.get_spec(self.name)  # raises ConfigError listing known names
        if self.path is not None and not spec.needs_files:
            raise ValueError(f"data set {self.name!r} reads no files, so it does not take "
                             "option 'path'")
        for option in registry.SPECIFIC_OPTIONS:
            if getattr(self, option) is not None and option not in spec.options:
                takes = ", ".join(sorted(spec.options)) or "none"
                raise ValueError(
                    f"data set {self.name!r} does not take option {option!r} "
                    f"(its own options: {takes})"
                )
        return self


class ModelConfig(_Strict):
    hidden: list[int] = Field(default_factory=lambda: [128], description="hidden layer widths")
    activation: Literal["relu", "tanh"] = "relu"

    @field_validator("hidden")
    @classmethod
    def _positive_widths(cls, v: list[int]) -> list[int]:
        if not v:
            raise ValueError("needs at least one hidden layer")
        if any(w <= 0 for w in v):
            raise ValueError("every width must be a positive integer")
        return v


def _check_p(value: float, what: str) -> float:
    if not (0.0 <= value < 1.0) or math.isnan(value):
        raise ValueError(f"{what} = {value} is outside [0, 1): p is the probability of dropping")
    return value


class DropoutConfig(_Strict):
    p: float | list[float] = Field(0.5, description="probability of DROPPING a hidden unit")
    input_p: float = Field(0.0, description="probability of dropping an input feature")
    variant: Literal["inverted", "standard", "gaussian", "dropconnect", "unscaled"] = "inverted"
    noise: Literal["host", "device"] = Field(
        "host", description="where the torch backend draws dropout noise: host (NumPy, the same "
        "masks as the numpy backend) or device (a torch.Generator on the device, no copies)")

    @field_validator("p")
    @classmethod
    def _p_range(cls, v: float | list[float]) -> float | list[float]:
        if isinstance(v, list):
            if not v:
                raise ValueError("a per-layer list of p needs one value per hidden layer")
            for i, x in enumerate(v):
                _check_p(x, f"p[{i}]")
        else:
            _check_p(v, "p")
        return v

    @field_validator("input_p")
    @classmethod
    def _input_p_range(cls, v: float) -> float:
        return _check_p(v, "input_p")


class TrainConfig(_Strict):
    epochs: int = Field(10, gt=0)
    batch_size: int = Field(64, gt=0)
    optimizer: Literal["sgd", "momentum", "adam"] = "momentum"
    lr: float = Field(0.05, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0)
    max_norm: float | None = Field(None, gt=0,
                                   description="max L2 norm of each unit's incoming weights")


class EvalConfig(_Strict):
    max_samples: int = Field(2000, gt=0,
                             description="held-out examples for the after-training statistics")
    coadaptation: bool = True
    uncertainty: bool = True
    mc_samples: int = Field(30, gt=0, description="Monte Carlo dropout passes")
    ece_bins: int = Field(15, gt=0)
    ablation_draws: int = Field(3, gt=0, description="random draws per ablation fraction")
    pair_samples: int = Field(32, ge=0, description="unit pairs sampled per layer for pair synergy")


class ExperimentConfig(_Strict):
    name: str = "sweep"
    seed: int = Field(0, ge=0)
    backend: str = "numpy"
    device: str = "auto"
    dtype: Literal["float32", "float64"] = "float32"
    dataset: DatasetConfig = Field(default_factory=DatasetConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    dropout: DropoutConfig = Field(default_factory=DropoutConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    sweep: dict[str, list[Any]] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _safe_name(cls, v: str) -> str:
        if not v or any(c in v for c in "/\\") or v in (".", ".."):
            raise ValueError("must be a non-empty name without slashes (it names the run folder)")
        return v

    @field_validator("backend")
    @classmethod
    def _known_backend(cls, v: str) -> str:
        from dropout_lab.backends import registry

        registry.get_spec(v)  # raises ConfigError with the known names
        return v

    @field_validator("sweep")
    @classmethod
    def _axes_nonempty(cls, v: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for key, values in v.items():
            if not values:
                raise ValueError(f"axis {key!r} has no values")
        return v

    @model_validator(mode="after")
    def _per_layer_p(self) -> ExperimentConfig:
        if isinstance(self.dropout.p, list) and len(self.dropout.p) != len(self.model.hidden):
            raise ValueError(
                f"dropout.p has {len(self.dropout.p)} values but model.hidden has "
                f"{len(self.model.hidden)} layers"
            )
        return self

    # -- derived values -------------------------------------------------------------------
    def hidden_p(self) -> list[float]:
        """The drop probability of each hidden layer."""
        p = self.dropout.p
        return list(p) if isinstance(p, list) else [float(p)] * len(self.model.hidden)

    def trial_dict(self) -> dict[str, Any]:
        """The resolved config of one trial: everything but the sweep axes."""
        return self.model_dump(mode="json", exclude={"sweep"})


# ---------------------------------------------------------------------------------------
# Loading, overrides and readable errors
# ---------------------------------------------------------------------------------------


def parse_override(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` with VALUE parsed as YAML (``dropout.p=0.5``, ``model.hidden=[64,64]``)."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected KEY=VALUE, e.g. --set dropout.p=0.5")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"--set {text!r}: the key is empty")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {key}: value {raw!r} is not valid YAML ({exc.problem})") from exc
    return key, value


def set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    """Set ``a.b.c`` in a nested dict, creating levels; checks happen in validation."""
    parts = key.split(".")
    node = data
    for i, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise ConfigError(f"{'.'.join(parts[: i + 1])} is a value, so {key} cannot be set")
        node = child
    node[parts[-1]] = value


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``--set`` overrides. ``sweep.AXIS=[...]`` sets an axis; setting a swept key
    directly (``dropout.p=0.5``) fixes it and removes that axis from the grid."""
    data = copy.deepcopy(raw)
    for text in overrides:
        key, value = parse_override(text)
        if key.startswith("sweep."):
            axis = key[len("sweep.") :]
            _check_dotted_key(axis, where="sweep")
            if not isinstance(value, list):
                raise ConfigError(
                    f"--set {key}: a sweep axis needs a list of values, got {value!r}")
            sweep = data.setdefault("sweep", {}) or {}
            sweep[axis] = value
            data["sweep"] = sweep
            continue
        if key == "sweep":
            data["sweep"] = value
            continue
        _check_dotted_key(key, where="--set")
        set_dotted(data, key, value)
        sweep = data.get("sweep")
        if isinstance(sweep, dict) and key in sweep:
            del sweep[key]
    return data


def _fields_at(path: list[str]) -> list[str] | None:
    """Field names of the model at a dotted path (None when the path leaves the models)."""
    model: type[BaseModel] = ExperimentConfig
    for part in path:
        field = model.model_fields.get(part)
        if field is None:
            return None
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            model = ann
        else:
            return None
    return list(model.model_fields)


def _unknown_key_message(path: list[str], where: str, rest: list[str] | None = None) -> str:
    """``rest``: the parts after the unknown one, kept in the suggestion (droput.p -> dropout.p)."""
    rest = rest or []
    dotted = ".".join(path + rest)
    fields = _fields_at(path[:-1]) or []
    msg = f"{where}: unknown key {dotted!r}"
    close = difflib.get_close_matches(path[-1], fields, n=1, cutoff=0.6)
    if close:
        msg += f"; did you mean {'.'.join(path[:-1] + close + rest)!r}?"
    elif fields:
        msg += f" (valid keys here: {', '.join(fields)})"
    return msg


def _check_dotted_key(key: str, where: str) -> None:
    """Reject a dotted key that names no config field, with a near-miss suggestion."""
    parts = key.split(".")
    for i in range(1, len(parts) + 1):
        fields = _fields_at(parts[: i - 1])
        if fields is None:  # below a leaf (e.g. dropout.p.x): validation will complain
            return
        if parts[i - 1] not in fields:
            raise ConfigError(_unknown_key_message(parts[:i], where, parts[i:]))


def _format_validation_error(exc: ValidationError, where: str) -> str:
    lines = []
    for err in exc.errors():
        loc = [str(x) for x in err["loc"]]
        if err["type"] == "extra_forbidden":
            lines.append(_unknown_key_message(loc, where))
            continue
        dotted = ".".join(loc) if loc else "config"
        msg = err["msg"]
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        shown = err.get("input")
        if err["type"] in ("missing",) or isinstance(shown, dict):
            lines.append(f"{where}: {dotted}: {msg}")
        else:
            lines.append(f"{where}: {dotted}: {msg} (got {shown!r})")
    return "\n".join(lines)


def validate(data: dict[str, Any], where: str = "config") -> ExperimentConfig:
    """Validate a raw dict into an :class:`ExperimentConfig` or raise a readable ConfigError."""
    if not isinstance(data, dict):
        raise ConfigError(
            f"{where}: the top level must be a mapping of keys, got {type(data).__name__}")
    try:
        cfg = ExperimentConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(exc, where)) from None
    except ConfigError as exc:  # raised by a registry lookup inside a validator
        raise ConfigError(f"{where}: {exc}") from None
    for axis in cfg.sweep:
        _check_dotted_key(axis, where=f"{where}: sweep")
    return cfg


def read_yaml(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise ConfigError(f"config file {str(path)!r} does not exist")
    if path.is_dir():
        raise ConfigError(f"{str(path)!r} is a folder, not a config file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}: not valid YAML{at}: {getattr(exc, 'problem', exc)}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file") from None
    return {} if data is None else data


def load_config(path: str | Path, overrides: list[str] | None = None) -> ExperimentConfig:
    """Read a YAML config, apply ``--set`` overrides and validate every trial of the grid."""
    path = Path(path)
    raw = read_yaml(path)
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys")
    raw.setdefault("name", path.stem)
    data = apply_overrides(raw, overrides or [])
    cfg = validate(data, where=str(path))
    # Validate every grid point now, so a bad axis value fails before any training.
    from dropout_lab.sweep import expand

    expand(cfg, where=str(path))
    return cfg
