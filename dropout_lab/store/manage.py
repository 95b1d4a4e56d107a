"""Managing sweeps in the runs directory: notes and tags, ``ls`` filters, what ``gc`` and
``rm`` remove. (Formerly ``dropout_lab/runs.py``, a name too close to ``runner.py``.)

A sweep folder keeps every trial it ever ran; ``sweep.yaml`` names the current grid and the
trials of earlier grids. Every read goes through the store's one reader; nothing here
follows a symlink or deletes through one.

    runs/<name>/meta.json   {"note": "...", "tags": [...]}  (written by ``dropout-lab note``)
    runs/<name>/.meta.lock  held while ``note`` reads and rewrites meta.json
"""

from __future__ import annotations

import fnmatch
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dropout_lab.errors import ENVIRONMENT_ERRNOS, EnvironmentFault, OutputError, StoreError
from dropout_lab.result import UNSUCCESSFUL, Status
from dropout_lab.store.checkpoint import has_checkpoint, remove_checkpoint
from dropout_lab.store.files import atomic_write_text
from dropout_lab.store.lock import SweepLock
from dropout_lab.store.reading import META_CAP, Damaged, lstat_kind, parse_json, read_text
from dropout_lab.store.sweep_store import SWEEP_FILE, SweepStore

META_FILE = "meta.json"
META_LOCK = ".meta.lock"
__all__ = ["FILTER_STATUSES", "META_FILE", "META_LOCK", "SORT_KEYS", "GcCandidates",
           "apply_gc", "gc_candidates", "history", "matches", "parse_filter", "read_meta",
           "remove_sweep", "sort_sweeps", "sweep_folders", "trial_folders", "write_meta"]
# ``ls --filter status=...``: a status some trial has (failed counts diverged too)
FILTER_STATUSES = (Status.DONE, Status.FAILED, Status.PENDING)


# -- trials on disk ---------------------------------------------------------------------------

def trial_folders(store: SweepStore) -> list[str]:
    """Every entry under ``trials/`` (current grid or not, symlinks included: they are listed,
    never followed), as sorted ids."""
    return list(store.trial_entries())


def history(store: SweepStore) -> dict[str, int]:
    """See :meth:`SweepStore.history`."""
    return store.history()


def sweep_folders(runs_dir: Path) -> list[Path]:
    """The entries of ``runs_dir`` that are sweeps: folders holding a ``sweep.yaml`` entry,
    and symlinks (listed so ``ls`` can say it does not follow them). Sorted by name."""
    if not runs_dir.is_dir():  # the folder the user named: trusted, a link to it too
        raise StoreError(f"{runs_dir}: no such runs folder")
    try:
        names = sorted(p.name for p in runs_dir.iterdir())
    except OSError as exc:  # permission denied: the machine refused (exit 3)
        if exc.errno in ENVIRONMENT_ERRNOS:
            raise EnvironmentFault.from_os_error(exc, "cannot list", runs_dir) from None
        raise StoreError(f"{runs_dir}: not readable ({exc.strerror or exc})") from None
    found = []
    for name in names:
        child = runs_dir / name
        kind = lstat_kind(child)
        if kind == "link" or kind == "dir" and lstat_kind(child / SWEEP_FILE) is not None:
            found.append(child)
    return found


# -- notes and tags ---------------------------------------------------------------------------

def read_meta(root: Path) -> dict[str, Any]:
    """The sweep's note and tags ({} when it has none; a damaged file counts as none)."""
    try:
        doc = parse_json(read_text(root / META_FILE, META_CAP, root) or "{}")
    except Damaged:
        return {}
    if not isinstance(doc, dict):
        return {}
    meta: dict[str, Any] = {}
    if isinstance(doc.get("note"), str):
        meta["note"] = doc["note"]
    tags = doc.get("tags")
    if isinstance(tags, list) and all(isinstance(t, str) for t in tags):
        meta["tags"] = tags
    return meta


