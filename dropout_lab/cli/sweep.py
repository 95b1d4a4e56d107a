"""``dropout-lab sweep CONFIG``: train every point of the grid and print the table."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from dropout_lab import executors
from dropout_lab.cli.app import abort, err, guard, out
from dropout_lab.cli.store_warnings import print_warnings
from dropout_lab.config import MAX_TRIALS, ExperimentConfig, load_config
from dropout_lab.estimate import DryRun, dry_run, largest_weights
from dropout_lab.executors import budget as budgets
from dropout_lab.report.fit import SWEEP_PRIORITIES, parse_columns, print_table
from dropout_lab.report.progress import SweepProgress, fmt_seconds
from dropout_lab.report.table import results_table
from dropout_lab.result import UNSUCCESSFUL
from dropout_lab.runner import SweepInterrupted, rerun_reasons, run_sweep, schedule


def register(app: typer.Typer) -> None:
    app.command("sweep")(sweep)


@guard
def sweep(
    config: Path = typer.Argument(..., help="YAML config file"),
    set_: list[str] = typer.Option([], "--set", help="override KEY=VALUE (YAML value; KEY=a,b "
                                   "makes KEY an axis); repeatable"),
    runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", help="where sweeps are stored"),
    fresh: bool = typer.Option(False, "--fresh", help="discard stored trials and start over"),
    json_out: bool = typer.Option(False, "--json", help="print one JSON document on stdout"),
    workers: int = typer.Option(None, "--workers", min=1,
                                help="trials run at once (default: auto, workers x threads <= "
                                "cores)"),
    threads: int = typer.Option(None, "--threads", min=1,
                                help="BLAS/torch threads per trial (default: auto; part of a "
                                "trial's result: fix it to reproduce numbers)"),
    executor: str = typer.Option("local", "--executor",
                                 help="local (processes on this machine) | ray"),
    ray_address: str = typer.Option(None, "--ray-address",
                                    help="Ray cluster to join (host:port); default: start a "
                                    "local Ray instance"),
    max_failures: int = typer.Option(None, "--max-failures", min=1,
                                     help="stop after this many failed trials"),
    dry: bool = typer.Option(False, "--dry-run",
                             help="list the trials and estimate the run time; write nothing"),
    wait: bool = typer.Option(False, "--wait",
                              help="if another sweep is writing the same folder, wait for it "
                              "(default: exit 2 at once)"),
    max_trials: int = typer.Option(MAX_TRIALS, "--max-trials", min=1,
                                   help="refuse grids larger than this"),
    columns: str = typer.Option(None, "--columns",
                                help="columns of the final table, e.g. dropout.p,test_acc"),
    wide: bool = typer.Option(False, "--wide",
                              help="every column of the final table, even wider than the "
                              "terminal"),
) -> None:
    """Train an MLP at every point of CONFIG's grid; skip trials already done.

    Exit code: 0 when every trial is done, 1 when any failed or diverged, 2 for bad input
    (or the sweep folder is in use), 3 when the machine refuses a write (disk full,
    permission denied), 130 when interrupted by Ctrl-C, 143 by SIGTERM (run the same command
    again to resume)."""
    cfg = load_config(config, set_, max_trials)
    executors.check(executor, ray_address)  # before scheduling: a typo costs nothing
    scheduled = schedule(cfg, runs_dir, fresh, max_trials)
    store, trials, pending = scheduled
    print_warnings(store.warnings)  # damaged trials found while scheduling (run again)

    if dry:
        chosen = budgets.choose(len(pending), len(trials), budgets.available_cores(),
                                largest_weights(trials), workers=workers, threads=threads)
        _print_dry_run(dry_run(cfg, runs_dir, fresh, chosen.workers, chosen.threads, scheduled),
                       cfg, json_out, executor, parse_columns(columns), wide)
        raise typer.Exit(0)

    if not fresh:  # refuse another config before starting anything (checked again locked)
        store.check_compatible(cfg.model_dump(mode="json", exclude={"sweep"}), dict(cfg.sweep))
    selected = executors.create(executor, len(pending), len(trials), workers=workers,
                                threads=threads, ray_address=ray_address,
                                largest_weights=lambda: largest_weights(trials))
    if selected.budget.warning:
        err.print(f"[yellow]warning:[/] {escape(selected.budget.warning)}", highlight=False)
    stale = {} if fresh else rerun_reasons(scheduled)
    if stale:  # done trials trained again: say why (docs/results.md)
        err.print(f"{len(stale)} done trial(s) run again: "
                  f"{escape(next(iter(stale.values())))}", highlight=False)
    progress = SweepProgress(total=len(pending), skipped=len(trials) - len(pending),
                             workers=selected.budget.workers, header=selected.describe())
    try:
        with progress, _stdout_reserved(json_out):
            swept = run_sweep(cfg, runs_dir, selected.executor, events=progress, fresh=fresh,
                              max_failures=max_failures, scheduled=scheduled, wait=wait)
    except SweepInterrupted as exc:
        raise abort(str(exc), exc.exit_code) from None
    finally:
        selected.executor.close()

    if json_out:
        doc = {
            "sweep_dir": str(swept.sweep_dir),
            "trials": [
                {"trial_id": t.point.trial_id, "status": t.result.get("status"),
                 "params": t.point.params, "final": t.result.get("final"),
                 "health": t.result.get("health"), "executed": t.executed}
                for t in swept.trials
            ],
        }
        typer.echo(json.dumps(doc, indent=2))
    else:
        # Axes stay visible: hidden-column priorities 0 for every axis but the seed.
        priorities = {**SWEEP_PRIORITIES, **{a: 0 for a in cfg.sweep if a != "seed"}}
        print_table(results_table(swept.results(), list(cfg.sweep),
                                  title=f"{cfg.name}: {len(trials)} trial(s)",
                                  base_config=cfg.model_dump(mode="json", exclude={"sweep"})),
                    out, priorities, parse_columns(columns), wide)
        out.print(f"results in [bold]{escape(str(swept.sweep_dir))}[/]", highlight=False)
    bad = [t for t in swept.trials if t.result.get("status") in UNSUCCESSFUL]
    for t in bad:
        reason = t.result.get("error") or t.result.get("reason") or ""
        err.print(f"[red]{t.result['status']}[/] {t.point.trial_id} "
                  f"{escape(json.dumps(t.point.params))}: {escape(reason)}", highlight=False)
    if swept.stopped_early:
        err.print(f"[yellow]{swept.stopped_early}[/]")
    raise typer.Exit(0 if swept.all_done else 1)


@contextlib.contextmanager
def _stdout_reserved(json_out: bool) -> Iterator[None]:
    """Under --json, stdout carries one JSON document only: while the sweep runs, file
    descriptor 1 points at stderr, so whatever a library or a worker writes there (Ray's
    "(raylet) A worker died" lines) lands on stderr instead."""
    if not json_out:
        yield
        return
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        yield
    finally:
        with contextlib.suppress(ValueError, OSError):
            sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def _print_dry_run(dr: DryRun, cfg: ExperimentConfig, json_out: bool, executor: str,
                   columns: list[str] | None = None, wide: bool = False) -> None:
    """The trial table of ``--dry-run`` (or its JSON document) and the time estimate."""
    if json_out:
        doc = {
            "dry_run": True, "sweep_dir": str(dr.sweep_dir), "executor": executor,
            "workers": dr.workers, "threads": dr.threads, "estimate_seconds": dr.seconds,
            "trials": [
                {"trial_id": p.point.trial_id, "params": p.point.params, "action": p.action,
                 "stored_status": p.stored_status, "weights": p.weights,
                 "estimate_seconds": p.seconds}
                for p in dr.trials
            ],
            "probe": dr.probe,
        }
        typer.echo(json.dumps(doc, indent=2))
        return
    axes = list(cfg.sweep)
    table = Table(title=f"dry run: {cfg.name}: {len(dr.trials)} trial(s), "
                        f"{len(dr.pending)} to run")
    table.add_column("trial")
    for a in axes:
        table.add_column(a, justify="right")
    table.add_column("action")
    table.add_column("weights", justify="right")
    table.add_column("est. time", justify="right")
    labels = {"run": "run", "rerun": "run (was {})", "skip": "skip (done)"}
    for p in dr.trials:
        action = labels[p.action].format(p.stored_status)
        table.add_row(p.point.trial_id, *[json.dumps(p.point.params.get(a)) for a in axes],
                      action, "?" if p.weights is None else f"{p.weights:,}",
                      "" if p.seconds is None else fmt_seconds(p.seconds))
    print_table(table, out, {"action": 0, **{a: 0 for a in axes if a != "seed"}}, columns, wide)
    where = f"executor {executor}, " if executor != "local" else ""
    if not dr.pending:
        estimate = "nothing to run"
    elif dr.seconds is None:
        estimate = "unknown (a timing probe failed)"
    else:
        estimate = f"~{fmt_seconds(dr.seconds)}"
    out.print(f"estimated time: {estimate} with {where}{dr.workers} worker(s) x "
              f"{dr.threads} thread(s)", highlight=False)
    for note in dr.probe:
        out.print(f"  probe: {escape(note)}", style="dim", highlight=False)
    out.print("dry run: nothing was written", style="dim")
