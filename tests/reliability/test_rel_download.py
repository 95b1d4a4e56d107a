"""Downloads (issue 12, items 9 and 11): an overall deadline per file, progress with bytes and
rate, and the .part files of a killed fetch removed by the next one. Against a server on
127.0.0.1 that trickles its bytes, never the network."""

from __future__ import annotations

import hashlib
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from dropout_lab.data import download
from dropout_lab.data.download import RemoteFile, fetch_files
from dropout_lab.errors import DataError

CONTENT = bytes(range(256)) * 40  # 10 kB


class _Trickle(BaseHTTPRequestHandler):
    """Sends CONTENT in slices of ``step`` bytes every ``pause`` seconds."""

    step, pause = 1, 0.05

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(CONTENT)))
        self.end_headers()
        try:
            for i in range(0, len(CONTENT), self.step):
                self.wfile.write(CONTENT[i:i + self.step])
                self.wfile.flush()
                time.sleep(self.pause)
        except OSError:  # the client gave up
            pass

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def trickle():
    def start(step: int, pause: float) -> str:
        handler = type("H", (_Trickle,), {"step": step, "pause": pause})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02},
                         daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/"

    servers: list[ThreadingHTTPServer] = []
    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


REMOTE = RemoteFile("data.bin", len(CONTENT), hashlib.sha256(CONTENT).hexdigest())


def test_a_trickling_mirror_hits_the_deadline_and_leaves_nothing(trickle, tmp_path):
    # One byte every 50 ms never trips the 5 s per-read timeout; 10 kB would take ~8 min.
    url = trickle(step=1, pause=0.05)
    with pytest.raises(DataError, match="not complete after 0.5 s"):
        fetch_files([REMOTE], [url], tmp_path / "d", deadline=0.5)
    assert not (tmp_path / "d").exists()  # no .part, no empty folder


def test_the_deadline_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv(download.DEADLINE_ENV, "12.5")
    assert download.deadline_from_env() == 12.5
    monkeypatch.setenv(download.DEADLINE_ENV, "soon")
    with pytest.raises(DataError, match="DROPOUT_LAB_DOWNLOAD_DEADLINE"):
        download.deadline_from_env()
    monkeypatch.delenv(download.DEADLINE_ENV)
    assert download.deadline_from_env() == download.DEADLINE


def test_progress_lines_show_bytes_and_rate(trickle, tmp_path, monkeypatch):
    monkeypatch.setattr(download, "PROGRESS_SECONDS", 0.1)
    url = trickle(step=1024, pause=0.05)  # 10 slices over ~0.5 s
    lines: list[str] = []
    [path] = fetch_files([REMOTE], [url], tmp_path / "d", report=lines.append, deadline=30)
    assert path.read_bytes() == CONTENT
    progress = [line for line in lines if " / " in line]
    assert progress, lines
    assert all("kB / 10.2 kB at " in line and line.endswith("/s") for line in progress)


def test_a_fetch_removes_the_part_files_of_a_killed_fetch(trickle, tmp_path):
    dest = tmp_path / "d"
    dest.mkdir()
    stale = dest / ".data.bin.k1ll3d.part"
    stale.write_bytes(b"half a download")
    [path] = fetch_files([REMOTE], [trickle(step=4096, pause=0)], dest)
    assert not stale.exists() and path.read_bytes() == CONTENT
    assert sorted(p.name for p in dest.iterdir()) == ["data.bin"]
