"""ls and show: listing sweeps and showing one, tables and JSON; every new command has help."""

from __future__ import annotations

import json

import pytest

from tests.helpers.fake_sweeps import write_sweep


def _failed_one(params):
    return "failed" if params == {"dropout.p": 0.5, "seed": 1} else "done"


def test_ls_counts_trials(cli, tmp_path):
    write_sweep(tmp_path, "alpha", status=_failed_one)
    write_sweep(tmp_path, "beta", status=lambda p: "pending" if p["seed"] == 2 else "done")
    (tmp_path / "not-a-sweep").mkdir()
    code, out, err = cli("ls", tmp_path, "--json")
    assert code == 0, err
    sweeps = {s["name"]: s for s in json.loads(out)["sweeps"]}
    assert set(sweeps) == {"alpha", "beta"}
    assert (sweeps["alpha"]["done"], sweeps["alpha"]["failed"], sweeps["alpha"]["total"]) == \
        (8, 1, 9)
    assert (sweeps["beta"]["done"], sweeps["beta"]["pending"]) == (6, 3)
    code, out, _ = cli("ls", tmp_path)
    assert code == 0
    line = next(x for x in out.splitlines() if "alpha" in x)
    assert [c.strip() for c in line.split("│")[1:5]] == ["alpha", "8", "1", "9"]


def test_ls_reports_a_broken_sweep_without_hiding_the_others(cli, tmp_path):
    write_sweep(tmp_path, "good")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "sweep.yaml").write_text("{ not yaml")
    code, out, _ = cli("ls", tmp_path, "--json")
    assert code == 0
    sweeps = {s["name"]: s for s in json.loads(out)["sweeps"]}
    assert sweeps["good"]["done"] == 9 and "unreadable" in sweeps["bad"]["error"]


def test_ls_empty_and_missing(cli, tmp_path):
    code, out, _ = cli("ls", tmp_path)
    assert code == 0 and "no sweeps in" in out
    code, _, err = cli("ls", tmp_path / "missing")
    assert code == 2 and "no such runs folder" in err


def test_show_lists_config_axes_and_trials(cli, tmp_path):
    sweep = write_sweep(tmp_path, status=_failed_one)
    code, out, err = cli("show", sweep)
    assert code == 0, err
    assert "axes: dropout.p = 0.0, 0.2, 0.5; seed = 0, 1, 2" in out
    assert "trials: 8 done, 1 failed, 0 pending, 9 total" in out
    assert "name: fake" in out  # the config
    failed = next(x for x in out.splitlines() if "failed" in x and "t" in x and "boom" in x)
    assert "0.5" in failed
    code, out, _ = cli("show", sweep, "--json")
    doc = json.loads(out)
    assert doc["counts"] == {"done": 8, "failed": 1, "pending": 0, "total": 9}
    assert doc["axes"] == {"dropout.p": [0.0, 0.2, 0.5], "seed": [0, 1, 2]}
    bad = [t for t in doc["trials"] if t["status"] == "failed"]
    assert len(bad) == 1 and bad[0]["params"] == {"dropout.p": 0.5, "seed": 1}
    assert bad[0]["error"] == "boom"


def test_show_not_a_sweep(cli, tmp_path):
    code, out, err = cli("show", tmp_path)
    assert code == 2 and out == "" and "not a sweep folder" in err


@pytest.mark.parametrize("command", ["compare", "plot", "report", "ls", "show"])
def test_every_command_has_help(cli, command):
    code, out, _ = cli(command, "--help")
    assert code == 0 and "Usage:" in out and len(out) > 200
