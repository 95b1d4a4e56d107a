"""Verified downloads against a local HTTP server on 127.0.0.1 (never the network): a correct
file is accepted, a tampered one rejected with nothing left behind, mirrors tried in order."""

from __future__ import annotations

import hashlib
import json
import socket
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from dropout_lab.data import files, idx, mnist
from dropout_lab.data.download import RemoteFile, fetch_files, mirrors_from_env
from dropout_lab.errors import DataError


class _Handler(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep test output clean
        pass


@pytest.fixture
def serve():
    """serve(folder) -> base URL of an HTTP server on 127.0.0.1 serving that folder;
    every requested path is appended to ``serve.requests``."""
    servers = []
    requests: list[str] = []

    class Counting(_Handler):
        def do_GET(self):
            requests.append(self.path)
            super().do_GET()

    def start(folder: Path) -> str:
        server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Counting, directory=str(folder)))
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02},
                         daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/"

    start.requests = requests
    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/"


def publish(folder: Path, name: str, content: bytes) -> RemoteFile:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(content)
    return RemoteFile(name, len(content), hashlib.sha256(content).hexdigest())


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


CONTENT = np.random.default_rng(0).integers(0, 256, 300_000, dtype=np.uint8).tobytes()


def test_correct_file_is_accepted_and_stored(serve, tmp_path):
    remote = publish(tmp_path / "srv", "data.bin", CONTENT)
    dest = tmp_path / "cache"
    stored = fetch_files([remote], [serve(tmp_path / "srv")], dest)
    assert stored == [dest / "data.bin"]
    assert (dest / "data.bin").read_bytes() == CONTENT
    assert leftovers(dest) == ["data.bin"]  # no temporary file left


def test_tampered_file_is_rejected_and_nothing_is_left(serve, tmp_path):
    remote = publish(tmp_path / "srv", "data.bin", CONTENT)
    tampered = bytearray(CONTENT)
    tampered[1000] ^= 1  # same size, one bit differs
    (tmp_path / "srv" / "data.bin").write_bytes(bytes(tampered))
    dest = tmp_path / "cache"
    with pytest.raises(DataError) as info:
        fetch_files([remote], [serve(tmp_path / "srv")], dest)
    assert "SHA-256 mismatch" in str(info.value) and "data.bin" in str(info.value)
    assert not dest.exists()  # not even the empty folder it created


def test_wrong_size_is_rejected(serve, tmp_path):
    remote = publish(tmp_path / "srv", "data.bin", CONTENT)
    (tmp_path / "srv" / "data.bin").write_bytes(CONTENT + b"extra")
    with pytest.raises(DataError, match="published 300000 bytes"):
        fetch_files([remote], [serve(tmp_path / "srv")], tmp_path / "cache")
    assert leftovers(tmp_path / "cache") == []


def test_next_mirror_after_tampered_missing_or_unreachable(serve, tmp_path):
    remote = publish(tmp_path / "good", "data.bin", CONTENT)
    publish(tmp_path / "bad", "data.bin", CONTENT[::-1])
    (tmp_path / "empty").mkdir()
    mirrors = [closed_port_url(), serve(tmp_path / "empty"), serve(tmp_path / "bad"),
               serve(tmp_path / "good")]
    messages: list[str] = []
    fetch_files([remote], mirrors, tmp_path / "cache", report=messages.append)
    assert (tmp_path / "cache" / "data.bin").read_bytes() == CONTENT
    text = "\n".join(messages)
    assert "HTTP 404" in text and "SHA-256 mismatch" in text and "verified" in text


def test_every_attempt_is_listed_and_an_unreachable_mirror_is_skipped_afterwards(serve,
                                                                                 tmp_path):
    dead = closed_port_url()
    a = publish(tmp_path / "srv", "a.bin", b"a" * 10)
    b = RemoteFile("b.bin", 10, "0" * 64)  # served nowhere
    with pytest.raises(DataError) as info:
        fetch_files([a, b], [dead, serve(tmp_path / "srv")], tmp_path / "cache")
    msg = str(info.value)
    assert "could not download b.bin" in msg
    assert f"{dead}b.bin: skipped (cannot connect" in msg  # not tried again for the 2nd file
    assert "HTTP 404" in msg
    assert leftovers(tmp_path / "cache") == ["a.bin"]  # the verified first file stays


def test_present_and_verified_files_are_not_downloaded_again(serve, tmp_path):
    remote = publish(tmp_path / "srv", "data.bin", CONTENT)
    url = serve(tmp_path / "srv")
    fetch_files([remote], [url], tmp_path / "cache")
    assert serve.requests == ["/data.bin"]
    fetch_files([remote], [url], tmp_path / "cache")
    assert serve.requests == ["/data.bin"]
    (tmp_path / "cache" / "data.bin").write_bytes(b"damaged")  # a corrupted cached copy
    fetch_files([remote], [url], tmp_path / "cache")
    assert serve.requests == ["/data.bin"] * 2
    fetch_files([remote], [url], tmp_path / "cache", force=True)
    assert serve.requests == ["/data.bin"] * 3
    assert (tmp_path / "cache" / "data.bin").read_bytes() == CONTENT


