"""Concrete dropout end to end through the CLI: the learned p is recorded every epoch
(metrics.jsonl) and at the end (result.json), read back without a damage warning, and shown
by show, compare, the Python API and the exports' per-epoch numbers; bad input is exit 2."""

from __future__ import annotations

import copy
import json

import pytest

from dropout_lab.export import epoch_values, trial_statistics
from tests.helpers.configs import TINY


@pytest.fixture
def concrete_sweep(cli, write_config, tmp_path):
    data = copy.deepcopy(TINY)
    data["name"] = "concrete"
    data["dropout"] = {"p": 0.5, "input_p": 0.0, "variant": "concrete"}
    data["train"].update(epochs=3, optimizer="adam", lr=0.01)
    data["sweep"] = {"dropout.p": [0.0, 0.3], "seed": [0, 1]}
    code, out, err = cli("sweep", write_config(data), "--runs-dir", tmp_path / "runs")
    assert code == 0, err
    return tmp_path / "runs" / "concrete"


def results(sweep):
    out = {}
    for path in sorted((sweep / "trials").glob("*/result.json")):
        r = json.loads(path.read_text())
        rows = [json.loads(line) for line in (path.parent / "metrics.jsonl").read_text()
                .splitlines()]
        out[(r["params"]["dropout.p"], r["params"]["seed"])] = (path.parent, r, rows)
    return out


def test_learned_p_is_recorded_every_epoch_and_at_the_end(concrete_sweep):
    found = results(concrete_sweep)
    _, r, rows = found[(0.3, 0)]
    assert [len(row["learned_p"]) for row in rows] == [2, 2, 2]  # input, hidden layer 1
    assert all(row["learned_p"][0] is None for row in rows)  # input_p = 0: not learned
    assert r["learned_p"] == rows[-1]["learned_p"]
    assert 0 < r["learned_p"][1] < 1 and r["learned_p"][1] != 0.3
    _, r0, rows0 = found[(0.0, 0)]  # starting at p = 0: no dropout, nothing learned
    assert "learned_p" not in r0 and all("learned_p" not in row for row in rows0)


def test_show_compare_api_and_exports_read_it(cli, concrete_sweep):
    trial_dir, r, rows = results(concrete_sweep)[(0.3, 1)]
    code, out, err = cli("show", trial_dir)
    assert code == 0 and "damaged" not in err, err
    assert f"learned p  layer 1 {r['learned_p'][1]:.4f}  (concrete)" in out
    code, out, err = cli("show", trial_dir, "--json")
    assert json.loads(out)["learned_p"] == r["learned_p"]
    code, out, err = cli("compare", concrete_sweep, "-m", "learned_p[1]", "--format", "json",
                         "--include-collapsed")  # 3 epochs of a tiny net: near chance
    assert code == 0, err
    cell = next(row for row in json.loads(out)["blocks"][0]["rows"] if row["value"] == 0.3)
    assert cell["metrics"]["learned_p[1]"]["n"] == 2
    code, _, err = cli("compare", concrete_sweep, "-m", "learned_p[9]")
    assert code == 2 and "learned_p[9]" in err
    assert epoch_values(rows[0])["learned_p/1"] == rows[0]["learned_p"][1]
    assert "learned_p/0" not in epoch_values(rows[0])
    pytest.importorskip("pandas")
    import dropout_lab

    sweep = dropout_lab.load(concrete_sweep)
    frame = sweep.to_pandas().set_index(["dropout.p", "seed"])
    assert frame.loc[(0.3, 1), "learned_p[1]"] == pytest.approx(r["learned_p"][1])
    trial = next(t for t in sweep.trials if t.params == {"dropout.p": 0.3, "seed": 1})
    assert trial_statistics(trial)["learned_p/1"] == pytest.approx(r["learned_p"][1])


def test_concrete_settings_with_another_variant_exit_2(cli, write_config):
    data = copy.deepcopy(TINY)
    data["dropout"] = {"p": 0.5, "concrete": {"temperature": 0.2}}
    code, out, err = cli("sweep", write_config(data))
    assert code == 2 and "Traceback" not in err
    assert "dropout.concrete sets the learned p of variant concrete" in err
