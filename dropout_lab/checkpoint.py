"""Checkpoints: a trial's training state after an epoch, so a killed trial continues from it
and ends with exactly the result it would have had uninterrupted.

A checkpoint holds everything the next epoch depends on:

* the network (:meth:`~dropout_lab.backends.mlp.MLP.export_state`): weights, biases, the
  optimizer's moments (momentum's velocity; Adam's m and v), the step counter t (Adam's bias
  corrections and the clock of the subnormal flush), the current lr and momentum;
* random state: the ``order`` and ``dropout`` streams (NumPy bit-generator states) and the
  network's own (the torch.Generator of ``dropout.noise: device``);
* the loop (:class:`~dropout_lab.training.LoopState`): the epochs completed (the schedules
  are functions of the epoch, so this is their position), early stopping's best validation
  loss and epochs since it, why training stopped;
* the metrics rows so far (the best epoch is chosen from them at the end) and the training
  seconds spent.

A pack (dropout_lab/packs) writes one such checkpoint per member, in the member's own trial
folder, with the member's slice of the stacked state in the solo names and shapes and
``"stacked": true`` in the JSON: the runner then resumes it in a pack
(``GridPoint.resume_in_pack``; see docs/reliability.md).

Everything else a trial uses is rebuilt from its config, identically: the data set, the
dropout plan, the curve subset, the after-training statistics' ``eval`` stream.

Format: an uncompressed ``.npz`` (no pickles) whose arrays are ``net.W0``, ``net.m0``, ...,
``random.<name>``, and ``meta``, UTF-8 JSON of the rest. The JSON names the trial, the
fingerprint of its config (:func:`fingerprint`) and the format version; a checkpoint whose
file is damaged or truncated (the zip's CRC), or that names another trial, config or format
is ignored with one warning line and the trial starts over. The JSON also holds a SHA-256
of the arrays' contents, checked on reading: the zip's own CRCs cover each member's data but
not every header byte.

Who writes it: the trial captures it (in whatever process or Ray task runs it) and hands the
bytes to the driver with its epoch's row, as it hands the row; the driver writes it
(:mod:`dropout_lab.store.checkpoint`), keeping the runner the only writer of the runs directory
(no shared file system needed). See docs/reliability.md for the reasons and the costs.

The network is read and restored only through ``export_state``/``import_state`` and
``random_state``/``restore_random_state``, which work on the state lists of
:mod:`dropout_lab.backends.mlp`; a stacked network (packs) that keeps those lists with a
leading member axis can use :func:`capture` and :func:`restore` unchanged.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from dropout_lab import __version__, seeds
from dropout_lab.interrupts import interrupts_deferred
from dropout_lab.training import LoopState, TrainingLog

if TYPE_CHECKING:
    from dropout_lab.prepared import Prepared
    from dropout_lab.store import SweepStore
    from dropout_lab.sweep import GridPoint

FORMAT = 1
# train.checkpoint_every: auto writes a checkpoint after the first epoch that ends at least
# this many seconds of training after the previous checkpoint (or the trial's start): a kill
# loses at most this much plus one epoch, and a trial shorter than this writes none at all.
AUTO_SECONDS = 60.0

# (trial_id, epoch, data): a checkpoint on its way to the driver, which writes it
CheckpointCallback = Callable[[str, int, bytes], None]


class CheckpointError(Exception):
    """A checkpoint that cannot be used for this trial (damaged, another config, another
    format). Never shown as a traceback: the trial starts over, with one warning line."""


def fingerprint(config_dict: dict[str, Any]) -> str:
    """SHA-256 of what identifies the trial in its resolved config (the trial id's content,
    in full): a checkpoint of another config never continues this one."""
    from dropout_lab.sweep import trial_content

    blob = json.dumps(trial_content(config_dict), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


class Policy:
    """When a checkpoint is due: every N epochs, never (0), or ``auto`` (AUTO_SECONDS of
    training since the last one)."""

    def __init__(self, every: int | str, clock: Callable[[], float] = time.monotonic) -> None:
        self.every, self.clock = every, clock
        self.last = clock()

    def due(self, epoch: int) -> bool:
        if self.every == "auto":
            now = self.clock()
            if now - self.last < AUTO_SECONDS:
                return False
            self.last = now
            return True
        return isinstance(self.every, int) and self.every > 0 and epoch % self.every == 0


@dataclass
class Checkpoint:
    """A parsed checkpoint: the JSON part and the arrays."""

    meta: dict[str, Any]
    arrays: dict[str, np.ndarray]

    @property
    def epoch(self) -> int:
        return int(self.meta["epoch"])

    @property
    def rows(self) -> list[dict[str, Any]]:
        return list(self.meta["rows"])

    @property
    def stacked(self) -> bool:
        """Written by a pack (a member's slice of the stacked state)."""
        return self.meta.get("stacked") is True


def capture(prep: Prepared, state: LoopState, log: TrainingLog, trial_id: str,
            train_seconds: float, data: dict[str, Any] | None = None) -> bytes:
    """The checkpoint of ``prep``'s trial after epoch ``state.epoch``, as bytes. Reads only:
    no random number is drawn and nothing the trial holds changes. ``data``: the data set's
    fingerprint (``env.data``), so a resume on changed files is refused."""
    arrays, scalars = prep.network.export_state()
    return capture_state(prep.config.trial_dict(), arrays, scalars, prep.network.random_state(),
                         state, log, trial_id, train_seconds, data)


def capture_state(config_dict: dict[str, Any], arrays: dict[str, np.ndarray],
                  scalars: dict[str, Any], extra: dict[str, np.ndarray], state: LoopState,
                  log: TrainingLog, trial_id: str, train_seconds: float,
                  data: dict[str, Any] | None = None, stacked: bool = False) -> bytes:
    """:func:`capture` from the network's state as :meth:`~dropout_lab.backends.mlp.MLP.
    export_state` and ``random_state`` give it: a pack hands each member's slice of the
    stacked state (dropout_lab/packs/stacked.py), in the solo trial's names and shapes, with
    ``stacked`` True (meta ``"stacked"``): the trial continues on the pack's code path
    (:func:`stacked_epoch`), which keeps it bit for bit on the uninterrupted pack's numbers."""
    meta = {
        "format": FORMAT, "dropout_lab": __version__, "trial_id": trial_id,
        "fingerprint": fingerprint(config_dict), "epoch": state.epoch,
        "network": scalars,
        "streams": {"order": state.order_rng.bit_generator.state,
                    "dropout": state.noise_rng.bit_generator.state},
        "early_stopping": {"best_val": state.best_val, "since_best": state.since_best},
        "stopped_by": log.stopped_by, "rows": log.rows, "train_seconds": train_seconds,
        "data": data, "stacked": stacked,
    }
    named: dict[str, Any] = {f"net.{k}": v for k, v in arrays.items()}
    named.update({f"random.{k}": v for k, v in extra.items()})
    meta["sha256"] = _digest(named)  # of the arrays' contents: a changed bit is noticed
    # JSON keeps inf (a best validation loss not yet set) as Infinity: Python reads it back.
    named["meta"] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
    buf = io.BytesIO()
    with interrupts_deferred():  # a Ctrl-C inside savez would store the trial as failed
        np.savez(buf, **named)  # uncompressed: the weights barely compress, and it is faster
    return buf.getvalue()


def _digest(arrays: dict[str, np.ndarray]) -> str:
    """SHA-256 over every array's name, dtype, shape and bytes, in name order."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def parse(data: bytes) -> Checkpoint:
    """The checkpoint in ``data``; CheckpointError for anything that is not a whole one."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}  # reading checks each member's CRC
        meta = json.loads(arrays.pop("meta").tobytes().decode("utf-8"))
    except Exception as exc:  # noqa: BLE001 - damaged bytes reach zipfile/numpy anywhere
        raise CheckpointError(f"damaged or truncated ({type(exc).__name__})") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("rows"), list) \
            or not isinstance(meta.get("epoch"), int):
        raise CheckpointError("not a dropout-lab checkpoint")
    if meta.get("sha256") != _digest(arrays):  # the zip's CRCs do not cover every byte
        raise CheckpointError("damaged (its arrays do not match their SHA-256)")
    return Checkpoint(meta, arrays)


