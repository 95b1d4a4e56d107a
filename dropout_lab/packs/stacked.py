"""The stacked training of a pack: members' trials around one :class:`TorchPackNetwork`.

Each member is prepared as its solo trial is (:func:`~dropout_lab.trial.prepare`: data,
initial weights from its ``init`` stream, its dropout plan) and keeps its epoch bookkeeping
(:class:`~dropout_lab.training.EpochLoop`: schedules, order stream, rows, early stopping,
divergence). The optimizer steps of all members run as one stacked network
(:class:`~dropout_lab.backends.torch_pack.TorchPackNetwork`, epochs in
:class:`~dropout_lab.packs.epochs.PackEpochs`); after each epoch every member is evaluated on
its own slice of the weights through its own solo network (the same code, so the same numbers
as alone), and its result is assembled with :func:`~dropout_lab.trial.assemble_result` when it
finishes. A member that finished, diverged or failed leaves the stack.
"""

from __future__ import annotations

import dataclasses
import time
import traceback
from typing import TYPE_CHECKING, Any

import numpy as np

from dropout_lab.backends.torch_backend import TorchNetwork
from dropout_lab.backends.torch_pack import TorchPackNetwork
from dropout_lab.config import ExperimentConfig
from dropout_lab.errors import DivergedError
from dropout_lab.evaluation import (
    EVAL_CHUNK,
    EvalSteps,
    Request,
    chunk_loss_correct,
    loss_and_accuracy,
)
from dropout_lab.packs.epochs import PackEpochs
from dropout_lab.result import Result, Status
from dropout_lab.training import EpochLoop, TrainingLog
from dropout_lab.trial import (
    EpochCallback,
    Prepared,
    TrialOutcome,
    assemble_result,
    new_result,
    prepare,
    record_environment,
)

if TYPE_CHECKING:
    from dropout_lab.packs.train import OutcomeCallback, PackMember


_DATA_FIELDS = ("x_train", "y_train", "x_test", "y_test", "x_val", "y_val")


def _equal(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    if a is None or b is None:
        return a is b
    return a is b or (a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b))


class Member:
    """A member in training: its prepared trial, result, log and epoch bookkeeping."""

    def __init__(self, index: int, member: PackMember, prep: Prepared, result: Result,
                 setup_seconds: float, on_epoch: EpochCallback | None) -> None:
        self.index, self.member, self.prep, self.result = index, member, prep, result
        self.setup_seconds = setup_seconds
        self.log = TrainingLog()
        epochs = prep.config.train.epochs

        def forward(row: dict[str, Any]) -> None:
            if on_epoch is not None:
                on_epoch(member.trial_id, row["epoch"], epochs, row)

        self.loop = EpochLoop(prep, forward, self.log)


