"""``dropout-lab sweep CONFIG`` when CONFIG has a ``search:`` section: run the search
(dropout_lab/search), print the trials and name the best point (docs/search.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from dropout_lab import executors
from dropout_lab.cli.app import current, stdout_reserved
from dropout_lab.comparison.metric_names import clip
from dropout_lab.comparison.values import fmt_value
from dropout_lab.config import ExperimentConfig
from dropout_lab.errors import ConfigError, ExecutorError, StoreError
from dropout_lab.report.cells import fmt_number
from dropout_lab.report.progress import SweepProgress
from dropout_lab.report.terminal_width import print_table
from dropout_lab.result import UNSUCCESSFUL
from dropout_lab.runner import SweepInterrupted
from dropout_lab.safe_text import markup


def run(cfg: ExperimentConfig, runs_dir: Path, fresh: bool, json_out: bool,
        workers: int | None, threads: int | None, executor: str, pack: str, dry: bool,
        wait: bool, wide: bool) -> None:
    """The search path of ``sweep``; raises typer.Exit with the sweep's exit codes."""
    from dropout_lab.search import space
    from dropout_lab.search.loop import SearchOutcome, run_search
    from dropout_lab.search.study import import_optuna

    ui = current()
    search = cfg.search
    assert search is not None
    if executor != "local":
        raise ExecutorError("a search runs on the local executor (its driver asks Optuna for "
                            "each point as a worker frees up); --executor ray is not supported "
                            "for a search yet")
    if pack not in ("auto", "1"):
        raise ConfigError("--pack: a search trains every trial alone (packs of suggested "
                          "points are not supported yet); drop --pack")
    if dry:
        raise ConfigError("--dry-run lists a grid; a search chooses its points as it runs "
                          "(dropout-lab validate shows its space and size)")
    import_optuna()  # the missing extra: exit 2 before anything else
    seeds = len(space.seeds_of(cfg))
    budget = search.trials or space.grid_size(cfg)
    selected = executors.create(executor, budget * seeds, budget * seeds, workers=workers,
                                threads=threads, largest_weights=lambda: None)
    if selected.budget.warning:
        ui.warn(selected.budget.warning)
    header = (f"search {search.method}, up to {budget} suggestion(s) x {seeds} seed(s); "
              + selected.describe())
    progress = SweepProgress(total=budget * seeds, skipped=0, console=ui.err,
                             workers=selected.budget.workers, header=header)
    try:
        with progress, stdout_reserved(json_out):
            out = run_search(cfg, runs_dir, selected.executor, events=progress, fresh=fresh,
                             wait=wait, warn=ui.warn)
    except SweepInterrupted as exc:
        if json_out and isinstance(exc.outcome, SearchOutcome):
            ui.print_json({**json_doc(exc.outcome), "interrupted": True,
                           "code": exc.exit_code})
        raise ui.abort(str(exc), exc.exit_code) from None
    except StoreError:
        raise
    finally:
        selected.executor.close()

    if json_out:
        ui.print_json({**json_doc(out), "interrupted": False})
    else:
        axes = [a for a in cfg.sweep if a != "seed"]
        print_table(suggestions_table(out, axes, cfg.name), ui.out, {a: 0 for a in axes}, None,
                    wide)
        for line in summary_lines(out):
            ui.out.print(markup(line), highlight=False)
        ui.out.print(f"results in [bold]{markup(str(out.sweep_dir))}[/]", highlight=False)
    for t in out.trials:
        if t.result.get("status") in UNSUCCESSFUL:
            reason = t.result.get("error") or t.result.get("reason") or ""
            ui.err.print(f"[red]{t.result['status']}[/] {t.point.trial_id} "
                         f"{markup(json.dumps(t.point.params))}: {markup(reason)}",
                         highlight=False)
    raise typer.Exit(0 if out.all_done else 1)


def suggestions_table(out: Any, axes: list[str], name: str) -> Table:
    """One row per suggestion, sorted by the searched values: its state, the metric (the mean
    over its seeds when complete; the block's mean at the epoch it was stopped when pruned),
    its seeds and trials; the best is starred."""
    table = Table(title=f"{markup(name)}: {len(out.suggestions)} suggestion(s), "
                        f"{len(out.trials)} trial(s)", title_justify="left")
    for a in axes:
        table.add_column(markup(a), justify="right")
    table.add_column("state")
    table.add_column(markup(out.metric), justify="right")
    table.add_column("seeds", justify="right")
    table.add_column("trials")
    best = None if out.best is None else out.best.number
    for s in sorted(out.suggestions, key=lambda s: [json.dumps(s.params.get(a)) if not
                                                    isinstance(s.params.get(a), (int, float))
                                                    else f"{s.params.get(a):020.10f}"
                                                    for a in axes]):
        if s.state == "complete" and s.value is not None:
            value = fmt_number(s.value) + (" ★" if s.number == best else "")
        elif s.state == "pruned" and s.value is not None:
            value = f"{fmt_number(s.value)} at epoch {s.last_step}"
        else:
            value = "-"
        table.add_row(*[markup(fmt_value(s.params.get(a))) for a in axes], s.state, value,
                      f"{len(s.seed_values)}/{len(s.trial_ids)}" if s.trial_ids else "0",
                      markup(" ".join(s.trial_ids)))
    table.caption = (f"{out.metric}: mean over the seeds (pruned: the seeds' mean at the "
                     "epoch the pruner stopped it); ★ = best; seeds = seeds done / trials run")
    return table


def summary_lines(out: Any) -> list[str]:
    """What the end of a search says: how many suggestions ended how, and the best point
    with its mean over seeds, the t interval and the trials that decided it."""
    counts = {k: sum(s.state == k for s in out.suggestions) for k in ("complete", "pruned",
                                                                      "fail")}
    lines = [f"search: {len(out.suggestions)} suggestion(s): {counts['complete']} complete, "
             f"{counts['pruned']} pruned, {counts['fail']} failed; "
             f"{sum(t.executed for t in out.trials)} trial(s) run now"]
    best, summary = out.best, out.best_summary()
    if best is None or summary is None or summary.mean is None:
        lines.append("best: none yet (no suggestion completed)")
        return lines
    where = ", ".join(f"{k} = {fmt_value(v)}" for k, v in best.params.items())
    if summary.lo is not None and summary.hi is not None:
        lo, hi = clip(out.metric, summary.lo, summary.hi)  # an accuracy's interval ends at 1
        ci = (f"{int(round(summary.level * 100))}% CI [{fmt_number(lo)}, {fmt_number(hi)}] "
              f"over {summary.n} seeds")
    else:
        ci = f"{summary.n} seed: no interval (add seeds to the seed axis)"
    lines.append(f"best: {where}: {out.metric} {fmt_number(summary.mean)} ({ci}); "
                 f"suggestion {best.number}, trials {', '.join(best.trial_ids)}")
    return lines


def json_doc(out: Any) -> dict[str, Any]:
    """The --json document of a search: the sweep's, plus the suggestions and the best."""
    summary = out.best_summary()
    best = None if out.best is None else {
        "number": out.best.number, "params": out.best.params, "value": out.best.value,
        "trial_ids": out.best.trial_ids,
        "summary": None if summary is None else summary.to_dict()}
    return {
        **out.json_doc(),
        "search": {
            "metric": out.metric, "goal": out.direction,
            "suggestions": [{"number": s.number, "state": s.state, "params": s.params,
                             "value": s.value, "trial_ids": s.trial_ids}
                            for s in out.suggestions],
            "best": best,
        },
    }
