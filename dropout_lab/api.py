"""The Python API: run a sweep, read one back, and work with its trials (docs/python.md).

    import dropout_lab
    s = dropout_lab.sweep("configs/quickstart.yaml", ["train.epochs=5"])
    s.to_pandas()                      # one row per trial of the current grid
    s.compare(metrics=["test_acc"])    # the numbers of ``compare -f json``, as a DataFrame
    net = s.trials[0].network()        # rebuilt from weights.npz (eval.save_weights: all)

The CLI is a thin layer over the same functions: :func:`sweep` runs what ``dropout-lab sweep``
runs (the lock, resume, executors), :func:`load` reads a folder through the one reader of the
comparison (:func:`dropout_lab.comparison.source.load`). A :class:`Trial` *is* the comparison's
:class:`~dropout_lab.comparison.model.TrialRecord`, extended with what a notebook wants.
Errors are the typed exceptions of :mod:`dropout_lab.errors`; nothing here exits or prints.
pandas is needed only by the DataFrame methods (the extra ``dropout-lab[pandas]``).
"""

from __future__ import annotations

import copy
import inspect
import json
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dropout_lab.comparison.metric_names import metric, present_metrics
from dropout_lab.comparison.model import SweepData, TrialRecord
from dropout_lab.config import (
    MAX_TRIALS,
    ExperimentConfig,
    apply_overrides,
    check_size,
    load_config,
    set_dotted,
    validate,
)
from dropout_lab.errors import ConfigError, MissingExtraError, StoreError
from dropout_lab.health import FLAGS
from dropout_lab.result import FINAL_KEYS, Status
from dropout_lab.store import Warn

if TYPE_CHECKING:
    from pandas import DataFrame

    from dropout_lab.backends.base import Network
    from dropout_lab.comparison.model import Comparison
    from dropout_lab.comparison.pairing import SweepPair

__all__ = ["Sweep", "Trial", "TrainedNetwork", "load", "sweep"]


def _pandas() -> Any:
    """The pandas module, or MissingExtraError naming the extra that installs it."""
    try:
        import pandas
    except ImportError:
        raise MissingExtraError('this needs pandas: pip install "dropout-lab[pandas]"') from None
    return pandas


# -- running and loading ----------------------------------------------------------------------
def _config_of(config: str | Path | Mapping[str, Any], overrides: Sequence[str] | None,
               max_trials: int) -> ExperimentConfig:
    """A config file (as the CLI reads it) or a dict (``name`` required: it names the sweep
    folder), with ``--set``-style overrides, validated."""
    if isinstance(config, (str, Path)):
        return load_config(config, list(overrides or []), max_trials)
    if not isinstance(config, Mapping):
        raise ConfigError(f"config: a path or a dict, not a {type(config).__name__}")
    raw = copy.deepcopy(dict(config))
    if not raw.get("name"):
        raise ConfigError("config: a config dict needs a 'name' (it names the sweep folder)")
    cfg = validate(apply_overrides(raw, list(overrides or [])), where="config")
    check_size(cfg, max_trials)
    return cfg


