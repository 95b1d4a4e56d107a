"""The config schema: pydantic models of every section, their defaults and range checks.

A config is a short delta over the defaults below. Unknown keys, wrong types and out-of-range
values fail validation (:mod:`dropout_lab.config.validation` turns that into a ConfigError
naming the dotted key).
"""

from __future__ import annotations

import math
import typing
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from dropout_lab import variants
from dropout_lab.concrete import regularizer_weights
from dropout_lab.config.limits import MAX_EXAMPLES, MAX_LAYERS, MAX_WIDTH
from dropout_lab.config.search import RangeAxis, SearchConfig, grid_values
from dropout_lab.config.strict import StrictModel
from dropout_lab.specs import backends, datasets
from dropout_lab.specs.backends import Optimizer, OptimizerSpec
from dropout_lab.specs.datasets import SYNTHETIC_DEFAULTS

# the dropout variants (the registry with their formulas: dropout_lab/variants.py; a test keeps
# the two in step); the tuple is the Literal's values
Variant = Literal["inverted", "standard", "gaussian", "dropconnect", "unscaled", "concrete"]
VARIANTS: tuple[str, ...] = typing.get_args(Variant)
P_KEY = "dropout.p"  # the dotted key of the drop probability: the axis compared by default
NAME_MAX = 255  # bytes in one file or folder name (Linux, macOS; the name is the run folder)
# Keys that never change a trial's numbers (how often it checkpoints): left out of trial ids
# and of the check that a sweep folder holds the same config, so changing them reuses trials.
RESULT_NEUTRAL_KEYS = ("train.checkpoint_every",)


