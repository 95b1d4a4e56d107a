"""IDX parsing, the MNIST family and the user's own idx/npz data: built from small files in a
temporary folder (correct ones and broken ones). Nothing here touches the network."""

from __future__ import annotations

import gzip
import json
import socket
from pathlib import Path

import numpy as np
import pytest

from dropout_lab.config import DatasetConfig
from dropout_lab.data import files, idx, load_dataset, mnist, npz, preflight
from dropout_lab.errors import DataError

ROOT = Path(__file__).resolve().parents[2]


def make_mnist(folder: Path, n_train: int = 60, n_test: int = 20, gz: bool = True,
               seed: int = 0, shape: tuple[int, int] = (28, 28)) -> dict[str, np.ndarray]:
    """Four MNIST-named IDX files with random pixels and labels cycling 0..9."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, *shape), dtype=np.uint8),
        "train-labels-idx1-ubyte": (np.arange(n_train) % 10).astype(np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, *shape), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": ((np.arange(n_test) + 3) % 10).astype(np.uint8),
    }
    for stem, arr in arrays.items():
        idx.write(folder / (stem + (".gz" if gz else "")), arr)
    return arrays


def closed_port() -> int:
    """A 127.0.0.1 port nothing listens on: connecting is refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------------------
# The format
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["uint8", "int8", "int16", "int32", "float32", "float64"])
def test_round_trip_every_type(tmp_path, dtype):
    arr = (np.arange(2 * 3 * 4) - 5).reshape(2, 3, 4).astype(dtype)
    path = idx.write(tmp_path / "a.idx", arr)
    back = idx.read(path)
    assert back.dtype == np.dtype(dtype) and back.shape == (2, 3, 4)
    np.testing.assert_array_equal(back, arr)


def test_header_bytes_match_the_published_layout():
    # LeCun's page: labels file = 0x00000801, then the count as a big-endian uint32.
    data = idx.encode(np.array([7, 2, 1], dtype=np.uint8))
    assert data == bytes([0, 0, 0x08, 1, 0, 0, 0, 3, 7, 2, 1])


def test_gzip_is_detected_by_content_not_name(tmp_path):
    arr = np.arange(10, dtype=np.uint8)
    plain_named_gz = tmp_path / "x.gz"
    plain_named_gz.write_bytes(idx.encode(arr))  # not compressed despite the name
    gz_named_plain = tmp_path / "y"
    gz_named_plain.write_bytes(gzip.compress(idx.encode(arr)))
    np.testing.assert_array_equal(idx.read(plain_named_gz), arr)
    np.testing.assert_array_equal(idx.read(gz_named_plain), arr)


def _bad(tmp_path: Path, content: bytes, compress: bool = False) -> str:
    path = tmp_path / "broken-idx3-ubyte"
    path.write_bytes(gzip.compress(content) if compress else content)
    with pytest.raises(DataError) as info:
        idx.read(path)
    assert str(path) in str(info.value)  # every error names the file
    return str(info.value)


def test_wrong_magic(tmp_path):
    good = idx.encode(np.zeros((2, 2), dtype=np.uint8))
    assert "magic number" in _bad(tmp_path, b"\x12\x34" + good[2:])
    assert "magic number" in _bad(tmp_path, good[:2] + b"\x07" + good[3:])  # unknown type


def test_truncated_data_and_header(tmp_path):
    good = idx.encode(np.zeros((5, 4, 4), dtype=np.uint8))
    msg = _bad(tmp_path, good[:-7])
    assert "truncated" in msg and "80 bytes" in msg and "73" in msg
    assert "truncated" in _bad(tmp_path, good[:-7], compress=True)
    assert "truncated IDX header" in _bad(tmp_path, good[:9])
    assert "not an IDX file" in _bad(tmp_path, b"\x00\x00")


def test_trailing_bytes_and_absurd_dimensions(tmp_path):
    good = idx.encode(np.zeros(4, dtype=np.int32))
    assert "trailing bytes" in _bad(tmp_path, good + b"\x00")
    assert "dimensions" in _bad(tmp_path, b"\x00\x00\x08\x00")  # zero dimensions


