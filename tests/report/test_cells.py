"""The cell model (issue 21 item 7, issue 24 item 8): numbers decided once, every renderer
showing the same interval; no '-0.0000'; no silent zero-width bands."""

from __future__ import annotations

import csv
import io
import json

import pytest

from dropout_lab.comparison import build_comparison
from dropout_lab.report.cells import NO_SPREAD, estimate, fmt_number
from dropout_lab.stats import Summary
from tests.helpers.fake_sweeps import write_sweep


@pytest.mark.parametrize("x, signed, text", [
    (-1e-5, False, "-1.0e-05"),     # synergy of ~1e-5 showed as -0.0000
    (1.2e-5, True, "+1.2e-05"),
    (-0.0, False, "0.0000"),
    (0.0, True, "+0.0000"),
    (-0.00005, False, "-0.0001"),   # rounds to a non-zero 4-decimal number: kept
    (0.96224, False, "0.9622"),
    (None, False, "-"),
])
def test_numbers_never_print_as_minus_zero(x, signed, text):
    assert fmt_number(x, signed) == text


def test_the_text_shows_the_clipped_interval_the_json_reports():
    s = Summary(3, 0.99, 0.03, 0.92, 1.06)
    e = estimate(s, "test_acc")
    assert e.interval == [0.92, 1.0]
    assert e.text() == "0.9900 [0.9200, 1.0000]"  # not '0.9900 ± 0.0700'
    inside = estimate(Summary(3, 0.5, 0.03, 0.43, 0.57), "test_acc")
    assert inside.text() == "0.5000 ± 0.0700" and inside.half_width == pytest.approx(0.07)
    assert estimate(Summary(1, 0.93, None, None, None), "test_acc").text() == "0.9300"
    assert estimate(Summary(2, 0.9, 0.0, 0.9, 0.9)).no_spread


def _near_one(params: dict) -> dict:
    acc = {0: 0.99, 1: 0.95, 2: 1.0}[params["seed"]] if params["dropout.p"] == 0.5 else \
        {0: 0.90, 1: 0.91, 2: 0.93}[params["seed"]]
    return {"test_acc": acc, "train_acc": 1.0, "test_loss": 0.1, "train_loss": 0.05}


def test_every_renderer_lays_out_the_same_clipped_interval(cli, tmp_path):
    from dropout_lab.report.html import render_html

    sweep = write_sweep(tmp_path, axes={"dropout.p": [0.0, 0.5], "seed": [0, 1, 2]},
                        final=_near_one)
    code, out, _ = cli("compare", sweep, "-m", "test_acc", "-f", "json")
    doc = json.loads(out)
    m = next(r for r in doc["blocks"][0]["rows"] if r["value"] == 0.5)["metrics"]["test_acc"]
    lo, hi = m["ci"]
    assert hi == 1.0 and m["mean"] + (m["mean"] - lo) > 1.0  # the t interval was clipped
    shown = f"[{lo:.4f}, 1.0000]"
    code, md, _ = cli("compare", sweep, "-m", "test_acc", "-f", "markdown")
    assert shown in md
    code, rich, _ = cli("compare", sweep, "-m", "test_acc")
    assert shown in rich
    rows = list(csv.DictReader(io.StringIO(cli("compare", sweep, "-m", "test_acc", "-f",
                                               "csv")[1])))
    half = next(r for r in rows if r["value"] == "0.5")
    assert float(half["ci_hi"]) == 1.0 and float(half["ci_lo"]) == pytest.approx(lo)
    page = render_html(build_comparison(sweep, metrics=["test_acc"]), [], [])
    assert f'<span class="v">{shown}</span>' in page


def test_zero_spread_prints_no_spread_not_a_detectable_difference_of_zero(cli, tmp_path):
    # every seed the same difference: sd 0. Before: "detectable ... 0.0000" and "2 seeds needed"
    def same_step(params: dict) -> dict:
        acc = 0.90 + 0.01 * params["seed"] + (0.02 if params["dropout.p"] == 0.5 else 0.0)
        return {"test_acc": acc, "train_acc": 1.0, "test_loss": 0.1, "train_loss": 0.05}

    sweep = write_sweep(tmp_path, axes={"dropout.p": [0.0, 0.5], "seed": [0, 1, 2]},
                        final=same_step)
    code, out, _ = cli("compare", sweep, "-m", "test_acc")
    assert code == 0
    text = " ".join(out.split())
    assert f"0.5 {NO_SPREAD}" in text and "0.5 0.0000" not in text
    assert "*" not in out.split("mean ±")[0]  # no significance mark from a point interval
    code, out, _ = cli("compare", sweep, "-m", "test_acc", "--seeds-for", "0.01")
    assert NO_SPREAD in out and "2 (sd" not in out
    code, out, _ = cli("compare", sweep, "-m", "test_acc", "-f", "json")
    diff = json.loads(out)["blocks"][0]["rows"][1]["metrics"]["test_acc"]["diff"]
    assert diff["no_spread"] is True and diff["mdd"] is None and diff["excludes_zero"] is False


def test_plot_points_without_spread_are_marked_not_silently_bandless(tmp_path):
    from dropout_lab.report.plots import BANDLESS_NOTE, accuracy_figure

    one_seed = build_comparison(write_sweep(tmp_path, "one",
                                            axes={"dropout.p": [0.0, 0.5], "seed": [0]}))
    fig = accuracy_figure(one_seed)
    assert fig is not None
    assert BANDLESS_NOTE in fig.axes[0].get_legend().get_title().get_text()
    assert not fig.axes[0].collections  # no band drawn for one seed
    many = build_comparison(write_sweep(tmp_path, "many"))
    fig = accuracy_figure(many)
    assert fig is not None
    assert fig.axes[0].collections  # test_acc varies over seeds: a band
    # gap_loss is 0.2 at every seed (the fake sweep): no band there, and the legend says why
    assert BANDLESS_NOTE in fig.axes[0].get_legend().get_title().get_text()
    assert not fig.axes[2].collections


def test_epoch_curves_say_which_lines_have_no_band(tmp_path):
    from dropout_lab.report.plots import epoch_curves_figure

    one_seed = build_comparison(write_sweep(tmp_path, "one",
                                            axes={"dropout.p": [0.0, 0.5], "seed": [0]}),
                                epochs=True)
    fig = epoch_curves_figure(one_seed)
    assert fig is not None
    title = fig.axes[0].get_legend().get_title().get_text()
    assert "no band (one seed): dropout.p = 0.0, 0.5" in title
    many = epoch_curves_figure(build_comparison(write_sweep(tmp_path, "many"), epochs=True))
    assert many is not None
    assert "no band" not in many.axes[0].get_legend().get_title().get_text()
