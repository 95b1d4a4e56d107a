"""``dropout-lab sweep CONFIG``: train every point of the grid and print the table."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from dropout_lab import executors
from dropout_lab.cli.app import EXIT_ALL_COLLAPSED, current, guard, stdout_reserved
from dropout_lab.cli.store_warnings import print_warnings
from dropout_lab.comparison.metric_names import is_metric
from dropout_lab.config import MAX_TRIALS, P_KEY, ExperimentConfig, load_config
from dropout_lab.errors import OutputError, StoreError
from dropout_lab.estimate import DryRun, dry_run, largest_weights
from dropout_lab.executors import budget as budgets
from dropout_lab.packs import sizing
from dropout_lab.packs.plan import Packing
from dropout_lab.report.progress import SweepProgress, fmt_seconds
from dropout_lab.report.table import results_table
from dropout_lab.report.terminal_width import parse_columns, print_table
from dropout_lab.result import UNSUCCESSFUL
from dropout_lab.runner import (
    SweepInterrupted,
    SweepOutcome,
    rerun_reasons,
    run_sweep,
    schedule,
)
from dropout_lab.safe_text import markup
from dropout_lab.sweep import GridPoint

# Far above any machine, far below an overflow: --workers 1e23 is a typo, refused (exit 2).
MAX_WORKERS = 4096
MAX_THREADS = 1024
# Column priorities of the end-of-sweep table when it is wider than the terminal
# (report/terminal_width.py: 0 = never hidden, higher = hidden sooner): the axes (0, added
# where the table is printed) and test accuracy stay; the statistics that need most
# explanation go first.
PRIORITIES: dict[str, int] = {
    P_KEY: 0, "seeds": 1, "test_acc": 0, "health": 1, "gap_acc": 1, "train_acc": 2,
    "gap_loss": 3, "corr[1]": 4, "corr[2]": 5, "corr[3]": 5, "corr[4]": 5, "ablation_auc": 6,
    # concrete dropout's learned p: what such a sweep is about, kept before the statistics
    **{f"learned_p[{layer}]": 2 for layer in range(8)},
}


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
    workers: int = typer.Option(None, "--workers", min=1, max=MAX_WORKERS,
                                help="trials run at once (default: auto, workers x threads <= "
                                "cores)"),
    threads: int = typer.Option(None, "--threads", min=1, max=MAX_THREADS,
                                help="BLAS/torch threads per trial (default: auto; part of a "
                                "trial's result: fix it to reproduce numbers)"),
    executor: str = typer.Option("local", "--executor",
                                 help="local (processes on this machine) | ray"),
    ray_address: str = typer.Option(None, "--ray-address",
                                    help="Ray cluster to join (host:port); default: start a "
                                    "local Ray instance"),
    pack: str = typer.Option("auto", "--pack",
                             help="most trials trained together as one stacked network (a "
                             "pack; torch backend): N, 1 = every trial alone, or auto (packs "
                             "on a GPU, and on the CPU only where measured faster)"),
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
    fail_on_collapse: bool = typer.Option(False, "--fail-on-collapse",
                                          help="exit 4 when every trial of the grid collapsed "
                                          "to chance accuracy (default: a warning, exit 0)"),
) -> None:
    """Train an MLP at every point of CONFIG's grid; skip trials already done. A config with
    a search: section runs an adaptive search instead (Optuna; see docs/search.md).

    Exit code: 0 when every trial is done, 1 when any failed or diverged, 2 for bad input
    (or the sweep folder is in use), 3 when the machine refuses a write (disk full,
    permission denied), 4 with --fail-on-collapse when every trial collapsed to chance, 130
    when interrupted by Ctrl-C, 143 by SIGTERM (run the same command again to resume), 141
    when stdout's reader went away (| head)."""
    ui = current()
    cfg = load_config(config, set_, max_trials)
    if cfg.search is not None:  # an adaptive search (docs/search.md)
        from dropout_lab.cli import search_run

        if runs_dir.exists() and not runs_dir.is_dir():
            raise StoreError(f"cannot write the runs directory {runs_dir}: it exists and is "
                             "not a folder (--runs-dir)")
        search_run.run(cfg, runs_dir, fresh, json_out, workers, threads, executor, pack, dry,
                       wait, wide)
    # Output options before anything runs: a typo in --columns costs no training.
    wanted = _check_columns(parse_columns(columns), cfg, dry)
    if runs_dir.exists() and not runs_dir.is_dir():  # also for --dry-run, which writes nothing
        raise StoreError(f"cannot write the runs directory {runs_dir}: it exists and is not a "
                         "folder (--runs-dir)")
    executors.check(executor, ray_address)  # before scheduling: a typo costs nothing
    pack_option = sizing.parse_pack(pack)  # likewise
    scheduled = schedule(cfg, runs_dir, fresh, max_trials, report=ui.report)
    store, trials, pending = scheduled
    print_warnings(store.warnings)  # damaged trials found while scheduling (run again)
    cores = budgets.available_cores()
    packing = sizing.choose(pending, pack_option, workers, cores,
                            lambda: largest_weights(trials), _device_of())
    # The budget counts tasks: a pack is one. Threads follow the whole grid's packs (as they
    # follow the grid unpacked), so a resumed sweep gets the thread count of its first run.
    tasks, grid_tasks = len(packing.group(pending)), len(packing.group(trials))

    if dry:
        chosen = budgets.choose(tasks, grid_tasks, cores, largest_weights(trials),
                                workers=workers, threads=threads)
        _print_dry_run(dry_run(cfg, runs_dir, fresh, chosen.workers, chosen.threads, scheduled,
                               packing),
                       cfg, json_out, executor, wanted, wide)
        raise typer.Exit(0)

    if not fresh:  # refuse another config before starting anything (checked again locked)
        store.check_compatible(cfg.model_dump(mode="json", exclude={"sweep"}), dict(cfg.sweep))
    selected = executors.create(executor, tasks, grid_tasks, workers=workers,
                                threads=threads, ray_address=ray_address,
                                largest_weights=lambda: largest_weights(trials))
    if selected.budget.warning:
        ui.warn(selected.budget.warning)
    stale = {} if fresh else rerun_reasons(scheduled)
    if stale:  # done trials trained again: say why (docs/results.md)
        ui.err.print(f"{len(stale)} done trial(s) run again: "
                     f"{markup(next(iter(stale.values())))}", highlight=False)
    header = selected.describe()
    if packing.max_size > 1:
        header += f"; {_packs_line(packing, pending)}"
    progress = SweepProgress(total=len(pending), skipped=len(trials) - len(pending),
                             console=ui.err, workers=selected.budget.workers, header=header)
    try:
        with progress, stdout_reserved(json_out):
            swept = run_sweep(cfg, runs_dir, selected.executor, events=progress, fresh=fresh,
                              max_failures=max_failures, scheduled=scheduled, wait=wait,
                              packing=packing, warn=ui.warn)
    except SweepInterrupted as exc:
        if json_out and exc.outcome is not None:  # stdout still gets its one document
            ui.print_json({**exc.outcome.json_doc(), "interrupted": True,
                           "code": exc.exit_code})
        raise ui.abort(str(exc), exc.exit_code) from None
    finally:
        selected.executor.close()

    if json_out:
        ui.print_json({**swept.json_doc(), "interrupted": False})
    else:
        # Axes stay visible: hidden-column priorities 0 for every axis but the seed.
        priorities = {**PRIORITIES, **{a: 0 for a in cfg.sweep if a != "seed"}}
        table = results_table(swept.results(), list(cfg.sweep),
                              title=f"{markup(cfg.name)}: {len(trials)} trial(s)",
                              base_config=cfg.model_dump(mode="json", exclude={"sweep"}))
        print_table(table, ui.out, priorities, _present(table, wanted), wide)
        ui.out.print(f"results in [bold]{markup(str(swept.sweep_dir))}[/]", highlight=False)
    bad = [t for t in swept.trials if t.result.get("status") in UNSUCCESSFUL]
    for t in bad:
        reason = t.result.get("error") or t.result.get("reason") or ""
        ui.err.print(f"[red]{t.result['status']}[/] {t.point.trial_id} "
                  f"{markup(json.dumps(t.point.params))}: {markup(reason)}", highlight=False)
    if swept.stopped_early:
        ui.err.print(f"[yellow]{markup(swept.stopped_early)}[/]", highlight=False)
    if not swept.all_done:
        raise typer.Exit(1)
    if _all_collapsed(swept):
        text = (f"every trial of {cfg.name} collapsed to chance accuracy (health flag "
                "'collapsed'): the numbers answer no question; check train.lr, train.epochs "
                "and dropout.p")
        if fail_on_collapse:
            raise ui.abort(f"{text} (exit {EXIT_ALL_COLLAPSED}, --fail-on-collapse)",
                           EXIT_ALL_COLLAPSED)
        ui.warn(f"{text}; --fail-on-collapse makes this exit {EXIT_ALL_COLLAPSED}")
    raise typer.Exit(0)