def test_mirrors_from_env(monkeypatch):
    assert mirrors_from_env(["https://a/"]) == ["https://a/"]
    monkeypatch.setenv("DROPOUT_LAB_MIRRORS", "http://127.0.0.1:1/, http://127.0.0.1:2/")
    assert mirrors_from_env(["https://a/"]) == ["http://127.0.0.1:1/", "http://127.0.0.1:2/"]


def test_non_http_mirror_is_refused(tmp_path):
    (tmp_path / "x.bin").write_bytes(b"x")
    with pytest.raises(DataError, match="not an http"):
        fetch_files([RemoteFile("x.bin", 1, "0" * 64)], [f"file://{tmp_path}/"],
                    tmp_path / "cache")


def test_checksum_table_is_complete_and_well_formed():
    for fam in mnist.FAMILY.values():
        assert [f.filename for f in fam.files] == [s + ".gz" for s in mnist.STEMS]
        for f in fam.files:
            assert len(f.sha256) == 64 and int(f.sha256, 16) >= 0 and f.size > 0
        assert all(m.startswith(("http://", "https://")) and m.endswith("/")
                   for m in fam.mirrors)
    assert len({f.sha256 for fam in mnist.FAMILY.values() for f in fam.files}) == 12


# ---------------------------------------------------------------------------------------
# Through the CLI (mirrors replaced by DROPOUT_LAB_MIRRORS)
# ---------------------------------------------------------------------------------------


def test_cli_fetch_rejects_files_that_are_not_the_published_ones(cli, serve, tmp_path,
                                                                 monkeypatch):
    srv = tmp_path / "srv"
    srv.mkdir()
    for stem in mnist.STEMS:  # valid IDX files, but not MNIST: their digests differ
        idx.write(srv / f"{stem}.gz", np.zeros(3, dtype=np.uint8))
    monkeypatch.setenv("DROPOUT_LAB_MIRRORS", serve(srv))
    code, out, err = cli("datasets", "fetch", "mnist")
    assert code == 2
    assert "could not download train-images-idx3-ubyte.gz" in err and "published" in err
    assert leftovers(files.dataset_cache_dir("mnist")) == []


def test_cli_fetch_offline_fails_with_the_urls_tried(cli, monkeypatch):
    dead = closed_port_url()
    monkeypatch.setenv("DROPOUT_LAB_MIRRORS", dead)
    code, _, err = cli("datasets", "fetch", "kmnist")
    assert code == 2 and f"{dead}train-images-idx3-ubyte.gz: cannot connect" in err
    assert "Traceback" not in err


def test_cli_fetch_accepts_matching_files(cli, serve, tmp_path, monkeypatch):
    """The real table cannot be served offline, so swap in one whose digests match."""
    srv = tmp_path / "srv"
    table = []
    for stem in mnist.STEMS:
        table.append(publish(srv, f"{stem}.gz", idx.encode(np.arange(4, dtype=np.uint8))))
    fam = mnist.FAMILY["mnist"]
    monkeypatch.setitem(mnist.FAMILY, "mnist", mnist.Family(fam.name, fam.description,
                                                            fam.mirrors, tuple(table)))
    monkeypatch.setenv("DROPOUT_LAB_MIRRORS", serve(srv))
    code, out, err = cli("datasets", "fetch", "mnist")
    assert code == 0, err
    assert "4 files verified" in out
    assert leftovers(files.dataset_cache_dir("mnist")) == sorted(s + ".gz" for s in mnist.STEMS)
    code, out, err = cli("datasets", "fetch", "mnist", "--json")  # present: nothing to fetch
    assert code == 0, err
    assert json.loads(out) == {"name": "mnist", "files": 4,
                               "folder": str(files.dataset_cache_dir("mnist"))}


def test_cli_fetch_of_a_data_set_with_nothing_to_download(cli):
    code, _, err = cli("datasets", "fetch", "digits")
    assert code == 2 and "nothing to download" in err
    code, _, err = cli("datasets", "fetch", "mnsit")
    assert code == 2 and "did you mean 'mnist'" in err


def test_a_server_that_never_answers_times_out(tmp_path):
    """The connection is accepted (listen backlog) but no byte ever comes back."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/"
        with pytest.raises(DataError, match="timed out"):
            fetch_files([RemoteFile("x.bin", 1, "0" * 64)], [url], tmp_path / "cache",
                        timeout=0.2)
    assert not (tmp_path / "cache").exists()
