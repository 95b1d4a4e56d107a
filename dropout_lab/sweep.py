"""Axes -> grid points: the Cartesian grid of the sweep, each point with a stable trial id.

A trial's identity is its resolved config (the trial id, a hash of it) plus the data it read:
the id stays a hash of the config (existing runs directories keep their ids), and a stored
result whose ``env.data`` fingerprint differs from the data's current fingerprint is
:func:`stale <changed_data>`: the runner trains it again instead of reusing it. The code
version is recorded beside it (``env.code``) but does not make a result stale
(docs/results.md, "What makes a trial re-run").
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dropout_lab.config import (
    MAX_TRIALS,
    RESULT_NEUTRAL_KEYS,
    ConfigError,
    ExperimentConfig,
    check_grid_size,
    set_dotted,
    validate,
)


@dataclass(frozen=True)
class GridPoint:
    """One point of the grid: its id, the swept values and the fully resolved config.

    What the runner schedules and an executor runs (it pickles: worker processes and Ray
    tasks get it as it is); running it gives a :class:`~dropout_lab.trial.TrialOutcome`."""

    trial_id: str
    params: dict[str, Any]
    config: ExperimentConfig
    # The checkpoint a killed run of this trial left (dropout_lab/checkpoint.py): the trial
    # continues from it. Set by the runner, which reads it; travels with the point.
    resume: bytes | None = field(default=None, repr=False, compare=False)
    # Set with ``resume`` when a pack wrote that checkpoint (after this epoch): the point
    # continues on the pack's code path, packed with points stopped at the same epoch
    # (packs/plan.group), so that it ends bit for bit as the uninterrupted pack.
    resume_in_pack: int | None = field(default=None, compare=False)

    @property
    def config_dict(self) -> dict[str, Any]:
        return self.config.trial_dict()


# Optional keys added after runs directories existed: left out of a trial's id while null, so
# every trial stored before them keeps its id (and is reused by a re-run).
ABSENT_WHEN_NULL = ("dropout.concrete",)


def trial_id_of(config: ExperimentConfig) -> str:
    """A short hash of the resolved trial config (name and sweep excluded).

    The same point of the grid always gets the same id, whichever sweep file it came from,
    so a re-run finds the trials it already has."""
    return _id_of_dump(config.model_dump(mode="json", exclude={"sweep"}))


def _id_of_dump(dump: dict[str, Any]) -> str:
    """:func:`trial_id_of` from the config's JSON dump (sweep already excluded)."""
    blob = json.dumps(trial_content(dump), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def trial_content(dump: dict[str, Any]) -> dict[str, Any]:
    """What identifies a trial in its config dump: all of it but the name, the axes, the
    search section (how points are chosen, not what a point computes) and the keys that never
    change its numbers (RESULT_NEUTRAL_KEYS: how often it checkpoints)."""
    content = {k: v for k, v in dump.items() if k not in ("name", "sweep", "search")}
    for key in RESULT_NEUTRAL_KEYS:
        section, _, leaf = key.partition(".")
        if isinstance(content.get(section), dict) and leaf in content[section]:
            content[section] = {k: v for k, v in content[section].items() if k != leaf}
    for key in ABSENT_WHEN_NULL:  # keys added later: trials from before keep their ids
        section, _, leaf = key.partition(".")
        if isinstance(content.get(section), dict) and content[section].get(leaf, 0) is None:
            content[section] = {k: v for k, v in content[section].items() if k != leaf}
    return content


def expand(config: ExperimentConfig, where: str = "config",
           max_trials: int = MAX_TRIALS) -> list[GridPoint]:
    """Every combination of the sweep axes, in the order the axes and values are written.

    The size is checked from the axis lengths before anything is built; then each grid point
    is validated exactly once (the error names the point) and dumped once."""
    if len(config.grid_axes()) != len(config.sweep):
        raise ConfigError(f"{where}: a range axis without a step is drawn by a search "
                          "(dropout_lab.search), not expanded to a grid")
    check_grid_size(config.grid_axes(), max_trials, where)
    axes = list(config.grid_axes().items())
    base = json.dumps(config.model_dump(mode="json", exclude={"sweep"}))
    points: list[GridPoint] = []
    seen: set[str] = set()
    for combo in itertools.product(*(values for _, values in axes)):
        data = json.loads(base)  # deep copy of plain JSON data
        for (key, _), value in zip(axes, combo, strict=False):
            set_dotted(data, key, value)
        label = ", ".join(f"{k}={v!r}" for (k, _), v in zip(axes, combo, strict=False))
        cfg = validate(data, where=f"{where}: sweep point {label}" if axes else where)
        dump = cfg.model_dump(mode="json", exclude={"sweep"})
        trial_id = _id_of_dump(dump)
        if trial_id in seen:  # duplicate values on an axis: keep one trial
            continue
        seen.add(trial_id)
        # The validated values (so ``1`` written for a float p reads back ``1.0``).
        params = {key: value_at(dump, key) for key, _ in axes}
        points.append(GridPoint(trial_id, params, cfg))
    return points


def value_at(dump: dict[str, Any], key: str) -> Any:
    """The value at a dotted key of a config dump."""
    node: Any = dump
    for part in key.split("."):
        node = node[part]
    return node


def changed_data(points: Iterable[GridPoint],
                 stored: Callable[[GridPoint], Mapping[str, Any] | None]) -> dict[str, str]:
    """trial id -> why, for the points whose stored result (``stored(point)``) was trained on
    other data than the data set now holds (content fingerprints differ).

    Results without a fingerprint (made before fingerprints were recorded), generated data
    and data sets whose files cannot be found now are not reported: there is nothing to
    compare (a missing file stops the pending trials' preflight with its own message)."""
    from dropout_lab.data.fingerprint import fingerprint, stale_reason
    from dropout_lab.errors import DataError

    current: dict[str, dict[str, Any] | None] = {}
    out: dict[str, str] = {}
    for point in points:
        result = stored(point)
        env = result.get("env") if isinstance(result, Mapping) else None
        old = env.get("data") if isinstance(env, dict) else None
        if not isinstance(old, dict) or not isinstance(old.get("sha256"), str):
            continue
        key = point.config.dataset.model_dump_json()
        if key not in current:
            try:
                # read-only: a --dry-run schedules too, and writes nothing
                current[key] = fingerprint(point.config.dataset, write_cache=False)
            except DataError:
                current[key] = None
        reason = stale_reason(old, current[key])
        if reason:
            out[point.trial_id] = reason
    return out
