"""A corpus of bad inputs (configs, --set, --expect, data files, output paths): each ends
with its exit code (2 bad input, 3 the machine refused), one ``error:`` message naming the
problem, no traceback, and nothing written to the runs directory (issue 12, items 4-6, 8, 12).
"""

from __future__ import annotations

import gzip
import io
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from dropout_lab.data import idx
from tests.helpers.reliability import cli, tiny, write_yaml

BOMB = "\n".join(["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
                 + [f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, "
                    f"*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}]"
                    for i in range(1, 16)]) + "\nname: bomb\n"

# (id, YAML text of the whole config file, words the message must hold)
YAML_CASES = [
    ("alias-bomb", BOMB, ["expands", "aliases"]),
    ("recursive-alias", "name: r\nsweep: &s {seed: *s}\n", ["refers to itself"]),
    ("deep-nesting", "name: d\nx: " + "[" * 500 + "]" * 500 + "\n", ["nested too deeply"]),
    ("top-level-list", "- 1\n- 2\n", ["mapping"]),
    ("top-level-scalar", "just text\n", ["mapping"]),
    ("bad-syntax", "name: [unclosed\n", ["not valid YAML"]),
    ("two-documents", "name: a\n---\nname: b\n", ["not valid YAML"]),
    ("tab-indent", "dropout:\n\tp: 0.5\n", ["not valid YAML"]),
    ("name-nul", 'name: "a\\0b"\n', ["name", "printable"]),
    ("name-newline", 'name: "a\\nb"\n', ["name", "printable"]),
    ("name-escape", 'name: "a\\e[31mb"\n', ["name", "printable"]),
    ("name-slash", "name: ../escape\n", ["name", "slashes"]),
    ("name-empty", 'name: ""\n', ["name"]),
    ("name-dot", 'name: ".."\n', ["name"]),
    ("name-int-list", "name: [1]\n", ["name"]),
    ("name-too-long", f"name: {'n' * 300}\n", ["name", "200"]),
    ("epochs-true", "train: {epochs: true}\n", ["train.epochs", "boolean"]),
    ("seed-true", "seed: true\n", ["seed", "boolean"]),
    ("batch-false", "train: {batch_size: false}\n", ["train.batch_size", "boolean"]),
    ("lr-inf", "train: {lr: .inf}\n", ["train.lr"]),
    ("lr-nan", "train: {lr: .nan}\n", ["train.lr"]),
    ("lr-text", "train: {lr: fast}\n", ["train.lr"]),
    ("lr-zero", "train: {lr: 0}\n", ["train.lr"]),
    ("mc-samples-huge", "eval: {mc_samples: 100000000000}\n", ["eval.mc_samples", "10000"]),
    ("max-samples-huge", "eval: {max_samples: 100000000000}\n", ["eval.max_samples"]),
    ("ece-bins-zero", "eval: {ece_bins: 0}\n", ["eval.ece_bins"]),
    ("pair-samples-negative", "eval: {pair_samples: -1}\n", ["eval.pair_samples"]),
    ("ablation-draws-huge", "eval: {ablation_draws: 5000}\n", ["eval.ablation_draws"]),
    ("epochs-zero", "train: {epochs: 0}\n", ["train.epochs"]),
    ("epochs-huge", "train: {epochs: 1000000}\n", ["train.epochs", "100000"]),
    ("epochs-fraction", "train: {epochs: 2.5}\n", ["train.epochs"]),
    ("batch-negative", "train: {batch_size: -1}\n", ["train.batch_size"]),
    ("batch-huge", "train: {batch_size: 10000000}\n", ["train.batch_size"]),
    ("optimizer-unknown", "train: {optimizer: adamw}\n", ["train.optimizer"]),
    ("momentum-one", "train: {momentum: 1.0}\n", ["train.momentum"]),
    ("weight-decay-negative", "train: {weight_decay: -1}\n", ["train.weight_decay"]),
    ("max-norm-zero", "train: {max_norm: 0}\n", ["train.max_norm"]),
    ("p-one", "dropout: {p: 1.0}\n", ["dropout.p", "probability of dropping"]),
    ("p-negative", "dropout: {p: -0.1}\n", ["dropout.p"]),
    ("p-text", "dropout: {p: half}\n", ["dropout.p"]),
    ("p-nan", "dropout: {p: .nan}\n", ["dropout.p"]),
    ("p-per-layer-length", "dropout: {p: [0.1, 0.2]}\nmodel: {hidden: [8]}\n",
     ["dropout.p has 2 values"]),
    ("input-p-one", "dropout: {input_p: 1}\n", ["input_p"]),
    ("variant-unknown", "dropout: {variant: alpha}\n", ["dropout.variant"]),
    ("hidden-empty", "model: {hidden: []}\n", ["model.hidden", "at least one"]),
    ("hidden-zero", "model: {hidden: [0]}\n", ["model.hidden", "positive"]),
    ("hidden-huge", "model: {hidden: [1000000]}\n", ["model.hidden", "65536"]),
    ("hidden-too-deep", "model: {hidden: [" + ", ".join(["4"] * 100) + "]}\n",
     ["model.hidden", "64 layers"]),
    ("activation-unknown", "model: {activation: gelu}\n", ["model.activation"]),
    ("unknown-top-key", "droput: {p: 0.5}\n", ["did you mean 'dropout'"]),
    ("unknown-nested-key", "train: {epoch: 3}\n", ["train.epoch"]),
    ("dataset-unknown", "dataset: {name: mnistt}\n", ["unknown data set", "mnist"]),
    ("dataset-option-not-taken", "dataset: {name: digits, n_train: 10}\n",
     ["does not take option 'n_train'"]),
    ("dataset-path-not-taken", "dataset: {name: synthetic, path: /tmp}\n",
     ["reads no files"]),
    ("synthetic-rows-huge", "dataset: {name: synthetic, n_train: 100000000000}\n",
     ["dataset.n_train"]),
    ("synthetic-features-huge", "dataset: {name: synthetic, n_features: 100000000}\n",
     ["dataset.n_features"]),
    ("synthetic-classes-one", "dataset: {name: synthetic, n_classes: 1}\n",
     ["dataset.n_classes"]),
    ("val-fraction-one", "dataset: {val_fraction: 1.0}\n", ["dataset.val_fraction"]),
    ("test-fraction-zero", "dataset: {name: digits, test_fraction: 0}\n",
     ["dataset.test_fraction"]),
    ("normalize-unknown", "dataset: {normalize: minmax}\n", ["dataset.normalize"]),
    ("train-size-huge", "dataset: {train_size: 100000000000}\n", ["dataset.train_size"]),
    ("backend-unknown", "backend: tensorflow\n", ["tensorflow"]),
    ("dtype-unknown", "dtype: float16\n", ["dtype"]),
    ("seed-negative", "seed: -1\n", ["seed"]),
    ("seed-huge", "seed: 100000000000000000000\n", ["seed"]),
    ("axis-empty", "sweep: {dropout.p: []}\n", ["no values"]),
    ("axis-not-list", "sweep: {dropout.p: 0.5}\n", ["sweep"]),
    ("axis-unknown-key", "sweep: {droput.p: [0.1]}\n", ["droput.p"]),
    ("axis-bad-value", "sweep: {dropout.p: [0.1, 2.0]}\n", ["sweep point", "dropout.p=2.0"]),
    ("axis-bool-epochs", "sweep: {train.epochs: [1, true]}\n",
     ["sweep point", "train.epochs=True", "boolean"]),
    ("axes-conflict", "model: {hidden: [8]}\nsweep: {dropout.p: [[0.1, 0.2]]}\n",
     ["sweep point", "dropout.p has 2 values"]),
    ("grid-too-large", "sweep: {seed: [" + ", ".join(map(str, range(1000))) + "], "
     "dropout.p: [" + ", ".join(str(i / 1000) for i in range(1000)) + "]}\n",
     ["1,000,000 trials", "10,000", "--max-trials"]),
    ("sweep-not-mapping", "sweep: [1, 2]\n", ["sweep"]),
    ("eval-not-mapping", "eval: 3\n", ["eval"]),
]


def _file_case(name: str) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        if name == "folder":
            (tmp / "cfg.yaml").mkdir()
        elif name == "binary":
            (tmp / "cfg.yaml").write_bytes(b"\xff\xfe\x00\x81" * 10)
        elif name == "too-big":
            (tmp / "cfg.yaml").write_text("# padding\n" * 200_000)
        return tmp / "cfg.yaml"
    return make


FILE_CASES = [
    ("config-missing", _file_case("missing"), ["does not exist"]),
    ("config-folder", _file_case("folder"), ["is a folder"]),
    ("config-binary", _file_case("binary"), ["not a text file"]),
    ("config-too-big", _file_case("too-big"), ["limit"]),
]

# (id, --set arguments given with the TINY config, words)
SET_CASES = [
    ("set-no-equals", ["dropout.p"], ["KEY=VALUE"]),
    ("set-empty-key", ["=0.5"], ["key is empty"]),
    ("set-unknown-key", ["droput.p=0.5"], ["did you mean 'dropout.p'"]),
    ("set-bad-yaml", ["dropout.p=[0.1"], ["not valid YAML"]),
    ("set-axis-not-list", ["sweep.seed=5"], ["needs a list"]),
    ("set-below-leaf", ["dropout.p.x=1"], ["dropout.p"]),
    ("set-epochs-true", ["train.epochs=true"], ["train.epochs", "boolean"]),
    ("set-lr-inf", ["train.lr=.inf"], ["train.lr"]),
    ("set-name-slash", ["name=a/b"], ["name", "slashes"]),
    ("set-axis-empty", ["sweep.dropout.p=[]"], ["no values"]),
    ("set-hidden-negative", ["model.hidden=[-1]"], ["model.hidden"]),
    ("set-mc-samples-huge", ["eval.mc_samples=100000000000"], ["eval.mc_samples"]),
    ("set-alias-bomb", ["sweep.seed=" + BOMB.replace("\n", "\n")], ["expands"]),
    ("set-dataset-unknown", ["dataset.name=nosuch"], ["unknown data set"]),
    ("set-value-of-a-value", ["train.lr.x=1"], ["train.lr"]),
    ("set-axis-unknown", ["sweep.model.width=[1]"], ["model.width"]),
    ("set-p-axis-bad", ["sweep.dropout.p=[0.5, 1.5]"], ["dropout.p=1.5"]),
    ("set-sweep-not-mapping", ["sweep=3"], ["sweep"]),
]


def _npz(tmp: Path, **arrays: np.ndarray) -> Path:
    base = {"x_train": np.random.default_rng(0).normal(size=(20, 4)).astype(np.float32),
            "y_train": np.arange(20) % 2, "x_test": np.ones((6, 4), np.float32),
            "y_test": np.arange(6) % 2}
    base.update(arrays)
    path = tmp / "data.npz"
    np.savez(path, **base)
    return path


def _npz_huge_header(tmp: Path) -> Path:
    """A tiny file whose x_train header declares 100000 x 100000 float64 (80 GB)."""
    path = _npz(tmp)
    header = {"descr": "<f8", "fortran_order": False, "shape": (100000, 100000)}
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, header)
    with zipfile.ZipFile(path) as z:
        members = {n: z.read(n) for n in z.namelist()}
    members["x_train.npy"] = buf.getvalue()  # magic and header, then no data at all
    with zipfile.ZipFile(path, "w") as z:
        for n, data in members.items():
            z.writestr(n, data)
    return path