def _all_collapsed(swept: SweepOutcome) -> bool:
    """Every trial of the grid is done and flagged collapsed (exit 4)."""
    healths: list[Any] = [t.result.get("health") for t in swept.trials]
    flags = [h.get("flags") if isinstance(h, dict) else None for h in healths]
    return bool(flags) and all(isinstance(f, list) and "collapsed" in f for f in flags)


def _check_columns(wanted: list[str] | None, cfg: ExperimentConfig, dry: bool
                   ) -> list[str] | None:
    """--columns checked before any training: each name must be a column the table can have
    (an axis, seeds, health or a metric name for the results table; the dry-run table's own
    titles for --dry-run)."""
    if not wanted:
        return wanted
    axes = [a for a in cfg.sweep]
    if dry:
        known = {"trial", *axes, "action", "weights", "est. time"}
        ok = [w for w in wanted if w.lower() in {k.lower() for k in known}]
    else:
        known = {"seeds", "health", *(a for a in axes if a != "seed")}
        ok = [w for w in wanted if w.lower() in {k.lower() for k in known} or is_metric(w)]
    unknown = [w for w in wanted if w not in ok]
    if unknown:
        raise OutputError(f"--columns: no column {', '.join(map(repr, unknown))}; this table "
                          f"can have: {', '.join(sorted(known))}"
                          + ("" if dry else " and metric names (test_acc, gap_acc, corr[1], ...)"))
    return wanted


