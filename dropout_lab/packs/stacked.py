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
import torch

from dropout_lab import checkpoint
from dropout_lab.backends.torch_backend import TorchNetwork
from dropout_lab.backends.torch_pack import TorchPackNetwork
from dropout_lab.config import ExperimentConfig
from dropout_lab.dropout import Noise
from dropout_lab.errors import DivergedError
from dropout_lab.evaluation import (
    EVAL_CHUNK,
    EvalSteps,
    Request,
    chunk_loss_correct,
    loss_and_accuracy,
)
from dropout_lab.metrics import after_training_many
from dropout_lab.packs.epochs import PackEpochs
from dropout_lab.result import Result, Status
from dropout_lab.training import EpochLoop, LoopState, TrainingLog
from dropout_lab.trial import (
    EpochCallback,
    Prepared,
    TrialOutcome,
    assemble_result,
    new_result,
    prepare,
    record_environment,
    resume_from,
)

if TYPE_CHECKING:
    from dropout_lab.metrics import StackedForward
    from dropout_lab.packs.train import OutcomeCallback, PackMember


# The Monte Carlo passes of the after-training statistics are large products (2,000 rows x
# 784 x 256 per pass at mnist-quick's shape): on the CPU a stacked pass does the work of K
# passes, and measured no faster (median 0.93x member by member, benchmarks/
# bench_pack_statistics.py, docs/performance.md), so on the CPU each member computes its own;
# on a GPU (one kernel for K members instead of K small ones) the pack batches them.
BATCH_STATISTICS_ON_CPU = False

_DATA_FIELDS = ("x_train", "y_train", "x_test", "y_test", "x_val", "y_val")


def _equal(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    if a is None or b is None:
        return a is b
    return a is b or (a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b))


class Member:
    """A member in training: its prepared trial, result, log and epoch bookkeeping
    (``state``/``log``/``seconds_before``: where its checkpoint left it, if it resumed)."""

    def __init__(self, index: int, member: PackMember, prep: Prepared, result: Result,
                 setup_seconds: float, on_epoch: EpochCallback | None,
                 state: LoopState | None = None, log: TrainingLog | None = None,
                 seconds_before: float = 0.0) -> None:
        self.index, self.member, self.prep, self.result = index, member, prep, result
        self.setup_seconds, self.seconds_before = setup_seconds, seconds_before
        self.log = log if log is not None else TrainingLog()
        epochs = prep.config.train.epochs

        def forward(row: dict[str, Any]) -> None:
            if on_epoch is not None:
                on_epoch(member.trial_id, row["epoch"], epochs, row)

        self.loop = EpochLoop(prep, forward, self.log, state)

    @property
    def start_epoch(self) -> int:
        """The epochs completed before this run (0, or its checkpoint's epoch)."""
        return self.loop.state.epoch