class DatasetConfig(StrictModel):
    """Which data set, and options shared by every data set (each data set says which it takes)."""

    name: str = "digits"
    seed: int = Field(default=0, ge=0, lt=2**63,
                      description="the data set's own seed (generation, test split)")
    path: str | None = Field(default=None,
                             description="folder (or .npz file) holding the data set's files")
    test_fraction: float | None = Field(default=None, gt=0, lt=1,
                                        description="digits: held-out fraction")
    n_train: int | None = Field(default=None, gt=0, le=MAX_EXAMPLES,
                                description="synthetic: training examples")
    n_test: int | None = Field(default=None, gt=0, le=MAX_EXAMPLES,
                               description="synthetic: test examples")
    n_features: int | None = Field(default=None, gt=0, le=100_000,
                                   description="synthetic: input dimension")
    n_classes: int | None = Field(default=None, ge=2, le=10_000,
                                  description="synthetic: number of classes")
    noise: float | None = Field(default=None, ge=0,
                                description="synthetic: label/feature noise level")
    train_size: int | None = Field(default=None, ge=2, le=MAX_EXAMPLES,
                                   description="stratified training subset size (at least "
                                   "one example per class)")
    val_fraction: float = Field(default=0.0, ge=0, lt=1,
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
        if self.name == "synthetic":
            self._check_synthetic_sizes()
        return self

    def _check_synthetic_sizes(self) -> None:
        """Every class of the synthetic task needs examples in each split (and in a
        stratified training subset)."""
        size = {k: getattr(self, k) or v for k, v in SYNTHETIC_DEFAULTS.items()}
        k = size["n_classes"]
        for split in ("n_train", "n_test"):
            if k > size[split]:
                raise ValueError(f"dataset.n_classes = {k} is more than dataset.{split} = "
                                 f"{size[split]}: every class needs examples")
        if self.train_size is not None and self.train_size < k:
            raise ValueError(f"dataset.train_size = {self.train_size} is less than the "
                             f"{k} classes: a stratified subset needs one example per class")


class ModelConfig(StrictModel):
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


class ConcreteConfig(StrictModel):
    """Concrete dropout's settings (dropout_lab/concrete.py has the formulas). The regulariser
    weights default to the paper's derivation for N training examples: wr = l^2 / (2 N),
    dr = 1 / N."""

    temperature: float = Field(default=0.1, gt=0, le=100,
                               description="temperature t of the relaxed mask")
    length_scale: float = Field(default=1e-4, gt=0, le=1e6,
                                description="prior length-scale l of the default weight "
                                "regulariser l^2 / (2 N)")
    weight_regularizer: float | None = Field(
        default=None, ge=0, description="wr of wr |W|^2 / (1 - p) (null: l^2 / (2 N))")
    dropout_regularizer: float | None = Field(
        default=None, ge=0, description="dr of dr K (p log p + (1 - p) log(1 - p)) (null: 1 / N)")


class DropoutConfig(StrictModel):
    p: float | list[float] = Field(default=0.5, description="probability of DROPPING a hidden unit")
    input_p: float = Field(default=0.0, description="probability of dropping an input feature")
    variant: Variant = "inverted"
    noise: Literal["host", "device"] = Field(
        default="host",
        description="where the torch backend draws dropout noise: host (NumPy, the same "
        "masks as the numpy backend) or device (a torch.Generator on the device, no copies)")
    concrete: ConcreteConfig | None = Field(
        default=None,
        description="variant concrete only: temperature and regularisers of the learned p "
        "(null: the defaults); dropout.p and input_p are where p starts")

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

    @model_validator(mode="after")
    def _concrete_fits_variant(self) -> DropoutConfig:
        if self.concrete is not None and not variants.get(self.variant).relaxed:
            raise ValueError(f"dropout.concrete sets the learned p of variant concrete; the "
                             f"variant is {self.variant!r} (remove dropout.concrete or set "
                             "dropout.variant: concrete)")
        return self


class LRSchedule(StrictModel):
    """The learning rate of each epoch (formulas in dropout_lab/schedules.py and docs/config.md).

    ``constant``: lr. ``step``: lr x gamma^(number of milestones before the epoch).
    ``exponential``: lr x gamma^(epoch - 1). ``cosine``: from lr down to ``min_lr`` over the
    epochs after the warm-up. ``warmup_epochs`` W > 0 ramps linearly: epoch e <= W gets
    lr(e) x e / W."""

    kind: Literal["constant", "step", "exponential", "cosine"] = "constant"
    gamma: float | None = Field(default=None, gt=0, le=1,
                                description="step/exponential: decay factor")
    milestones: list[int] = Field(default_factory=list,
                                  description="step: epochs after which lr is multiplied by gamma")
    min_lr: float = Field(default=0.0, ge=0, description="cosine: the final learning rate")
    warmup_epochs: int = Field(default=0, ge=0, le=100_000,
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


class MomentumSchedule(StrictModel):
    """The momentum of each epoch: ``constant`` (train.momentum) or ``linear``: from ``start``
    to ``end`` over the first ``epochs`` epochs, then ``end`` (Srivastava et al. 2014 ramp
    0.5 -> 0.99)."""

    kind: Literal["constant", "linear"] = "constant"
    start: float | None = Field(default=None, ge=0, lt=1)
    end: float | None = Field(default=None, ge=0, lt=1)
    epochs: int | None = Field(default=None, gt=0, le=100_000,
                               description="linear: epochs the ramp takes")

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


class EarlyStopping(StrictModel):
    """Stop when the validation loss has not improved by ``min_delta`` for ``patience`` epochs
    (needs dataset.val_fraction > 0). The epoch it stopped at is recorded in result.json."""

    patience: int = Field(default=10, gt=0, le=100_000)
    min_delta: float = Field(default=0.0, ge=0)


class TrainConfig(StrictModel):
    epochs: int = Field(default=10, gt=0, le=100_000)
    batch_size: int = Field(default=64, gt=0, le=1_000_000)
    optimizer: Optimizer = "momentum"
    lr: float = Field(default=0.05, gt=0)
    lr_schedule: LRSchedule = Field(default_factory=LRSchedule)
    momentum: float = Field(default=0.9, ge=0, lt=1)
    momentum_schedule: MomentumSchedule = Field(default_factory=MomentumSchedule)
    weight_decay: float = Field(default=0.0, ge=0)
    max_norm: float | None = Field(default=None, gt=0,
                                   description="max L2 norm of each unit's incoming weights "
                                   "(every layer, the output layer included)")
    early_stopping: EarlyStopping | None = None
    checkpoint_every: int | Literal["auto"] = Field(
        default="auto",
        description="write a checkpoint every N epochs (0 = never); auto: after the first "
        "epoch that ends at least 60 s of training after the last one (docs/reliability.md)")

    @field_validator("checkpoint_every")
    @classmethod
    def _checkpoint_every_range(cls, v: int | str) -> int | str:
        if isinstance(v, int) and not 0 <= v <= 100_000:
            raise ValueError("must be auto or a number of epochs from 0 (never) to 100000")
        return v

    def optimizer_spec(self) -> OptimizerSpec:
        """What a backend's network needs of this section (its update rule)."""
        return OptimizerSpec(self.optimizer, self.lr, self.momentum, self.weight_decay,
                             self.max_norm)

    @model_validator(mode="after")
    def _schedules_fit(self) -> TrainConfig:
        if self.momentum_schedule.kind != "constant" and self.optimizer != "momentum":
            raise ValueError(f"momentum_schedule needs optimizer: momentum "
                             f"(the {self.optimizer} optimizer has no momentum to schedule)")
        if self.lr_schedule.warmup_epochs > self.epochs:
            raise ValueError(f"lr_schedule.warmup_epochs = {self.lr_schedule.warmup_epochs} is "
                             f"more than train.epochs = {self.epochs}")
        return self


class EvalConfig(StrictModel):
    max_samples: int = Field(default=10000, gt=0, le=MAX_EXAMPLES,
                             description="held-out examples for the after-training statistics "
                                         "(the whole test set when it has at most this many)")
    train_subset: int | None = Field(default=10000, gt=0, le=MAX_EXAMPLES,
                                     description="training examples evaluated after each epoch "
                                                 "for the curves (a fixed seeded subset; null = "
                                                 "all); the final numbers use the whole set")
    every: int = Field(default=1, gt=0, le=100_000,
                       description="evaluate every k epochs (the last one always)")
    save_weights: Literal["none", "first", "all"] = Field(
        default="first",
        description="weights kept in weights.npz: none, the first layer, or all")
    coadaptation: bool = True
    uncertainty: bool = True
    mc_samples: int = Field(default=30, gt=0, le=10_000, description="Monte Carlo dropout passes")
    ece_bins: int = Field(default=15, gt=0, le=10_000)
    ablation_draws: int = Field(default=3, gt=0, le=1_000,
                                description="random draws per ablation fraction")
    pair_samples: int = Field(default=32, ge=0, le=100_000,
                              description="unit pairs sampled per layer for pair synergy")


class ExperimentConfig(StrictModel):
    name: str = "sweep"
    seed: int = Field(default=0, ge=0, lt=2**63)
    backend: str = "numpy"
    device: str = "auto"
    dtype: Literal["float32", "float64"] = "float32"
    dataset: DatasetConfig = Field(default_factory=DatasetConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    dropout: DropoutConfig = Field(default_factory=DropoutConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    sweep: dict[str, list[Any] | RangeAxis] = Field(
        default_factory=dict,
        description="axes: a list of grid values, or a range {min, max, log, step} "
        "(docs/search.md)")
    search: SearchConfig | None = Field(
        default=None, description="adaptive search over the axes (docs/search.md); none: "
        "the grid")

    @field_validator("name")
    @classmethod
    def _safe_name(cls, v: str) -> str:
        if not v or any(c in v for c in "/\\") or v in (".", ".."):
            raise ValueError("must be a non-empty name without slashes (it names the run folder)")
        if any(not c.isprintable() for c in v) or len(v) > 200:
            # NUL, newline, escape sequences: a folder name a shell or a table cannot show
            raise ValueError("must be at most 200 printable characters (no NUL, newline or "
                             "control characters: it names the run folder)")
        if len(v.encode("utf-8", "surrogatepass")) > NAME_MAX:
            # a folder name longer than the file system takes (255 bytes: 'é' is 2 of them)
            raise ValueError(f"is {len(v.encode('utf-8', 'surrogatepass'))} bytes in UTF-8; "
                             f"a folder name takes at most {NAME_MAX}")
        return v

    @field_validator("backend")
    @classmethod
    def _known_backend(cls, v: str) -> str:
        backends.get_spec(v)  # raises ConfigError with the known names
        return v

    @field_validator("sweep", mode="before")
    @classmethod
    def _axis_forms(cls, v: Any) -> Any:
        """Each axis a list of values or a range mapping, checked here so that a bad range
        gives one message (not one per branch of the union)."""
        if not isinstance(v, dict):
            return v
        out: dict[Any, Any] = {}
        for key, values in v.items():
            if isinstance(values, dict):
                try:
                    out[key] = RangeAxis.model_validate(values)
                except ValidationError as exc:
                    why = "; ".join(_range_error(e) for e in exc.errors())
                    raise ValueError(f"axis {key!r}: {why} (a range is {{min: .., max: .., "
                                     "log: true|false, step: ..})") from None
            elif isinstance(values, (list, RangeAxis)):
                out[key] = values
            else:
                raise ValueError(f"axis {key!r} needs a list of values or a range "
                                 f"{{min: .., max: ..}}, got {values!r}")
        return out

    @field_validator("sweep")
    @classmethod
    def _axes_nonempty(cls, v: dict[str, list[Any] | RangeAxis]
                       ) -> dict[str, list[Any] | RangeAxis]:
        for key, values in v.items():
            if isinstance(values, list) and not values:
                raise ValueError(f"axis {key!r} has no values")
        return v

    @model_validator(mode="after")
    def _ranges_fit_search(self) -> ExperimentConfig:
        """A range with a step is a grid unless a random/TPE search draws from it; a range
        without one needs such a search (docs/search.md, "Range axes")."""
        method = self.search.method if self.search is not None else None
        for key, axis in list(self.sweep.items()):
            if not isinstance(axis, RangeAxis):
                continue
            if key == "seed":
                raise ValueError("sweep.seed must be a list: each suggestion of a search runs "
                                 "over every seed (docs/search.md, \"Seeds\")")
            if method in (None, "grid") and axis.step is not None:
                self.sweep[key] = list(grid_values(axis))
            elif method is None:
                raise ValueError(f"sweep.{key} is a range without a step: give it a step "
                                 "(a grid) or add a search: section with method random or tpe")
            elif method == "grid":
                raise ValueError(f"sweep.{key}: search.method grid needs a step on every "
                                 "range (or method random / tpe to draw from it)")
        search = self.search
        if search is None:
            return self
        if search.method != "grid" and search.trials is None:
            raise ValueError(f"search.trials: method {search.method} needs a number of trials")
        if search.metric.startswith("val_") and self.dataset.val_fraction <= 0:
            raise ValueError(f"search.metric {search.metric} needs a validation split: set "
                             "dataset.val_fraction > 0 (e.g. 0.2); test_acc would choose p "
                             "on the test set")
        if not [k for k in self.sweep if k != "seed"]:
            raise ValueError("a search needs an axis to search (e.g. sweep: {dropout.p: "
                             "{min: 0.0, max: 0.9}})")
        return self

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

    def concrete_settings(self, n_train: int) -> tuple[float, float, float]:
        """Concrete dropout's (temperature, wr, dr) for ``n_train`` training examples: the
        configured values, or the defaults l^2 / (2 N) and 1 / N."""
        c = self.dropout.concrete or ConcreteConfig()
        wr, dr = regularizer_weights(n_train, c.length_scale)
        return (c.temperature, wr if c.weight_regularizer is None else c.weight_regularizer,
                dr if c.dropout_regularizer is None else c.dropout_regularizer)

    def trial_dict(self) -> dict[str, Any]:
        """The resolved config of one trial: everything but the sweep axes and the search."""
        return self.model_dump(mode="json", exclude={"sweep", "search"})

    def grid_axes(self) -> dict[str, list[Any]]:
        """The axes that are lists (every axis of a grid; a search's ranges left out)."""
        return {k: v for k, v in self.sweep.items() if isinstance(v, list)}


def _range_error(err: Any) -> str:
    """One pydantic error of a range mapping as 'key: message'."""
    loc = ".".join(str(x) for x in err["loc"])
    msg = str(err["msg"]).removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        msg = "unknown key (a range takes min, max, log, step)"
    return f"{loc}: {msg}" if loc else msg
