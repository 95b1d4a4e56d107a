"""Where a file-based data set's files are looked for, and the message when they are not found.

Search order for a named data set (``mnist``, ``fashion-mnist``, ``kmnist``):

1. ``dataset.path`` from the config: a folder holding the files. When it is set, only this
   folder is used (an explicit path that lacks a file is an error, never a silent fallback).
2. ``$DROPOUT_LAB_DATA/<name>/``: a shared data root, one sub-folder per data set (the
   MNIST-family sets share file names, so they cannot live in one folder).
3. The user cache ``$XDG_CACHE_HOME/dropout-lab/<name>/`` (default ``~/.cache/dropout-lab``),
   where ``dropout-lab datasets fetch`` stores downloads.

Each file may be stored gzipped (``NAME.gz``) or not (``NAME``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from dropout_lab.errors import DataError

DATA_ENV = "DROPOUT_LAB_DATA"


def cache_root() -> Path:
    """The user cache: ``$XDG_CACHE_HOME/dropout-lab``, default ``~/.cache/dropout-lab``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "dropout-lab"


def dataset_cache_dir(name: str) -> Path:
    """Where downloads of data set ``name`` are stored."""
    return cache_root() / name


def parsed_cache_dir() -> Path:
    """Fallback home of parsed ``.npy`` copies when the data folder is read-only."""
    return cache_root() / "parsed"


@dataclass
class Search:
    """The folders a data set was looked for in (label, folder), for the error message."""

    name: str
    stems: tuple[str, ...]
    tried: list[tuple[str, Path, list[str]]] = field(default_factory=list)  # (label, dir, missing)

    def describe(self) -> str:
        lines = []
        for label, folder, missing in self.tried:
            if not folder.is_dir():
                state = "no such folder"
            elif len(missing) == len(self.stems):
                state = "none of the files"
            else:
                state = "missing " + ", ".join(missing) if missing else "found"
            lines.append(f"  {label}: {folder} ({state})")
        return "\n".join(lines)


def find_file(folder: Path, stem: str) -> Path | None:
    """``folder/stem.gz`` or ``folder/stem`` (the first that exists), else None.

    Also accepts the dotted spelling some copies use (``train-images.idx3-ubyte``)."""
    for name in dict.fromkeys((stem, stem.replace("-idx", ".idx", 1))):
        for candidate in (folder / f"{name}.gz", folder / name):
            if candidate.is_file():
                return candidate
    return None


def files_in(folder: Path, stems: tuple[str, ...]) -> tuple[dict[str, Path], list[str]]:
    """The files found in ``folder`` by stem, and the stems that are missing."""
    found: dict[str, Path] = {}
    missing: list[str] = []
    for stem in stems:
        f = find_file(folder, stem) if folder.is_dir() else None
        if f is None:
            missing.append(f"{stem}[.gz]")
        else:
            found[stem] = f
    return found, missing


def search_dirs(name: str, path: str | None) -> list[tuple[str, Path]]:
    """The folders to search for data set ``name``, in order, each with a label."""
    if path:
        return [("dataset.path", Path(path).expanduser())]
    dirs = []
    env = os.environ.get(DATA_ENV)
    if env:
        dirs.append((f"${DATA_ENV}/{name}", Path(env).expanduser() / name))
    dirs.append(("cache", dataset_cache_dir(name)))
    return dirs


def locate(name: str, stems: tuple[str, ...], path: str | None) -> tuple[dict[str, Path], Search]:
    """The first folder (in search order) holding every file; ({}, search) when none does."""
    search = Search(name, stems)
    for label, folder in search_dirs(name, path):
        found, missing = files_in(folder, stems)
        search.tried.append((label, folder, missing))
        if not missing:
            return found, search
    return {}, search


def not_found_error(search: Search, fetchable: bool, fetch_problem: str | None = None
                    ) -> DataError:
    """The message a user sees when the files are nowhere: what, where, how to provide them."""
    explicit = search.tried and search.tried[0][0] == "dataset.path"
    lines = [f"data set {search.name!r} not found; looked for "
             f"{', '.join(s + '[.gz]' for s in search.stems)} in:", search.describe()]
    if fetch_problem:
        lines.append(f"download failed: {fetch_problem}")
    lines.append("to provide it:")
    if fetchable:
        lines.append(f"  - download it (needs network): dropout-lab datasets fetch {search.name}")
    lines.append("  - or put the files in a folder and pass --set dataset.path=FOLDER")
    if explicit:
        lines.append("    (dataset.path is set, so only that folder is searched; remove it to "
                     f"use ${DATA_ENV} or the cache)")
    lines.append(f"  - or set {DATA_ENV}=ROOT with the files in ROOT/{search.name}/")
    return DataError("\n".join(lines))