class Pack:
    """The members of one pack, their stacked network, and their outcomes as they finish."""

    def __init__(self, members: list[PackMember], configs: list[ExperimentConfig],
                 threads: int | None, workers: int, on_epoch: EpochCallback | None,
                 started: float, t_start: float, on_outcome: OutcomeCallback | None = None
                 ) -> None:
        self.started, self.t_start = started, t_start
        self.on_outcome = on_outcome
        self.outcomes: list[TrialOutcome | None] = [None] * len(members)
        self._assembly_seconds = 0.0  # spent assembling finished members' results
        self.live: list[Member] = []
        for index, (member, config) in enumerate(zip(members, configs, strict=True)):
            result = new_result(config, member.trial_id, member.params, threads, workers)
            result["env"]["pack"] = {"size": len(members), "index": index}
            t0 = time.perf_counter()
            try:
                prep = prepare(config, threads)
                record_environment(result, prep)
                self._share_data(prep)
            except Exception:  # this member's own data or backend: it alone fails
                self._fail(index, member, result, traceback.format_exc(), [])
                continue
            self.live.append(Member(index, member, prep, result, time.perf_counter() - t0,
                                     on_epoch))

    def _share_data(self, prep: Prepared) -> None:
        """Point each of this member's data arrays at an earlier member's equal one (a sweep
        over p or lr has one data set: K copies of MNIST would be K x 190 MB). Nothing writes
        to them."""
        data = prep.data
        shared: dict[str, Any] = {}
        for name in _DATA_FIELDS:
            mine = getattr(data, name)
            for other in self.live:
                theirs = getattr(other.prep.data, name)
                if mine is not None and _equal(mine, theirs):
                    shared[name] = theirs  # (also lets evaluation see one input for all)
                    break
        if shared:
            prep.data = dataclasses.replace(data, **shared)

    # -- outcomes -----------------------------------------------------------------------------
    def _close(self, index: int, member: PackMember, result: Result, rows: list[dict[str, Any]],
               error: str | None = None, arrays: dict[str, np.ndarray] | None = None) -> None:
        result["timing"]["total_seconds"] = time.perf_counter() - self.t_start
        result["timing"]["started_at"] = self.started
        outcome = TrialOutcome(member.trial_id, result["status"], result, rows, error,
                               arrays or {})
        self.outcomes[index] = outcome
        if self.on_outcome is not None:
            self.on_outcome(outcome)

    def _fail(self, index: int, member: PackMember, result: Result, error: str,
              rows: list[dict[str, Any]]) -> None:
        result["status"] = Status.FAILED
        result["error"] = error.strip().splitlines()[-1]
        self._close(index, member, result, rows, error)

    def _finish(self, m: Member, t_train: float, diverged: str | None = None) -> None:
        """Member m trained to its end (or diverged): assemble its result as run_trial does."""
        result = m.result
        timing = result["timing"]
        t_done = time.perf_counter()
        # the pack's training time until now, less the other members' result assembly
        train_seconds = t_done - t_train - self._assembly_seconds
        try:
            arrays: dict[str, np.ndarray] = {}
            if diverged is not None:
                result["status"] = Status.DIVERGED
                result["reason"] = diverged
            else:
                try:
                    arrays = assemble_result(m.prep, m.log, result)
                finally:
                    self._assembly_seconds += time.perf_counter() - t_done
            timing["setup_seconds"], timing["train_seconds"] = m.setup_seconds, train_seconds
        except Exception:  # its own statistics: it alone fails
            self._fail(m.index, m.member, result, traceback.format_exc(), m.log.rows)
            return
        self._close(m.index, m.member, result, m.log.rows, None, arrays)

    # -- training -----------------------------------------------------------------------------
    def train(self) -> None:
        """Train the live members as one network until each has finished."""
        if not self.live:
            return
        t_train = time.perf_counter()
        try:
            net, epochs = self._build()
            for epoch in range(1, self.live[0].prep.config.train.epochs + 1):
                self._epoch(net, epochs, epoch, t_train)
                if not self.live:
                    return
        except Exception:  # the stacked training: every member not finished fails
            error = traceback.format_exc()
            for m in self.live:
                self._fail(m.index, m.member, m.result, error, m.log.rows)
            self.live = []

    def _build(self) -> tuple[TorchPackNetwork, PackEpochs]:
        preps = [m.prep for m in self.live]
        first = preps[0]
        net = TorchPackNetwork(
            first.spec, [p.network.get_weights() for p in preps],
            [p.config.train.optimizer_spec() for p in preps],
            [list(p.spec.test_scales) or [1.0] * (len(first.spec.sizes) - 1) for p in preps],
            first.device)
        for p in preps:
            # each member's own network now only evaluates (views of its slice of the pack):
            # it keeps no optimizer state of its own
            solo = p.network
            if isinstance(solo, TorchNetwork):
                solo._m, solo._v, solo._dW = [], [], []
        epochs = PackEpochs(net, preps, [m.loop.noise_rng for m in self.live],
                            first.config.dropout.noise)
        self._slot = list(range(len(self.live)))  # live member i -> its PackEpochs index
        return net, epochs

    def _epoch(self, net: TorchPackNetwork, epochs: PackEpochs, epoch: int,
               t_train: float) -> None:
        """One stacked epoch, then each member's row; finished members leave the pack."""
        orders, lrs, momenta = [], [], []
        for m in self.live:
            lr, momentum, order = m.loop.begin(epoch)
            orders.append(order)
            lrs.append(lr)
            momenta.append(momentum)
        net.set_hyperparameters(lrs, momenta)
        t0 = time.perf_counter()
        sums = epochs.run(self._slot, orders, self.live[0].prep.config.train.batch_size)
        seconds = time.perf_counter() - t0
        # Each member's row: its EpochLoop asks for its evaluations (evaluation.Request); the
        # members advance in lockstep, so the requests every member makes at once (the test
        # set, the curve sample, ...) are answered by one stacked forward pass.
        steps: dict[int, EvalSteps[bool]] = {}
        pending: dict[int, Request] = {}
        ended: dict[int, tuple[str, Any]] = {}
        for pos, m in enumerate(self.live):
            solo = m.prep.network
            assert isinstance(solo, TorchNetwork)
            solo.W, solo.b = net.member_weights(pos)  # the member's current weights
            steps[pos] = m.loop.end_steps(epoch, float(sums[pos]), seconds)
            _advance(pos, steps[pos], None, pending, ended)
        while pending:
            answers = self._evaluate(net, pending)
            asked, pending = pending, {}
            for pos in asked:
                _advance(pos, steps[pos], answers[pos], pending, ended)
        keep: list[int] = []
        for pos, m in enumerate(self.live):
            how, value = ended[pos]
            if how == "diverged":
                self._finish(m, t_train, diverged=value)
            elif how == "failed":  # its own evaluation or callback: it alone fails
                self._fail(m.index, m.member, m.result, value, m.log.rows)
            elif value:  # its last epoch
                solo = m.prep.network
                assert isinstance(solo, TorchNetwork)
                solo.W, solo.b = [W.clone() for W in solo.W], [b.clone() for b in solo.b]
                self._finish(m, t_train)
            else:
                keep.append(pos)
        if len(keep) < len(self.live):
            self.live = [self.live[pos] for pos in keep]
            self._slot = [self._slot[pos] for pos in keep]
            if self.live:
                net.keep_members(keep)

    def _evaluate(self, net: TorchPackNetwork, pending: dict[int, Request]
                  ) -> dict[int, tuple[float, float]]:
        """Answer the members' evaluation requests: one stacked forward pass for a request
        every member makes (same split, same shape), each member's own network otherwise."""
        groups: dict[tuple[str, tuple[int, ...]], list[int]] = {}
        for pos, (split, x, _) in pending.items():
            groups.setdefault((split, x.shape), []).append(pos)
        answers: dict[int, tuple[float, float]] = {}
        for positions in groups.values():
            if len(positions) == net.k:
                answers.update(_stacked_loss_and_accuracy(net, sorted(positions), pending))
                continue
            for pos in positions:
                _, x, y = pending[pos]
                answers[pos] = loss_and_accuracy(self.live[pos].prep.network, x, y)
        return answers


