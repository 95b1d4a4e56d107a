"""Every command has help, and the tiny sweep runs end to end through the CLI."""

from __future__ import annotations

import json

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