class Pack:
    """The members of one pack, their stacked network, and their outcomes as they finish."""

    def __init__(self, members: list[PackMember], configs: list[ExperimentConfig],
                 threads: int | None, workers: int, on_epoch: EpochCallback | None,
                 started: float, t_start: float, on_outcome: OutcomeCallback | None = None,
                 on_checkpoint: checkpoint.CheckpointCallback | None = None) -> None:
        self.started, self.t_start = started, t_start
        self.on_outcome, self.on_checkpoint = on_outcome, on_checkpoint
        self.outcomes: list[TrialOutcome | None] = [None] * len(members)
        self._assembly_seconds = 0.0  # spent assembling finished members' results
        self.live: list[Member] = []
        for index, (member, config) in enumerate(zip(members, configs, strict=True)):
            result = new_result(config, member.trial_id, member.params, threads, workers)
            result["env"]["pack"] = {"size": len(members), "index": index}
            t0 = time.perf_counter()
            log = TrainingLog()
            try:
                prep = prepare(config, threads)
                record_environment(result, prep)
                self._share_data(prep)
                # a checkpoint: into the member's own (solo) network and log, as run_trial
                # restores one (its optimizer state moves into the stack in _build)
                state, seconds_before = resume_from(prep, member.resume, member.trial_id, log,
                                                    result)
            except Exception:  # this member's own data or backend: it alone fails
                self._fail(index, member, result, traceback.format_exc(), log.rows)
                continue
            self.live.append(Member(index, member, prep, result, time.perf_counter() - t0,
                                    on_epoch, state, log, seconds_before))

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

    def _finish(self, m: Member, t_train: float, diverged: str | None = None,
                stats: tuple[dict[str, Any], float] | None = None) -> None:
        """Member m trained to its end (or diverged): assemble its result as run_trial does
        (``stats``: its after-training statistics and their seconds, computed with other
        members')."""
        result = m.result
        timing = result["timing"]
        t_done = time.perf_counter()
        # the pack's training time until now, less the other members' result assembly (and,
        # resumed, the seconds its checkpoint kept)
        train_seconds = m.seconds_before + t_done - t_train - self._assembly_seconds
        try:
            arrays: dict[str, np.ndarray] = {}
            if diverged is not None:
                result["status"] = Status.DIVERGED
                result["reason"] = diverged
            else:
                try:
                    arrays = assemble_result(m.prep, m.log, result, stats)
                finally:
                    self._assembly_seconds += time.perf_counter() - t_done
            timing["setup_seconds"], timing["train_seconds"] = m.setup_seconds, train_seconds
        except Exception:  # its own statistics: it alone fails
            self._fail(m.index, m.member, result, traceback.format_exc(), m.log.rows)
            return
        self._close(m.index, m.member, result, m.log.rows, None, arrays)

    # -- training -----------------------------------------------------------------------------
    def train(self) -> None:
        """Train the live members until each has finished: one stacked network for the
        members that start at the same epoch (all of them, unless some resume from
        checkpoints of different epochs), such stacks one after the other."""
        stacks: dict[int, list[Member]] = {}
        for m in self.live:
            stacks.setdefault(m.start_epoch, []).append(m)
        for start in sorted(stacks):
            self.live = stacks[start]
            self._assembly_seconds = 0.0
            self._train_stack(start)

    def _train_stack(self, start: int) -> None:
        """Train the live members, all after epoch ``start``, as one network."""
        t_train = time.perf_counter()
        try:
            ended = [m for m in self.live if start >= m.prep.config.train.epochs
                     or m.log.stopped_by == "early_stopping"]
            for m in ended:  # restored after its last epoch: nothing left to train
                self._finish(m, t_train)
            self.live = [m for m in self.live if m not in ended]
            if not self.live:
                return
            net, epochs = self._build()
            policy = checkpoint.Policy(self.live[0].prep.config.train.checkpoint_every)
            for epoch in range(start + 1, self.live[0].prep.config.train.epochs + 1):
                self._epoch(net, epochs, epoch, t_train)
                if not self.live:
                    return
                if self.on_checkpoint is not None and policy.due(epoch):
                    self._checkpoint(net, epochs, t_train)
        except Exception:  # the stacked training: every member not finished fails
            error = traceback.format_exc()
            for m in self.live:
                self._fail(m.index, m.member, m.result, error, m.log.rows)
            self.live = []

    def _checkpoint(self, net: TorchPackNetwork, epochs: PackEpochs, t_train: float) -> None:
        """Each member still training: its checkpoint, its own slice of the stacked state in
        the solo names and shapes, sent as a solo trial sends its own (a member whose
        callback fails fails alone, as for its rows)."""
        assert self.on_checkpoint is not None
        spent = time.perf_counter() - t_train - self._assembly_seconds
        keep: list[int] = []
        for pos, m in enumerate(self.live):
            try:
                arrays = {f"{name}{i}": net._to_numpy(a[pos]).copy()
                          for name, state in net.state_lists().items()
                          for i, a in enumerate(state)}
                scalars = {"t": net.t, "lr": float(net.lrs[pos]),
                           "momentum": float(net.momenta[pos])}
                extra = ({"device_generator0": epochs.gens[self._slot[pos]].get_state().numpy()
                          .copy()} if epochs.gens else {})
                data = checkpoint.capture_state(
                    m.prep.config.trial_dict(), arrays, scalars, extra, m.loop.state, m.log,
                    m.member.trial_id, m.seconds_before + spent, m.result["env"].get("data"),
                    stacked=True)
                self.on_checkpoint(m.member.trial_id, m.loop.state.epoch, data)
            except Exception:
                self._fail(m.index, m.member, m.result, traceback.format_exc(), m.log.rows)
            else:
                keep.append(pos)
        self._keep(net, keep)

    def _build(self) -> tuple[TorchPackNetwork, PackEpochs]:
        preps = [m.prep for m in self.live]
        first = preps[0]
        net = TorchPackNetwork(
            first.spec, [p.network.get_weights() for p in preps],
            [p.config.train.optimizer_spec() for p in preps],
            [list(p.spec.test_scales) or [1.0] * (len(first.spec.sizes) - 1) for p in preps],
            first.device)
        steps = {p.network.t for p in preps if isinstance(p.network, TorchNetwork)}
        if len(steps) > 1:  # (one key, one epoch: one step count; a guard, not a case)
            raise ValueError(f"members resumed at different optimizer steps {sorted(steps)}")
        net.t = steps.pop() if steps else 0
        for pos, p in enumerate(preps):
            # each member's own network now only evaluates (views of its slice of the pack):
            # its optimizer state (a checkpoint's, or zeros) moves into the stack
            solo = p.network
            if isinstance(solo, TorchNetwork):
                for mine, stacked in zip(solo._m + solo._v, net._m + net._v, strict=True):
                    stacked[pos].copy_(mine)
                solo._m, solo._v, solo._dW = [], [], []
        epochs = PackEpochs(net, preps, [m.loop.noise_rng for m in self.live],
                            first.config.dropout.noise)
        for gen, p in zip(epochs.gens, preps, strict=False):
            # noise: device, resumed: the member's generator where its checkpoint left it (the
            # seed just drawn from its dropout stream is overwritten, as alone)
            solo = p.network
            if isinstance(solo, TorchNetwork) and solo._generator_state:
                gen.set_state(torch.from_numpy(solo._generator_state[0]))
                solo._generator_state = []
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
        finishing: list[Member] = []  # trained to their end in this epoch
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
                finishing.append(m)
            else:
                keep.append(pos)
        stats = self._statistics(finishing)
        for m, own in zip(finishing, stats, strict=True):
            self._finish(m, t_train, stats=own)
        self._keep(net, keep)

    def _statistics(self, finishing: list[Member]
                    ) -> list[tuple[dict[str, Any], float] | None]:
        """The after-training statistics of the members that finish together, batched over
        them where cheap (metrics.after_training_many: the Monte Carlo passes as one stacked
        forward pass; not on the CPU, see BATCH_STATISTICS_ON_CPU), each with its share of
        the seconds; None for a member left to compute its own (alone, on the CPU, or when
        the batch raised: then each member computes, and fails, alone)."""
        if len(finishing) < 2 or (finishing[0].prep.device == "cpu"
                                  and not BATCH_STATISTICS_ON_CPU):
            return [None] * len(finishing)
        t0 = time.perf_counter()
        try:
            preps = [m.prep for m in finishing]
            stats = after_training_many(preps, _stacked_forward(preps))
        except Exception:  # noqa: BLE001 - each member then computes (and fails) on its own
            return [None] * len(finishing)
        finally:
            self._assembly_seconds += time.perf_counter() - t0
        share = (time.perf_counter() - t0) / len(finishing)
        return [(own, share) for own in stats]

    def _keep(self, net: TorchPackNetwork, keep: list[int]) -> None:
        """Only live members ``keep`` (positions, in order) go on training."""
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