def write_meta(root: Path, note: str | None = None, add_tags: list[str] | None = None,
               remove_tags: list[str] | None = None, clear: bool = False) -> dict[str, Any]:
    """Set the note (None keeps it; "" or ``clear`` removes it) and add/remove tags.

    The read-modify-write holds the sweep's meta lock (``.meta.lock``, waited for), so
    concurrent ``note`` calls all keep their tags. It is not the lock a running sweep holds
    for hours (``.lock``): a note never waits for a sweep, and a sweep never writes meta.json."""
    if lstat_kind(root / SWEEP_FILE) != "file":
        raise StoreError(f"{root}: not a sweep folder (no {SWEEP_FILE})")
    if lstat_kind(root / META_LOCK) == "link":
        raise StoreError(f"{root / META_LOCK} is a symlink (never followed); remove it")
    for tag in add_tags or []:
        if not tag or any(c in tag for c in ", =") or not tag.isprintable():
            raise OutputError(f"--tag {tag!r}: a tag is one word without commas, '=' or "
                              "control characters")
    with SweepLock(root, META_LOCK) as lock:
        lock.acquire(wait=True)
        return _update_meta(root, note, add_tags, remove_tags, clear)


def _update_meta(root: Path, note: str | None, add_tags: list[str] | None,
                 remove_tags: list[str] | None, clear: bool) -> dict[str, Any]:
    meta = {} if clear else read_meta(root)
    if note is not None:
        if note:
            meta["note"] = note
        else:
            meta.pop("note", None)
    tags = [t for t in meta.get("tags", []) if t not in (remove_tags or [])]
    for tag in add_tags or []:
        if tag not in tags:
            tags.append(tag)
    if tags:
        meta["tags"] = tags
    else:
        meta.pop("tags", None)
    atomic_write_text(root / META_FILE, json.dumps(meta, indent=2) + "\n")
    return meta


# -- ls: filter and sort ----------------------------------------------------------------------

def status_counts(results: list[dict[str, Any]]) -> dict[str, int]:
    """Trials by status (done, failed = failed or diverged, pending; corrupt only when there
    is one) and the total, for ``ls`` and ``show``."""
    c = {"done": 0, "failed": 0, "pending": 0, "corrupt": 0, "total": len(results)}
    for r in results:
        st = r.get("status")
        c["done" if st == Status.DONE else "failed" if st in UNSUCCESSFUL
          else "corrupt" if st == Status.CORRUPT else "pending"] += 1
    if not c["corrupt"]:  # shown only when there is damage
        del c["corrupt"]
    return c


SORT_KEYS = ("name", "modified", "done", "failed", "total", "on_disk")


