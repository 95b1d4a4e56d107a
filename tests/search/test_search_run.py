"""A search end to end on digits (issue 23's done-when): TPE with ASHA prunes some trials,
keeps p inside its range, resumes without re-running, extends when search.trials grows; every
trial is an ordinary trial folder that compare, plot, report and the Python API read."""

from __future__ import annotations

import json

import pytest

from tests.helpers.requires import requires

pytestmark = [requires("optuna"), pytest.mark.slow]

SEARCH = {
    "name": "search",
    "dataset": {"name": "digits", "val_fraction": 0.2},
    "model": {"hidden": [8]},
    "train": {"epochs": 6, "lr": 0.1, "batch_size": 64},
    "eval": {"coadaptation": False, "uncertainty": False, "save_weights": "none"},
    "sweep": {"dropout.p": {"min": 0.0, "max": 0.9}},
    "search": {"method": "tpe", "trials": 12, "metric": "val_acc", "seed": 0,
               "early_terminate": {"type": "asha", "min_epochs": 1}},
}


def _search(cli, path, runs, *extra):
    code, out, err = cli("sweep", path, "--runs-dir", runs, "--workers", "1", "--threads", "1",
                         "--json", *extra)
    assert code == 0, err
    assert "Traceback" not in err
    return json.loads(out)


def test_tpe_with_asha_prunes_resumes_and_extends(cli, write_config, tmp_path):
    path = write_config(SEARCH)
    runs = tmp_path / "runs"
    first = _search(cli, path, runs)
    suggestions = first["search"]["suggestions"]
    assert len(suggestions) == 12
    states = [s["state"] for s in suggestions]
    assert "pruned" in states and "complete" in states
    trials = first["trials"]
    assert all(t["executed"] for t in trials) and len(trials) == 12
    assert all(0.0 <= t["params"]["dropout.p"] <= 0.9 for t in trials)
    sweep_dir = runs / "search"
    pruned = [t for t in trials if t["status"] == "pruned"]
    assert pruned
    for t in pruned:  # an ordinary trial folder, stopped early
        folder = sweep_dir / "trials" / t["trial_id"]
        result = json.loads((folder / "result.json").read_text())
        rows = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
        assert result["status"] == "pruned" and result["final"] is None
        assert result["epochs_trained"] == len(rows) < 6
        assert result["pruned"]["epoch"] == rows[-1]["epoch"]
        assert result["pruned"]["val_acc"] == rows[-1]["val_acc"]
    best = first["search"]["best"]
    complete = [s for s in suggestions if s["state"] == "complete"]
    assert best["value"] == max(s["value"] for s in complete)
    assert (sweep_dir / "study.journal").is_file()

    again = _search(cli, path, runs)  # a finished search: nothing runs
    assert not any(t["executed"] for t in again["trials"])
    assert again["search"]["suggestions"] == suggestions

    more = _search(cli, path, runs, "--set", "search.trials=14")  # only the new ones run
    assert more["search"]["suggestions"][:12] == suggestions
    assert len(more["search"]["suggestions"]) == 14
    ran = {t["trial_id"] for t in more["trials"] if t["executed"]}
    new_ids = {tid for s in more["search"]["suggestions"][12:] for tid in s["trial_ids"]}
    assert ran == new_ids - {t["trial_id"] for t in trials}
    assert ran

    # every reader takes a search's folder, pruned trials included
    for command in (["compare", sweep_dir], ["report", sweep_dir], ["show", sweep_dir]):
        code, out, err = cli(*command)
        assert code == 0, (command, err)
    code, out, err = cli("plot", sweep_dir, "--json")
    assert code == 0, err
    assert str(sweep_dir / "plots" / "search_vs_p.png") in json.loads(out)["plots"]

    import dropout_lab

    swept = dropout_lab.load(sweep_dir)
    statuses = {t.trial_id: str(t.status) for t in swept.trials}
    assert {statuses[t["trial_id"]] for t in pruned} == {"pruned"}


def test_one_worker_search_is_reproducible_from_its_seed(cli, write_config, tmp_path):
    cfg = dict(SEARCH, sweep={"dropout.p": {"min": 0.0, "max": 0.9}, "seed": [0, 1]},
               search=dict(SEARCH["search"], trials=5,
                           early_terminate={"type": "median", "min_epochs": 2,
                                            "n_startup_trials": 1}))
    path = write_config(cfg)
    a = _search(cli, path, tmp_path / "a")
    b = _search(cli, path, tmp_path / "b")
    assert a["search"]["suggestions"] == b["search"]["suggestions"]
    assert len(a["trials"]) <= 10
    for s in a["search"]["suggestions"]:  # a suggestion is a paired block over the seeds
        seeds = sorted(t["params"]["seed"] for t in a["trials"] if t["trial_id"] in s["trial_ids"])
        assert seeds == [0, 1] or (s["state"] == "pruned" and seeds in ([0], [0, 1]))
        if s["state"] == "complete":
            values = [t for t in a["trials"] if t["trial_id"] in s["trial_ids"]]
            assert all(t["status"] == "done" for t in values)
