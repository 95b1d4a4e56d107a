"""Evaluation-mode numbers of a network: loss and accuracy on each split, per epoch and final.

Nothing here trains or draws noise: :func:`epoch_metrics` is the row the training loop
(:mod:`dropout_lab.training`) adds after an evaluated epoch, and the final numbers of a trial.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TypeVar

import numpy as np

from dropout_lab import seeds
from dropout_lab.backends.base import Network
from dropout_lab.data import Dataset

EVAL_CHUNK = 4096  # rows per evaluation forward pass: bounds memory on large data sets
T = TypeVar("T")


# An evaluation a caller asks for: (split, x, y) -> (mean loss, accuracy). The steps of an
# epoch's evaluation are generators of these requests, so one trial answers them with its own
# network (:func:`drive`) and a pack answers all members' at once (dropout_lab/packs).
Request = tuple[str, np.ndarray, np.ndarray]
EvalSteps = Generator[Request, tuple[float, float], T]


def chunk_loss_correct(logits: np.ndarray, y: np.ndarray) -> tuple[float, int]:
    """Summed cross-entropy (float64) and the number correct of one chunk of logits."""
    logits = np.asarray(logits, dtype=np.float64)
    shifted = logits - logits.max(axis=1, keepdims=True)
    logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return float(-logp[np.arange(len(y)), y].sum()), int((logits.argmax(axis=1) == y).sum())


def loss_and_accuracy(net: Network, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Mean cross-entropy and accuracy in evaluation mode (no dropout), EVAL_CHUNK rows at a
    time."""
    total_loss = 0.0
    correct = 0
    for start in range(0, len(y), EVAL_CHUNK):
        logits = np.asarray(net.forward(x[start : start + EVAL_CHUNK]), dtype=np.float64)
        loss, right = chunk_loss_correct(logits, y[start : start + EVAL_CHUNK])
        total_loss += loss
        correct += right
    return total_loss / len(y), correct / len(y)


def drive(steps: EvalSteps[T], net: Network) -> T:
    """Run evaluation steps, answering each request with ``net`` (loss_and_accuracy)."""
    try:
        request = next(steps)
        while True:
            _, x, y = request
            request = steps.send(loss_and_accuracy(net, x, y))
    except StopIteration as stop:
        result: T = stop.value
        return result


def epoch_metrics(net: Network, data: Dataset, train_rows: np.ndarray | None = None,
                  validation: bool = True) -> dict[str, float]:
    """Evaluation-mode loss and accuracy on the training and test sets (and the validation
    split, when there is one). ``train_rows`` evaluates only those training examples (the
    per-epoch curves); None evaluates all of them (the final numbers)."""
    return drive(epoch_metrics_steps(data, train_rows, validation), net)


def epoch_metrics_steps(data: Dataset, train_rows: np.ndarray | None = None,
                        validation: bool = True) -> EvalSteps[dict[str, float]]:
    """:func:`epoch_metrics` as requests: ``train``, ``test`` (and ``val``)."""
    x_train, y_train = data.x_train, data.y_train
    if train_rows is not None:
        x_train, y_train = x_train[train_rows], y_train[train_rows]
    train_loss, train_acc = yield ("train", x_train, y_train)
    test_loss, test_acc = yield ("test", data.x_test, data.y_test)
    row = {
        "train_loss": train_loss, "train_acc": train_acc,
        "test_loss": test_loss, "test_acc": test_acc,
        "gap_acc": train_acc - test_acc, "gap_loss": test_loss - train_loss,
        "train_n": len(y_train),
    }
    if validation and data.x_val is not None and data.y_val is not None:
        row["val_loss"], row["val_acc"] = yield ("val", data.x_val, data.y_val)
    return row


def curve_rows(n_train: int, subset: int | None, seed: int) -> np.ndarray | None:
    """The training examples evaluated after each epoch: a fixed subset drawn once from the
    ``curves`` stream (sorted), or None for all of them."""
    if subset is None or subset >= n_train:
        return None
    return np.sort(seeds.rng(seed, "curves").choice(n_train, size=subset, replace=False))
