"""--expect gates: the operator semantics on known intervals, blocks, exit codes, bad input."""

from __future__ import annotations

import pytest

from dropout_lab.comparison import build_comparison
from dropout_lab.errors import ExpectationError
from dropout_lab.expect import evaluate, parse
from tests.helpers.fake_sweeps import TEST_ACC, default_final, write_sweep

# Known paired differences in the fake sweep (seeds 0, 1, 2):
#   test_acc[0.5] - test_acc[0.0] = .03, .04, .02 -> 95% CI [+0.0052, +0.0548] (excludes 0)
#   test_acc[0.2] - test_acc[0.0] = .05, -.01, .03 -> 95% CI [-0.0526, +0.0993] (contains 0)


@pytest.fixture
def comparison(tmp_path):
    return build_comparison(write_sweep(tmp_path))


@pytest.mark.parametrize("expr, holds", [
    ("test_acc[p=0.5] > test_acc[p=0.0]", True),    # lower end > 0
    ("test_acc[p=0.5] >= test_acc[p=0.0]", True),
    ("test_acc[p=0.5] < test_acc[p=0.0]", False),
    ("test_acc[p=0.5] <= test_acc[p=0.0]", False),  # lower end +0.005 > 0 contradicts <=
    ("test_acc[p=0.2] > test_acc[p=0.0]", False),   # interval contains 0: not significant
    ("test_acc[p=0.2] >= test_acc[p=0.0]", True),   # ... but not significantly smaller
    ("test_acc[p=0.2] < test_acc[p=0.0]", False),
    ("test_acc[p=0.2] <= test_acc[p=0.0]", True),
    ("test_acc[p=0.0] < test_acc[p=0.5]", True),
    ("gap_acc[p=0.5] < gap_acc[p=0]", True),        # -0.05 at every seed: zero-width interval
    ("test_acc[p=0.5] >= 0.94", True),              # thresholds: the mean (0.95) decides
    ("test_acc[p=0.5] >= 0.96", False),
    ("0.96 <= test_acc[p=0.5]", False),             # number on the left: same as >= 0.96
    ("0.94 < test_acc[p=0.5]", True),
    ("gap_acc[p=0.5] < 0.02", True),
])
def test_operator_semantics(comparison, expr, holds):
    (verdict,) = evaluate([expr], comparison)
    assert verdict.holds is holds, verdict.detail


def test_verdict_shows_the_numbers_that_decided_it(comparison):
    (v,) = evaluate(["test_acc[p=0.5] > test_acc[p=0.0]"], comparison)
    assert "d = test_acc[0.5] - test_acc[0.0] = +0.0300" in v.detail
    assert "95% CI [+0.0052, +0.0548], n=3 paired seeds" in v.detail
    assert "'>' needs lower end > 0" in v.detail
    assert v.line().startswith("PASS test_acc[p=0.5] > test_acc[p=0.0]: d = ")


def _two_sizes(params):
    f = default_final(params)
    if params["model.hidden"] == [32, 32]:  # the big model: dropout hurts (flip the p values)
        p = 0.5 if params["dropout.p"] == 0.0 else 0.0
        f["test_acc"] = TEST_ACC[(p, params["seed"])]
    return f


def test_expectation_must_hold_in_every_block_unless_selected(cli, tmp_path):
    sweep = write_sweep(tmp_path, axes={"dropout.p": [0.0, 0.5], "model.hidden": [[16], [32, 32]],
                                        "seed": [0, 1, 2]}, final=_two_sizes)
    expr = "test_acc[p=0.5] > test_acc[p=0.0]"
    code, _, err = cli("compare", sweep, "-q", "--expect", expr)
    assert code == 1
    assert f"PASS {expr} [model.hidden=[16]]" in err
    assert f"FAIL {expr} [model.hidden=[32, 32]]" in err
    assert "1/2 expectation(s) hold" in err
    code, _, err = cli("compare", sweep, "-q", "--expect",
                       "test_acc[p=0.5, model.hidden=[16]] > test_acc[p=0.0]")
    assert code == 0, err
    assert "1/1 expectation(s) hold" in err


def test_all_gates_hold_exit_0_and_table_still_printed(cli, tmp_path):
    code, out, err = cli("compare", write_sweep(tmp_path), "--expect",
                         "gap_acc[p=0.5] < gap_acc[p=0.0]", "--expect", "test_acc[p=0.5] >= 0.9")
    assert code == 0, err
    assert "dropout.p" in out and "2/2 expectation(s) hold" in err


def test_gates_in_json_output(cli, tmp_path):
    import json

    code, out, _ = cli("compare", write_sweep(tmp_path), "-f", "json", "--expect",
                       "test_acc[p=0.2] > test_acc[p=0.0]")
    assert code == 1
    (e,) = json.loads(out)["expectations"]
    assert e["holds"] is False and e["expression"] == "test_acc[p=0.2] > test_acc[p=0.0]"