def _stacked_forward(preps: list[Prepared]) -> StackedForward:
    """Training-mode forward passes of several finished members as one stacked network
    (metrics.after_training_many's Monte Carlo passes): built from their final weights, one
    network per set of members asked about. A member without noise in a layer where another
    has some multiplies by ones there (exact)."""
    nets: dict[tuple[int, ...], TorchPackNetwork] = {}

    def stacked(positions: list[int], noises: list[Noise | None], xs: list[np.ndarray]
                ) -> np.ndarray:
        key = tuple(positions)
        if key not in nets:
            chosen = [preps[i] for i in positions]
            first = chosen[0]
            nets[key] = TorchPackNetwork(
                first.spec, [p.network.get_weights() for p in chosen],
                [p.config.train.optimizer_spec() for p in chosen],
                [list(p.spec.test_scales) or [1.0] * (len(first.spec.sizes) - 1)
                 for p in chosen], first.device)
        net = nets[key]

        def stack(arrays: list[np.ndarray | None]) -> np.ndarray | None:
            drawn = [a for a in arrays if a is not None]
            if not drawn:
                return None
            ones = np.ones_like(drawn[0])
            return np.stack([ones if a is None else a for a in arrays])

        n_layers = len(preps[positions[0]].spec.sizes) - 1
        units = [stack([None if z is None else z.units[layer] for z in noises])
                 for layer in range(n_layers)]
        weights = [stack([None if z is None else z.weights[layer] for z in noises])
                   for layer in range(n_layers)]
        x = xs[0] if all(x is xs[0] for x in xs) else np.stack(xs)
        return np.asarray(net.forward(x, noise=Noise(units, weights)), dtype=np.float64)

    return stacked
