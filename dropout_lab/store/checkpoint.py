"""A trial's checkpoint file: ``trials/<id>/checkpoint.npz``, written whole or not at all.

Only the driver calls these (the trial sends its checkpoint with its epoch's row, see
:mod:`dropout_lab.checkpoint`). One file per trial, replaced at each checkpoint by an atomic
write (temporary file in the same folder, fsync, rename: :mod:`~dropout_lab.store.files`), so
a kill at any moment leaves the previous checkpoint or the new one, never half of either; the
temporary file of an interrupted write is removed by the next sweep, under its lock.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from dropout_lab.errors import EnvironmentFault
from dropout_lab.store.files import atomic_write_bytes, atomic_write_text, dumps
from dropout_lab.store.reading import WEIGHTS_CAP, Damaged, read_file
from dropout_lab.store.sweep_store import METRICS_FILE, SweepStore

CHECKPOINT_FILE = "checkpoint.npz"


def checkpoint_path(store: SweepStore, trial_id: str) -> Path:
    return store.trial_dir(trial_id) / CHECKPOINT_FILE


def write_checkpoint(store: SweepStore, trial_id: str, data: bytes) -> None:
    """Replace the trial's checkpoint with ``data``, atomically (EnvironmentFault when the
    machine refuses: disk full, read-only)."""
    atomic_write_bytes(checkpoint_path(store, trial_id), data)


def read_checkpoint(store: SweepStore, trial_id: str) -> tuple[bytes | None, str | None]:
    """(data, None); (None, None) when the trial has no checkpoint; (None, reason) when the
    file cannot be trusted: a symlink (not followed, as no reader of the runs directory
    follows one), not a regular file, over WEIGHTS_CAP, or unreadable."""
    try:
        return read_file(checkpoint_path(store, trial_id), WEIGHTS_CAP, store.root), None
    except Damaged as exc:
        return None, str(exc)


def remove_checkpoint(store: SweepStore, trial_id: str) -> bool:
    """Delete the trial's checkpoint (the trial is done, or its checkpoint is unusable);
    True if there was one."""
    path = checkpoint_path(store, trial_id)
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    except IsADirectoryError:  # damage no atomic write could replace: clear it
        shutil.rmtree(path)
    except OSError as exc:
        raise EnvironmentFault.from_os_error(exc, "cannot remove", path) from None
    return True


def has_checkpoint(store: SweepStore, trial_id: str) -> bool:
    return checkpoint_path(store, trial_id).exists()


def rewrite_metrics(store: SweepStore, trial_id: str, rows: list[dict[str, Any]]) -> None:
    """A resumed trial's metrics.jsonl: exactly the rows its checkpoint holds (epochs 1..k),
    written atomically; the rows of epochs after the checkpoint, streamed by the killed run,
    go (the resumed run writes them again), so each epoch appears exactly once."""
    atomic_write_text(store.trial_dir(trial_id) / METRICS_FILE,
                      "".join(dumps(r) + "\n" for r in rows))
