"""The IDX file format (the MNIST family's container), read and written with every header
field checked against the file size.

Layout (all integers big-endian), as described on Yann LeCun's MNIST page::

    byte 0-1   0x00 0x00                      (magic, part 1)
    byte 2     type code: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32,
               0x0E float64                   (magic, part 2)
    byte 3     number of dimensions n         (magic, part 3)
    4n bytes   the size of each dimension, uint32
    rest       prod(sizes) values of the type, row-major (C order)

A file may be gzip-compressed (detected by its first two bytes, not by its name). A header
that does not match the number of bytes that follow is a :class:`DataError` naming the file,
never a reshape traceback. Parsed arrays are cached as ``.npy`` beside the source and
memory-mapped (see :func:`load_cached`), so a sweep parses each file once.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import struct
import tempfile
import zlib
from pathlib import Path

import numpy as np

from dropout_lab.data import files
from dropout_lab.data.base import Dataset
from dropout_lab.data.checks import check_allocation
from dropout_lab.data.download import Reporter
from dropout_lab.errors import DataError
from dropout_lab.specs.datasets import DatasetOptions

# type code -> big-endian NumPy dtype
TYPE_CODES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODE_OF = {dt.newbyteorder("=").kind + str(dt.itemsize): code for code, dt in TYPE_CODES.items()}
GZIP_MAGIC = b"\x1f\x8b"
MAX_DIMS = 16  # far more than any real IDX file; a larger count means the header is garbage


def read_bytes(path: Path) -> bytes:
    """The file's content, gunzipped when it starts with the gzip magic bytes.

    A gzip member is streamed: its IDX header is read first, and no more than the bytes that
    header declares (plus one, to notice trailing data) are decompressed, so a small file
    that expands to gigabytes is refused before it is expanded."""
    try:
        with open(path, "rb") as fh:
            if fh.read(2) != GZIP_MAGIC:
                fh.seek(0)
                return fh.read()
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        with gzip.open(path, "rb") as fh:
            head = fh.read(4)
            if len(head) == 4 and head[:2] == b"\0\0" and 1 <= head[3] <= MAX_DIMS:
                head += fh.read(4 * head[3])
            try:
                _, _, expected = _header(head, str(path))
            except DataError:
                return head  # not IDX, or truncated: parse() says which
            check_allocation(expected, f"{path}: the IDX header's array")
            return head + fh.read(expected + 1)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: corrupted or truncated gzip data ({exc})") from None


def _header(content: bytes, name: str) -> tuple[tuple[int, ...], np.dtype, int]:
    """(dims, dtype, header bytes + data bytes the header declares) of IDX ``content``."""
    if len(content) < 4:
        raise DataError(f"{name}: not an IDX file ({len(content)} bytes, the header alone is 4+)")
    zero, code, ndim = struct.unpack(">HBB", content[:4])
    if zero != 0 or code not in TYPE_CODES:
        raise DataError(
            f"{name}: not an IDX file (magic number 0x{content[:4].hex()}; expected 0x0000 "
            f"followed by a type code in {', '.join(f'0x{c:02x}' for c in TYPE_CODES)})"
        )
    if not 1 <= ndim <= MAX_DIMS:
        raise DataError(f"{name}: IDX header declares {ndim} dimensions (expected 1..{MAX_DIMS})")
    header = 4 + 4 * ndim
    if len(content) < header:
        raise DataError(f"{name}: truncated IDX header ({len(content)} bytes, needs {header})")
    dims = struct.unpack(f">{ndim}I", content[4:header])
    dtype = TYPE_CODES[code]
    # Python ints: a product of uint32 sizes must not overflow before we compare it.
    return dims, dtype, header + int(np.prod([int(d) for d in dims], dtype=object)) * dtype.itemsize


def parse(content: bytes, name: str = "<bytes>") -> np.ndarray:
    """Parse IDX ``content`` into a native-endian array; ``name`` is used in error messages."""
    dims, dtype, total = _header(content, name)
    header = 4 + 4 * len(dims)
    expected = total - header
    actual = len(content) - header
    if actual != expected:
        shape = " x ".join(str(d) for d in dims)
        what = "truncated" if actual < expected else "has trailing bytes"
        raise DataError(
            f"{name}: {what}: the header declares {shape} values of {dtype.name} "
            f"({expected} bytes of data) but the file holds {actual}"
        )
    arr = np.frombuffer(content, dtype=dtype, offset=header).reshape(dims)
    return arr.astype(dtype.newbyteorder("="), copy=False)


def read(path: str | Path) -> np.ndarray:
    """Read one IDX file (gzipped or not) into a native-endian array."""
    path = Path(path)
    return parse(read_bytes(path), str(path))


def encode(array: np.ndarray) -> bytes:
    """The IDX bytes of ``array`` (uint8, int8, int16, int32, float32 or float64)."""
    arr = np.asarray(array)
    key = arr.dtype.kind + str(arr.dtype.itemsize)
    if key not in _CODE_OF:
        raise DataError(f"IDX cannot store dtype {arr.dtype} (use uint8, int8, int16, int32, "
                        "float32 or float64)")
    code = _CODE_OF[key]
    header = struct.pack(">HBB", 0, code, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return header + np.ascontiguousarray(arr, dtype=TYPE_CODES[code]).tobytes()


def write(path: str | Path, array: np.ndarray, compress: bool | None = None) -> Path:
    """Write ``array`` as an IDX file; gzipped when ``compress`` (default: name ends in .gz)."""
    path = Path(path)
    data = encode(array)
    if compress is None:
        compress = path.suffix == ".gz"
    if compress:
        data = gzip.compress(data, compresslevel=6, mtime=0)
    path.write_bytes(data)
    return path


# ---------------------------------------------------------------------------------------
# The .npy cache: parse once, memory-map afterwards
# ---------------------------------------------------------------------------------------

CACHE_SUBDIR = ".dropout-lab-npy"
_STAMP = re.compile(r"\.\d+-\d+\.npy")  # what follows the source's name in a cache name


def _cache_name(source: Path) -> str:
    """Keyed by the source's size and modification time: a replaced file is parsed again."""
    st = source.stat()
    return f"{source.name}.{st.st_size}-{st.st_mtime_ns}.npy"