def _present(table: Table, wanted: list[str] | None) -> list[str] | None:
    """The --columns the finished table has (a metric no trial recorded is left out, not an
    error after the training)."""
    if not wanted:
        return wanted
    titles = {str(c.header).lower() for c in table.columns}
    return [w for w in wanted if w.lower() in titles] or None


def _device_of() -> Callable[[GridPoint], str]:
    """A point's resolved device ("cpu", "cuda", ...), resolved once per backend and device
    (schedule's preflight has already checked that each resolves)."""
    from dropout_lab.backends import registry as backends

    seen: dict[tuple[str, str], str] = {}

    def device_of(point: GridPoint) -> str:
        key = (point.config.backend, point.config.device)
        if key not in seen:
            seen[key] = backends.create(key[0]).resolve_device(key[1])
        return seen[key]

    return device_of


def _packs_line(packing: Packing, points: list[GridPoint]) -> str:
    """E.g. "8 trial(s) in 2 pack(s) of 4 + 4" (sizes in run order)."""
    packs = packing.group(points)
    sizes = [p.size for p in packs]
    shown = " + ".join(str(s) for s in sizes[:12]) + (" + ..." if len(sizes) > 12 else "")
    return f"{len(points)} trial(s) in {len(packs)} pack(s) of {shown}"


def _print_packs(dr: DryRun, axes: list[str]) -> None:
    """The packs of ``--dry-run``: size, members (their swept values), time and memory."""
    sizes = sorted({pk.size for pk in dr.packs}, reverse=True)
    table = Table(title=f"{len(dr.pending)} trial(s) in {len(dr.packs)} pack(s) of sizes "
                        f"{', '.join(map(str, sizes))} ({dr.packing.describe()})")
    table.add_column("pack", justify="right")
    table.add_column("size", justify="right")
    table.add_column("trials")
    table.add_column("est. time", justify="right")
    table.add_column("est. memory", justify="right")
    for i, pk in enumerate(dr.packs):
        members = "; ".join(
            f"{t.point.trial_id} " + ",".join(json.dumps(t.point.params.get(a)) for a in axes)
            for t in pk.trials)
        table.add_row(str(i), str(pk.size), members,
                      "?" if pk.seconds is None else fmt_seconds(pk.seconds),
                      "?" if pk.memory_bytes is None else _fmt_bytes(pk.memory_bytes))
    print_table(table, current().out, {}, None, False)


def _fmt_bytes(n: int) -> str:
    """1536 -> "1.5 KiB"."""
    value = float(n)
    for unit in ("B", "KiB", "MiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def _print_dry_run(dr: DryRun, cfg: ExperimentConfig, json_out: bool, executor: str,
                   columns: list[str] | None = None, wide: bool = False) -> None:
    """The trial table of ``--dry-run`` (or its JSON document) and the time estimate."""
    ui = current()
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
            "pack": dr.packing.max_size,
            "packs": [
                {"size": pk.size, "trials": [t.point.trial_id for t in pk.trials],
                 "estimate_seconds": pk.seconds, "memory_bytes": pk.memory_bytes}
                for pk in dr.packs
            ],
        }
        ui.print_json(doc)
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
    print_table(table, ui.out, {"action": 0, **{a: 0 for a in axes if a != "seed"}}, columns, wide)
    if any(pk.size > 1 for pk in dr.packs):
        _print_packs(dr, axes)
    where = f"executor {executor}, " if executor != "local" else ""
    if not dr.pending:
        estimate = "nothing to run"
    elif dr.seconds is None:
        estimate = "unknown (a timing probe failed)"
    else:
        estimate = f"~{fmt_seconds(dr.seconds)}"
    ui.out.print(f"estimated time: {estimate} with {where}{dr.workers} worker(s) x "
              f"{dr.threads} thread(s)", highlight=False)
    for note in dr.probe:
        ui.out.print(f"  probe: {markup(note)}", style="dim", highlight=False)
    ui.out.print("dry run: nothing was written", style="dim")
