"""Which epoch a comparison reads: ``--at last | best | N``.

``last``: the numbers after the last trained epoch (result.json ``final``; with early stopping
that is the epoch training stopped at). ``best``: each trial's own best epoch by validation
accuracy (result.json ``best_epoch``, needs ``dataset.val_fraction > 0``), the way papers
report a model they would have stopped. ``N``: every trial at epoch N (from metrics.jsonl; the
epoch must have been evaluated, see ``eval.every``).

Only the epoch-level numbers move (accuracies, losses, gaps). The after-training statistics
(co-adaptation, uncertainty) are measured once, after the last trained epoch, whatever ``at``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from dropout_lab.errors import CompareError

if TYPE_CHECKING:
    from dropout_lab.comparison.model import TrialRecord

At = Literal["last", "best"] | int
EPOCH_KEYS = ("train_loss", "train_acc", "test_loss", "test_acc", "gap_acc", "gap_loss")


def parse_at(text: str | int) -> At:
    """``last``, ``best`` or a positive epoch number; CompareError otherwise."""
    if isinstance(text, int) and not isinstance(text, bool):
        value = text
    else:
        word = str(text).strip().lower()
        if word == "last":
            return "last"
        if word == "best":
            return "best"
        if not word.isdigit():
            raise CompareError(f"--at {text}: use last, best or an epoch number (e.g. --at 20)")
        value = int(word)
    if value < 1:
        raise CompareError(f"--at {text}: epochs are counted from 1")
    return value


def describe(at: At) -> str:
    """How a table says which epoch it shows."""
    if at == "last":
        return "at the last epoch"
    if at == "best":
        return "at each trial's best epoch by validation accuracy"
    return f"at epoch {at}"


def select(record: TrialRecord, at: At) -> dict[str, Any]:
    """The trial's result with ``final`` holding the numbers of the selected epoch and
    ``selected_epoch`` saying which it is."""
    result = record.result
    last = result.get("epochs_trained") or _last_epoch(record)
    if at == "last":
        return dict(result, selected_epoch=last)
    if at == "best":
        best = result.get("best_epoch") or {}
        if best.get("by") is None:
            raise CompareError(
                f"--at best picks each trial's epoch by validation accuracy, but trial "
                f"{record.trial_id} has no validation split (dataset.val_fraction = 0); "
                # a new name: the same name with another base config is refused (exit 2)
                "re-run it under a new name with one (--set dataset.val_fraction=0.1 "
                "--set name=NAME-val), or use --at last")
        if "metrics" not in best:
            raise CompareError(f"--at best: trial {record.trial_id} was stored by an older "
                               "dropout-lab without the best epoch's numbers; run it again "
                               "(--fresh)")
        return dict(result, final=dict(best["metrics"]), selected_epoch=best["epoch"])
    rows = record.epochs or []
    row = next((r for r in rows if r.get("epoch") == at), None)
    if row is None:
        trained = max((r.get("epoch", 0) for r in rows), default=0)
        why = (f"it trained {trained} epoch(s)" if trained < at else
               "that epoch is not in its metrics.jsonl")
        raise CompareError(f"--at {at}: trial {record.trial_id} has no epoch {at} ({why})")
    if any(k not in row for k in EPOCH_KEYS):
        raise CompareError(f"--at {at}: epoch {at} was not evaluated (eval.every); pick an "
                           "evaluated epoch or --at last")
    return dict(result, final={k: row[k] for k in EPOCH_KEYS}, selected_epoch=at)


def _last_epoch(record: TrialRecord) -> int | None:
    rows = record.epochs or []
    return rows[-1].get("epoch") if rows else None