def check(ckpt: Checkpoint, trial_id: str, config_dict: dict[str, Any]) -> None:
    """CheckpointError unless ``ckpt`` is one of this format, trial and config."""
    meta = ckpt.meta
    if meta.get("format") != FORMAT or meta.get("dropout_lab") != __version__:
        raise CheckpointError(f"written by another version (format {meta.get('format')}, "
                              f"dropout-lab {meta.get('dropout_lab')})")
    if meta.get("trial_id") != trial_id:
        raise CheckpointError(f"it belongs to trial {meta.get('trial_id')!r}")
    if meta.get("fingerprint") != fingerprint(config_dict):
        raise CheckpointError("it was written for another config")
    epochs = config_dict["train"]["epochs"]
    if not 1 <= ckpt.epoch <= epochs or len(ckpt.rows) != ckpt.epoch:
        raise CheckpointError(f"epoch {ckpt.epoch} with {len(ckpt.rows)} rows does not fit "
                              f"a trial of {epochs} epochs")


def check_data(ckpt: Checkpoint, data: dict[str, Any] | None) -> None:
    """CheckpointError when the checkpoint was taken on other data files than ``data`` (the
    data set's fingerprint now; generated data has none and always fits)."""
    from dropout_lab.data.fingerprint import stale_reason

    reason = stale_reason(ckpt.meta.get("data"), data)
    if reason:
        raise CheckpointError(reason.replace("since it ran", "since the checkpoint"))


