"""A search's Optuna study, stored in its sweep folder: ``runs/<name>/study.journal``.

Optuna's journal storage (an append-only log of every ask, report and tell) in one file of
the sweep folder, beside the trial folders it chose. Only the search driver opens it, under
the sweep lock (:class:`~dropout_lab.store.lock.SweepLock`), so one process writes it at a
time; a run killed in the middle of an append leaves a torn last line, which Optuna's
reader skips. Importing this module needs the ``search`` extra (optuna).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dropout_lab.errors import StoreError
from dropout_lab.store.reading import lstat_kind

if TYPE_CHECKING:
    from dropout_lab.store.sweep_store import SweepStore

STUDY_FILE = "study.journal"
# Optuna's own lock beside the journal (a file it creates and removes while it appends).
STUDY_LOCK_SUFFIX = ".lock"


def journal_storage(store: SweepStore) -> Any:
    """The Optuna storage of ``store``'s study (created on first use); call it holding the
    sweep lock. A journal that is a symlink or not a regular file is refused (never written
    through)."""
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

    path = store.root / STUDY_FILE
    kind = lstat_kind(path)
    if kind not in (None, "file"):
        raise StoreError(f"{path} is a {kind}, not the search's journal file; remove it")
    lock_path = store.root / (STUDY_FILE + STUDY_LOCK_SUFFIX)
    if lstat_kind(lock_path) is not None:
        # Optuna's lock left by a run killed mid-append: we hold the sweep lock, so nobody
        # else can hold this one (Optuna would wait 30 s before calling it stale)
        lock_path.unlink()
    lock = JournalFileOpenLock(str(lock_path))
    return JournalStorage(JournalFileBackend(str(path), lock_obj=lock))


def remove_study(store: SweepStore) -> None:
    """``--fresh``: the search starts over (a symlink is unlinked, never followed)."""
    for name in (STUDY_FILE, STUDY_FILE + STUDY_LOCK_SUFFIX):
        path = store.root / name
        if lstat_kind(path) is not None:
            path.unlink()


def has_study(store: SweepStore) -> bool:
    return lstat_kind(store.root / STUDY_FILE) == "file"