def sweep(config: str | Path | Mapping[str, Any], overrides: Sequence[str] | None = None,
          runs_dir: str | Path = "runs", *, fresh: bool = False, workers: int | None = None,
          threads: int | None = None, executor: str = "local", ray_address: str | None = None,
          max_failures: int | None = None, wait: bool = False, max_trials: int = MAX_TRIALS,
          **options: Any) -> Sweep:
    """Run the sweep of ``config`` as ``dropout-lab sweep`` does and return it read back.

    ``config`` is a YAML path or a dict; ``overrides`` are ``--set`` strings
    (``"train.epochs=5"``, ``"dropout.p=0,0.5"``). The keyword options are the CLI's
    (``--fresh``, ``--workers``, ``--threads``, ``--executor``, ``--ray-address``,
    ``--max-failures``, ``--wait``, ``--max-trials``); any other keyword is passed on to the
    steps that take it (:func:`dropout_lab.runner.schedule`, :func:`dropout_lab.executors.create`,
    :func:`dropout_lab.runner.run_sweep`), a ConfigError when none does.
    Trials already done are reused (resume); the sweep folder is locked while it runs.
    Failed trials do not raise: their status says so (``Sweep.failed``). An interrupted sweep
    raises :class:`dropout_lab.runner.SweepInterrupted` with every finished trial stored."""
    from dropout_lab import executors
    from dropout_lab.estimate import largest_weights
    from dropout_lab.runner import run_sweep, schedule

    # Further options (a pack size, once the CLI has one) go to each step that takes them.
    steps = {f: set(inspect.signature(f).parameters) for f in (schedule, executors.create,
                                                                  run_sweep)}
    unknown = sorted(k for k in options if k in _SET_HERE
                     or not any(k in names for names in steps.values()))
    if unknown:
        raise ConfigError(f"sweep(): unknown option(s) {', '.join(unknown)}")

    def extra(step: Any) -> dict[str, Any]:
        return {k: v for k, v in options.items() if k in steps[step]}

    cfg = _config_of(config, overrides, max_trials)
    if cfg.search is not None:
        raise ConfigError("sweep(): a config with a search: section runs through "
                          "'dropout-lab sweep' (the Python API runs grids; load() reads a "
                          "search's folder like any sweep's)")
    executors.check(executor, ray_address)
    scheduled = schedule(cfg, Path(runs_dir), fresh, max_trials, **extra(schedule))
    store, grid, pending = scheduled
    if not fresh:  # refuse another config before starting anything (checked again locked)
        store.check_compatible(cfg.model_dump(mode="json", exclude={"sweep"}), dict(cfg.sweep))
    selected = executors.create(executor, len(pending), len(grid), workers=workers,
                                threads=threads, ray_address=ray_address,
                                largest_weights=lambda: largest_weights(grid),
                                **extra(executors.create))
    if selected.budget.warning:
        warnings.warn(selected.budget.warning, RuntimeWarning, stacklevel=2)
    try:
        swept = run_sweep(cfg, Path(runs_dir), selected.executor, fresh=fresh,
                          max_failures=max_failures, scheduled=scheduled, wait=wait,
                          **extra(run_sweep))
    finally:
        selected.executor.close()
    return load(swept.sweep_dir)


# Parameters of the steps that sweep() fills itself: not options.
_SET_HERE = frozenset({"config", "runs_dir", "fresh", "max_trials", "name", "pending", "grid",
                       "workers", "threads", "ray_address", "largest_weights", "executor",
                       "events", "max_failures", "scheduled", "wait"})


def load(path: str | Path, warn: Warn | None = None) -> Sweep:
    """Read the sweep folder ``path`` (StoreError when it is not one). A damaged trial file is
    skipped and reported once through ``warn`` (default: a Python ``RuntimeWarning``)."""
    from dropout_lab.comparison.source import load as read
    from dropout_lab.store import SweepStore

    report = warn or _warn
    data = read(Path(path), warn=report)
    # The current grid is what sweep.yaml lists now; the reader also returns the finished
    # trials of earlier grids (it is the comparison's reader): they are kept apart.
    doc = SweepStore(Path(path), warn=report).read_sweep()
    grid = [t["trial_id"] for t in doc["trials"]]
    axes = {k: list(v) if isinstance(v, list) else [v]
            for k, v in dict(doc.get("sweep") or {}).items()}
    by_id = {r.trial_id: r for r in data.trials}

    def trial(r: TrialRecord, current: bool) -> Trial:
        return Trial(r.trial_id, r.params, r.result, sweep_dir=data.sweep_dir,
                     base_config=data.base_config, current=current, warn=report)

    trials = [trial(by_id[tid], True) for tid in grid if tid in by_id]
    earlier = [trial(r, False) for r in data.trials if r.trial_id not in set(grid)]
    return Sweep(data, trials, axes, earlier)


def _warn(message: str) -> None:
    warnings.warn(message, RuntimeWarning, stacklevel=3)