def _advance(pos: int, steps: EvalSteps[bool], answer: tuple[float, float] | None,
             pending: dict[int, Request], ended: dict[int, tuple[str, Any]]) -> None:
    """Send member ``pos`` its answer (None: start it); note its next request or its end
    (``ended``: the epoch was its last or not, it diverged, or it failed)."""
    try:
        request = next(steps) if answer is None else steps.send(answer)
    except StopIteration as stop:
        ended[pos] = ("ended", bool(stop.value))
    except DivergedError as exc:
        ended[pos] = ("diverged", str(exc))
    except Exception:
        ended[pos] = ("failed", traceback.format_exc())
    else:
        pending[pos] = request


def _stacked_loss_and_accuracy(net: TorchPackNetwork, positions: list[int],
                               pending: dict[int, Request]) -> dict[int, tuple[float, float]]:
    """evaluation.loss_and_accuracy for every member at once (``positions`` = 0..K-1): the
    same chunks and sums, the logits of all members from one stacked forward pass (one input
    for all when they ask about the same array, e.g. a shared test set)."""
    xs = [pending[pos][1] for pos in positions]
    ys = [pending[pos][2] for pos in positions]
    shared = all(x is xs[0] for x in xs)
    n = len(ys[0])
    totals, corrects = [0.0] * len(positions), [0] * len(positions)
    for start in range(0, n, EVAL_CHUNK):
        stop = start + EVAL_CHUNK
        xb = xs[0][start:stop] if shared else np.stack([x[start:stop] for x in xs])
        logits = np.asarray(net.forward(xb), dtype=np.float64)  # (K, rows, classes)
        for i in range(len(positions)):
            loss, right = chunk_loss_correct(logits[i], ys[i][start:stop])
            totals[i] += loss
            corrects[i] += right
    return {pos: (totals[i] / n, corrects[i] / n) for i, pos in enumerate(positions)}