def test_corrupted_gzip_stream(tmp_path):
    data = bytearray(gzip.compress(idx.encode(np.arange(1000, dtype=np.int32))))
    data[len(data) // 2] ^= 0xFF  # flip bits in the middle of the deflate stream
    assert "gzip" in _bad(tmp_path, bytes(data))


def test_huge_declared_size_does_not_allocate(tmp_path):
    # 4 billion x 4 billion values declared, 3 bytes present: a message, not a MemoryError.
    header = b"\x00\x00\x08\x02" + (0xFFFFFFFF).to_bytes(4, "big") * 2
    assert "truncated" in _bad(tmp_path, header + b"abc")


# ---------------------------------------------------------------------------------------
# The MNIST family from a folder
# ---------------------------------------------------------------------------------------


def test_mnist_from_dataset_path(tmp_path):
    arrays = make_mnist(tmp_path / "m")
    ds = mnist.load(DatasetConfig(name="mnist", path=str(tmp_path / "m")), 0)
    assert ds.x_train.shape == (60, 784) and ds.x_test.shape == (20, 784)
    assert ds.x_train.dtype == np.uint8 and ds.y_train.dtype == np.int64
    np.testing.assert_array_equal(ds.x_train, arrays["train-images-idx3-ubyte"].reshape(60, -1))
    np.testing.assert_array_equal(ds.y_test, arrays["t10k-labels-idx1-ubyte"])
    assert ds.n_classes == 10 and ds.info["source"] == str(tmp_path / "m")


def test_uncompressed_and_mixed_files(tmp_path):
    arrays = make_mnist(tmp_path / "m", gz=False)
    idx.write(tmp_path / "m" / "t10k-images-idx3-ubyte.gz", arrays["t10k-images-idx3-ubyte"])
    ds = mnist.load(DatasetConfig(name="fashion-mnist", path=str(tmp_path / "m")), 0)
    np.testing.assert_array_equal(ds.x_test, arrays["t10k-images-idx3-ubyte"].reshape(20, -1))


def test_parsed_copy_is_memory_mapped_and_reparsed_when_the_source_changes(tmp_path):
    folder = tmp_path / "m"
    make_mnist(folder, seed=1)
    cfg = DatasetConfig(name="mnist", path=str(folder))
    first = mnist.load(cfg, 0)
    assert isinstance(first.x_train.base, np.memmap) or isinstance(first.x_train, np.memmap)
    cached = sorted(p.name for p in (folder / idx.CACHE_SUBDIR).glob("*.npy"))
    assert len(cached) == 4
    new = make_mnist(folder, seed=2)  # replace the files (new size/mtime)
    second = mnist.load(cfg, 0)
    np.testing.assert_array_equal(second.x_train, new["train-images-idx3-ubyte"].reshape(60, -1))
    assert len(list((folder / idx.CACHE_SUBDIR).glob("*.npy"))) == 4  # stale copies removed


def test_unwritable_data_folder_falls_back_to_the_user_cache(tmp_path):
    folder = tmp_path / "m"
    make_mnist(folder)
    (folder / idx.CACHE_SUBDIR).write_text("a file where the cache folder would go")
    ds = mnist.load(DatasetConfig(name="mnist", path=str(folder)), 0)
    assert ds.x_train.shape == (60, 784)
    assert len(list(files.parsed_cache_dir().rglob("*.npy"))) == 4


def test_image_and_label_count_mismatch(tmp_path):
    folder = tmp_path / "m"
    make_mnist(folder)
    idx.write(folder / "train-labels-idx1-ubyte.gz", np.zeros(59, dtype=np.uint8))
    with pytest.raises(DataError, match="60 images but train-labels-idx1-ubyte.gz holds 59"):
        mnist.load(DatasetConfig(name="mnist", path=str(folder)), 0)


def test_wrong_image_size_or_label_range_for_the_family(tmp_path):
    make_mnist(tmp_path / "a", shape=(27, 27))
    with pytest.raises(DataError, match="28x28 uint8.*dataset.name: idx"):
        mnist.load(DatasetConfig(name="mnist", path=str(tmp_path / "a")), 0)
    make_mnist(tmp_path / "b")
    idx.write(tmp_path / "b" / "t10k-labels-idx1-ubyte.gz", np.full(20, 10, dtype=np.uint8))
    with pytest.raises(DataError, match="label 10 outside 0..9"):
        mnist.load(DatasetConfig(name="mnist", path=str(tmp_path / "b")), 0)


def test_search_order_path_then_env_then_cache(tmp_path, monkeypatch):
    make_mnist(files.dataset_cache_dir("kmnist"), seed=1)
    assert mnist.locate("kmnist", None)["train-images-idx3-ubyte"].parent == \
        files.dataset_cache_dir("kmnist")
    monkeypatch.setenv("DROPOUT_LAB_DATA", str(tmp_path / "root"))
    make_mnist(tmp_path / "root" / "kmnist", seed=2)
    assert mnist.locate("kmnist", None)["t10k-labels-idx1-ubyte"].parent == \
        tmp_path / "root" / "kmnist"
    make_mnist(tmp_path / "mine", seed=3)
    assert mnist.locate("kmnist", str(tmp_path / "mine"))["train-images-idx3-ubyte"].parent == \
        tmp_path / "mine"


def test_explicit_path_missing_a_file_is_an_error_not_a_fallback(tmp_path):
    make_mnist(files.dataset_cache_dir("mnist"))  # a usable copy exists in the cache...
    make_mnist(tmp_path / "mine")
    (tmp_path / "mine" / "t10k-labels-idx1-ubyte.gz").unlink()
    cfg = DatasetConfig(name="mnist", path=str(tmp_path / "mine"))
    with pytest.raises(DataError) as info:
        preflight(cfg)  # ...but dataset.path was given: no fallback, no download
    msg = str(info.value)
    assert "missing t10k-labels-idx1-ubyte[.gz]" in msg and str(tmp_path / "mine") in msg
    assert "only that folder is searched" in msg


def test_preflight_without_files_or_network_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("DROPOUT_LAB_MIRRORS", f"http://127.0.0.1:{closed_port()}/")
    monkeypatch.setenv("DROPOUT_LAB_DATA", str(tmp_path / "root"))
    with pytest.raises(DataError) as info:
        preflight(DatasetConfig(name="mnist"))
    msg = str(info.value)
    for needle in ("train-images-idx3-ubyte[.gz]", str(tmp_path / "root" / "mnist"),
                   str(files.dataset_cache_dir("mnist")), "cannot connect",
                   "dropout-lab datasets fetch mnist", "--set dataset.path=FOLDER",
                   "DROPOUT_LAB_DATA"):
        assert needle in msg
    assert not any(files.dataset_cache_dir("mnist").glob("*"))  # nothing half-written


# ---------------------------------------------------------------------------------------
# The user's own data: idx and npz
# ---------------------------------------------------------------------------------------


def test_idx_dataset_any_image_shape_and_class_count(tmp_path):
    folder = tmp_path / "own"
    folder.mkdir()
    idx.write(folder / "train-images-idx3-ubyte", np.arange(8 * 15, dtype=np.float32
                                                             ).reshape(8, 5, 3))
    idx.write(folder / "train-labels-idx1-ubyte", np.array([0, 1, 2, 3] * 2, dtype=np.uint8))
    idx.write(folder / "t10k-images-idx3-ubyte.gz", np.ones((4, 5, 3), dtype=np.float32))
    idx.write(folder / "t10k-labels-idx1-ubyte.gz", np.array([0, 1, 2, 4], dtype=np.uint8))
    ds = idx.load(DatasetConfig(name="idx", path=str(folder)), 0)
    assert ds.x_train.shape == (8, 15) and ds.n_classes == 5
    np.testing.assert_array_equal(ds.x_train[1], np.arange(15, 30))


def test_idx_dataset_needs_a_path(tmp_path):
    with pytest.raises(DataError, match="set dataset.path"):
        preflight(DatasetConfig(name="idx"))
    with pytest.raises(DataError, match="no such folder"):
        preflight(DatasetConfig(name="idx", path=str(tmp_path / "nope")))


def _npz(path: Path, **arrays) -> Path:
    base = dict(x_train=np.zeros((6, 2, 2)), y_train=np.array([0, 1, 2, 0, 1, 2]),
                x_test=np.ones((3, 4)), y_test=np.array([0, 1, 2]))
    base.update(arrays)
    np.savez(path, **{k: v for k, v in base.items() if v is not None})
    return path


def test_npz_loads_and_flattens(tmp_path):
    path = _npz(tmp_path / "d.npz")
    ds = npz.load(DatasetConfig(name="npz", path=str(path)), 0)
    assert ds.x_train.shape == (6, 4) and ds.n_classes == 3 and ds.y_train.dtype == np.int64


@pytest.mark.parametrize(("arrays", "message"), [
    ({"y_test": None}, "missing array\\(s\\) y_test"),
    ({"y_train": np.array([0, 1, 2, 0, 1])}, "6 rows but y_train has 5"),
    ({"x_test": np.ones((3, 5))}, "4 features per example but x_test has 5"),
    ({"y_train": np.array([0.0, 1, 2, 0, 1, 2])}, "integer class labels"),
    ({"x_train": np.full((6, 4), np.nan)}, "NaN"),
    ({"y_test": np.array([0, -1, 2])}, "negative label"),
])
def test_npz_errors(tmp_path, arrays, message):
    path = _npz(tmp_path / "d.npz", **arrays)
    with pytest.raises(DataError, match=message):
        npz.load(DatasetConfig(name="npz", path=str(path)), 0)


def test_npz_refuses_pickles_and_junk(tmp_path):
    obj = np.empty(6, dtype=object)
    obj[:] = [[1]] * 6
    path = tmp_path / "pickled.npz"
    np.savez(path, x_train=obj, y_train=np.zeros(6, int), x_test=np.ones((1, 1)),
             y_test=np.zeros(1, int))
    with pytest.raises(DataError, match="pickled.npz: cannot load"):
        preflight(DatasetConfig(name="npz", path=str(path)))
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip file at all")
    with pytest.raises(DataError, match="junk.npz"):
        preflight(DatasetConfig(name="npz", path=str(junk)))
    with pytest.raises(DataError, match="is a folder"):
        preflight(DatasetConfig(name="npz", path=str(tmp_path)))
    with pytest.raises(DataError, match="set dataset.path"):
        preflight(DatasetConfig(name="npz"))


# ---------------------------------------------------------------------------------------
# Through the CLI
# ---------------------------------------------------------------------------------------

TINY = ["--set", "train.epochs=1", "--set", "sweep.model.hidden=[[8]]",
        "--set", "sweep.dropout.p=[0.0,0.5]", "--set", "sweep.seed=[0]",
        "--set", "eval.mc_samples=2", "--set", "eval.max_samples=20",
        "--set", "eval.pair_samples=2", "--set", "eval.ablation_draws=1"]


def test_sweep_mnist_config_on_a_small_folder(cli, tmp_path):
    make_mnist(tmp_path / "mnist")
    code, out, err = cli("sweep", ROOT / "configs" / "mnist.yaml", "--set",
                         f"dataset.path={tmp_path / 'mnist'}", *TINY,
                         "--runs-dir", tmp_path / "runs", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert [t["status"] for t in doc["trials"]] == ["done", "done"]


def test_sweep_without_data_or_network_exits_2_and_writes_no_trial(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("DROPOUT_LAB_MIRRORS", f"http://127.0.0.1:{closed_port()}/")
    code, out, err = cli("sweep", ROOT / "configs" / "mnist.yaml", *TINY,
                         "--runs-dir", tmp_path / "runs")
    assert code == 2
    assert "data set 'mnist' not found" in err and "dropout-lab datasets fetch mnist" in err
    assert "Traceback" not in err
    assert not list((tmp_path / "runs").rglob("result.json"))
    assert not list((tmp_path / "runs").rglob("config.yaml"))


def test_datasets_list_shows_where_a_set_is(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("DROPOUT_LAB_DATA", str(tmp_path / "root"))
    make_mnist(tmp_path / "root" / "fashion-mnist")
    code, out, _ = cli("datasets", "list", "--json")
    assert code == 0
    rows = {r["name"]: r for r in json.loads(out)["datasets"]}
    assert rows["fashion-mnist"]["available"] is True
    assert rows["fashion-mnist"]["where"] == str(tmp_path / "root" / "fashion-mnist")
    assert rows["mnist"]["available"] is False and rows["kmnist"]["available"] is False
    assert rows["mnist"]["train"] == 60000 and rows["mnist"]["download_mb"] == 11.6
    code, out, _ = cli("datasets", "list")
    assert code == 0 and "fashion-mnist" in out and "not downloaded" in out


def test_load_dataset_applies_options_to_mnist_files(tmp_path):
    make_mnist(tmp_path / "m")
    cfg = DatasetConfig(name="mnist", path=str(tmp_path / "m"), train_size=30, val_fraction=0.2)
    ds = load_dataset(cfg, trial_seed=0)
    assert len(ds.y_train) == 24 and len(ds.y_val) == 6 and ds.x_train.dtype == np.float32
    assert 0.0 <= ds.x_train.min() and ds.x_train.max() <= 1.0


def test_sweep_on_a_truncated_file_exits_2_naming_it_before_any_training(cli, tmp_path):
    folder = tmp_path / "mnist"
    make_mnist(folder, gz=False)
    broken = folder / "t10k-images-idx3-ubyte"
    broken.write_bytes(broken.read_bytes()[:-100])
    code, _, err = cli("sweep", ROOT / "configs" / "mnist.yaml", "--set",
                       f"dataset.path={folder}", *TINY, "--runs-dir", tmp_path / "runs")
    assert code == 2 and "Traceback" not in err
    assert str(broken) in err and "truncated" in err
    assert not list((tmp_path / "runs").rglob("result.json"))


def test_preflight_parses_once_so_trials_only_memory_map(tmp_path):
    make_mnist(tmp_path / "m")
    preflight(DatasetConfig(name="mnist", path=str(tmp_path / "m")))
    assert len(list((tmp_path / "m" / idx.CACHE_SUBDIR).glob("*.npy"))) == 4


def test_dotted_file_names_are_accepted(tmp_path):
    arrays = make_mnist(tmp_path / "m", gz=False)
    for stem in arrays:  # train-images-idx3-ubyte -> train-images.idx3-ubyte
        (tmp_path / "m" / stem).rename(tmp_path / "m" / stem.replace("-idx", ".idx"))
    ds = mnist.load(DatasetConfig(name="kmnist", path=str(tmp_path / "m")), 0)
    np.testing.assert_array_equal(ds.y_train, arrays["train-labels-idx1-ubyte"])
