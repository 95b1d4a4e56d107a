"""Typed experiment config: pydantic models, YAML loading, ``--set`` overrides.

A config is a short delta over the defaults below. Every key is checked before any training:
unknown keys (with a near-miss suggestion), wrong types and out-of-range values raise
:class:`~dropout_lab.errors.ConfigError` with the dotted key in the message.
"""

from __future__ import annotations

import copy
import difflib
import math
import types
import typing
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from dropout_lab.backends import registry as backends
from dropout_lab.data import registry as datasets
from dropout_lab.errors import ConfigError

VARIANTS = ("inverted", "standard", "gaussian", "dropconnect", "unscaled")
P_KEY = "dropout.p"  # the dotted key of the drop probability: the axis compared by default


# Limits that keep a typo from asking for a day of compute or a terabyte of memory; each is
# named in the message that refuses a larger value (docs/reliability.md lists them).
MAX_TRIALS = 10_000  # grid points per sweep (--max-trials raises it)
MAX_WIDTH = 65_536  # units per hidden layer
MAX_LAYERS = 64
MAX_EXAMPLES = 10_000_000  # synthetic examples per split
MAX_CONFIG_BYTES = 1_000_000  # a config file (YAML) or one --set value
MAX_YAML_NODES = 100_000  # scalars + collections after alias expansion


def _accepts_bool(annotation: Any) -> bool:
    if annotation is bool:
        return True
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return any(_accepts_bool(a) for a in typing.get_args(annotation))
    return annotation is Any


class _Strict(BaseModel):
    # allow_inf_nan: no field means anything at inf or NaN (`lr: .inf` is a typo, not a rate)
    model_config = ConfigDict(extra="forbid", validate_assignment=False, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _bool_is_not_a_number(cls, v: Any, info: ValidationInfo) -> Any:
        # pydantic's lax mode reads `epochs: true` as 1; a boolean only fits a bool field.
        if isinstance(v, bool) and info.field_name is not None:
            if not _accepts_bool(cls.model_fields[info.field_name].annotation):
                raise ValueError("expected a number or text, got a boolean")
        return v


class DatasetConfig(_Strict):
    """Which data set, and options shared by every data set (each data set says which it takes)."""

    name: str = "digits"
    seed: int = Field(0, ge=0, description="the data set's own seed (generation, test split)")
    path: str | None = Field(None, description="folder (or .npz file) holding the data set's files")
    test_fraction: float | None = Field(None, gt=0, lt=1, description="digits: held-out fraction")
    n_train: int | None = Field(None, gt=0, le=MAX_EXAMPLES,
                                description="synthetic: training examples")
    n_test: int | None = Field(None, gt=0, le=MAX_EXAMPLES, description="synthetic: test examples")
    n_features: int | None = Field(None, gt=0, le=100_000,
                                   description="synthetic: input dimension")
    n_classes: int | None = Field(None, ge=2, le=10_000,
                                  description="synthetic: number of classes")
    noise: float | None = Field(None, ge=0, description="synthetic: label/feature noise level")
    train_size: int | None = Field(None, gt=0, le=MAX_EXAMPLES,
                                   description="stratified training subset size")
    val_fraction: float = Field(0.0, ge=0, lt=1,
                                description="validation split of the training data")
    normalize: Literal["scale01", "standardize"] = "scale01"

    @model_validator(mode="after")
    def _options_fit_dataset(self) -> DatasetConfig:
        spec = datasets.get_spec(self.name)  # raises ConfigError listing known names
        if self.path is not None and not spec.needs_files:
            raise ValueError(f"data set {self.name!r} reads no files, so it does not take "
                             "option 'path'")
        for option in datasets.SPECIFIC_OPTIONS:
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
        if len(v) > MAX_LAYERS or any(w > MAX_WIDTH for w in v):
            raise ValueError(f"at most {MAX_LAYERS} layers of at most {MAX_WIDTH} units")
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


class LRSchedule(_Strict):
    """The learning rate of each epoch (formulas in dropout_lab/schedules.py and the README).

    ``constant``: lr. ``step``: lr x gamma^(number of milestones before the epoch).
    ``exponential``: lr x gamma^(epoch - 1). ``cosine``: from lr down to ``min_lr`` over the
    epochs after the warm-up. ``warmup_epochs`` W > 0 ramps linearly: epoch e <= W gets
    lr(e) x e / W."""

    kind: Literal["constant", "step", "exponential", "cosine"] = "constant"
    gamma: float | None = Field(None, gt=0, le=1, description="step/exponential: decay factor")
    milestones: list[int] = Field(default_factory=list,
                                  description="step: epochs after which lr is multiplied by gamma")
    min_lr: float = Field(0.0, ge=0, description="cosine: the final learning rate")
    warmup_epochs: int = Field(0, ge=0, le=100_000,
                               description="linear warm-up over the first epochs")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, v: Any) -> Any:
        return {"kind": v} if isinstance(v, str) else v  # lr_schedule: cosine

    @model_validator(mode="after")
    def _options_fit_kind(self) -> LRSchedule:
        if self.kind in ("step", "exponential") and self.gamma is None:
            raise ValueError(f"a {self.kind} schedule needs gamma "
                             "(the decay factor, 0 < gamma <= 1)")
        if self.kind not in ("step", "exponential") and self.gamma is not None:
            raise ValueError(f"a {self.kind} schedule takes no gamma")
        if self.kind != "step" and self.milestones:
            raise ValueError(f"a {self.kind} schedule takes no milestones (only step does)")
        if self.kind == "step":
            if not self.milestones:
                raise ValueError("a step schedule needs milestones (epochs after which lr drops)")
            ms = self.milestones
            if any(m <= 0 for m in ms) or ms != sorted(set(ms)):
                raise ValueError("milestones must be increasing positive epochs")
        if self.kind != "cosine" and self.min_lr:
            raise ValueError(f"a {self.kind} schedule takes no min_lr (only cosine does)")
        return self