NPZ_CASES = [
    ("npz-float-labels", lambda t: _npz(t, y_train=np.arange(20) % 2 * 1.0),
     ["integer class labels"]),
    ("npz-nan-features", lambda t: _npz(t, x_train=np.full((20, 4), np.nan, np.float32)),
     ["NaN"]),
    ("npz-inf-features", lambda t: _npz(t, x_test=np.full((6, 4), np.inf, np.float32)),
     ["NaN or infinite"]),
    ("npz-string-features", lambda t: _npz(t, x_train=np.array([["a"] * 4] * 20)),
     ["numeric"]),
    ("npz-empty-split", lambda t: _npz(t, x_test=np.ones((0, 4), np.float32),
                                       y_test=np.zeros(0, int)), ["empty"]),
    ("npz-label-2e9", lambda t: _npz(t, y_train=np.array([0, 2_000_000_000] * 10)),
     ["2000000000"]),
    ("npz-negative-label", lambda t: _npz(t, y_test=-(np.arange(6) % 2)), ["negative"]),
    ("npz-one-class", lambda t: _npz(t, y_train=np.zeros(20, int), y_test=np.zeros(6, int)),
     ["two classes"]),
    ("npz-feature-mismatch", lambda t: _npz(t, x_test=np.ones((6, 5), np.float32)),
     ["features"]),
    ("npz-length-mismatch", lambda t: _npz(t, y_train=np.arange(19) % 2), ["19"]),
    ("npz-2d-labels", lambda t: _npz(t, y_train=(np.arange(20) % 2).reshape(20, 1)),
     ["1-D"]),
    ("npz-missing-array", lambda t: (np.savez(t / "data.npz", x_train=np.ones((2, 2))),
                                     t / "data.npz")[1], ["missing array"]),
    ("npz-junk", lambda t: (t.joinpath("data.npz").write_bytes(b"junk" * 100),
                            t / "data.npz")[1], ["cannot load"]),
    ("npz-declared-80gb", _npz_huge_header, ["declares shape (100000, 100000)"]),
    ("npz-is-folder", lambda t: (t.joinpath("data.npz").mkdir(), t / "data.npz")[1],
     ["is a folder"]),
    ("npz-missing-file", lambda t: t / "nothing.npz", ["no such file"]),
]

