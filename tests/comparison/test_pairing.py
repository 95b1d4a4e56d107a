"""compare A B: matching grid points of two sweeps, paired and Welch differences (known
answers), the CLI and the Python API agreeing."""

from __future__ import annotations

import json
import math

import pytest
import yaml

from dropout_lab.comparison.pairing import (
    PAIRED,
    WELCH,
    difference,
    differing_keys,
    pair_sweeps,
    welch_difference,
)
from dropout_lab.comparison.source import load
from dropout_lab.stats import t_quantile
from tests.helpers.fake_sweeps import TEST_ACC, write_sweep


def with_base(root, **changes):
    """Change keys of a fake sweep's base config (what a second code version or backend
    would write)."""
    path = root / "sweep.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["config"].update(changes)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return root


def test_welch_known_answer():
    # a = [0, 2] (var 2), b = [1, 3, 5] (var 4): se^2 = 2/2 + 4/3 = 7/3,
    # df = (7/3)^2 / (1^2 / 1 + (4/3)^2 / 2) = 49/17, mean difference 3 - 1 = 2
    d = welch_difference([0.0, 2.0], [1.0, 3.0, 5.0])
    assert d.kind == WELCH and d.mean == pytest.approx(2.0)
    assert d.df == pytest.approx(49 / 17)
    half = _t(0.975, 49 / 17) * math.sqrt(7 / 3)
    assert (d.lo, d.hi) == pytest.approx((2 - half, 2 + half))
    assert not d.excludes_zero  # half is ~4.8


def _t(q, df):
    from scipy import stats

    return float(stats.t.ppf(q, df))


def test_welch_agrees_with_scipy():
    stats = pytest.importorskip("scipy.stats")
    a, b = [0.91, 0.93, 0.92, 0.95], [0.96, 0.97, 0.99]
    d = welch_difference(a, b)
    res = stats.ttest_ind(b, a, equal_var=False)
    if hasattr(res, "confidence_interval"):
        ci = res.confidence_interval(0.95)
        assert (d.lo, d.hi) == pytest.approx((ci.low, ci.high))
    assert d.df == pytest.approx(getattr(res, "df", d.df))


def test_paired_known_answer():
    # b - a per seed: 1, 2, 1 -> mean 4/3, sd sqrt(1/3), half t(0.975, 2) * sqrt(1/3) / sqrt(3)
    d = difference({0: 1.0, 1: 2.0, 2: 4.0}, {0: 2.0, 1: 4.0, 2: 5.0})
    assert d.kind == PAIRED and d.seeds == (0, 1, 2) and d.df == 2
    half = t_quantile(0.95, 2) * math.sqrt(1 / 3) / math.sqrt(3)
    assert d.mean == pytest.approx(4 / 3)
    assert (d.lo, d.hi) == pytest.approx((4 / 3 - half, 4 / 3 + half))
    assert half == pytest.approx(4.302653 / 3) and not d.excludes_zero  # [-0.10, 2.77]
    d = difference({0: 1.0, 1: 2.0, 2: 4.0, 3: 3.0}, {0: 2.0, 1: 3.1, 2: 5.0, 3: 4.1})
    assert d.excludes_zero  # 1.0, 1.1, 1.0, 1.1: [0.96, 1.14]


def test_shared_seeds_are_paired_the_others_dropped():
    d = difference({0: 1.0, 1: 2.0, 5: 9.0}, {0: 2.0, 1: 4.0, 7: 0.0})
    assert d.kind == PAIRED and d.seeds == (0, 1) and d.mean == pytest.approx(1.5)


def test_two_backends_are_matched_on_the_axes_and_paired_by_seed(tmp_path):
    a = write_sweep(tmp_path / "a", axes={"dropout.p": [0.0, 0.5], "seed": [0, 1, 2]})
    b = with_base(write_sweep(tmp_path / "b", axes={"dropout.p": [0.0, 0.5], "seed": [0, 1, 2]},
                              final=lambda p: {"test_acc": TEST_ACC[(p["dropout.p"], p["seed"])]
                                               + 0.01 * (p["seed"] + 1),
                                               "train_acc": 1.0, "test_loss": 0.3,
                                               "train_loss": 0.1}),
                  backend="torch")
    da, db = load(a), load(b)
    assert differing_keys(da, db) == {"backend": (None, "torch")}
    pair = pair_sweeps(da, db, metrics=["test_acc"])
    assert pair.matched_on == ["dropout.p"]
    assert [p.params for p in pair.points] == [{"dropout.p": 0.0}, {"dropout.p": 0.5}]
    cell = pair.points[0].metrics["test_acc"]
    assert cell.diff.kind == PAIRED and cell.diff.seeds == (0, 1, 2)
    # B - A = 0.01, 0.02, 0.03 at seeds 0, 1, 2
    assert cell.diff.mean == pytest.approx(0.02)
    half = t_quantile(0.95, 2) * 0.01 / math.sqrt(3)
    assert (cell.diff.lo, cell.diff.hi) == pytest.approx((0.02 - half, 0.02 + half))
    assert cell.a.mean == pytest.approx(0.92)
    assert not pair.only_a and not pair.only_b