class MomentumSchedule(_Strict):
    """The momentum of each epoch: ``constant`` (train.momentum) or ``linear``: from ``start``
    to ``end`` over the first ``epochs`` epochs, then ``end`` (Srivastava et al. 2014 ramp
    0.5 -> 0.99)."""

    kind: Literal["constant", "linear"] = "constant"
    start: float | None = Field(None, ge=0, lt=1)
    end: float | None = Field(None, ge=0, lt=1)
    epochs: int | None = Field(None, gt=0, le=100_000, description="linear: epochs the ramp takes")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, v: Any) -> Any:
        return {"kind": v} if isinstance(v, str) else v

    @model_validator(mode="after")
    def _options_fit_kind(self) -> MomentumSchedule:
        given = [k for k in ("start", "end", "epochs") if getattr(self, k) is not None]
        if self.kind == "linear" and len(given) != 3:
            raise ValueError("a linear momentum schedule needs start, end and epochs")
        if self.kind == "constant" and given:
            raise ValueError(f"a constant momentum schedule takes no {', '.join(given)} "
                             "(set train.momentum)")
        return self


class EarlyStopping(_Strict):
    """Stop when the validation loss has not improved by ``min_delta`` for ``patience`` epochs
    (needs dataset.val_fraction > 0). The epoch it stopped at is recorded in result.json."""

    patience: int = Field(10, gt=0, le=100_000)
    min_delta: float = Field(0.0, ge=0)


class TrainConfig(_Strict):
    epochs: int = Field(10, gt=0, le=100_000)
    batch_size: int = Field(64, gt=0, le=1_000_000)
    optimizer: Literal["sgd", "momentum", "adam"] = "momentum"
    lr: float = Field(0.05, gt=0)
    lr_schedule: LRSchedule = Field(default_factory=LRSchedule)
    momentum: float = Field(0.9, ge=0, lt=1)
    momentum_schedule: MomentumSchedule = Field(default_factory=MomentumSchedule)
    weight_decay: float = Field(0.0, ge=0)
    max_norm: float | None = Field(None, gt=0,
                                   description="max L2 norm of each unit's incoming weights")
    early_stopping: EarlyStopping | None = None

    @model_validator(mode="after")
    def _schedules_fit(self) -> TrainConfig:
        if self.momentum_schedule.kind != "constant" and self.optimizer != "momentum":
            raise ValueError(f"momentum_schedule needs optimizer: momentum "
                             f"(the {self.optimizer} optimizer has no momentum to schedule)")
        if self.lr_schedule.warmup_epochs > self.epochs:
            raise ValueError(f"lr_schedule.warmup_epochs = {self.lr_schedule.warmup_epochs} is "
                             f"more than train.epochs = {self.epochs}")
        return self