# (id, --set arguments on a good npz file, words)
NPZ_OPTION_CASES = [
    ("npz-train-size-above-data", ["dataset.train_size=1000"], ["train_size = 1000", "20"]),
    ("npz-val-split-empty", ["dataset.train_size=2", "dataset.val_fraction=0.1"],
     ["val_fraction", "empty split"]),
]


def _idx_folder(tmp: Path, images: bytes | None = None, labels: bytes | None = None,
                gz_images: bool = False) -> Path:
    folder = tmp / "idxdata"
    folder.mkdir()
    x = (np.arange(10 * 4 * 4) % 255).astype(np.uint8).reshape(10, 4, 4)
    y = (np.arange(10) % 2).astype(np.uint8)
    data = {"train-images-idx3-ubyte": images if images is not None else idx.encode(x),
            "train-labels-idx1-ubyte": labels if labels is not None else idx.encode(y),
            "t10k-images-idx3-ubyte": idx.encode(x), "t10k-labels-idx1-ubyte": idx.encode(y)}
    for stem, content in data.items():
        if gz_images and stem == "train-images-idx3-ubyte":
            (folder / f"{stem}.gz").write_bytes(gzip.compress(content))
        else:
            (folder / stem).write_bytes(content)
    return folder


def _huge_gzip_header() -> bytes:
    # uint8, 3 dims of 60000 x 60000 x 60000: 2e14 bytes declared, 16 bytes of header sent
    return struct.pack(">HBB3I", 0, 0x08, 3, 60000, 60000, 60000) + b"\0" * 100


