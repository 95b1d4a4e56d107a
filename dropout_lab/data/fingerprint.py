"""Data fingerprints: a content hash of the files a data set reads, part of a trial's identity.

A trial id hashes the resolved config only, and a config names a file by its path: after the
labels of an ``.npz`` were shuffled, a re-run reused every trial. So each result records
``env.data``, the fingerprint of the data it trained on, and the runner re-runs a stored
trial whose fingerprint differs from the data's current one (docs/results.md).

A fingerprint is the SHA-256 of the data set's name and, per source file (in a fixed order),
its name and the SHA-256 of its bytes. Generated data sets (``synthetic``) read no file: their
data is fully determined by the config, which the trial id already covers, so their
fingerprint has no hash.

Hashing MNIST's 55 MB takes about 0.1 s; a file's hash is cached by (path, size, mtime) in
memory and in ``$XDG_CACHE_HOME/dropout-lab/fingerprints.json``, so a re-run of a finished
sweep reads no data file at all.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from dropout_lab.data import files, registry
from dropout_lab.errors import DataError
from dropout_lab.specs.datasets import DatasetOptions

CACHE_FILE = "fingerprints.json"
CACHE_ENTRIES = 1000  # file hashes kept on disk (the oldest dropped)
_CHUNK = 1 << 20

# (resolved path, size, mtime_ns) -> sha256 hex, for this process
_memory: dict[str, str] = {}


def source_files(cfg: DatasetOptions) -> list[Path]:
    """The files data set ``cfg`` reads (its registry entry's ``sources``); [] for generated
    data. Raises DataError when a file-based data set's files are not where it looks."""
    spec = registry.get_spec(cfg.name)
    if not spec.sources:
        return []
    found: list[Path] = registry.function(spec.sources)(cfg)
    return found


def fingerprint(cfg: DatasetOptions, write_cache: bool = True) -> dict[str, Any]:
    """``{"sha256": ..., "files": [{"name", "bytes", "sha256"}, ...]}`` for the data set of
    ``cfg``; ``{"sha256": None, "files": []}`` for generated data (the config decides it).
    ``write_cache``: False only reads the on-disk cache (a dry run writes nothing; the trials
    that run write it). Raises DataError when a source file cannot be located or read."""
    paths = source_files(cfg)
    if not paths:
        return {"sha256": None, "files": []}
    entries = []
    whole = hashlib.sha256(cfg.name.encode())
    for path in paths:
        digest, size = file_sha256(path, write_cache)
        entries.append({"name": path.name, "bytes": size, "sha256": digest})
        whole.update(f"\0{path.name}\0{digest}".encode())
    return {"sha256": whole.hexdigest(), "files": entries}


def file_sha256(path: Path, write_cache: bool = True) -> tuple[str, int]:
    """(SHA-256 hex of the file's bytes, its size), from the cache when the file's path,
    size and modification time are those last hashed; a new hash is written to the on-disk
    cache when ``write_cache``."""
    try:
        st = path.stat()
        key = f"{path.resolve()}\0{st.st_size}\0{st.st_mtime_ns}"
    except OSError as exc:
        raise DataError(f"{path}: cannot read it to fingerprint the data ({exc.strerror})"
                        ) from None
    if key in _memory:
        return _memory[key], st.st_size
    stored = _read_disk_cache()
    digest = stored.get(key)
    if not isinstance(digest, str):
        digest = _hash(path)
        if not write_cache:  # not remembered either: the next writing call stores it
            return digest, st.st_size
        stored[key] = digest
        _write_disk_cache(stored)
    _memory[key] = digest
    return digest, st.st_size


def _hash(path: Path) -> str:
    h = hashlib.sha256()
    try:
        with path.open("rb") as fh:
            while chunk := fh.read(_CHUNK):
                h.update(chunk)
    except OSError as exc:
        raise DataError(f"{path}: cannot read it to fingerprint the data ({exc.strerror})"
                        ) from None
    return h.hexdigest()


def _cache_path() -> Path:
    return files.cache_root() / CACHE_FILE


def _read_disk_cache() -> dict[str, Any]:
    """The on-disk cache; {} when it is absent, unreadable or damaged (it is only a cache)."""
    path = _cache_path()
    try:
        if not path.is_file() or path.stat().st_size > 16 * CACHE_ENTRIES * 1024:
            return {}
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_disk_cache(entries: dict[str, Any]) -> None:
    """Write the cache atomically; a read-only or full disk only costs a re-hash later."""
    keep = dict(list(entries.items())[-CACHE_ENTRIES:])
    path = _cache_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".fingerprints-", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(keep, fh)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except OSError:
        pass


def stale_reason(stored: dict[str, Any] | None, current: dict[str, Any] | None) -> str | None:
    """Why a stored result's data is not the current data (None when it is, or when either
    side has no hash: generated data, or a result made before fingerprints were recorded)."""
    if not isinstance(stored, dict) or not isinstance(current, dict):
        return None
    old, new = stored.get("sha256"), current.get("sha256")
    if not isinstance(old, str) or not isinstance(new, str) or old == new:
        return None
    return f"its data changed since it ran (sha256 {old[:12]} -> {new[:12]})"


def describe_data(data: Any) -> str:
    """'sha256 1a2b3c4d5e6f (data.npz)' for an ``env.data`` entry; 'generated (no file)' for
    generated data; '?' when it is missing or damaged."""
    if not isinstance(data, dict):
        return "?"
    digest = data.get("sha256")
    if digest is None:
        return "generated (no file)"
    if not isinstance(digest, str):
        return "?"
    entries = data.get("files")
    names = [str(f.get("name")) for f in entries if isinstance(f, dict)] \
        if isinstance(entries, list) else []
    return f"sha256 {digest[:12]}" + (f" ({', '.join(names)})" if names else "")