class EvalConfig(_Strict):
    max_samples: int = Field(10000, gt=0, le=MAX_EXAMPLES,
                             description="held-out examples for the after-training statistics "
                                         "(the whole test set when it has at most this many)")
    train_subset: int | None = Field(10000, gt=0, le=MAX_EXAMPLES,
                                     description="training examples evaluated after each epoch "
                                                 "for the curves (a fixed seeded subset; null = "
                                                 "all); the final numbers use the whole set")
    every: int = Field(1, gt=0, le=100_000,
                       description="evaluate every k epochs (the last one always)")
    save_weights: Literal["none", "first", "all"] = Field(
        "first", description="weights kept in weights.npz: none, the first layer, or all")
    coadaptation: bool = True
    uncertainty: bool = True
    mc_samples: int = Field(30, gt=0, le=10_000, description="Monte Carlo dropout passes")
    ece_bins: int = Field(15, gt=0, le=10_000)
    ablation_draws: int = Field(3, gt=0, le=1_000,
                                description="random draws per ablation fraction")
    pair_samples: int = Field(32, ge=0, le=100_000,
                              description="unit pairs sampled per layer for pair synergy")


class ExperimentConfig(_Strict):
    name: str = "sweep"
    seed: int = Field(0, ge=0, lt=2**63)
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
        if any(not c.isprintable() for c in v) or len(v) > 200:
            # NUL, newline, escape sequences: a folder name a shell or a table cannot show
            raise ValueError("must be at most 200 printable characters (no NUL, newline or "
                             "control characters: it names the run folder)")
        return v

    @field_validator("backend")
    @classmethod
    def _known_backend(cls, v: str) -> str:
        backends.get_spec(v)  # raises ConfigError with the known names
        return v

    @field_validator("sweep")
    @classmethod
    def _axes_nonempty(cls, v: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for key, values in v.items():
            if not values:
                raise ValueError(f"axis {key!r} has no values")
        return v

    @model_validator(mode="after")
    def _early_stopping_has_validation(self) -> ExperimentConfig:
        if self.train.early_stopping is not None and self.dataset.val_fraction <= 0:
            raise ValueError("train.early_stopping watches the validation loss: set "
                             "dataset.val_fraction > 0 (e.g. 0.1)")
        return self

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


def _override_error(message: str, key: str) -> ConfigError:
    """A ConfigError about one --set argument; ``key`` goes into the CLI's JSON error."""
    exc = ConfigError(message)
    exc.key = key  # type: ignore[attr-defined]
    return exc


class CommaList(list):
    """A ``--set KEY=a,b,c`` value: the values of a new sweep axis (Hydra's multirun habit)."""


def _top_level_split(text: str) -> list[str]:
    """Split at commas outside brackets, braces and quotes: ``0.1,0.2`` -> two parts,
    ``[8],[32]`` -> two, ``[64,64]`` -> one."""
    parts, depth, quote, start = [], 0, "", 0
    for i, ch in enumerate(text):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    return [*parts, text[start:]]


def parse_override(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` with VALUE parsed as YAML (``dropout.p=0.5``, ``model.hidden=[64,64]``).

    A bare comma list (``dropout.p=0.1,0.2``: not inside brackets or quotes) is a
    :class:`CommaList` of YAML values, which :func:`apply_overrides` makes a sweep axis."""
    if "=" not in text:
        raise ConfigError(f"--set {text!r}: expected KEY=VALUE, e.g. --set dropout.p=0.5")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"--set {text!r}: the key is empty")
    stripped = raw.strip()
    try:
        parts = _top_level_split(stripped)
        if len(parts) > 1:
            return key, CommaList(load_yaml_text(part, f"--set {key}") for part in parts)
        value = load_yaml_text(raw, f"--set {key}") if stripped else ""
    except yaml.YAMLError as exc:
        raise _override_error(f"--set {text}: value {raw!r} is not valid YAML "
                              f"({exc.problem})", key) from None
    return key, value


def _section_fields(annotation: Any) -> set[str]:
    """Field names of the model an annotation holds (``LRSchedule``, ``EarlyStopping | None``)."""
    for a in (annotation, *typing.get_args(annotation)):
        if isinstance(a, type) and issubclass(a, BaseModel):
            return set(a.model_fields)
    return set()


def _check_override(text: str, key: str, value: Any, data: dict[str, Any]) -> None:
    """Validate one overridden value in the model that holds it, so that an error names the
    ``--set`` argument rather than the config file. Errors elsewhere in that model are left
    for the whole-config validation, which names the file."""
    parts = key.split(".")
    model: type[BaseModel] = ExperimentConfig
    node: Any = copy.deepcopy(data)
    for part in parts[:-1]:
        ann = model.model_fields[part].annotation
        if not (isinstance(ann, type) and issubclass(ann, BaseModel)):
            return  # below a leaf: the whole-config validation explains it
        model, node = ann, node.get(part) if isinstance(node, dict) else None
    if not isinstance(node, dict):
        node = {}
    node[parts[-1]] = value
    try:
        model.model_validate(node)
    except ValidationError as exc:
        lines = []
        for e in exc.errors():
            loc = [str(x) for x in e["loc"]]
            if loc[:1] != [parts[-1]]:
                continue
            msg = e["msg"].removeprefix("Value error, ")
            # a value inside a section (train.lr_schedule={kind: .., gamma: 1.5}) names the
            # field at fault: train.lr_schedule.gamma, with what was given there
            inner = _section_fields(model.model_fields[parts[-1]].annotation)
            deeper = len(loc) > 1 and loc[1] in inner  # not a union branch name ('float')
            where = ".".join([*parts, loc[1]] if deeper else parts)
            given = e.get("input", value) if deeper else value
            lines.append(f"--set {text}: {where}: {msg} (got {given!r})")
        if lines:  # a union (p: a number or a list) fails once per branch: the first says it
            raise _override_error(lines[0], key) from None
    except ConfigError as exc:  # a registry lookup (backend, data set) refused the value
        if repr(value) in str(exc) or str(value) in str(exc):
            raise _override_error(f"--set {text}: {exc}", key) from None


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
        if isinstance(value, CommaList) and not key.startswith("sweep."):
            _check_dotted_key(key, where=f"--set {text}")
            for v in value:
                _check_override(text, key, v, data)
            key = f"sweep.{key}"  # KEY=a,b makes KEY an axis of the grid
        if key.startswith("sweep."):
            axis = key[len("sweep.") :]
            _check_dotted_key(axis, where="sweep")
            if not isinstance(value, list):
                raise ConfigError(
                    f"--set {key}: a sweep axis needs a list of values, got {value!r}")
            sweep = data.setdefault("sweep", {}) or {}
            sweep[axis] = list(value)
            data["sweep"] = sweep
            continue
        if key == "sweep":
            data["sweep"] = value
            continue
        _check_dotted_key(key, where="--set")
        _check_override(text, key, value, data)
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


def _expanded_nodes(node: yaml.Node, memo: dict[int, int], open_: set[int], where: str) -> int:
    """Nodes the document has once every alias is expanded: computed on the composed graph,
    where an alias is a second reference to one node, so the cost is linear in the file."""
    key = id(node)
    if key in memo:
        return memo[key]
    if key in open_:
        raise ConfigError(f"{where}: a YAML alias refers to itself (a recursive document)")
    open_.add(key)
    total = 1
    if isinstance(node, yaml.SequenceNode):
        for child in node.value:
            total += _expanded_nodes(child, memo, open_, where)
            if total > MAX_YAML_NODES:
                break
    elif isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            total += _expanded_nodes(k, memo, open_, where) + _expanded_nodes(v, memo, open_, where)
            if total > MAX_YAML_NODES:
                break
    open_.discard(key)
    memo[key] = total
    return total


def load_yaml_text(text: str, where: str) -> Any:
    """``yaml.safe_load`` with limits checked before any object is built: the text size, and
    the size after alias expansion (a "billion laughs" document of 16 lines expands to
    gigabytes). YAMLError passes through for the caller's message."""
    if len(text) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{where}: {len(text):,} characters, more than the limit of "
                          f"{MAX_CONFIG_BYTES:,} for a config")
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        if node is not None:
            size = _expanded_nodes(node, {}, set(), where)
            if size > MAX_YAML_NODES:
                raise ConfigError(f"{where}: the YAML expands (through its aliases) to more than "
                                  f"{MAX_YAML_NODES:,} values, the limit for a config")
        return yaml.safe_load(text)
    except RecursionError:
        raise ConfigError(f"{where}: the YAML is nested too deeply") from None


def read_yaml(path: Path) -> dict[str, Any]:
    """The YAML document of a config file (a mapping), or a ConfigError naming the problem."""
    if not path.exists():
        raise ConfigError(f"config file {str(path)!r} does not exist")
    if path.is_dir():
        raise ConfigError(f"{str(path)!r} is a folder, not a config file")
    if not path.is_file():  # a FIFO or a device would block or never end
        raise ConfigError(f"{str(path)!r} is not a regular file")
    try:
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise ConfigError(f"{path}: {path.stat().st_size:,} bytes, more than the limit of "
                              f"{MAX_CONFIG_BYTES:,} for a config file")
        data = load_yaml_text(path.read_text(encoding="utf-8"), str(path))
    except OSError as exc:  # unreadable: permissions, an I/O error
        raise ConfigError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}: not valid YAML{at}: {getattr(exc, 'problem', exc)}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file") from None
    return {} if data is None else data


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
    check_grid_size(cfg.sweep, max_trials, where=str(path))
    return cfg
