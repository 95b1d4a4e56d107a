"""Files the user names with ``-o`` (``report -o``, ``schema -o``, ``plot -o``): checked before
any work, written whole or not at all, and never put in place of what the name points to.

- A regular file (or a new name in an existing folder) is written atomically: a temporary
  file in the same folder, then a rename; an interruption or a refusal leaves the old file,
  or nothing, and no temporary file.
- A symbolic link is followed: its target is written (``-o latest.html`` pointing at
  ``reports/v3.html`` updates ``reports/v3.html``; the link stays a link).
- A FIFO or a character device (``/dev/stdout``, ``/dev/null``, a named pipe) is written
  through, as ``cat > NAME`` would; a FIFO nobody reads is refused at once, never waited on.
- A folder, a block device, a socket, a link to a missing file and a missing parent folder
  are refused (exit 2); folders are never created for a file the user named.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from pathlib import Path

from dropout_lab.errors import EnvironmentFault, OutputError
from dropout_lab.store import atomic_write_bytes
from dropout_lab.store.files import probe_writable


def _stat(path: Path) -> os.stat_result | None:
    """os.stat following links; None when nothing (or a dangling link) is there."""
    try:
        return os.stat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno in (errno.ENAMETOOLONG, errno.ELOOP, errno.ENOTDIR):
            raise OutputError(f"{path}: not a usable path ({exc.strerror})") from None
        raise EnvironmentFault.from_os_error(exc, "cannot access", path) from None


def is_stream(st: os.stat_result | None) -> bool:
    """A FIFO or a character device: written through, never replaced."""
    return st is not None and (stat.S_ISFIFO(st.st_mode) or stat.S_ISCHR(st.st_mode))


def check_output(path: Path, option: str, folder: bool = False) -> Path:
    """Refuse an output path before any rendering (OutputError, exit 2; EnvironmentFault,
    exit 3, when the machine refuses a file there). ``folder``: the path is a folder of files
    (``plot -o``), created if missing but only inside an existing folder."""
    path = Path(path)
    parent = path.parent
    if not parent.is_dir():
        what = "is not a folder" if parent.exists() else "does not exist"
        raise OutputError(f"{option} {path}: the folder {parent} {what} (create it first)")
    st = _stat(path)
    if st is None and path.is_symlink():
        raise OutputError(f"{option} {path}: a link to a missing file "
                          f"({os.readlink(path)}); name the file itself")
    if folder:
        if st is not None and not stat.S_ISDIR(st.st_mode):
            raise OutputError(f"{option} {path}: exists and is not a folder")
        probe_writable(path if st is not None else parent, path)
        return path
    if st is not None:
        if stat.S_ISDIR(st.st_mode):
            raise OutputError(f"{option} {path}: is a folder; name the file to write")
        if is_stream(st):
            return path
        if not stat.S_ISREG(st.st_mode):
            raise OutputError(f"{option} {path}: not a regular file, a FIFO or a terminal "
                              "(a block device or a socket); name a file")
    target = Path(os.path.realpath(path)) if path.is_symlink() else path
    probe_writable(target.parent, path)
    return path


def write_output(path: Path, data: bytes, option: str) -> Path:
    """Write ``data`` to the output the user named (see the module docstring); returns the
    path written (the link's target for a link to a file)."""
    path = Path(path)
    st = _stat(path)
    if is_stream(st):
        _write_through(path, data, option)
        return path
    target = Path(os.path.realpath(path)) if path.is_symlink() else path
    if not target.parent.is_dir():  # never create folders for a file the user named
        raise OutputError(f"{option} {path}: the folder {target.parent} does not exist")
    atomic_write_bytes(target, data)
    return target


def _write_through(path: Path, data: bytes, option: str) -> None:
    """A FIFO or a device: open it for writing (non-blocking first, so a FIFO without a
    reader is refused instead of waited on), then write everything."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        if exc.errno == errno.ENXIO:
            raise OutputError(f"{option} {path}: a FIFO that nobody reads; start the reader "
                              "first") from None
        raise EnvironmentFault.from_os_error(exc, "cannot write", path) from None
    try:
        os.set_blocking(fd, True)
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
    except BrokenPipeError:
        raise OutputError(f"{option} {path}: the reader went away before the end") from None
    except OSError as exc:
        raise EnvironmentFault.from_os_error(exc, "cannot write", path) from None
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)