IDX_CASES = [
    ("idx-gzip-declares-200tb", lambda t: _idx_folder(t, images=_huge_gzip_header(),
                                                      gz_images=True), ["GiB", "memory"]),
    ("idx-gzip-expands-past-header", lambda t: _idx_folder(
        t, images=idx.encode(np.zeros((10, 4, 4), np.uint8)) + b"\0" * 1_000_000,
        gz_images=True), ["trailing bytes"]),
    ("idx-nan-images", lambda t: _idx_folder(
        t, images=idx.encode(np.full((10, 4, 4), np.nan, np.float32))), ["NaN"]),
    ("idx-label-count", lambda t: _idx_folder(t, labels=idx.encode(np.zeros(7, np.uint8))),
     ["7 labels"]),
    ("idx-bad-magic", lambda t: _idx_folder(t, images=b"\x01\x02\x03\x04" * 8),
     ["not an IDX file"]),
    ("idx-truncated", lambda t: _idx_folder(t, images=idx.encode(np.zeros((10, 4, 4),
                                                                          np.uint8))[:50]),
     ["truncated"]),
    ("idx-float-labels", lambda t: _idx_folder(t, labels=idx.encode(np.zeros(10, np.float32))),
     ["labels must be integers"]),
    ("idx-folder-missing", lambda t: t / "nowhere", ["not found"]),
]


