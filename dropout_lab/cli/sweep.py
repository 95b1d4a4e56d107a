"""``dropout-lab sweep CONFIG``: train every point of the grid and print the table."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.markup import escape

from dropout_lab.cli.app import abort, err, guard, out
from dropout_lab.config import load_config
from dropout_lab.executors.serial import SerialExecutor
from dropout_lab.report.progress import SweepProgress
from dropout_lab.report.table import results_table
from dropout_lab.runner import SweepInterrupted, plan, run_sweep


def register(app: typer.Typer) -> None:
    app.command("sweep")(sweep)


@guard
def sweep(
    config: Path = typer.Argument(..., help="YAML config file"),
    set_: list[str] = typer.Option([], "--set", help="override KEY=VALUE (YAML value); repeatable"),
    runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", help="where sweeps are stored"),
    fresh: bool = typer.Option(False, "--fresh", help="discard stored trials and start over"),
    json_out: bool = typer.Option(False, "--json", help="print one JSON document on stdout"),
    threads: int = typer.Option(1, "--threads", min=1, help="BLAS/torch threads per trial"),
    max_failures: int = typer.Option(None, "--max-failures", min=1,
                                     help="stop after this many failed trials"),
) -> None:
    """Train an MLP at every point of CONFIG's grid; skip trials already done.

    Exit code: 0 when every trial is done, 1 when any failed or diverged, 2 for bad input."""
    cfg = load_config(config, set_)
    store, trials, pending = plan(cfg, runs_dir, fresh)
    executor = SerialExecutor(threads=threads)
    progress = SweepProgress(total=len(pending), skipped=len(trials) - len(pending))
    try:
        with progress:
            report = run_sweep(cfg, runs_dir, executor, events=progress, fresh=fresh,
                               max_failures=max_failures)
    except SweepInterrupted as exc:
        raise abort(str(exc), 130) from None

    if json_out:
        doc = {
            "sweep_dir": str(report.sweep_dir),
            "trials": [
                {"trial_id": t.trial.trial_id, "status": t.result.get("status"),
                 "params": t.trial.params, "final": t.result.get("final"),
                 "executed": t.executed}
                for t in report.trials
            ],
        }
        typer.echo(json.dumps(doc, indent=2))
    else:
        out.print(results_table(report.results(), list(cfg.sweep),
                                title=f"{cfg.name}: {len(trials)} trial(s)"))
        out.print(f"results in [bold]{escape(str(report.sweep_dir))}[/]", highlight=False)
    bad = [t for t in report.trials if t.result.get("status") in ("failed", "diverged")]
    for t in bad:
        reason = t.result.get("error") or t.result.get("reason") or ""
        err.print(f"[red]{t.result['status']}[/] {t.trial.trial_id} "
                  f"{escape(json.dumps(t.trial.params))}: {escape(reason)}", highlight=False)
    if report.stopped_early:
        err.print(f"[yellow]{report.stopped_early}[/]")
    raise typer.Exit(0 if report.all_done else 1)
