"""Files written whole or not at all, and JSON without NaN.

Every file of the runs directory is written to a temporary file in the same folder, synced,
then renamed over its name: a crash at any point leaves the old file or the new one, never
half of either (the commit points of docs/reliability.md).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

from dropout_lab.errors import EnvironmentFault, StoreError


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


UMASK = _current_umask()  # new files get 0666 & ~umask, as open() would give


def atomic_write_text(path: Path, text: str) -> None:
    """Write to a temporary file in the same folder, fsync, then rename over ``path``.

    A refusal of the machine (disk full, permission denied, read-only) is an
    EnvironmentFault naming ``path``; the old file, if any, is left as it was."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """:func:`atomic_write_text` for bytes."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise EnvironmentFault.from_os_error(exc, "cannot write", path) from None
    try:
        os.chmod(tmp, 0o666 & ~UMASK)  # mkstemp makes 0600; results are ordinary files
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise EnvironmentFault(f"cannot write {path}: {exc.strerror or exc}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def is_stale_temporary(path: Path) -> bool:
    """A temporary file of :func:`atomic_write_text` or of the write check, left by a run that
    was killed between creating and renaming it."""
    name = path.name
    return name.startswith(".") and (name.endswith(".tmp") or name.startswith(".write-check."))


def check_output_path(path: Path, option: str, folder: bool = False) -> Path:
    """An output path the user named (``report -o``, ``plot -o``): its parent folder must
    exist (it is never created silently), and the path must not be the wrong kind of thing.
    StoreError (exit 2) naming the option; EnvironmentFault (exit 3) when the machine refuses
    a file there."""
    path = Path(path)
    parent = path.parent
    if not parent.is_dir():
        what = "is not a folder" if parent.exists() else "does not exist"
        raise StoreError(f"{option} {path}: the folder {parent} {what} (create it first)")
    if folder and path.exists() and not path.is_dir():
        raise StoreError(f"{option} {path}: exists and is not a folder")
    if not folder and path.is_dir():
        raise StoreError(f"{option} {path}: is a folder; name the file to write")
    # Probe now, so a folder the machine refuses costs no rendering first (exit 3).
    probe_writable(path if folder and path.is_dir() else parent, path)
    return path


def probe_writable(folder: Path, named: Path) -> None:
    """Create and remove a temporary file in ``folder``, so that a folder the machine refuses
    costs no work first; EnvironmentFault (exit 3) naming ``named`` when it cannot."""
    try:
        fd, probe = tempfile.mkstemp(prefix=".write-check.", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise EnvironmentFault.from_os_error(exc, "cannot write", named) from None


def _clean(value: Any) -> Any:
    """JSON has no NaN/inf: store them as null so every reader can parse the files."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def dumps(value: Any, indent: int | None = None) -> str:
    """JSON text of ``value`` with NaN and inf written as null."""
    return json.dumps(_clean(value), indent=indent, allow_nan=False)