def _run_sweep(tmp: Path, cfg: dict, *extra: str):
    path = write_yaml(tmp / "cfg.yaml", cfg)
    return cli("sweep", path, "--runs-dir", tmp / "runs", "--workers", "1", *extra)


def _check(run, tmp: Path, words: list[str], code: int = 2) -> None:
    run.assert_clean_failure(code, *words)
    assert run.err.count("error:") == 1, run.err
    assert not (tmp / "runs").exists(), "a refused sweep wrote to the runs directory"


@pytest.mark.parametrize("text,words", [c[1:] for c in YAML_CASES],
                         ids=[c[0] for c in YAML_CASES])
def test_bad_config_file(tmp_path, text, words):
    path = tmp_path / "cfg.yaml"
    whole = "name:" in text or not text[0].isalpha() or " " in text.split("\n")[0][:5]
    path.write_text(text if whole else "name: t\n" + text)
    _check(cli("sweep", path, "--runs-dir", tmp_path / "runs", "--workers", "1"),
           tmp_path, words)


@pytest.mark.parametrize("make,words", [c[1:] for c in FILE_CASES],
                         ids=[c[0] for c in FILE_CASES])
def test_bad_config_path(tmp_path, make, words):
    _check(cli("sweep", make(tmp_path), "--runs-dir", tmp_path / "runs"), tmp_path, words)


@pytest.mark.parametrize("sets,words", [c[1:] for c in SET_CASES],
                         ids=[c[0] for c in SET_CASES])
def test_bad_set_override(tmp_path, sets, words):
    args = [a for s in sets for a in ("--set", s)]
    _check(_run_sweep(tmp_path, tiny(), *args), tmp_path, words)


def test_grid_cap_is_raised_by_max_trials(tmp_path):
    cfg = tiny(sweep={"seed": list(range(6))})
    _check(_run_sweep(tmp_path, cfg, "--max-trials", "5", "--dry-run"), tmp_path,
           ["6 trials", "limit of 5"])
    run = cli("validate", write_yaml(tmp_path / "c.yaml", cfg), "--max-trials", "6")
    assert run.code == 0 and "6 trial(s)" in run.out


@pytest.mark.parametrize("make,words", [c[1:] for c in NPZ_CASES],
                         ids=[c[0] for c in NPZ_CASES])
def test_bad_npz_file_is_one_message_before_training(tmp_path, make, words):
    path = make(tmp_path)
    cfg = tiny(dataset={"name": "npz", "path": str(path)}, sweep={"seed": [0, 1]})
    _check(_run_sweep(tmp_path, cfg), tmp_path, words)


@pytest.mark.parametrize("sets,words", [c[1:] for c in NPZ_OPTION_CASES],
                         ids=[c[0] for c in NPZ_OPTION_CASES])
def test_npz_options_checked_against_the_data(tmp_path, sets, words):
    cfg = tiny(dataset={"name": "npz", "path": str(_npz(tmp_path))}, sweep={"seed": [0, 1]})
    _check(_run_sweep(tmp_path, cfg, *[a for s in sets for a in ("--set", s)]), tmp_path,
           words)


@pytest.mark.parametrize("make,words", [c[1:] for c in IDX_CASES],
                         ids=[c[0] for c in IDX_CASES])
