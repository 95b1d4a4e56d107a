"""Verified downloads: try each public mirror in turn, check SHA-256, store atomically.

Every file is streamed to a temporary file in the destination folder while its SHA-256 is
computed; only a file whose digest matches the published one is renamed into place
(``os.replace``), so the cache never holds a partial or tampered file. A mirror that cannot
be reached is skipped for the remaining files, and connection attempts time out after
:data:`TIMEOUT` seconds, so an offline machine fails in seconds, not minutes. Each file also
has an overall deadline (:data:`DEADLINE`, or ``$DROPOUT_LAB_DOWNLOAD_DEADLINE`` seconds): a
mirror trickling one byte every few seconds never trips the per-read timeout, but it does
trip this. Progress lines show bytes and rate. A fetch holds a lock on its folder, and
removes ``.part`` files a killed fetch left there.

Tests (and users behind their own mirror) replace the mirror list with the environment
variable ``DROPOUT_LAB_MIRRORS`` (comma-separated base URLs) or the ``mirrors`` argument.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import http.client
import os
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from dropout_lab.errors import DataError

MIRRORS_ENV = "DROPOUT_LAB_MIRRORS"
TIMEOUT = 5.0  # seconds for the connection and for each read
DEADLINE = 600.0  # seconds for a whole file (default; see deadline_from_env)
DEADLINE_ENV = "DROPOUT_LAB_DOWNLOAD_DEADLINE"
PROGRESS_SECONDS = 2.0  # how often a progress line is reported during a download
CHUNK = 1 << 16

Reporter = Callable[[str], None]


@dataclass(frozen=True)
class RemoteFile:
    """One file of a data set as published: its name, byte size and SHA-256."""

    filename: str
    size: int
    sha256: str


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def mirrors_from_env(default: Sequence[str]) -> list[str]:
    """``$DROPOUT_LAB_MIRRORS`` (comma-separated base URLs) when set, else ``default``."""
    env = os.environ.get(MIRRORS_ENV, "").strip()
    if not env:
        return list(default)
    return [m.strip() for m in env.split(",") if m.strip()]


def deadline_from_env() -> float:
    """``$DROPOUT_LAB_DOWNLOAD_DEADLINE`` (seconds per file) when set, else :data:`DEADLINE`."""
    raw = os.environ.get(DEADLINE_ENV, "").strip()
    if not raw:
        return DEADLINE
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):
        raise DataError(f"${DEADLINE_ENV} = {raw!r}: expected a positive number of seconds")
    return value


def _size(n: float) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{n / 1e3:.1f} kB"


class _Unreachable(Exception):
    """The mirror could not be contacted at all (skip it for the remaining files)."""


def _download_one(url: str, remote: RemoteFile, dest_dir: Path, timeout: float,
                  deadline: float = DEADLINE, report: Reporter | None = None) -> Path:
    """Stream ``url`` to a temporary file in ``dest_dir``; return it if the SHA-256 matches.

    Raises _Unreachable (connection failed) or ValueError (wrong content, or not complete
    within ``deadline`` seconds; temp file removed)."""
    started = time.monotonic()
    shown = started
    if not url.startswith(("http://", "https://")):
        raise _Unreachable(f"not an http(s) URL: {url}")
    request = urllib.request.Request(url, headers={"User-Agent": "dropout-lab"})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 (http(s) only)
    except urllib.error.HTTPError as exc:
        raise ValueError(f"HTTP {exc.code} {exc.reason}") from None
    except http.client.HTTPException as exc:  # a server that does not speak HTTP properly
        raise ValueError(f"bad HTTP response ({exc!r})") from None
    except OSError as exc:  # URLError, timeouts, refused connections
        reason = getattr(exc, "reason", exc)
        raise _Unreachable(f"cannot connect ({reason})") from None
    fd, tmp_name = tempfile.mkstemp(dir=dest_dir, prefix=f".{remote.filename}.", suffix=".part")
    tmp = Path(tmp_name)
    h = hashlib.sha256()
    n = 0
    try:
        with response, os.fdopen(fd, "wb") as out:
            while True:
                try:
                    # read1: returns what one receive brings, so the deadline is checked
                    # between small reads too (read(CHUNK) waits for all CHUNK bytes).
                    chunk = response.read1(CHUNK)
                except (OSError, http.client.HTTPException) as exc:
                    raise ValueError(f"connection lost after {n} bytes ({exc})") from None
                if not chunk:
                    break
                n += len(chunk)
                now = time.monotonic()
                if now - started > deadline:
                    raise ValueError(f"not complete after {deadline:g} s ({_size(n)} of "
                                     f"{_size(remote.size)}; raise ${DEADLINE_ENV} for a "
                                     "slow link)")
                if report is not None and now - shown >= PROGRESS_SECONDS:
                    shown = now
                    report(f"{remote.filename}: {_size(n)} / {_size(remote.size)} at "
                           f"{_size(n / (now - started))}/s")
                if n > remote.size:  # never store more than the published size
                    raise ValueError(f"more than the published {remote.size} bytes")
                h.update(chunk)
                out.write(chunk)
        if n != remote.size:
            raise ValueError(f"got {n} bytes, the published size is {remote.size}")
        digest = h.hexdigest()
        if digest != remote.sha256:
            raise ValueError(f"SHA-256 mismatch (got {digest[:16]}..., "
                             f"expected {remote.sha256[:16]}...)")
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def fetch_files(
    files: Sequence[RemoteFile],
    mirrors: Sequence[str],
    dest_dir: str | Path,
    force: bool = False,
    timeout: float = TIMEOUT,
    report: Reporter | None = None,
    deadline: float | None = None,
) -> list[Path]:
    """Download every file of ``files`` into ``dest_dir`` (skipping verified ones unless
    ``force``); each from the first mirror that serves the right bytes, within ``deadline``
    seconds per file (default: :func:`deadline_from_env`).

    Raises DataError listing every URL tried and why it failed; files already verified and
    stored stay, nothing partial is left behind."""
    dest = Path(dest_dir)
    report = report or (lambda _msg: None)
    if not mirrors:
        raise DataError("no download mirrors configured")
    created = not dest.exists()
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create the download folder {dest}: {exc.strerror or exc}"
                        ) from None
    deadline = deadline_from_env() if deadline is None else deadline
    try:
        with _fetch_lock(dest):
            for stale in dest.glob(".*.part"):  # left by a killed fetch (we hold the lock)
                with contextlib.suppress(OSError):
                    stale.unlink()
            return _fetch_into(files, mirrors, dest, force, timeout, report, deadline)
    except DataError:
        if created and not any(dest.iterdir()):
            dest.rmdir()  # leave no empty folder that looks like a download
        raise


@contextlib.contextmanager
def _fetch_lock(dest: Path) -> Iterator[None]:
    """One fetch per folder at a time (a second one waits), so .part files can be cleaned.
    The lock is on the folder itself (flock works on a directory's descriptor): no file."""
    try:
        fd = os.open(dest, os.O_RDONLY)
    except OSError as exc:
        raise DataError(f"cannot open the download folder {dest}: {exc.strerror or exc}"
                        ) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _fetch_into(files: Sequence[RemoteFile], mirrors: Sequence[str], dest: Path, force: bool,
                timeout: float, report: Reporter, deadline: float) -> list[Path]:
    unreachable: dict[str, str] = {}  # mirror -> reason, skipped for later files
    stored: list[Path] = []
    for remote in files:
        target = dest / remote.filename
        if target.is_file() and not force:
            if target.stat().st_size == remote.size and sha256_of(target) == remote.sha256:
                report(f"{remote.filename}: already present and verified")
                stored.append(target)
                continue
            report(f"{remote.filename}: present but does not match its checksum; downloading")
        attempts: list[str] = []
        for base in mirrors:
            url = base.rstrip("/") + "/" + remote.filename
            if base in unreachable:
                attempts.append(f"{url}: skipped ({unreachable[base]})")
                continue
            report(f"{remote.filename}: downloading {url} ({remote.size / 1e6:.1f} MB)")
            try:
                tmp = _download_one(url, remote, dest, timeout, deadline, report)
            except _Unreachable as exc:
                unreachable[base] = str(exc)
                attempts.append(f"{url}: {exc}")
                continue
            except ValueError as exc:
                attempts.append(f"{url}: {exc}")
                report(f"{remote.filename}: rejected ({exc}); trying the next mirror")
                continue
            except OSError as exc:  # our side: the download folder is not writable
                raise DataError(f"cannot write to {dest}: {exc.strerror or exc}") from None
            os.replace(tmp, target)
            report(f"{remote.filename}: verified (SHA-256 {remote.sha256[:16]}...)")
            stored.append(target)
            break
        else:
            tried = "\n".join(f"  {a}" for a in attempts)
            raise DataError(f"could not download {remote.filename}; tried:\n{tried}")
    return stored
