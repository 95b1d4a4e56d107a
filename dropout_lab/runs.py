"""Run management over the runs directory: what is on disk, notes and tags, what gc would remove.

A sweep folder keeps every trial it ever ran, also those of an earlier grid (a re-run with
other ``--set`` values); ``sweep.yaml`` names only the current grid. These functions look at
both, for ``ls``/``show`` (counts), ``gc`` (what to drop), ``rm`` and ``note``.

    runs/<name>/meta.json   {"note": "...", "tags": [...]}  (written by ``dropout-lab note``)
"""

from __future__ import annotations

import fnmatch
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dropout_lab.errors import OutputError, StoreError
from dropout_lab.result import UNSUCCESSFUL, Status
from dropout_lab.store import RESULT_FILE, SWEEP_FILE, SweepLock, SweepStore, atomic_write_text
from dropout_lab.store.checkpoint import has_checkpoint, remove_checkpoint

META_FILE = "meta.json"
# ``ls --filter status=...``: a status some trial has (failed counts diverged too)
FILTER_STATUSES = (Status.DONE, Status.FAILED, Status.PENDING)


# -- trials on disk ---------------------------------------------------------------------------

def trial_folders(store: SweepStore) -> list[str]:
    """Every trial folder under ``trials/``, current grid or not (sorted ids)."""
    if not store.trials_dir.is_dir():
        return []
    return sorted(p.name for p in store.trials_dir.iterdir() if p.is_dir())


def read_result(path: Path) -> tuple[dict[str, Any] | None, bool]:
    """(result, corrupt): None and False when there is no result.json; None and True when
    it exists but is not a JSON object (a torn or hand-edited file)."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, False
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None, True
    return (doc, False) if isinstance(doc, dict) else (None, True)


def history(store: SweepStore, grid_ids: list[str]) -> dict[str, int]:
    """``on_disk``: trial folders stored; ``in_grid``: those of the current grid;
    ``other``: folders of earlier grids (``gc`` drops them, ``compare`` does not see them)."""
    on_disk = trial_folders(store)
    grid = set(grid_ids)
    in_grid = sum(1 for t in on_disk if t in grid)
    return {"on_disk": len(on_disk), "in_grid": in_grid, "other": len(on_disk) - in_grid}


# -- notes and tags ---------------------------------------------------------------------------

def read_meta(root: Path) -> dict[str, Any]:
    """The sweep's note and tags ({} when it has none; an unreadable file counts as none)."""
    try:
        doc = json.loads((root / META_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return doc if isinstance(doc, dict) else {}


def write_meta(root: Path, note: str | None = None, add_tags: list[str] | None = None,
               remove_tags: list[str] | None = None, clear: bool = False) -> dict[str, Any]:
    """Set the note (None keeps it; "" or ``clear`` removes it) and add/remove tags."""
    if not (root / SWEEP_FILE).is_file():
        raise StoreError(f"{root}: not a sweep folder (no {SWEEP_FILE})")
    meta = {} if clear else read_meta(root)
    if note is not None:
        if note:
            meta["note"] = note
        else:
            meta.pop("note", None)
    tags = [t for t in meta.get("tags", []) if t not in (remove_tags or [])]
    for tag in add_tags or []:
        if not tag or any(c in tag for c in ", ="):
            raise OutputError(f"--tag {tag!r}: a tag is one word without commas or '='")
        if tag not in tags:
            tags.append(tag)
    if tags:
        meta["tags"] = tags
    else:
        meta.pop("tags", None)
    atomic_write_text(root / META_FILE, json.dumps(meta, indent=2) + "\n")
    return meta


# -- ls: filter and sort ----------------------------------------------------------------------

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
    """Trial folders ``gc`` removes, by reason."""

    root: Path
    not_in_grid: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    corrupt: list[str] = field(default_factory=list)
    # trials kept whose checkpoint is orphaned (the trial finished; only the file goes)
    checkpoints: list[str] = field(default_factory=list)

    @property
    def all(self) -> list[str]:
        """The trial folders to remove (not the orphaned checkpoints)."""
        return self.not_in_grid + self.failed + self.corrupt

    def as_dict(self) -> dict[str, Any]:
        return {"sweep_dir": str(self.root), "not_in_grid": self.not_in_grid,
                "failed": self.failed, "corrupt": self.corrupt, "total": len(self.all),
                "orphaned_checkpoints": self.checkpoints}


def gc_candidates(store: SweepStore, keep_failed: bool = False) -> GcCandidates:
    """Which trial folders to drop: not in the current grid; failed or diverged (a re-run
    retries them anyway); corrupt (an unreadable result.json). A trial of the grid with no
    result yet (pending, or running now) is kept, with its checkpoint. Also the orphaned
    checkpoints of finished trials (done, or diverged when kept)."""
    grid = {t["trial_id"] for t in store.read_sweep()["trials"]}
    found = GcCandidates(store.root)
    for tid in trial_folders(store):
        if tid not in grid:
            found.not_in_grid.append(tid)
            continue
        result, corrupt = read_result(store.trial_dir(tid) / RESULT_FILE)
        if corrupt:
            found.corrupt.append(tid)
        elif result is not None and result.get("status") in UNSUCCESSFUL and not keep_failed:
            found.failed.append(tid)
        elif (result is not None and result.get("status") in (Status.DONE, Status.DIVERGED)
              and has_checkpoint(store, tid)):
            found.checkpoints.append(tid)  # the run ended between result.json and removing it
    return found


def apply_gc(store: SweepStore, candidates: GcCandidates) -> None:
    """Remove the candidate trial folders, holding the sweep's lock: a sweep running in this
    folder is never cut short (StoreError naming it instead)."""
    with SweepLock(store.root) as lock:
        lock.acquire()
        for tid in candidates.all:
            shutil.rmtree(store.trial_dir(tid), ignore_errors=False)
        for tid in candidates.checkpoints:
            remove_checkpoint(store, tid)


def remove_sweep(root: Path) -> int:
    """Delete a whole sweep folder; returns how many trial folders it held. Refuses a
    folder that is not a sweep (no sweep.yaml), so a typo cannot delete something else."""
    if not root.is_dir():
        raise StoreError(f"{root}: no such sweep folder")
    if not (root / SWEEP_FILE).is_file():
        raise StoreError(f"{root}: not a sweep folder (no {SWEEP_FILE}); nothing removed")
    n = len(trial_folders(SweepStore(root)))
    lock = SweepLock(root)
    lock.acquire()  # StoreError naming the running sweep, if one holds the folder
    try:
        shutil.rmtree(root)
    finally:
        lock.release()
    return n