def test_disjoint_seeds_are_compared_by_welch_and_unmatched_points_listed(tmp_path):
    a = write_sweep(tmp_path / "a", axes={"dropout.p": [0.0, 0.2], "seed": [0, 1]})
    b = write_sweep(tmp_path / "b", axes={"dropout.p": [0.0, 0.5], "seed": [2]},
                    final=lambda p: {"test_acc": 0.97, "train_acc": 1.0, "test_loss": 0.3,
                                     "train_loss": 0.1})
    pair = pair_sweeps(load(a), load(b), metrics=["test_acc"])
    assert [p.params for p in pair.points] == [{"dropout.p": 0.0}]
    cell = pair.points[0].metrics["test_acc"]
    assert pair.points[0].kind == WELCH and cell.diff.kind == WELCH
    assert cell.diff.mean == pytest.approx(0.97 - 0.91)
    assert cell.diff.lo is None  # one value on B's side: no interval
    assert pair.only_a == [{"dropout.p": 0.2}] and pair.only_b == [{"dropout.p": 0.5}]


def test_an_axis_of_one_sweep_is_matched_against_the_others_base_value(tmp_path):
    a = write_sweep(tmp_path / "a", axes={"dropout.p": [0.0, 0.5], "seed": [0, 1]})
    b = write_sweep(tmp_path / "b", axes={"seed": [0, 1]})  # p fixed at 0.5 in its base
    pair = pair_sweeps(load(a), load(b), metrics=["test_acc"])
    assert [p.params for p in pair.points] == [{"dropout.p": 0.5}]
    assert pair.only_a == [{"dropout.p": 0.0}]


def test_cli_compare_two_folders_and_the_api_agree(cli, tmp_path):
    pytest.importorskip("pandas", reason="Sweep.compare needs the extra [pandas]")
    import dropout_lab

    a = write_sweep(tmp_path / "a")
    b = with_base(write_sweep(tmp_path / "b", reverse_order=True), backend="torch")
    code, out, err = cli("compare", a, b, "-f", "json", "-m", "test_acc", "-m", "gap_acc")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["schema"] == "dropout-lab.compare-sweeps/1"
    assert doc["differ"] == {"backend": [None, "torch"]}
    df = dropout_lab.load(a).compare(dropout_lab.load(b), metrics=["test_acc", "gap_acc"])
    assert len(df) == 3 * 2
    for point in doc["points"]:
        for name, m in point["metrics"].items():
            g = df[(df["dropout.p"] == point["params"]["dropout.p"]) & (df.metric == name)]
            g = g.iloc[0]
            assert g["pairing"] == m["diff"]["kind"] == "paired"
            assert g["diff_mean"] == m["diff"]["mean"]  # the same sweeps: 0 difference
            assert [g["diff_ci_lo"], g["diff_ci_hi"]] == m["diff"]["ci"]
            assert (g["a_mean"], g["b_mean"]) == (m["a"]["mean"], m["b"]["mean"])
    code, out, err = cli("compare", a, b)
    assert code == 0, err
    assert "backend: None -> torch" in out and "paired n=3" in out
    code, out, err = cli("compare", a, b, "-f", "csv")
    assert code == 0 and out.splitlines()[0].startswith("dropout.p,metric,")


def test_cli_compare_two_folders_refuses_one_sweep_options(cli, tmp_path):
    a, b = write_sweep(tmp_path / "a"), write_sweep(tmp_path / "b")
    code, _, err = cli("compare", a, b, "--by", "seed")
    assert code == 2 and "not for two sweeps" in err
    code, _, err = cli("compare", a, b, "-f", "markdown")
    assert code == 2 and "choose one of rich, csv, json" in err
    other = write_sweep(tmp_path / "c", axes={"dropout.p": [0.9], "seed": [0]})
    code, _, err = cli("compare", a, other)
    assert code == 2 and "share no grid point" in err