def sort_sweeps(sweeps: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """Sort ``ls`` entries by ``key`` (one of :data:`SORT_KEYS`; a leading '-' reverses)."""
    reverse = key.startswith("-")
    name = key.lstrip("-")
    if name not in SORT_KEYS:
        raise OutputError(f"--sort {key}: choose one of {', '.join(SORT_KEYS)} "
                          "(a leading '-' sorts descending)")
    # Sweeps that could not be read have no counts: they sort last either way.
    have = [s for s in sweeps if name in s]
    lacking = [s for s in sweeps if name not in s]
    return sorted(have, key=lambda s: s[name], reverse=reverse) + lacking


def parse_filter(text: str) -> tuple[str, str]:
    """``tag=NAME``, ``name=GLOB``, ``status=failed|pending|done`` -> (field, value)."""
    fieldname, sep, value = text.partition("=")
    if not sep or fieldname not in ("tag", "name", "status") or not value:
        raise OutputError(f"--filter {text!r}: use tag=NAME, name=GLOB or "
                          "status=done|failed|pending")
    if fieldname == "status" and value not in FILTER_STATUSES:
        raise OutputError(f"--filter {text!r}: status is done, failed or pending")
    return fieldname, value


def matches(sweep: dict[str, Any], filters: list[tuple[str, str]]) -> bool:
    """All filters hold: a tag it carries, a name glob, or a status some trial has
    (``status=done``: every trial of the grid is done)."""
    for fieldname, value in filters:
        if fieldname == "tag" and value not in sweep.get("tags", []):
            return False
        if fieldname == "name" and not fnmatch.fnmatchcase(sweep["name"], value):
            return False
        if fieldname == "status":
            if "total" not in sweep:
                return False
            if value == Status.DONE and sweep["done"] != sweep["total"]:
                return False
            if value in (Status.FAILED, Status.PENDING) and not sweep[value]:
                return False
    return True


# -- gc and rm --------------------------------------------------------------------------------

@dataclass
class GcCandidates:
    """Trial folders ``gc`` removes, by reason, and those it keeps for a tagged sweep."""

    root: Path
    not_in_grid: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    corrupt: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # finished trials of a tagged sweep
    tags: list[str] = field(default_factory=list)
    # trials kept whose checkpoint is orphaned (the trial finished; only the file goes)
    checkpoints: list[str] = field(default_factory=list)

    @property
    def all(self) -> list[str]:
        """The trial folders to remove (not the orphaned checkpoints)."""
        return self.not_in_grid + self.failed + self.corrupt

    def as_dict(self) -> dict[str, Any]:
        return {"sweep_dir": str(self.root), "not_in_grid": self.not_in_grid,
                "failed": self.failed, "corrupt": self.corrupt, "total": len(self.all),
                "kept_tagged": self.kept, "tags": self.tags,
                "orphaned_checkpoints": self.checkpoints}


def gc_candidates(store: SweepStore, keep_failed: bool = False,
                  force: bool = False) -> GcCandidates:
    """Which trial folders to drop: not in the current grid (earlier grids, replaced
    trials); failed or diverged (a re-run retries them anyway); corrupt (an unreadable
    result.json, or an entry under ``trials/`` that is a symlink or a file). A trial of the
    grid with no result yet (pending, or running now) is kept, with the checkpoint a re-run
    resumes from; the orphaned checkpoint of a finished trial (done, or diverged when kept)
    is listed in ``checkpoints`` (only that file goes).

    A sweep with tags (``note --tag``) is one someone meant to keep: its finished (done)
    trials are never candidates without ``force``; they are listed in ``kept`` instead."""
    doc = store.read_sweep()
    problem = store.layout_problem()
    if problem:
        raise StoreError(f"{problem}: gc removes nothing through it; remove the link first")
    grid = {t["trial_id"]: t["params"] for t in doc["trials"]}
    found = GcCandidates(store.root, tags=list(read_meta(store.root).get("tags", [])))
    for tid, kind in store.trial_entries().items():
        if kind != "dir":
            found.corrupt.append(tid)
            continue
        view = store.view(tid, grid.get(tid))
        status = view.status()
        kept_finished = status == Status.DONE or (status == Status.DIVERGED and keep_failed)
        if tid in grid and kept_finished and has_checkpoint(store, tid):
            found.checkpoints.append(tid)  # the run ended between result.json and removing it
        if found.tags and not force and status == Status.DONE:
            if tid not in grid:
                found.kept.append(tid)
            continue
        if tid not in grid:
            found.not_in_grid.append(tid)
        elif status == Status.CORRUPT:
            found.corrupt.append(tid)
        elif status in UNSUCCESSFUL and not keep_failed:
            found.failed.append(tid)
    return found


def apply_gc(store: SweepStore, candidates: GcCandidates) -> None:
    """Remove the candidate trial folders, holding the sweep's lock: a sweep running in this
    folder is never cut short (StoreError naming it instead). An entry that is a symlink or
    a file is unlinked (never what a link points to); only real folders are removed whole."""
    with SweepLock(store.root) as lock:
        lock.acquire()
        problem = store.layout_problem()  # checked again under the lock
        if problem:
            raise StoreError(f"{problem}: gc removes nothing through it")
        for tid in candidates.all:
            path = store.trial_dir(tid)
            try:
                if lstat_kind(path) == "dir":
                    shutil.rmtree(path)  # rmtree never follows a symlink inside
                elif lstat_kind(path) is not None:
                    path.unlink()
            except OSError as exc:
                raise EnvironmentFault.from_os_error(exc, "cannot remove", path) from None
        for tid in candidates.checkpoints:
            remove_checkpoint(store, tid)


def remove_sweep(root: Path) -> int:
    """Delete a whole sweep folder; returns how many trial folders it held. Refuses a
    folder that is not a sweep (no sweep.yaml), so a typo cannot delete something else, and
    a sweep folder that is itself a symlink (the link is not the sweep)."""
    kind = lstat_kind(root)
    if kind is None:
        raise StoreError(f"{root}: no such sweep folder")
    if kind == "link":
        raise StoreError(f"{root}: a symlink, not a sweep folder; nothing removed (remove the "
                         "link itself with rm)")
    if kind != "dir":
        raise StoreError(f"{root}: no such sweep folder")
    if lstat_kind(root / SWEEP_FILE) != "file":
        raise StoreError(f"{root}: not a sweep folder (no {SWEEP_FILE}); nothing removed")
    store = SweepStore(root)
    n = len(store.trial_entries())
    lock = SweepLock(root)
    lock.acquire()  # StoreError naming the running sweep, if one holds the folder
    try:
        shutil.rmtree(root)  # removes links inside as links, never their targets
    except OSError as exc:
        raise EnvironmentFault.from_os_error(exc, "cannot remove", root) from None
    finally:
        lock.release()
    return n