# -- a trial ----------------------------------------------------------------------------------
@dataclass
class Trial(TrialRecord):
    """One trial: ``params`` (its grid values), ``result`` (result.json, the shape of
    :class:`dropout_lab.result.Result`; ``{"status": "pending"}`` when not run), ``status``,
    ``final``, ``health``, and on demand its curve, its network and its test data."""

    sweep_dir: Path = field(default_factory=Path)
    base_config: dict[str, Any] = field(default_factory=dict, repr=False)
    current: bool = True  # of the sweep's current grid (False: an earlier grid's trial)
    warn: Warn | None = field(default=None, repr=False, compare=False)

    @property
    def status(self) -> Status:
        return Status(self.result.get("status", Status.PENDING))

    @property
    def final(self) -> dict[str, float] | None:
        """The final evaluation-mode numbers (``FINAL_KEYS``), None unless done."""
        final = self.result.get("final")
        return dict(final) if isinstance(final, dict) else None

    @property
    def health(self) -> dict[str, Any] | None:
        """``{"flags": [...], "checks": {...}, "thresholds": {...}}``, None unless done."""
        health = self.result.get("health")
        return health if isinstance(health, dict) else None

    def curve(self) -> list[dict[str, Any]]:
        """The per-epoch rows of metrics.jsonl (read once, then kept)."""
        if self.epochs is None:
            from dropout_lab.store import SweepStore

            self.epochs = SweepStore(self.sweep_dir, warn=self.warn).load_metrics(self.trial_id)
        return self.epochs

    def config(self) -> ExperimentConfig:
        """The trial's resolved config: the sweep's base config with this trial's params."""
        data = json.loads(json.dumps(self.base_config))
        for key, value in self.params.items():
            set_dotted(data, key, value)
        data.pop("sweep", None)
        return validate(data, where=f"trial {self.trial_id}")

    def statistics(self) -> dict[str, float]:
        """Every number the metric registry names in this result (``test_acc``, ``corr[1]``,
        ``mc_acc``, ...: the names ``compare -m`` takes), None-valued ones left out."""
        out: dict[str, float] = {}
        for name in present_metrics([self.result]):
            value = metric(name).extract(self.result)
            if value is not None:
                out[name] = value
        return out

    def network(self) -> TrainedNetwork:
        """The trained network, rebuilt on the NumPy backend from weights.npz.

        Needs ``eval.save_weights: all`` when the trial ran (``first`` keeps only the first
        layer); StoreError otherwise. The weights are stored as float32: a trial trained in
        float32 (the default dtype) predicts exactly as it did at its final evaluation."""
        from dropout_lab.backends import registry as backends
        from dropout_lab.backends.base import NetSpec
        from dropout_lab.dropout import make_plan
        from dropout_lab.store import SweepStore

        if self.status != Status.DONE:
            raise StoreError(f"trial {self.trial_id} is {self.status}: no trained network")
        arrays = self.weights or SweepStore(self.sweep_dir, warn=self.warn).load_weights(
            self.trial_id)
        self.weights = arrays
        cfg = self.config()
        layers = len(cfg.model.hidden) + 1
        if any(f"W{i}" not in arrays or f"b{i}" not in arrays for i in range(layers)):
            kept = "no weights" if not arrays else f"only {', '.join(sorted(arrays))}"
            raise StoreError(f"trial {self.trial_id} kept {kept}: rebuilding its network needs "
                             "eval.save_weights: all (set it and run the sweep with --fresh)")
        weights = [(arrays[f"W{i}"], arrays[f"b{i}"]) for i in range(layers)]
        sizes = [int(weights[0][0].shape[0]), *[int(w.shape[1]) for w, _ in weights]]
        plan = make_plan(cfg.dropout.variant, cfg.dropout.input_p, cfg.hidden_p(), sizes,
                         cfg.dtype)
        spec = NetSpec(tuple(sizes), cfg.model.activation, cfg.dtype, tuple(plan.test_scales()))
        optimizer = cfg.train.optimizer_spec()
        net = backends.create("numpy").build(spec, weights, optimizer, "cpu")
        return TrainedNetwork(net, cfg.dtype)

    def test_data(self) -> tuple[np.ndarray, np.ndarray]:
        """(x, y) of the test split this trial was evaluated on, after its subset, split and
        normalisation, in its dtype (the data set is loaded as the trial loaded it)."""
        from dropout_lab.data import load_dataset

        cfg = self.config()
        data = load_dataset(cfg.dataset, cfg.seed).astype(cfg.dtype)
        return data.x_test, data.y_test


