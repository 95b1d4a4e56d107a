"""``dropout-lab validate CONFIG``: check a config, print it resolved and count the grid."""

from __future__ import annotations

from pathlib import Path

import typer
import yaml
from rich.syntax import Syntax

from dropout_lab.cli.app import current, guard
from dropout_lab.config import MAX_TRIALS, load_config
from dropout_lab.sweep import expand


def register(app: typer.Typer) -> None:
    app.command("validate")(validate)


@guard
def validate(
    config: Path = typer.Argument(..., help="YAML config file"),
    set_: list[str] = typer.Option([], "--set", help="override KEY=VALUE (YAML value; KEY=a,b "
                                   "makes KEY an axis); repeatable"),
    max_trials: int = typer.Option(MAX_TRIALS, "--max-trials", min=1,
                                   help="refuse grids larger than this"),
    json_out: bool = typer.Option(False, "--json", help="print one JSON document on stdout"),
) -> None:
    """Check CONFIG (every grid point), print the resolved config and the number of trials."""
    ui = current()
    cfg = load_config(config, set_, max_trials)
    trials = expand(cfg, max_trials=max_trials)
    if json_out:
        ui.print_json({"config": cfg.model_dump(mode="json"), "trials": len(trials),
                       "axes": {k: list(v) for k, v in cfg.sweep.items()}})
        return
    text = yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)
    ui.out.print(Syntax(text, "yaml", theme="ansi_dark", background_color="default"))
    axes = " x ".join(f"{k} ({len(v)})" for k, v in cfg.sweep.items()) or "no axes"
    ui.out.print(f"{len(trials)} trial(s) in the grid: {axes}", highlight=False)