def cache_paths(source: Path, fallback_dir: Path) -> list[Path]:
    """Where the parsed copy of ``source`` may live, in order of preference: beside it (in
    ``.dropout-lab-npy/``), else under ``fallback_dir`` (in a folder named after a hash of
    the source's full path), for read-only data folders."""
    name = _cache_name(source)
    key = hashlib.sha256(str(source.resolve()).encode()).hexdigest()[:16]
    return [source.parent / CACHE_SUBDIR / name, fallback_dir / key / name]


def load_cached(source: str | Path, fallback_dir: Path) -> np.ndarray:
    """The array of IDX file ``source``, memory-mapped read-only from its .npy cache.

    The first call parses the file and writes the .npy atomically (beside the source, or in
    ``fallback_dir`` when that folder is read-only); older copies of the same file are
    removed. Later calls only memory-map the .npy."""
    source = Path(source)
    if not source.is_file():
        raise DataError(f"{source} does not exist")
    targets = cache_paths(source, fallback_dir)
    for target in targets:
        if target.is_file():
            try:
                return _map(target)
            except (OSError, ValueError):  # a damaged cache file: drop it, parse again
                target.unlink(missing_ok=True)
    arr = read(source)
    problems = []
    for target in targets:
        try:
            _write_npy_atomic(target, arr)
        except OSError as exc:
            problems.append(f"{target.parent}: {exc.strerror or exc}")
            continue
        for stale in target.parent.glob(f"{source.name}.*-*.npy"):
            if stale != target and _STAMP.fullmatch(stale.name[len(source.name):]):
                stale.unlink(missing_ok=True)
        return _map(target)
    raise DataError(f"cannot write the parsed copy of {source} ({'; '.join(problems)})")


def _map(target: Path) -> np.ndarray:
    """A cached .npy file, memory-mapped read-only."""
    arr: np.ndarray = np.load(target, mmap_mode="r", allow_pickle=False)  # np.load: typed Any
    return arr