class TrainedNetwork:
    """A trained MLP in evaluation mode (no dropout; test-time scales applied)."""

    def __init__(self, net: Network, dtype: str):
        self._net, self.dtype = net, dtype

    def logits(self, x: np.ndarray) -> np.ndarray:
        """Logits (N x classes) of ``x`` (N x features), computed in the trial's dtype."""
        out = self._net.forward(np.ascontiguousarray(x, dtype=self.dtype))
        return np.asarray(out[0] if isinstance(out, tuple) else out)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities (softmax of the logits, rows sum to 1), float64."""
        z = self.logits(x).astype(np.float64)
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return np.asarray(e / e.sum(axis=1, keepdims=True))

    def weights(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """[(W_l, b_l)], W_l of shape (inputs, outputs)."""
        return self._net.get_weights()


# -- a sweep ----------------------------------------------------------------------------------
class Sweep:
    """A sweep folder read back: ``trials`` are the current grid's; trials of earlier grids
    (before an axis changed) are in ``earlier_trials``, never mixed in."""

    def __init__(self, data: SweepData, trials: list[Trial],
                 axes: dict[str, list[Any]] | None = None, earlier: list[Trial] | None = None):
        self._data = data
        self.trials = trials
        self._axes = dict(data.axes) if axes is None else axes
        self._earlier = earlier or []  # earlier grids' trials the reader returned

    def __repr__(self) -> str:
        counts: dict[str, int] = {}
        for t in self.trials:
            counts[str(t.status)] = counts.get(str(t.status), 0) + 1
        shown = ", ".join(f"{n} {s}" for s, n in counts.items())
        return f"<Sweep {self.name!r} at {str(self.path)!r}: {shown or 'no trials'}>"

    @property
    def name(self) -> str:
        return self._data.name

    @property
    def path(self) -> Path:
        return self._data.sweep_dir

    @property
    def axes(self) -> dict[str, list[Any]]:
        """The current grid's axes and their values (sweep.yaml ``sweep``)."""
        return dict(self._axes)

    @property
    def config(self) -> dict[str, Any]:
        """The base config (sweep.yaml ``config``), the axes' values aside."""
        return self._data.base_config

    @property
    def failed(self) -> list[Trial]:
        return [t for t in self.trials if t.status in (Status.FAILED, Status.DIVERGED)]

    @property
    def earlier_trials(self) -> list[Trial]:
        """Finished trials stored in this folder by earlier grids (not in sweep.yaml's grid
        now), as the store's reader returns them; ``Trial.current`` is False."""
        return list(self._earlier)

    @property
    def all_trials(self) -> list[Trial]:
        """The current grid's trials, then the earlier grids' (``Trial.current`` tells)."""
        return [*self.trials, *self.earlier_trials]

    def trial(self, **params: Any) -> Trial:
        """The one trial of the current grid with these params (dotted keys as ``__``:
        ``trial(dropout__p=0.5, seed=0)``); KeyError when none or several match."""
        from dropout_lab.comparison.values import canon

        want = {k.replace("__", "."): canon(v) for k, v in params.items()}
        found = [t for t in self.trials
                 if all(canon(t.params.get(k)) == v for k, v in want.items())]
        if len(found) != 1:
            raise KeyError(f"{len(found)} trials match {params}")
        return found[0]

    def to_pandas(self, trials: Sequence[Trial] | None = None) -> DataFrame:
        """One row per trial (default: the current grid): ``trial_id``, ``status``, the params
        by axis name, the final numbers, ``epochs_trained``, ``stopped_by``, ``best_epoch``,
        every statistic by its metric name (``corr[1]``, ``mc_acc``, ...), ``health_flags``
        (comma-joined) with one bool column per flag, and ``train_seconds``."""
        pd = _pandas()
        rows = [_flat_row(t, list(self.axes)) for t in (self.trials if trials is None
                                                       else trials)]
        return pd.DataFrame(rows)

    def curves(self) -> DataFrame:
        """One row per trial and logged epoch: ``trial_id``, the params, then the epoch row
        of metrics.jsonl (``epoch``, ``fit_loss``, ``test_acc``, ...)."""
        pd = _pandas()
        rows = []
        for t in self.trials:
            for row in t.curve():
                rows.append({"trial_id": t.trial_id, **t.params, **row})
        return pd.DataFrame(rows)

    def comparison(self, **options: Any) -> Comparison:
        """The comparison model itself (:func:`dropout_lab.comparison.build` options)."""
        from dropout_lab.comparison import build_comparison

        return build_comparison(self.path, **options)

    def compare(self, other: Sweep | str | Path | None = None, *, by: str | None = None,
                at: str | int = "last", metrics: Sequence[str] | None = None,
                baseline: Any = None, best_by: str = "test_acc", level: float = 0.95,
                include_collapsed: bool = False, power: float = 0.8,
                learned: bool = False) -> DataFrame:
        """The comparison as a DataFrame, one row per (block, value, metric), with exactly the
        numbers ``compare -f json`` prints (built from the same JSON document).

        ``learned=True``: instead, learned vs swept (concrete dropout beside the swept optimum,
        ``learned_vs_swept`` of the JSON document): one row per concrete block and starting p,
        with the learned p per unit layer, the metric, the swept optimum and the paired
        difference (:func:`learned_frame`; empty without concrete trials).

        With ``other`` (a Sweep or a folder): ``compare A B`` instead, one row per (point,
        metric), B - A with ``other`` as B (see :mod:`dropout_lab.comparison.pairing`)."""
        from dropout_lab.comparison import parse_at

        when = parse_at(at)
        if other is not None:
            if by is not None or baseline is not None or best_by != "test_acc":
                raise ConfigError("compare(other): by, baseline and best_by are for one sweep")
            return self._compare_two(other, when, metrics, level, include_collapsed)
        from dropout_lab.config import P_KEY
        from dropout_lab.report.render import json_text, to_json_doc

        c = self.comparison(by=by or P_KEY, baseline=baseline,
                            metrics=list(metrics) if metrics else None, best_by=best_by,
                            level=level, at=when, include_collapsed=include_collapsed,
                            power=power)
        doc = json.loads(json_text(to_json_doc(c)))
        if learned:
            return learned_frame(doc)
        return comparison_frame(doc)

    def _compare_two(self, other: Sweep | str | Path, at: Any, metrics: Sequence[str] | None,
                     level: float, include_collapsed: bool) -> DataFrame:
        from dropout_lab.comparison.pairing import pair_sweeps, to_json_doc
        from dropout_lab.comparison.source import load as read
        from dropout_lab.report.render import json_text

        other_dir = other.path if isinstance(other, Sweep) else Path(other)
        epochs = isinstance(at, int)
        pair: SweepPair = pair_sweeps(read(self.path, epochs=epochs), read(other_dir, epochs),
                                      list(metrics) if metrics else None, level, at,
                                      include_collapsed)
        return pair_frame(json.loads(json_text(to_json_doc(pair))))