def test_one_seed_cannot_decide_a_difference(tmp_path):
    c = build_comparison(write_sweep(tmp_path, axes={"dropout.p": [0.0, 0.5], "seed": [0]}))
    (v,) = evaluate(["test_acc[p=0.5] > test_acc[p=0.0]"], c)
    assert not v.holds and "add seeds" in v.detail


def test_missing_trials_fail_rather_than_pass(tmp_path):
    sweep = write_sweep(tmp_path, status=lambda p: "failed" if p["dropout.p"] == 0.5 else "done")
    (v,) = evaluate(["test_acc[p=0.5] >= 0.0"], build_comparison(sweep))
    assert not v.holds and "no finished trial with dropout.p=0.5" in v.detail


@pytest.mark.parametrize("expr, message", [
    ("test_acc[p=0.5]", "no comparison operator"),
    ("test_acc[p=0.5] < gap_acc[p=0.0] < 1", "more than one comparison"),
    ("test_acc[p=0.5] == 0.9", "operator '==' is not supported"),
    ("test_acc[p=0.5 < 0.9", "unbalanced '['"),
    ("0.5 < 0.9", "compares two numbers"),
    ("test_acc(p=0.5) < 0.9", "is neither a number nor a term"),
    ("test_acc[0.5] < 0.9", "selector '0.5' needs KEY=VALUE"),
    ("test_acc[] < 0.9", "selects nothing"),
    ("test_acc[p=0.5] < ", "a side of the comparison is empty"),
    ("", "empty --expect expression"),
])
def test_syntax_errors(expr, message):
    with pytest.raises(ExpectationError, match=None) as info:
        parse(expr)
    assert message in str(info.value)


@pytest.mark.parametrize("expr, message", [
    ("test_ac[p=0.5] < 0.9", "unknown metric 'test_ac'; did you mean 'test_acc'?"),
    ("mc_acc[p=0.5] < 0.9", "metric 'mc_acc' has no values in this sweep"),
    ("test_acc[p=0.3] < 0.9", "dropout.p=0.3 is not in the sweep (values: 0.0, 0.2, 0.5)"),
    ("test_acc[q=0.5] < 0.9", "unknown key 'q'"),
    ("test_acc[p=0.5, seed=1] < 0.9", "seed cannot be selected"),
    ("test_acc[p=0.5, p=0.2] < 0.9", "p is selected twice"),
    ("test_acc[train.lr=0.1] < 0.9", "unknown key 'train.lr'"),
])
def test_name_errors(comparison, expr, message):
    with pytest.raises(ExpectationError) as info:
        evaluate([expr], comparison)
    assert message in str(info.value)


def test_malformed_expression_exits_2_before_printing_anything(cli, tmp_path):
    code, out, err = cli("compare", write_sweep(tmp_path), "--expect",
                         "test_acc[p=0.5] > test_acc[p=0.0]", "--expect", "test_acc[p=0.9] > 0")
    assert code == 2 and out == ""
    assert "dropout.p=0.9 is not in the sweep" in err and "PASS" not in err


def test_unknown_block_value_is_malformed(cli, tmp_path):
    sweep = write_sweep(tmp_path, axes={"dropout.p": [0.0, 0.5], "model.hidden": [[16]],
                                        "seed": [0, 1]})
    code, _, err = cli("compare", sweep, "-e", "test_acc[p=0.5, model.hidden=[64]] > 0")
    assert code == 2 and "model.hidden=[64] is not in the sweep (values: [16])" in err


def test_two_seeds_with_identical_differences_decide_nothing(tmp_path):
    """A zero-width interval from two seeds is no evidence: strict gates fail, loose ones hold."""
    from dropout_lab.comparison import build_comparison
    from dropout_lab.expect import evaluate
    from tests.helpers.fake_sweeps import write_sweep

    acc = {(0.0, 0): 0.90, (0.0, 1): 0.91, (0.5, 0): 0.92, (0.5, 1): 0.93}
    root = write_sweep(tmp_path, axes={"dropout.p": [0.0, 0.5], "seed": [0, 1]},
                       final=lambda prm: {"test_acc": acc[(prm["dropout.p"], prm["seed"])],
                                          "train_acc": 1.0, "test_loss": 0.3, "train_loss": 0.1})
    c = build_comparison(root)
    (gt,) = evaluate(["test_acc[p=0.5] > test_acc[p=0.0]"], c)
    (ge,) = evaluate(["test_acc[p=0.0] >= test_acc[p=0.5]"], c)
    assert not gt.holds and "zero-width" in gt.detail
    assert ge.holds
