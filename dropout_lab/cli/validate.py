"""``dropout-lab validate CONFIG``: check a config, print it resolved and count the grid."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
import yaml
from rich.syntax import Syntax

from dropout_lab.cli.app import current, guard
from dropout_lab.config import MAX_TRIALS, ExperimentConfig, check_size, load_config
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
    dump = cfg.model_dump(mode="json", exclude=None if cfg.search else {"search"})
    if cfg.search is not None:
        return _search(cfg, dump, json_out, max_trials)
    trials = expand(cfg, max_trials=max_trials)
    if json_out:
        ui.print_json({"config": dump, "trials": len(trials),
                       "axes": {k: list(v) for k, v in cfg.grid_axes().items()}})
        return
    text = yaml.safe_dump(dump, sort_keys=False)
    ui.out.print(Syntax(text, "yaml", theme="ansi_dark", background_color="default"))
    axes = " x ".join(f"{k} ({len(v)})" for k, v in cfg.grid_axes().items()) or "no axes"
    ui.out.print(f"{len(trials)} trial(s) in the grid: {axes}", highlight=False)


def _search(cfg: ExperimentConfig, dump: dict[str, Any], json_out: bool,
            max_trials: int) -> None:
    """A search's space and size (its points are drawn as it runs: none is validated here
    but the ends of every range, which load_config checked)."""
    from dropout_lab.search import space

    ui = current()
    assert cfg.search is not None
    seeds = space.seeds_of(cfg)
    upto = check_size(cfg, max_trials)
    axes = dump["sweep"]
    if json_out:
        ui.print_json({"config": dump, "trials": upto, "axes": axes,
                       "search": {"method": cfg.search.method,
                                  "suggestions": upto // len(seeds), "seeds": len(seeds)}})
        return
    text = yaml.safe_dump(dump, sort_keys=False)
    ui.out.print(Syntax(text, "yaml", theme="ansi_dark", background_color="default"))
    shown = ", ".join(f"{k} in [{v['min']}, {v['max']}]" + (" (log)" if v["log"] else "")
                      if isinstance(v, dict) else f"{k} ({len(v)} values)"
                      for k, v in axes.items() if k != "seed")
    ui.out.print(f"search {cfg.search.method}: up to {upto // len(seeds)} suggestion(s) x "
                 f"{len(seeds)} seed(s) = {upto} trial(s) over {shown}", highlight=False)