def test_bad_idx_folder_is_one_message_before_training(tmp_path, make, words):
    folder = make(tmp_path)
    cfg = tiny(dataset={"name": "idx", "path": str(folder)}, sweep={"seed": [0, 1]})
    _check(_run_sweep(tmp_path, cfg), tmp_path, words)


def test_synthetic_larger_than_memory_is_refused_before_generating(tmp_path):
    cfg = tiny(dataset={"name": "synthetic", "n_train": 10_000_000, "n_features": 100_000})
    _check(_run_sweep(tmp_path, cfg), tmp_path, ["GiB", "memory"])


# -- --expect, output paths and runs folders: on one finished sweep -----------------------------

@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("finished")
    run = _run_sweep(tmp, tiny())
    assert run.code == 0, run.text
    return tmp / "runs" / "tiny"


EXPECT_CASES = [
    ("expect-nan", "test_acc[p=0.5] > nan", ["nan", "finite"]),
    ("expect-inf", "test_acc[p=0.5] < inf", ["inf", "finite"]),
    ("expect-minus-inf", "-inf < test_acc[p=0.5]", ["finite"]),
    ("expect-empty", "  ", ["empty"]),
    ("expect-no-operator", "test_acc[p=0.5]", ["no comparison operator"]),
    ("expect-equals", "test_acc[p=0.5] == 1", ["not supported"]),
    ("expect-two-numbers", "1 < 2", ["two numbers"]),
    ("expect-unbalanced", "test_acc[p=0.5 > 1", ["unbalanced"]),
    ("expect-selector", "test_acc[p] > 0.5", ["KEY=VALUE"]),
    ("expect-chained", "0 < test_acc[p=0.5] < 1", ["more than one comparison"]),
    ("expect-no-selector", "test_acc[] > 0", ["test_acc"]),
    ("expect-junk-side", "test_acc[p=0.5] > fast", ["fast"]),
]


@pytest.mark.parametrize("expr,words", [c[1:] for c in EXPECT_CASES],
                         ids=[c[0] for c in EXPECT_CASES])
def test_bad_expect(finished, expr, words):
    run = cli("compare", finished, "--expect", expr)
    run.assert_clean_failure(2, *words)


def test_report_output_in_a_missing_folder_is_refused_not_created(finished, tmp_path):
    target = tmp_path / "nonexistent" / "dir" / "r.html"
    cli("report", finished, "-o", target).assert_clean_failure(2, "nonexistent/dir",
                                                               "does not exist")
    assert not (tmp_path / "nonexistent").exists()


def test_plot_output_in_a_missing_folder_is_refused_not_created(finished, tmp_path):
    target = tmp_path / "nonexistent" / "plots"
    cli("plot", finished, "-o", target).assert_clean_failure(2, "does not exist")
    assert not (tmp_path / "nonexistent").exists()


def test_report_output_that_is_a_folder(finished, tmp_path):
    cli("report", finished, "-o", tmp_path).assert_clean_failure(2, "is a folder")


def test_plot_output_that_is_a_file(finished, tmp_path):
    (tmp_path / "f").write_text("x")
    cli("plot", finished, "-o", tmp_path / "f").assert_clean_failure(2, "not a folder")


@pytest.mark.parametrize("target", ["/proc/r.html", "/sys/r.html"])
def test_report_output_the_machine_refuses_is_exit_3(finished, target):
    cli("report", finished, "-o", target).assert_clean_failure(3, target, "cannot write")


def test_runs_dir_that_is_a_file(tmp_path):
    (tmp_path / "runs").write_text("x")
    run = _run_sweep(tmp_path, tiny())
    run.assert_clean_failure(2, "cannot write the runs directory")
    assert (tmp_path / "runs").read_text() == "x"


@pytest.mark.parametrize("command", ["show", "compare", "report", "plot"])
def test_reader_of_a_folder_that_is_not_a_sweep(tmp_path, command):
    cli(command, tmp_path).assert_clean_failure(2, "not a sweep folder")


def test_ls_of_a_missing_folder(tmp_path):
    cli("ls", tmp_path / "nothing").assert_clean_failure(2, "no such runs folder")
