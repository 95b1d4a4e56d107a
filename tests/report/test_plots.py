"""plot: PNG files are written, valid, of a sensible size; absent data is skipped with a note."""

from __future__ import annotations

import json
import struct
from pathlib import Path

from tests.helpers.fake_sweeps import write_sweep

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from the IHDR chunk (the first chunk of every PNG)."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, f"{path.name} is not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


ALL = ["accuracy_vs_p", "learning_curves", "epoch_curves", "layers_vs_p", "coadaptation_vs_p",
       "weights",
       "ablation_curves", "reliability"]


def test_every_plot_is_a_valid_png_of_sensible_size(rendered):
    # the session's plot set (tests/conftest.py): statistics, two blocks, three seeds
    sweep = rendered.sweep
    code, out, err = rendered.plot
    assert code == 0, err
    files = sorted((sweep / "plots").glob("*.png"))
    assert [f.stem for f in files] == sorted(ALL)
    assert "note:" not in err
    assert sorted(json.loads(out)["plots"]) == [str(f) for f in files]
    for f in files:
        assert f.stat().st_size > 5_000, f.name
        w, h = png_size(f)
        assert 400 <= w <= 3000 and 250 <= h <= 2500, (f.name, w, h)
        assert w > h  # landscape figures, readable beside text


def test_absent_statistics_are_skipped_with_a_note(cli, tmp_path):
    sweep = write_sweep(tmp_path)  # no coadaptation / uncertainty in the results
    out_dir = tmp_path / "figs"
    code, out, err = cli("plot", sweep, "--out", out_dir)
    assert code == 0, err
    assert sorted(f.stem for f in out_dir.glob("*.png")) == ["accuracy_vs_p", "epoch_curves",
                                                              "learning_curves"]
    assert "coadaptation_vs_p: skipped" in err and "reliability: skipped" in err
    assert not (sweep / "plots").exists()


def test_categorical_axis_and_single_seed(cli, tmp_path):
    sweep = write_sweep(tmp_path, axes={"dropout.p": [0.0, 0.5], "model.hidden": [[16], [32, 32]],
                                        "seed": [0]})
    code, _, err = cli("plot", sweep, "--by", "model.hidden")
    assert code == 0, err
    assert png_size(sweep / "plots" / "accuracy_vs_p.png")[0] > 400


def test_plot_of_a_sweep_with_nothing_finished(cli, tmp_path):
    sweep = write_sweep(tmp_path, status=lambda p: "pending")
    code, _, err = cli("plot", sweep)
    assert code == 0, err
    assert "learning_curves: skipped" in err


def test_bad_folder_exits_2(cli, tmp_path):
    code, _, err = cli("plot", tmp_path / "missing")
    assert code == 2 and "no such sweep folder" in err