def restore(ckpt: Checkpoint, prep: Prepared, log: TrainingLog) -> tuple[LoopState, float]:
    """Put ``prep``'s network and ``log`` where the checkpoint left them; returns the loop
    state to continue from and the training seconds already spent. CheckpointError, before
    anything changes, when it does not fit the network."""
    meta = ckpt.meta
    seed = prep.config.seed
    try:
        state = LoopState(ckpt.epoch, seeds.rng(seed, "order"), seeds.rng(seed, "dropout"),
                          float(meta["early_stopping"]["best_val"]),
                          int(meta["early_stopping"]["since_best"]))
        state.order_rng.bit_generator.state = meta["streams"]["order"]
        state.noise_rng.bit_generator.state = meta["streams"]["dropout"]
        net_arrays = {k[4:]: v for k, v in ckpt.arrays.items() if k.startswith("net.")}
        extra = {k[7:]: v for k, v in ckpt.arrays.items() if k.startswith("random.")}
        prep.network.import_state(net_arrays, meta["network"])  # checks before it changes
        prep.network.restore_random_state(extra)
        stopped_by, seconds = str(meta["stopped_by"]), float(meta["train_seconds"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"it does not fit this trial ({exc})") from None
    log.rows[:] = ckpt.rows
    log.stopped_by = stopped_by
    return state, seconds


class Checkpointer:
    """The training loop's ``after_epoch``: captures a checkpoint when the policy says it is
    due and hands it to ``send`` (which takes it to the driver)."""

    def __init__(self, prep: Prepared, trial_id: str, send: CheckpointCallback,
                 seconds_before: float = 0.0, data: dict[str, Any] | None = None) -> None:
        self.prep, self.trial_id, self.send, self.data = prep, trial_id, send, data
        self.policy = Policy(prep.config.train.checkpoint_every)
        self.seconds_before = seconds_before
        self.started = time.perf_counter()

    def __call__(self, state: LoopState, log: TrainingLog) -> None:
        if self.policy.due(state.epoch):
            spent = self.seconds_before + time.perf_counter() - self.started
            self.send(self.trial_id, state.epoch,
                      capture(self.prep, state, log, self.trial_id, spent, self.data))


# -- the driver's side ----------------------------------------------------------------------

def resumable(store: SweepStore, point: GridPoint, warn: Callable[[str], None]
              ) -> tuple[GridPoint, list[dict[str, Any]]]:
    """``point`` with the checkpoint its trial left (``resume``) and the metrics rows it
    holds, when there is a usable one; else ``point`` unchanged and no rows. An unusable
    checkpoint (damaged, truncated, another trial, config or version) is removed, with one
    warning line: the trial starts over."""
    from dropout_lab.store.checkpoint import checkpoint_path, read_checkpoint, remove_checkpoint

    data, problem = read_checkpoint(store, point.trial_id)
    if data is None and problem is None:
        return point, []
    try:
        if data is None:
            raise CheckpointError(problem or "not readable")
        ckpt = parse(data)
        check(ckpt, point.trial_id, point.config_dict)
    except CheckpointError as exc:
        warn(f"{checkpoint_path(store, point.trial_id)}: checkpoint ignored ({exc}); the trial "
             "starts over")
        remove_checkpoint(store, point.trial_id)
        return point, []
    return replace(point, resume=data,
                   resume_in_pack=ckpt.epoch if ckpt.stacked else None), ckpt.rows
