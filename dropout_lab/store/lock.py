"""One sweep at a time per folder: an advisory lock on ``runs/<name>/.lock``."""

from __future__ import annotations

import datetime as _dt
import errno
import fcntl
import json
import os
import socket
import stat
from pathlib import Path

from dropout_lab.errors import ENVIRONMENT_ERRNOS, EnvironmentFault, StoreError
from dropout_lab.store.files import UMASK
from dropout_lab.store.reading import META_CAP, Damaged, parse_json, read_text

LOCK_FILE = ".lock"


class SweepLock:
    """An advisory lock (``flock``) on ``runs/<name>/.lock``, held for a whole sweep.

    The OS releases it when the process dies, even by SIGKILL, so a crashed sweep never
    leaves a stale lock; the file's text (pid, host, start time) is only for the message."""

    def __init__(self, root: Path, name: str = LOCK_FILE):
        self.path = Path(root) / name
        self._fd: int | None = None

    def holder(self) -> str:
        """Who holds the lock, as written by the holder (best effort)."""
        try:
            info = parse_json(read_text(self.path, META_CAP) or "")
            return f"pid {info['pid']} on {info['host']} since {info['started']}"
        except (Damaged, KeyError, TypeError):
            return "another process"

    def acquire(self, wait: bool = False) -> None:
        """Take the lock, or raise StoreError naming the holder (``wait``: block until free)."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # O_NOFOLLOW: a lock file that is a symlink is refused (ELOOP), never written
            # through; O_NONBLOCK: a FIFO there does not hang the open.
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK,
                         0o666 & ~UMASK)
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                os.close(fd)
                raise StoreError(f"cannot lock {self.path}: not a regular file; remove it")
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise StoreError(f"cannot lock {self.path}: it is a symlink (never followed); "
                                 "remove it") from None
            if exc.errno in ENVIRONMENT_ERRNOS:
                raise EnvironmentFault.from_os_error(exc, "cannot lock", self.path) from None
            raise StoreError(f"cannot lock {self.path}: {exc.strerror or exc}") from None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if not wait:
                    raise StoreError(
                        f"{self.path.parent} is in use by another sweep ({self.holder()}); "
                        "wait for it to finish, or pass --wait to wait for it") from None
                fcntl.flock(fd, fcntl.LOCK_EX)  # Ctrl-C interrupts the wait
            started = _dt.datetime.now().astimezone().isoformat(timespec="seconds")
            info = json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                               "started": started})
            os.ftruncate(fd, 0)
            os.pwrite(fd, info.encode(), 0)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def release(self) -> None:
        """Give the lock back (closing the descriptor releases the flock)."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    def __enter__(self) -> SweepLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
