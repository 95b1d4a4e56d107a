"""compare: grouping, known statistics, pairing by seed, every output format, bad input."""

from __future__ import annotations

import csv
import io
import json

import pytest

from dropout_lab.comparison import build_comparison
from tests.helpers.fake_sweeps import write_sweep


def _json(cli, *args):
    code, out, err = cli("compare", *args, "--format", "json")
    assert code == 0, err
    return json.loads(out)


def _row(doc, value, block=0):
    return next(r for r in doc["blocks"][block]["rows"] if r["value"] == value)


def test_known_means_intervals_and_paired_differences(cli, tmp_path):
    sweep = write_sweep(tmp_path)
    doc = _json(cli, sweep)
    assert doc["schema"] == "dropout-lab.compare/1"
    assert doc["by"] == "dropout.p" and doc["baseline"] == 0.0 and doc["confidence"] == 0.95
    base = _row(doc, 0.0)["metrics"]["test_acc"]
    # 0.90, 0.92, 0.94: mean .92, sd .02, half = 4.302653 * .02 / sqrt(3) = 0.0496828
    assert base["n"] == 3 and base["mean"] == pytest.approx(0.92)
    assert base["sd"] == pytest.approx(0.02)
    assert base["ci"] == pytest.approx([0.92 - 0.0496828, 0.92 + 0.0496828], abs=1e-6)
    assert base["diff"] is None and _row(doc, 0.0)["baseline"] is True
    half = _row(doc, 0.5)["metrics"]["test_acc"]["diff"]
    # paired .03, .04, .02: mean .03, sd .01, half 0.0248414 -> [.00516, .05484], excludes 0
    assert half["mean"] == pytest.approx(0.03) and half["n"] == 3
    assert half["ci"] == pytest.approx([0.03 - 0.0248414, 0.03 + 0.0248414], abs=1e-6)
    assert half["excludes_zero"] is True and half["seeds"] == [0, 1, 2]
    # gap_acc = 0.06 - 0.1 p + 0.001 (s - 1)(1 + 10 p) at seed s: at p = 0.5 0.01 -+ 0.006
    # (sd 0.006); paired with p = 0: -0.05 -+ 0.005 (sd 0.005)
    gap = _row(doc, 0.5)["metrics"]["gap_acc"]
    assert gap["mean"] == pytest.approx(0.01) and gap["sd"] == pytest.approx(0.006)
    assert gap["diff"]["mean"] == pytest.approx(-0.05)
    assert gap["diff"]["sd"] == pytest.approx(0.005) and gap["diff"]["excludes_zero"] is True
    # best by test_acc: p=0.5 (mean .95); p=0.2 (paired CI vs 0.5 contains 0) ties; 0.0 does not
    best = doc["blocks"][0]["best"]
    assert best == {"metric": "test_acc", "value": 0.5, "indistinguishable": [0.2]}
    assert _row(doc, 0.2)["indistinguishable_from_best"] is True
    assert _row(doc, 0.0)["indistinguishable_from_best"] is False


def test_pairing_uses_the_seed_not_the_grid_order(cli, tmp_path):
    ordered = _json(cli, write_sweep(tmp_path, "a"))
    shuffled = _json(cli, write_sweep(tmp_path, "b", reverse_order=True))
    for doc in (ordered, shuffled):
        assert _row(doc, 0.5)["metrics"]["test_acc"]["diff"]["mean"] == pytest.approx(0.03)
        assert _row(doc, 0.5)["metrics"]["test_acc"]["diff"]["sd"] == pytest.approx(0.01)


def test_a_failed_trial_drops_its_seed_from_the_pairs(cli, tmp_path):
    sweep = write_sweep(tmp_path, status=lambda p: "failed" if p == {"dropout.p": 0.5, "seed": 2}
                        else "done")
    row = _row(_json(cli, sweep), 0.5)
    assert row["trials"] == {"done": 2, "failed": 1, "total": 3}
    d = row["metrics"]["test_acc"]["diff"]
    assert d["seeds"] == [0, 1] and d["mean"] == pytest.approx(0.035)  # .03 and .04