def learned_frame(doc: dict[str, Any]) -> DataFrame:
    """``learned_vs_swept`` of a compare JSON document as a DataFrame: one row per concrete
    block and starting p: its selectors, ``start``, ``seeds``, ``learned_p[l]`` with
    ``learned_p[l]_ci_low``/``_ci_high`` per unit layer, the ``metric`` name, ``mean``,
    ``ci_low``, ``ci_high``, the swept optimum (``optimum``, ``optimum_mean``,
    ``optimum_ci_low``, ``optimum_ci_high``) and the paired ``diff``, ``diff_ci_low``,
    ``diff_ci_high``, ``diff_n``."""
    pd = _pandas()
    rows = []
    for entry in doc.get("learned_vs_swept") or []:
        opt = entry["swept_optimum"]
        for r in entry["rows"]:
            row: dict[str, Any] = {**entry["selectors"], "start": r["start"],
                                   "seeds": len(r["seeds"]), "metric": entry["metric"]}
            for layer, s in enumerate(r["learned_p"]):
                if s is not None:
                    ci = s.get("ci") or [None, None]
                    row[f"learned_p[{layer}]"] = s["mean"]
                    row[f"learned_p[{layer}]_ci_low"], row[f"learned_p[{layer}]_ci_high"] = ci
            m = r["metric"]
            row["mean"] = m["mean"]
            row["ci_low"], row["ci_high"] = m.get("ci") or [None, None]
            row["optimum"] = None if opt is None else opt["value"]
            om = {} if opt is None else opt["metric"]
            row["optimum_mean"] = om.get("mean")
            row["optimum_ci_low"], row["optimum_ci_high"] = om.get("ci") or [None, None]
            d = r["diff"] or {}
            row["diff"], row["diff_n"] = d.get("mean"), d.get("n", 0)
            row["diff_ci_low"], row["diff_ci_high"] = d.get("ci") or [None, None]
            rows.append(row)
    return pd.DataFrame(rows)


