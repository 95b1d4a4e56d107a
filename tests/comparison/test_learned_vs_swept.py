"""Learned vs swept (comparison/learned.py): concrete dropout's learned p beside the swept
optimum, with known numbers (hand-made sweep folders), in every place it is shown."""

from __future__ import annotations

import json

import pytest

from tests.helpers.fake_sweeps import TEST_ACC, write_sweep

AXES = {"dropout.variant": ["inverted", "concrete"], "dropout.p": [0.0, 0.2, 0.5],
        "seed": [0, 1, 2]}


def final(params):
    p, seed = float(params["dropout.p"]), int(params["seed"])
    if params["dropout.variant"] == "concrete" and p > 0:
        test = 0.94 + 0.01 * seed  # vs the optimum p = 0.5 (.93, .96, .96): +.01, -.01, 0
    else:
        test = TEST_ACC[(p, seed)]
    return {"test_acc": test, "train_acc": test + 0.03, "test_loss": 0.3, "train_loss": 0.1}


def learned(params):
    p, seed = float(params["dropout.p"]), int(params["seed"])
    if params["dropout.variant"] != "concrete" or p == 0:
        return {}  # p = 0: nothing drops, nothing is learned
    return {"learned_p": [None, 0.3 + 0.01 * seed + (0.1 if p == 0.5 else 0.0)]}


@pytest.fixture
def sweep(tmp_path):
    return write_sweep(tmp_path, "lvs", axes=AXES, final=final, extra=learned)


def test_known_optimum_learned_p_and_paired_difference(cli, sweep):
    code, out, err = cli("compare", sweep, "--format", "json")
    assert code == 0, err
    (entry,) = json.loads(out)["learned_vs_swept"]
    assert entry["selectors"] == {"dropout.variant": "concrete"}
    opt = entry["swept_optimum"]
    # fixed p: means .92 / .9433 / .95 -> p = 0.5; each seed's own best: .2, .5, .2
    assert opt["value"] == 0.5 and opt["metric"]["mean"] == pytest.approx(0.95)
    assert {d["seed"]: d["value"] for d in opt["seed_best"]} == {0: 0.2, 1: 0.5, 2: 0.2}
    rows = {r["start"]: r for r in entry["rows"]}
    assert rows[0.0]["learned_p"] == []
    lp = rows[0.2]["learned_p"]
    assert lp[0] is None and lp[1]["mean"] == pytest.approx(0.31)
    assert lp[1]["sd"] == pytest.approx(0.01) and lp[1]["n"] == 3
    assert rows[0.5]["learned_p"][1]["mean"] == pytest.approx(0.41)
    assert rows[0.2]["metric"]["mean"] == pytest.approx(0.95)
    diff = rows[0.2]["diff"]  # .94 - .93, .95 - .96, .96 - .96
    assert diff["mean"] == pytest.approx(0.0, abs=1e-12) and diff["sd"] == pytest.approx(0.01)
    assert diff["seeds"] == [0, 1, 2] and diff["excludes_zero"] is False


def test_the_table_names_the_optimum_and_fits_80_columns(cli, sweep):
    code, out, err = cli("compare", sweep, "-m", "test_acc")
    assert code == 0, err
    part = out[out.index("learned vs swept"):]
    assert "swept optimum: dropout.p = 0.5, test_acc 0.9500" in part
    assert "layer 1 0.3100 ± 0.0248" in part  # t(0.975, 2) * 0.01 / sqrt(3)
    assert "none (p = 0)" in part
    assert max(len(line) for line in part.splitlines()) <= 80


def test_a_sweep_without_concrete_trials_has_no_section(cli, tmp_path):
    code, out, _ = cli("compare", write_sweep(tmp_path), "--format", "json")
    assert code == 0 and "learned_vs_swept" not in json.loads(out)
    code, out, _ = cli("compare", write_sweep(tmp_path, "b"))
    assert "learned vs swept" not in out


def test_the_python_api_gives_the_same_numbers(sweep):
    pytest.importorskip("pandas")
    from dropout_lab.api import load

    frame = load(sweep).compare(learned=True).set_index("start")
    assert frame.loc[0.2, "learned_p[1]"] == pytest.approx(0.31)
    assert frame.loc[0.2, "optimum"] == 0.5
    assert frame.loc[0.2, "optimum_mean"] == pytest.approx(0.95)
    assert frame.loc[0.5, "diff"] == pytest.approx(0.0, abs=1e-12)
    assert "learned_p[0]" not in frame.columns
    assert load(write_sweep(sweep.parent, "plain")).compare(learned=True).empty