def test_one_block_per_combination_of_the_other_axes(cli, tmp_path):
    axes = {"dropout.p": [0.0, 0.5], "model.hidden": [[16], [32, 32]], "seed": [0, 1, 2]}
    doc = _json(cli, write_sweep(tmp_path, axes=axes))
    assert doc["block_axes"] == ["model.hidden"]
    assert [b["selectors"] for b in doc["blocks"]] == [{"model.hidden": [16]},
                                                       {"model.hidden": [32, 32]}]
    assert all(len(b["rows"]) == 2 for b in doc["blocks"])
    # --by another axis: rows are model sizes, blocks are the p values
    doc = _json(cli, write_sweep(tmp_path, "h", axes=axes), "--by", "model.hidden")
    assert [b["selectors"] for b in doc["blocks"]] == [{"dropout.p": 0.0}, {"dropout.p": 0.5}]
    assert doc["baseline"] == [16]


def test_baseline_option_changes_the_reference(cli, tmp_path):
    doc = _json(cli, write_sweep(tmp_path), "--baseline", "0.5")
    assert doc["baseline"] == 0.5
    assert _row(doc, 0.0)["metrics"]["test_acc"]["diff"]["mean"] == pytest.approx(-0.03)


def test_single_seed_shows_dash_and_never_crashes(cli, tmp_path):
    sweep = write_sweep(tmp_path, axes={"dropout.p": [0.0, 0.5], "seed": [0]})
    doc = _json(cli, sweep)
    m = _row(doc, 0.5)["metrics"]["test_acc"]
    assert m["n"] == 1 and m["ci"] is None and m["diff"]["ci"] is None
    code, out, _ = cli("compare", sweep)
    # one seed: the mean alone, and no detectable difference claimed (issue 21 item 7)
    assert code == 0 and "0.9300" in out and "± -" not in out
    assert "0.5 n/a (no spread)" in out


def test_statistics_metrics_appear_when_present(cli, tmp_path):
    doc = _json(cli, write_sweep(tmp_path, stats=True))
    # the correlation of every hidden layer (the fake sweep has one), not only the last one
    assert doc["metrics"] == ["test_acc", "gap_acc", "gap_loss", "train_acc", "corr[1]",
                              "ablation_auc", "synergy", "mc_acc", "ece_mc",
                              "mutual_information"]
    corr = _row(doc, 0.5)["metrics"]["corr[1]"]
    assert corr["mean"] == pytest.approx(0.4 - 0.15 + 0.01)  # seeds 0,1,2 add .00,.01,.02
    assert _row(doc, 0.5)["metrics"]["corr[1]"]["diff"]["mean"] == pytest.approx(-0.15)
    last = _json(cli, write_sweep(tmp_path, "named", stats=True), "-m", "corr_last")
    assert _row(last, 0.5)["metrics"]["corr_last"] == corr
    # without the statistics the extras are simply absent
    assert _json(cli, write_sweep(tmp_path, "plain"))["metrics"] == [
        "test_acc", "gap_acc", "gap_loss", "train_acc"]


def test_rich_table(cli, tmp_path):
    code, out, err = cli("compare", write_sweep(tmp_path), "-m", "test_acc")
    assert code == 0, err
    assert "dropout.p" in out and "3/3" in out
    assert "0.9200 ± 0.0497" in out and "baseline" in out
    assert "Δ +0.0300 ± 0.0248 *" in out  # significant difference is starred
    assert "0.5 ★" in out and "0.2 ≈" in out


def test_markdown_is_a_pasteable_table(cli, tmp_path):
    code, out, _ = cli("compare", write_sweep(tmp_path), "--format", "markdown")
    assert code == 0
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("| `dropout.p`"))
    assert lines[header] == "| `dropout.p` | seeds | test_acc | gap_acc | gap_loss | train_acc |"
    assert lines[header + 1] == "|---:|---:|---:|---:|---:|---:|"
    rows = lines[header + 2:header + 5]
    assert all(r.count("|") == 7 for r in rows)
    assert rows[2].startswith("| **0.5** ★ | 3/3 | 0.9500 ± 0.0430 (**Δ +0.0300 ± 0.0248**)")


