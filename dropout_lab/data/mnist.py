"""The MNIST family: mnist, fashion-mnist and kmnist, read from their four standard IDX files.

All three share the layout: 60,000 training and 10,000 test images of 28 x 28 grey levels
(0..255, uint8) with labels 0..9, in ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte`` (each gzipped or not).

Checksums: the byte sizes and SHA-256 digests of the gzipped files below are copied from the
TensorFlow Datasets checksum files ``tensorflow_datasets/url_checksums/{mnist,fashion_mnist,
kmnist}.txt``; they were not re-computed from a download on the machine that wrote this code
(it had no network). To verify them, download the files and compare
``sha256sum *.gz`` with this table (``dropout-lab datasets fetch`` does exactly that).

Digests are checked on download. Files a user provides (dataset.path, $DROPOUT_LAB_DATA) are
checked for format instead (IDX header against file size, 28x28 uint8 images, labels 0..9,
as many labels as images), so a subset kept in MNIST format loads too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dropout_lab.data import files, idx
from dropout_lab.data.base import Dataset
from dropout_lab.data.download import (
    RemoteFile,
    Reporter,
    fetch_files,
    mirrors_from_env,
)
from dropout_lab.errors import DataError
from dropout_lab.specs.datasets import DatasetOptions

# The four roles, in the order the files are listed everywhere.
STEMS = idx.STEMS
TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS = STEMS


@dataclass(frozen=True)
class Family:
    """One MNIST-family data set: where it is published and what its files must be."""

    name: str
    description: str
    mirrors: tuple[str, ...]  # base URLs, tried in order
    files: tuple[RemoteFile, ...]  # the gzipped files, in STEMS order
    n_train: int = 60_000
    n_test: int = 10_000
    image_shape: tuple[int, int] = (28, 28)
    n_classes: int = 10

    @property
    def download_bytes(self) -> int:
        return sum(f.size for f in self.files)

    def remote(self, stem: str) -> RemoteFile:
        return self.files[STEMS.index(stem)]


def _files(sizes_and_digests: tuple[tuple[int, str], ...]) -> tuple[RemoteFile, ...]:
    return tuple(RemoteFile(f"{stem}.gz", size, digest)
                 for stem, (size, digest) in zip(STEMS, sizes_and_digests, strict=True))


FAMILY: dict[str, Family] = {
    f.name: f
    for f in (
        Family(
            "mnist",
            "handwritten digits 0-9, 28x28 grey (LeCun, Cortes & Burges)",
            (
                "https://ossci-datasets.s3.amazonaws.com/mnist/",  # used by torchvision
                "https://storage.googleapis.com/cvdf-datasets/mnist/",  # used by TF Datasets
                "http://yann.lecun.com/exdb/mnist/",  # the original site
            ),
            _files((
                (9912422, "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
                (28881, "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
                (1648877, "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
                (4542, "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
            )),
        ),
        Family(
            "fashion-mnist",
            "Zalando clothing images in 10 classes, 28x28 grey (Xiao, Rasul & Vollgraf)",
            (
                "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
                "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
            ),
            _files((
                (26421880, "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84"),
                (29515, "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845"),
                (4422102, "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073"),
                (5148, "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5"),
            )),
        ),
        Family(
            "kmnist",
            "Kuzushiji-MNIST: cursive Japanese, 10 classes, 28x28 grey (Clanuwat et al.)",
            (
                "http://codh.rois.ac.jp/kmnist/dataset/kmnist/",
            ),
            _files((
                (18165135, "51467d22d8cc72929e2a028a0428f2086b092bb31cfb79c69cc0a90ce135fde4"),
                (29497, "e38f9ebcd0f3ebcdec7fc8eabdcdaef93bb0df8ea12bee65224341c8183d8e17"),
                (3041136, "edd7a857845ad6bb1d0ba43fe7e794d164fe2dce499a1694695a792adfac43c5"),
                (5120, "20bb9a0ef54c7db3efc55a92eef5582c109615df22683c380526788f98e42a1c"),
            )),
        ),
    )
}


def family(name: str) -> Family:
    try:
        return FAMILY[name]
    except KeyError:
        raise DataError(f"{name!r} is not an MNIST-family data set "
                        f"(known: {', '.join(FAMILY)})") from None


# ---------------------------------------------------------------------------------------
# Locate, fetch, load
# ---------------------------------------------------------------------------------------


def locate(name: str, path: str | None) -> dict[str, Path]:
    """The four files of ``name`` (search order: dataset.path, $DROPOUT_LAB_DATA, cache);
    raises DataError telling the user how to provide them."""
    found, search = files.locate(name, STEMS, path)
    if not found:
        raise files.not_found_error(search, fetchable=True)
    return found


def sources(cfg: DatasetOptions) -> list[Path]:
    """The four files this data set reads, in STEMS order (for its fingerprint)."""
    found = locate(cfg.name, cfg.path)
    return [found[stem] for stem in STEMS]


def fetch(name: str, force: bool = False, mirrors: list[str] | None = None,
          report: Reporter | None = None) -> Path:
    """Download ``name`` into the user cache (verified); returns the folder."""
    fam = family(name)
    dest = files.dataset_cache_dir(name)
    fetch_files(fam.files, mirrors or mirrors_from_env(fam.mirrors), dest, force=force,
                report=report)
    return dest


def preflight(cfg: DatasetOptions, report: Reporter | None = None) -> None:
    """Locate the files (when they are nowhere and dataset.path is not set, fetch them), then
    parse them once."""
    found, search = files.locate(cfg.name, STEMS, cfg.path)
    if not found:
        if cfg.path:  # an explicit folder is never replaced by a download elsewhere
            raise files.not_found_error(search, fetchable=True)
        if report is not None:
            report(f"data set {cfg.name!r} is not available locally; downloading it to "
                   f"{files.dataset_cache_dir(cfg.name)}")
        try:
            fetch(cfg.name, report=report)
        except DataError as exc:
            raise files.not_found_error(search, fetchable=True, fetch_problem=str(exc)
                                        ) from None
    # Parse now: a broken file stops the sweep before any training (exit 2, not a grid of
    # failed trials), and the .npy copies the trials memory-map are written once, here.
    load(cfg, cfg.seed)


def load(cfg: DatasetOptions, seed: int) -> Dataset:
    """Registry loader for mnist / fashion-mnist / kmnist (raw pixels 0..255, uint8)."""
    fam = family(cfg.name)
    found = locate(cfg.name, cfg.path)
    fallback = files.parsed_cache_dir()
    x_train, y_train = idx.read_split(found[TRAIN_IMAGES], found[TRAIN_LABELS], fallback)
    x_test, y_test = idx.read_split(found[TEST_IMAGES], found[TEST_LABELS], fallback)
    _check_layout(fam, found, x_train, y_train, x_test, y_test)
    folder = found[TRAIN_IMAGES].parent
    return Dataset(fam.name, x_train, y_train, x_test, y_test, fam.n_classes,
                   info={"source": str(folder), "value_range": [0.0, 255.0],
                         "image_shape": list(fam.image_shape)})


def _check_layout(fam: Family, found: dict[str, Path], x_train: np.ndarray,
                  y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray) -> None:
    """Files found locally are not compared with the published digests (that happens on
    download, and a user may keep a subset in MNIST format), so check what the family's
    files must look like: 28x28 uint8 images, labels 0..9. The counts may differ."""
    d = fam.image_shape[0] * fam.image_shape[1]
    for stem, x in ((TRAIN_IMAGES, x_train), (TEST_IMAGES, x_test)):
        if len(x) == 0:
            raise DataError(f"{found[stem]}: holds no images")
        if x.shape[1] != d or x.dtype != np.uint8:
            raise DataError(
                f"{found[stem]}: {fam.name} images are {fam.image_shape[0]}x"
                f"{fam.image_shape[1]} uint8, this file holds {x.shape[1]} {x.dtype} values "
                "per image (for other IDX data use dataset.name: idx)"
            )
    for stem, y in ((TRAIN_LABELS, y_train), (TEST_LABELS, y_test)):
        if len(y) and y.max() >= fam.n_classes:
            raise DataError(f"{found[stem]}: label {int(y.max())} outside 0..{fam.n_classes - 1}")


def status(name: str) -> tuple[bool, str]:
    """(available, where) for ``datasets list``: where the files were found, or why not."""
    found, search = files.locate(name, STEMS, None)
    if found:
        return True, str(found[TRAIN_IMAGES].parent)
    return False, "not downloaded"
