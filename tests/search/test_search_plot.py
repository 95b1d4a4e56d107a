"""The search figure's numbers, by known answer: which trials are drawn as done or pruned,
the suggestions' means over seeds, the best point and the best region (the points whose mean
lies inside the best point's t interval over its seeds)."""

from __future__ import annotations

from dropout_lab.comparison.model import Comparison, TrialRecord
from dropout_lab.report.plots import search_figure, search_points
from dropout_lab.stats import summarize


def _rec(tid, p, seed, status, value):
    result = {"trial_id": tid, "status": status}
    if status == "done":
        result["final"] = {"test_acc": value}
    elif status == "pruned":
        result["pruned"] = {"epoch": 2, "test_acc": value}
    return TrialRecord(tid, {"dropout.p": p, "seed": seed}, result)


def _comparison(trials, search):
    return Comparison(name="s", sweep_dir=None, by="dropout.p", baseline=None, level=0.95,
                      metrics=[], best_by="test_acc", block_axes=[], blocks=[], values=[],
                      present=[], axes={"dropout.p": [], "seed": [0, 1]},
                      base_config={"search": search}, trials=trials)


def test_search_points_known_answer():
    trials = [
        _rec("a0", 0.1, 0, "done", 0.90), _rec("a1", 0.1, 1, "done", 0.92),  # mean 0.91
        _rec("b0", 0.3, 0, "done", 0.94), _rec("b1", 0.3, 1, "done", 0.96),  # mean 0.95, best
        _rec("c0", 0.5, 0, "done", 0.93), _rec("c1", 0.5, 1, "done", 0.95),  # mean 0.94
        _rec("d0", 0.8, 0, "pruned", 0.40),  # pruned: drawn, never in a mean
        _rec("e0", 0.7, 0, "done", 0.99),  # its block's other seed was pruned: no mean
        _rec("e1", 0.7, 1, "pruned", 0.50),
        _rec("f0", 0.2, 0, "failed", None),
    ]
    sp = search_points(_comparison(trials, {"metric": "test_acc", "goal": "maximize"}))
    assert sp is not None
    assert sorted(sp.pruned) == [(0.7, 0.50), (0.8, 0.40)]
    assert len(sp.done) == 7
    assert [(x, round(m, 6), n) for x, m, n in sp.means] == [(0.1, 0.91, 2), (0.3, 0.95, 2),
                                                             (0.5, 0.94, 2)]
    assert sp.best == (0.3, 0.95)
    ci = summarize([0.94, 0.96])  # 0.95 +- 12.706 * 0.01414 / sqrt 2 = [0.823, 1.077]
    assert round(ci.lo, 3) == 0.823 and round(ci.hi, 3) == 1.077
    assert sp.region == (0.1, 0.5)  # every mean is inside that wide interval
    assert search_figure(_comparison(trials, {"metric": "test_acc"})) is not None


def test_minimize_picks_the_lowest_and_a_grid_has_no_search_figure():
    trials = [_rec("a0", 0.1, 0, "done", 0.3), _rec("a1", 0.1, 1, "done", 0.3),
              _rec("b0", 0.6, 0, "done", 0.1), _rec("b1", 0.6, 1, "done", 0.1)]
    sp = search_points(_comparison(trials, {"metric": "test_acc", "goal": "minimize"}))
    assert sp is not None and sp.best == (0.6, 0.1)
    assert sp.region is None  # no spread over the seeds: no interval, no region
    assert search_points(_comparison(trials, None)) is None
