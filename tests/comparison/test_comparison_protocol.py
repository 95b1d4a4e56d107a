"""What issue 10 added to the comparison: the epoch it reads (--at), per-layer statistics,
health flags in means and gates, the scale-free DeCov, and the power of a paired comparison."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from dropout_lab.comparison.metric_names import metric
from dropout_lab.metrics.coadaptation import covariance, decov_standardized, live_units
from dropout_lab.stats import min_detectable_difference, paired_power, seeds_needed
from tests.helpers.fake_sweeps import write_sweep


def _json(cli, *args, code=0):
    rc, out, err = cli("compare", *args, "--format", "json")
    assert rc == code, err
    return json.loads(out)


def _row(doc, value, block=0):
    return next(r for r in doc["blocks"][block]["rows"] if r["value"] == value)


def add_epochs(sweep, best_of=lambda p, seed: 2, val=True):
    """Give every finished fake trial a best epoch (by validation accuracy) whose test
    accuracy is known: 0.5 + p / 10 + seed / 100 at the best epoch, and its own rows."""
    for d in sorted((sweep / "trials").iterdir()):
        path = d / "result.json"
        if not path.exists():
            continue
        r = json.loads(path.read_text())
        p, seed = r["params"]["dropout.p"], r["params"]["seed"]
        rows = [json.loads(line) for line in (d / "metrics.jsonl").read_text().splitlines()]
        best = best_of(p, seed)
        for row in rows:
            row["val_acc"] = 0.9 if row["epoch"] == best else 0.5
            row["val_loss"] = 0.1
            row["train_n"] = 10
            if row["epoch"] == best:
                row["test_acc"] = 0.5 + p / 10 + seed / 100
        from dropout_lab.trial import best_epoch

        r["best_epoch"] = best_epoch(rows) if val else {"by": None, "epoch": rows[-1]["epoch"]}
        r["epochs_trained"] = rows[-1]["epoch"]
        path.write_text(json.dumps(r))
        (d / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in rows))


# -- --at -----------------------------------------------------------------------------------
def test_at_best_reads_each_trials_best_epoch(cli, tmp_path):
    sweep = write_sweep(tmp_path, epochs=4)
    add_epochs(sweep, best_of=lambda p, seed: 1 + seed)  # seeds stop at epochs 1, 2, 3
    doc = _json(cli, sweep, "--at", "best")
    assert doc["at"] == "best"
    row = _row(doc, 0.5)
    assert row["epochs"] == [1, 2, 3]
    assert row["metrics"]["test_acc"]["mean"] == pytest.approx(0.55 + 0.01)
    assert _row(doc, 0.0)["metrics"]["test_acc"]["diff"] is None
    assert row["metrics"]["test_acc"]["diff"]["mean"] == pytest.approx(0.05)
    last = _json(cli, sweep)  # the default is still the last epoch
    assert _row(last, 0.5)["metrics"]["test_acc"]["mean"] == pytest.approx(0.95)
    code, out, _ = cli("compare", sweep, "--at", "best", "-m", "test_acc")
    assert code == 0 and "at each trial's best epoch by validation accuracy" in out
    assert "epoch" in out and "1-3" in out


def test_at_a_fixed_epoch_reads_metrics_jsonl(cli, tmp_path):
    sweep = write_sweep(tmp_path, epochs=4)
    doc = _json(cli, sweep, "--at", "2")
    # the fake rows grow linearly: test_acc at epoch 2 of 4 is half the final value
    assert _row(doc, 0.0)["metrics"]["test_acc"]["mean"] == pytest.approx(0.92 / 2)
    assert _row(doc, 0.0)["epochs"] == [2, 2, 2]


@pytest.mark.parametrize("args, message", [
    (["--at", "best"], "dataset.val_fraction"),
    (["--at", "9"], "has no epoch 9"),
    (["--at", "zero"], "--at zero: use last, best or an epoch number"),
    (["--at", "0"], "epochs are counted from 1"),
])
def test_bad_at_is_one_message_and_exit_2(cli, tmp_path, args, message):
    sweep = write_sweep(tmp_path, epochs=3)
    code, out, err = cli("compare", sweep, *args)
    assert code == 2 and message in err and "Traceback" not in err
    # under --format json the error is a JSON object on stdout too
    doc = _json(cli, sweep, *args, code=2)
    assert message in doc["error"] and doc["code"] == 2


@pytest.mark.slow
def test_at_best_and_early_stopping_on_a_real_sweep(cli, write_config, tmp_path):
    import copy

    from tests.helpers.configs import TINY

    data = copy.deepcopy(TINY)
    data["dataset"]["val_fraction"] = 0.25
    data["train"].update(epochs=6, lr=0.2, early_stopping={"patience": 2})
    code, _, err = cli("sweep", write_config(data), "--runs-dir", tmp_path / "runs")
    assert code == 0, err
    doc = _json(cli, tmp_path / "runs" / "tiny", "--at", "best", "--include-collapsed")
    for row in doc["blocks"][0]["rows"]:
        assert row["trials"]["done"] == 2 and all(1 <= e <= 6 for e in row["epochs"])
    plot = cli("plot", tmp_path / "runs" / "tiny", "--at", "best")
    assert plot[0] == 0, plot[2]


# -- health -----------------------------------------------------------------------------------
def flag(sweep, flags_of):
    for d in (sweep / "trials").iterdir():
        path = d / "result.json"
        r = json.loads(path.read_text())
        r["health"] = {"flags": flags_of(r["params"])}
        path.write_text(json.dumps(r))


def test_collapsed_trials_leave_the_means_unless_included(cli, tmp_path):
    sweep = write_sweep(tmp_path)
    flag(sweep, lambda p: ["collapsed", "dead_units"] if p == {"dropout.p": 0.5, "seed": 2}
         else [])
    row = _row(_json(cli, sweep), 0.5)
    assert row["excluded"] == 1 and row["flags"] == {"collapsed": 1, "dead_units": 1}
    assert row["metrics"]["test_acc"]["n"] == 2
    assert row["metrics"]["test_acc"]["mean"] == pytest.approx((0.93 + 0.96) / 2)
    kept = _row(_json(cli, sweep, "--include-collapsed"), 0.5)
    assert kept["excluded"] == 0 and kept["metrics"]["test_acc"]["n"] == 3
    code, out, _ = cli("compare", sweep, "-m", "test_acc")
    assert "0.5 ★ †" in out or "0.5 †" in out
    assert "collapsed 1/3, dead_units 1/3; 1 collapsed trial(s) left out" in out
    assert "2/3" in out  # seeds in the statistics / trials


def test_an_expectation_resting_on_collapsed_trials_fails(cli, tmp_path):
    sweep = write_sweep(tmp_path)
    flag(sweep, lambda p: ["collapsed"] if p["dropout.p"] == 0.5 else [])
    code, _, err = cli("compare", sweep, "-q", "--expect", "gap_acc[p=0.5] < gap_acc[p=0.0]")
    assert code == 1 and "collapsed trial(s)" in err
    # a gate between healthy rows is unaffected
    code, _, err = cli("compare", sweep, "-q", "--expect", "gap_acc[p=0.2] < gap_acc[p=0.0]")
    assert code == 0, err


def test_quiet_json_prints_the_verdicts(cli, tmp_path):
    sweep = write_sweep(tmp_path)
    code, out, _ = cli("compare", sweep, "-q", "-f", "json",
                       "--expect", "gap_acc[p=0.5] < gap_acc[p=0.0]")
    v = json.loads(out)["expectations"][0]
    assert code == 0 and v["holds"] is True and v["kind"] == "paired"
    assert v["diff"] == pytest.approx(-0.05) and v["n"] == 3


def test_the_sweep_table_shows_per_layer_correlation_and_health(cli, write_config, tmp_path):
    import copy

    from tests.helpers.configs import TINY

    data = copy.deepcopy(TINY)
    data["model"]["hidden"] = [16, 8]
    data["sweep"] = {"train.lr": [0.05, 1.0], "seed": [0]}
    data["dropout"]["p"] = 0.0
    code, out, err = cli("sweep", write_config(data), "--runs-dir", tmp_path / "runs")
    assert code == 0, err
    assert "corr[1]" in out and "corr[2]" in out and "health" in out
    assert "collapsed 1/1" in out


# -- per-layer metrics ------------------------------------------------------------------------
def test_per_layer_metric_names_read_that_layer():
    result = {"coadaptation": {"layers": [{"mean_abs_corr": 0.1}, {"mean_abs_corr": 0.3}]}}
    assert metric("corr[1]").extract(result) == 0.1
    assert metric("corr[2]").extract(result) == 0.3
    assert metric("corr[3]").extract(result) is None
    assert metric("corr_last").extract(result) == 0.3


def test_per_layer_terms_in_expectations(cli, tmp_path):
    sweep = write_sweep(tmp_path, stats=True)
    code, _, err = cli("compare", sweep, "-q", "--expect", "corr[1][p=0.5] < corr[1][p=0.0]")
    assert code == 0, err
    code, _, err = cli("compare", sweep, "-q", "--expect", "corr[7][p=0.5] < corr[1][p=0.0]")
    assert code == 2 and "no values" in err


# -- scale-free DeCov -------------------------------------------------------------------------
def test_decov_of_standardized_identical_units_is_half_d_times_d_minus_1():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(200, 1))
    h = np.hstack([base * s + o for s, o in [(1, 0), (3, 2), (0.1, 5), (7, -1)]])  # d = 4
    c = covariance(h)
    assert decov_standardized(c, live_units(h)) == pytest.approx(0.5 * 4 * 3)
    # the raw DeCov grows with scale, the standardized one does not
    assert decov_standardized(covariance(10 * h), live_units(10 * h)) == pytest.approx(6.0)
    independent = rng.normal(size=(20000, 4))
    assert decov_standardized(covariance(independent), live_units(independent)) < 1e-3
    assert math.isnan(decov_standardized(covariance(base), live_units(base)))


# -- power --------------------------------------------------------------------------------------
@pytest.mark.parametrize("effect, n", [(0.5, 34), (0.8, 15)])
def test_seeds_needed_matches_the_paired_t_test_tables(effect, n):
    """Known answers: a paired t test at alpha 0.05 (two-sided) and power 0.8 needs 34 pairs
    for an effect of half a standard deviation and 15 for 0.8 (Cohen 1988; G*Power)."""
    assert seeds_needed(effect * 0.02, 0.02) == n
    assert paired_power(effect, 1.0, n) >= 0.8 > paired_power(effect, 1.0, n - 1)


def test_minimum_detectable_difference_shrinks_with_seeds():
    mdds = [min_detectable_difference(0.01, n) for n in (3, 5, 10, 30)]
    assert mdds == sorted(mdds, reverse=True)
    assert paired_power(mdds[-1], 0.01, 30) == pytest.approx(0.8, abs=0.01)
    assert min_detectable_difference(0.01, 1) is None


def test_compare_reports_mdd_and_seeds_for(cli, tmp_path):
    sweep = write_sweep(tmp_path)
    doc = _json(cli, sweep)
    d = _row(doc, 0.5)["metrics"]["test_acc"]["diff"]
    assert d["mdd"] == pytest.approx(min_detectable_difference(0.01, 3))
    code, out, err = cli("compare", sweep, "--seeds-for", "0.01", "-f", "json")
    assert code == 0, err
    need = json.loads(out)
    entry = next(r for r in need["rows"] if r["value"] == 0.5)
    assert entry["metrics"]["test_acc"]["sd"] == pytest.approx(0.01)
    assert entry["metrics"]["test_acc"]["seeds_needed"] == seeds_needed(0.01, 0.01)
    code, out, _ = cli("compare", sweep, "--seeds-for", "0.01", "-m", "test_acc")
    assert code == 0 and "seeds needed" in out
    code, _, err = cli("compare", sweep, "--seeds-for", "-1")
    assert code == 2 and "positive difference" in err


def test_the_sweep_table_orders_model_sizes_numerically(tmp_path):
    from dropout_lab.report.table import group_rows

    results = [{"status": "done", "params": {"model.hidden": h, "seed": 0},
                "final": {"test_acc": 0.9}} for h in ([128], [32], [32, 32], [1024])]
    rows = group_rows(results, ["model.hidden", "seed"])
    assert [r["params"]["model.hidden"] for r in rows] == ["[32]", "[128]", "[1024]", "[32, 32]"]


def test_the_sweep_table_and_compare_agree_when_a_seed_collapsed(cli, tmp_path):
    """issue 21 item 4: one collapsed seed gave 0.6633 (n=3) in the sweep table and 0.9450
    (n=2) in compare. Both now come from the comparison model: the same trials, the same
    means."""
    from rich.console import Console

    from dropout_lab.report.table import group_rows, results_table

    sweep = write_sweep(tmp_path)
    flag(sweep, lambda p: ["collapsed"] if p == {"dropout.p": 0.5, "seed": 2} else [])
    doc = _json(cli, sweep, "-m", "test_acc", "-m", "gap_acc")
    results = [json.loads((d / "result.json").read_text())
               for d in sorted((sweep / "trials").iterdir())]
    rows = group_rows(results, ["dropout.p", "seed"])
    compared = {r["value"]: r for r in doc["blocks"][0]["rows"]}
    assert len(rows) == len(compared) == 3
    for row in rows:
        c = compared[float(row["params"]["dropout.p"])]
        assert row["n"] == c["trials"]["done"] - c["excluded"]
        for name in ("test_acc", "gap_acc"):
            assert row["values"][name] == pytest.approx(c["metrics"][name]["mean"])
    half = next(r for r in rows if r["params"]["dropout.p"] == "0.5")
    assert half["n"] == 2 and half["of"] == 3 and half["values"]["test_acc"] == pytest.approx(0.945)
    console = Console(width=200, record=True, color_system=None)
    console.print(results_table(results, ["dropout.p", "seed"], title="fake"))
    text = console.export_text()
    assert "0.9450" in text and "2/3" in text and "collapsed 1/3" in text