def _flat_row(t: Trial, axes: list[str]) -> dict[str, Any]:
    r = t.result
    row: dict[str, Any] = {"trial_id": t.trial_id, "status": str(t.status)}
    row.update({a: t.params.get(a) for a in axes})
    row.update({a: v for a, v in t.params.items() if a not in row})  # an earlier grid's axes
    final = t.final or {}
    row.update({k: final.get(k) for k in FINAL_KEYS})
    best = r.get("best_epoch") or {}
    row.update({"epochs_trained": r.get("epochs_trained"), "stopped_by": r.get("stopped_by"),
                "best_epoch": best.get("epoch")})
    row.update({k: v for k, v in t.statistics().items() if k not in FINAL_KEYS})
    flags = list((t.health or {}).get("flags") or [])
    row["health_flags"] = ",".join(flags) if t.health is not None else None
    for flag in FLAGS:
        row[f"health.{flag}"] = (flag in flags) if t.health is not None else None
    row["train_seconds"] = (r.get("timing") or {}).get("train_seconds")
    return row


def comparison_frame(doc: dict[str, Any]) -> DataFrame:
    """The ``compare -f json`` document as a DataFrame: one row per (block, value, metric);
    the block axes and the ``by`` axis get a column each."""
    pd = _pandas()
    rows = []
    for block in doc["blocks"]:
        for row in block["rows"]:
            for name, m in row["metrics"].items():
                ci, diff = m.get("ci") or [None, None], m.get("diff") or {}
                dci = diff.get("ci") or [None, None]
                rows.append({
                    **block["selectors"], doc["by"]: row["value"], "metric": name,
                    "n": m["n"], "mean": m["mean"], "sd": m["sd"], "ci_lo": ci[0],
                    "ci_hi": ci[1], "diff_n": diff.get("n"), "diff_mean": diff.get("mean"),
                    "diff_sd": diff.get("sd"), "diff_ci_lo": dci[0], "diff_ci_hi": dci[1],
                    "diff_excludes_zero": diff.get("excludes_zero"),
                    "diff_mdd": diff.get("mdd"), "baseline": row["baseline"],
                    "best": row["best"], "indistinguishable_from_best":
                        row["indistinguishable_from_best"],
                    "trials_done": row["trials"]["done"], "trials_total": row["trials"]["total"],
                    "trials_excluded": row["excluded"], "seeds": row["seeds"]})
    return pd.DataFrame(rows)


def pair_frame(doc: dict[str, Any]) -> DataFrame:
    """The ``compare A B -f json`` document as a DataFrame: one row per (point, metric)."""
    pd = _pandas()
    rows = []
    for p in doc["points"]:
        for name, m in p["metrics"].items():
            a, b, d = m["a"], m["b"], m["diff"]
            ci = d.get("ci") or [None, None]
            rows.append({**p["params"], "metric": name, "pairing": d["kind"],
                         "a_n": a["n"], "a_mean": a["mean"], "a_sd": a["sd"],
                         "b_n": b["n"], "b_mean": b["mean"], "b_sd": b["sd"],
                         "diff_mean": d["mean"], "diff_ci_lo": ci[0], "diff_ci_hi": ci[1],
                         "diff_df": d["df"], "diff_excludes_zero": d["excludes_zero"],
                         "paired_seeds": d["seeds"]})
    return pd.DataFrame(rows)
