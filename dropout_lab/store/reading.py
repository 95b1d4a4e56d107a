"""The one way to read a file of the runs directory, with one damage policy.

Every read of a sweep folder goes through :func:`read_file` (and the parsers beside it):

- **no symlink is followed**: the file is opened with ``O_NOFOLLOW`` and every folder between
  the sweep folder and the file is checked with ``lstat``, so a link planted in the runs
  directory (``trials -> ~``) can never make a reader read, or a writer write, outside it;
- **regular files only**: the file is opened with ``O_NONBLOCK`` and checked with ``fstat``,
  so a FIFO, a socket or a device in place of a file is refused at once, never waited on;
- **a size cap per kind of file**: a file larger than its cap (``/dev/zero`` copied in, a
  100 GB log) is refused before it is read; at most ``cap + 1`` bytes are ever read;
- **malformed or wrong-typed content** (not UTF-8, not JSON, deeply nested, numbers beyond a
  float, a string where a number belongs) is :class:`Damaged`: the caller reports the file as
  ``corrupt`` and goes on. Nothing here prints; callers collect the messages.
"""

from __future__ import annotations

import errno
import json
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from dropout_lab.config import MAX_YAML_DEPTH, flow_depth

KIB, MIB = 1024, 1024 * 1024

# Caps per kind of file (bytes). Generous for what dropout-lab writes (a result.json is a few
# KB, a sweep.yaml of MAX_TRIALS trials about 1 MB), small enough to read into memory.
RESULT_CAP = 8 * MIB
METRICS_CAP = 64 * MIB
CONFIG_CAP = 1 * MIB
ERROR_CAP = 4 * MIB
SWEEP_CAP = 64 * MIB
META_CAP = 1 * MIB
WEIGHTS_CAP = 1024 * MIB  # also the cap on the arrays' unpacked size
MAX_DEPTH = 32  # nesting of JSON/YAML a reader accepts (result.json needs 6)
MAX_NUMBER = 1e300  # |x| above it is no number dropout-lab writes (and int -> float overflows)


class Damaged(Exception):
    """A file of the runs directory that cannot be trusted; ``str()`` says why, in words."""


def check_no_links(root: Path, path: Path) -> None:
    """Damaged when a folder between ``root`` (trusted: the user named it) and ``path`` is a
    symlink or not a folder. Missing folders are fine (the file is then missing too)."""
    try:
        rel = path.relative_to(root)
    except ValueError:
        return
    current = root
    for part in rel.parts[:-1]:
        current = current / part
        try:
            st = os.lstat(current)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise Damaged(f"{current}: not readable ({exc.strerror or exc})") from None
        if stat.S_ISLNK(st.st_mode):
            raise Damaged(f"{current} is a symlink (not followed)")
        if not stat.S_ISDIR(st.st_mode):
            return  # a file where a folder belongs: the path below it does not exist


def read_file(path: Path, cap: int, root: Path | None = None) -> bytes | None:
    """The bytes of ``path``, or None when it does not exist. Damaged for a symlink (the file
    or, with ``root``, a folder on the way), anything but a regular file, more than ``cap``
    bytes, or an I/O error."""
    if root is not None:
        check_no_links(root, path)
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise Damaged("a symlink (not followed)") from None
        if exc.errno == errno.ENXIO:  # a socket, or a FIFO with no writer on some systems
            raise Damaged("not a regular file") from None
        raise Damaged(f"not readable ({exc.strerror or exc})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = ("a folder" if stat.S_ISDIR(st.st_mode) else "a FIFO"
                    if stat.S_ISFIFO(st.st_mode) else "a device" if stat.S_ISCHR(st.st_mode)
                    or stat.S_ISBLK(st.st_mode) else "a socket" if stat.S_ISSOCK(st.st_mode)
                    else "not a regular file")
            raise Damaged(f"{kind}, not a regular file")
        if st.st_size > cap:
            raise Damaged(f"{st.st_size} bytes, over the {cap}-byte limit for this file")
        chunks, total = [], 0
        while total <= cap:  # a file may grow (or lie about its size) after fstat
            chunk = os.read(fd, min(1 * MIB, cap + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > cap:
            raise Damaged(f"over the {cap}-byte limit for this file")
        return b"".join(chunks)
    except OSError as exc:
        raise Damaged(f"not readable ({exc.strerror or exc})") from None
    finally:
        os.close(fd)


def read_text(path: Path, cap: int, root: Path | None = None) -> str | None:
    """:func:`read_file` decoded as UTF-8 (Damaged when it is not)."""
    data = read_file(path, cap, root)
    if data is None:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise Damaged("not a UTF-8 text file") from None


def check_tree(value: Any, depth: int = 0) -> None:
    """Damaged when ``value`` (parsed JSON or YAML) nests deeper than MAX_DEPTH, holds a number
    no float can hold, or a key that is not a string."""
    if depth > MAX_DEPTH:
        raise Damaged(f"nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return
    if isinstance(value, int):
        if abs(value) > MAX_NUMBER:
            raise Damaged("holds a number too large for a float")
        return
    if isinstance(value, float):
        return
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise Damaged(f"a key is a {type(k).__name__}, not a string")
            check_tree(v, depth + 1)
        return
    if isinstance(value, list):
        for v in value:
            check_tree(v, depth + 1)
        return
    raise Damaged(f"holds a {type(value).__name__}")  # YAML dates, sets, ...


def parse_json(text: str) -> Any:
    """JSON text -> checked value (Damaged when malformed, too deep or out of range)."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):  # JSONDecodeError, ints over 4300 digits
        raise Damaged("not valid JSON") from None
    check_tree(value)
    return value


def parse_yaml(text: str) -> Any:
    """YAML text -> checked value (safe_load; Damaged when malformed or too deep)."""
    if flow_depth(text) > MAX_YAML_DEPTH:  # before PyYAML, quadratic in the depth
        raise Damaged("not valid YAML (nested too deeply)")
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise Damaged(f"not valid YAML ({first})") from None
    except (ValueError, RecursionError, TypeError):
        raise Damaged("not valid YAML") from None
    check_tree(value)
    return value


def parse_lines(text: str, keep: Callable[[Any], bool]) -> tuple[list[Any], int]:
    """JSON Lines: (the values of the good lines, how many lines were bad). A line is bad when
    it is not JSON or ``keep`` refuses its value; blank lines are skipped, not bad."""
    rows, bad = [], 0
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            value = parse_json(line)
        except Damaged:
            bad += 1
            continue
        if keep(value):
            rows.append(value)
        else:
            bad += 1
    return rows, bad


def is_number(value: Any) -> bool:
    """A finite-or-null-able number as dropout-lab writes them (not a bool)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def lstat_kind(path: Path) -> str | None:
    """'dir', 'file', 'link', 'other', or None when missing, without following a link."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    if stat.S_ISLNK(st.st_mode):
        return "link"
    if stat.S_ISDIR(st.st_mode):
        return "dir"
    if stat.S_ISREG(st.st_mode):
        return "file"
    return "other"