def _write_npy_atomic(target: Path, arr: np.ndarray) -> None:
    """Write to a temporary file in the same folder, then rename: readers never see half."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".part-", suffix=".npy")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.save(fh, np.ascontiguousarray(arr), allow_pickle=False)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# ---------------------------------------------------------------------------------------
# Reading a split, and the generic ``idx`` data set (the user's own folder of IDX files)
# ---------------------------------------------------------------------------------------

# The MNIST file names: the generic loader expects the same four roles.
STEMS = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
         "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def read_split(images_path: Path, labels_path: Path, fallback_dir: Path
               ) -> tuple[np.ndarray, np.ndarray]:
    """Images flattened to N x D (memory-mapped, dtype as stored) and int64 labels (N,).

    Shared by the MNIST family and the generic ``idx`` data set: the counts must agree,
    labels must be 1-D integers >= 0, images at least 2-D."""
    images = load_cached(images_path, fallback_dir)
    labels = load_cached(labels_path, fallback_dir)
    if images.ndim < 2:
        raise DataError(f"{images_path}: expected images (N x rows x cols), got shape "
                        f"{images.shape}")
    if labels.ndim != 1:
        raise DataError(f"{labels_path}: expected a 1-D label file, got shape {labels.shape}")
    if len(images) != len(labels):
        raise DataError(f"{images_path.name} holds {len(images)} images but "
                        f"{labels_path.name} holds {len(labels)} labels (they must match)")
    if labels.dtype.kind not in "iu":
        raise DataError(f"{labels_path}: labels must be integers, got {labels.dtype}")
    y = np.asarray(labels, dtype=np.int64)
    if len(y) and y.min() < 0:
        raise DataError(f"{labels_path}: negative label {int(y.min())}")
    x = images.reshape(len(images), -1)  # a view of the memory map: nothing is copied
    return x, y


def _locate_user_folder(cfg: DatasetOptions) -> dict[str, Path]:
    if not cfg.path:
        raise DataError(
            "data set 'idx' reads your own folder of IDX files: set dataset.path to a folder "
            f"holding {', '.join(s + '[.gz]' for s in STEMS)}"
        )
    found, search = files.locate("idx", STEMS, cfg.path)
    if not found:
        raise files.not_found_error(search, fetchable=False)
    return found


def sources(cfg: DatasetOptions) -> list[Path]:
    """The four files this data set reads, in STEMS order (for its fingerprint)."""
    found = _locate_user_folder(cfg)
    return [found[stem] for stem in STEMS]


def preflight(cfg: DatasetOptions, report: Reporter | None = None) -> None:
    """The four files must be in dataset.path (nothing is downloaded for ``idx``) and parse;
    parsing here also writes the .npy copies every trial then memory-maps."""
    load(cfg, cfg.seed)


def load(cfg: DatasetOptions, seed: int) -> Dataset:
    """Registry loader for ``idx``: any four IDX files with the MNIST names, no checksum.

    Images of any shape are flattened; classes are 0..max label (at least 2)."""
    found = _locate_user_folder(cfg)
    fallback = files.parsed_cache_dir()
    x_train, y_train = read_split(found[STEMS[0]], found[STEMS[1]], fallback)
    x_test, y_test = read_split(found[STEMS[2]], found[STEMS[3]], fallback)
    if x_train.shape[1] != x_test.shape[1]:
        raise DataError(f"training images have {x_train.shape[1]} values each but test images "
                        f"{x_test.shape[1]} ({found[STEMS[0]].parent})")
    if len(y_train) == 0 or len(y_test) == 0:
        raise DataError(f"{found[STEMS[0]].parent}: the training or test split is empty")
    n_classes = int(max(y_train.max(), y_test.max())) + 1
    if n_classes < 2:
        raise DataError(f"{found[STEMS[1]]}: needs at least two classes (labels 0 and 1)")
    lo, hi = (0.0, 255.0) if x_train.dtype == np.uint8 else (None, None)
    return Dataset("idx", x_train, y_train, x_test, y_test, n_classes,
                   info={"source": str(found[STEMS[0]].parent), "value_range": [lo, hi]})