def test_csv_is_tidy(cli, tmp_path):
    code, out, _ = cli("compare", write_sweep(tmp_path), "--format", "csv", "-m", "test_acc",
                       "-m", "gap_acc")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 3 * 2  # 3 values x 2 metrics
    r = next(r for r in rows if r["value"] == "0.5" and r["metric"] == "test_acc")
    assert float(r["mean"]) == pytest.approx(0.95) and float(r["diff_mean"]) == pytest.approx(0.03)
    assert r["diff_excludes_zero"] == "true" and r["best"] == "true"
    b = next(r for r in rows if r["value"] == "0.0" and r["metric"] == "test_acc")
    assert b["diff_mean"] == "" and b["baseline"] == "true"


def test_metric_all_lists_everything_present(tmp_path):
    c = build_comparison(write_sweep(tmp_path, stats=True), metrics=["all"])
    assert "ece_det" in c.metrics and "decov_last" in c.metrics and "corr[1]" in c.metrics
    # 24 named metrics, and per hidden layer corr, decov, pr, dead, zero and selectivity
    assert len(c.metrics) == 30


@pytest.mark.parametrize("args, message", [
    (["--by", "model.depth"], "--by model.depth: not an axis or config key"),
    (["--by", "seed"], "--by seed"),
    (["--baseline", "0.3"], "--baseline 0.3: dropout.p takes the values 0.0, 0.2, 0.5"),
    (["--format", "xml"], "--format xml: choose one of rich, csv, json, markdown"),
    (["-m", "test_ac"], "unknown metric 'test_ac'; did you mean 'test_acc'?"),
    (["-m", "mc_acc"], "metric 'mc_acc' has no values in this sweep"),
    (["--best-by", "entropy"], "--best-by entropy: this metric has no better direction"),
    (["--confidence", "1.5"], "confidence level 1.5 is outside (0, 1)"),
])
def test_bad_options_exit_2_with_one_message(cli, tmp_path, args, message):
    code, out, err = cli("compare", write_sweep(tmp_path), *args)
    assert code == 2 and out == ""
    assert message in err and "Traceback" not in err


def test_not_a_sweep_folder_exits_2(cli, tmp_path):
    code, _, err = cli("compare", tmp_path / "nope")
    assert code == 2 and "no such sweep folder" in err
    code, _, err = cli("compare", tmp_path)
    assert code == 2 and "not a sweep folder" in err


def test_by_a_config_key_that_is_not_swept(cli, tmp_path):
    # `--set dropout.p=0.5` removes the axis: compare still works, with one row
    doc = _json(cli, write_sweep(tmp_path, axes={"seed": [0, 1, 2]}))
    assert [r["value"] for r in doc["blocks"][0]["rows"]] == [0.5]


@pytest.mark.slow
def test_end_to_end_on_a_real_tiny_sweep(cli, tiny_config, tmp_path):
    runs = tmp_path / "runs"
    # long enough to learn: trials of the 2-epoch TINY config are (rightly) flagged collapsed
    code, _, err = cli("sweep", tiny_config, "--runs-dir", runs, "--set", "train.epochs=10",
                       "--set", "train.lr=0.2")
    assert code == 0, err
    doc = _json(cli, runs / "tiny")
    assert [r["value"] for r in doc["blocks"][0]["rows"]] == [0.0, 0.5]
    for row in doc["blocks"][0]["rows"]:
        m = row["metrics"]["test_acc"]
        assert m["n"] == 2 and m["ci"][0] <= m["mean"] <= m["ci"][1]
    code, out, _ = cli("compare", runs / "tiny", "-f", "markdown")
    assert code == 0 and "| `dropout.p` |" in out
