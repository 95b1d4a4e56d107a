"""Every command has help, and the tiny sweep runs end to end through the CLI."""

from __future__ import annotations

import json

import pytest
import typer.main

from dropout_lab.cli import app


def test_every_command_has_help(cli):
    group = typer.main.get_command(app)
    assert group.commands, "no commands registered"
    for name, command in group.commands.items():
        assert command.help, f"command {name!r} has no help text"
        code, out, _ = cli(name, "--help")
        assert code == 0 and "Usage" in out


def test_tiny_sweep_json(cli, tiny_config, tmp_path):
    code, out, _ = cli("sweep", tiny_config, "--runs-dir", tmp_path / "runs", "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["sweep_dir"].endswith("tiny")
    assert len(doc["trials"]) == 4
    assert all(t["status"] == "done" and t["executed"] for t in doc["trials"])
    assert {t["params"]["dropout.p"] for t in doc["trials"]} == {0.0, 0.5}


@pytest.mark.slow
def test_the_readme_quickstart_runs_and_shows_dropout_at_work(cli, tmp_path):
    """The README's main job: configs/quickstart.yaml on digits, 4 values of p x 2 seeds."""
    from pathlib import Path

    config = Path(__file__).resolve().parents[2] / "configs" / "quickstart.yaml"
    code, out, _ = cli("sweep", config, "--runs-dir", tmp_path / "runs", "--json")
    assert code == 0
    trials = json.loads(out)["trials"]
    assert len(trials) == 8 and all(t["status"] == "done" for t in trials)
    by_p: dict[float, list[dict]] = {}
    for t in trials:
        by_p.setdefault(t["params"]["dropout.p"], []).append(t["final"])
    assert sorted(by_p) == [0.0, 0.2, 0.5, 0.8]

    def mean(p, key):
        return sum(f[key] for f in by_p[p]) / len(by_p[p])

    assert all(mean(p, "test_acc") > 0.9 for p in by_p)  # real digits, learned
    # what the README tour shows: the strongest dropout has a smaller gap than none
    assert mean(0.8, "gap_loss") < mean(0.0, "gap_loss")
    code, out, _ = cli("sweep", config, "--runs-dir", tmp_path / "runs")
    assert code == 0 and "dropout.p" in out and "corr[1]" in out  # the table, reused trials
