"""Training a pack: the interface the sweep side calls (:func:`pack_key`, :func:`run_pack`).

:func:`pack_key` says which grid points may share a pack; :func:`run_pack` trains them and
returns one :class:`~dropout_lab.trial.TrialOutcome` per member, in order, each exactly what
:func:`~dropout_lab.trial.run_trial` returns for it alone, plus ``env["pack"]`` (size, index).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dropout_lab import variants
from dropout_lab.checkpoint import CheckpointCallback
from dropout_lab.config import ExperimentConfig
from dropout_lab.errors import ConfigError
from dropout_lab.trial import EpochCallback, TrialOutcome

# Config keys (dotted) a member may set on its own; every other key must be equal in a pack.
PER_MEMBER_KEYS = (
    "seed", "dropout.p", "dropout.input_p", "train.lr", "train.lr_schedule", "train.momentum",
    "train.momentum_schedule", "train.weight_decay", "train.max_norm", "train.early_stopping",
    "eval",
)


# A member's final outcome, handed over as soon as it is final (see run_pack).
OutcomeCallback = Callable[[TrialOutcome], None]


@dataclass(frozen=True)
class PackMember:
    """One grid point of a pack: its resolved config dict, trial id and swept params."""

    config: dict[str, Any]  # the resolved config dict of the grid point (GridPoint.config_dict)
    trial_id: str
    params: dict[str, Any]
    # the checkpoint it continues from (GridPoint.resume), if any
    resume: bytes | None = field(default=None, repr=False, compare=False)


def _freeze(value: Any) -> Any:
    """A hashable copy of a JSON-like value (dicts as sorted item tuples, lists as tuples)."""
    if isinstance(value, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


def pack_key(config: ExperimentConfig) -> tuple[Any, ...] | None:
    """What members of one pack must share: the whole resolved config except the run's name
    and the per-member keys (:data:`PER_MEMBER_KEYS`): backend, device, dtype, the data set
    section (``train_size`` included: members step through batches together, so they need
    training sets of one size), the architecture, the variant and where noise is drawn,
    epochs, batch size and optimizer. None: this config cannot be packed (any backend but
    torch; concrete dropout, whose p is a parameter the stacked network does not hold): such
    a point runs alone, as an ordinary trial."""
    if config.backend != "torch" or not variants.get(config.dropout.variant).packs:
        return None
    dump = config.model_dump(mode="json", exclude={"sweep", "name"})
    for dotted in PER_MEMBER_KEYS:
        section, _, key = dotted.rpartition(".")
        holder = dump[section] if section else dump
        holder.pop(key, None)
    return ("pack", _freeze(dump))


def run_pack(members: list[PackMember], threads: int | None = None, workers: int = 1,
             on_epoch: EpochCallback | None = None,
             on_outcome: OutcomeCallback | None = None,
             on_checkpoint: CheckpointCallback | None = None) -> list[TrialOutcome]:
    """Train the members as one stacked network; one TrialOutcome per member, in order, each
    exactly what run_trial returns for it alone, with ``env["pack"] = {"size", "index"}``.

    Each member draws its initial weights, mini-batch order and dropout masks from its own
    trial's named streams; ``on_epoch`` gets each member's rows under its own trial id. A member
    whose loss turns non-finite stops as ``diverged`` and leaves the pack (the others go on
    unchanged); an exception in the stacked training fails the members not finished by then;
    one in a member's own evaluation or statistics fails that member only. A config that
    cannot be read raises ConfigError (as run_trial does), as do members of different
    :func:`pack_key`.

    ``on_outcome`` (optional) gets each member's outcome as soon as it is final (an
    early-stopped or diverged member before the pack ends), so a driver can store it at once
    and a killed pack re-trains only the members not stored.

    Checkpoints (``train.checkpoint_every``, one policy for the pack: its members step in
    lockstep): ``on_checkpoint`` gets one per member still training, each the member's slice
    of the stacked state in the solo format (dropout_lab/checkpoint.py). A member with a
    ``resume`` continues from it; members continuing from different epochs (or starting
    over because their checkpoint did not fit) train as separate stacks, one after the
    other."""
    from dropout_lab.config import validate

    started, t_start = time.time(), time.perf_counter()
    configs = [validate(m.config, where=f"trial {m.trial_id}") for m in members]
    keys = {pack_key(c) for c in configs}
    if None in keys or len(keys) > 1:
        raise ConfigError("these trials cannot share a pack: they differ in more than "
                          f"{', '.join(PER_MEMBER_KEYS)} (or their backend does not pack)")
    try:
        from dropout_lab.packs.stacked import Pack  # imports torch: only when a pack trains
    except ImportError:
        # no torch: each member fails as its solo trial does, with the backend's message
        outcomes = []
        for index, m in enumerate(members):
            outcomes.append(_solo(m, index, len(members), threads, workers, on_epoch))
            if on_outcome is not None:
                on_outcome(outcomes[-1])
        return outcomes
    pack = Pack(members, configs, threads, workers, on_epoch, started, t_start, on_outcome,
                on_checkpoint)
    pack.train()
    return [outcome for outcome in pack.outcomes if outcome is not None]


def _solo(member: PackMember, index: int, size: int, threads: int | None, workers: int,
          on_epoch: EpochCallback | None) -> TrialOutcome:
    """Member ``index`` run alone (run_trial), marked as a member of its pack."""
    from dropout_lab.trial import run_trial

    outcome = run_trial(member.config, member.trial_id, member.params, threads, workers,
                        on_epoch, resume=member.resume)
    outcome.result["env"]["pack"] = {"size": size, "index": index}
    return outcome
