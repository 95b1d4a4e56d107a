"""``dropout-lab compare SWEEP_DIR [OTHER]``: p values side by side, with intervals and CI
gates; with a second folder, the same grid points of two sweeps (B - A)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import typer
from rich.table import Table
from rich.text import Text

from dropout_lab.cli.app import current, guard
from dropout_lab.cli.store_warnings import warn
from dropout_lab.comparison import Comparison, build_comparison, parse_at
from dropout_lab.config import P_KEY
from dropout_lab.errors import CompareError
from dropout_lab.expect import evaluate
from dropout_lab.report.render import (
    FORMATS,
    json_text,
    render_rich,
    render_seeds_for,
    seeds_for,
    to_json_doc,
)
from dropout_lab.report.terminal_width import (
    fit_table,
    natural_width,
    parse_columns,
    print_table,
)
from dropout_lab.safe_text import markup


def register(app: typer.Typer) -> None:
    app.command("compare")(compare)


AT_HELP = ("which epoch of each trial: last, best (by validation accuracy; needs "
           "dataset.val_fraction > 0) or an epoch number")


@guard
def compare(
    sweep_dir: Path = typer.Argument(..., help="a sweep folder, e.g. runs/quickstart"),
    other: Path = typer.Argument(None, help="a second sweep folder: compare the same grid "
                                 "points of both (B - A)"),
    by: str = typer.Option(P_KEY, "--by", help="the axis to compare (rows)"),
    baseline: str = typer.Option(None, "--baseline",
                                 help="value of --by that differences are taken against "
                                      "(default: the smallest)"),
    metric: list[str] = typer.Option([], "--metric", "-m",
                                     help="metric to show (repeatable; 'all' for every one "
                                          "present; per layer: corr[1], decov_std[2]); default: "
                                          "test_acc gap_acc gap_loss train_acc, corr[l] of every "
                                          "hidden layer, statistics if present"),
    best_by: str = typer.Option("test_acc", "--best-by", help="metric that decides the best row"),
    at: str = typer.Option("last", "--at", help=AT_HELP),
    include_collapsed: bool = typer.Option(False, "--include-collapsed",
                                           help="keep trials flagged collapsed in the means"),
    fmt: str = typer.Option("rich", "--format", "-f", help="rich | csv | json | markdown"),
    expect: list[str] = typer.Option([], "--expect", "-e",
                                     # \\[ : rich markup would eat '[p=0.8]' in --help
                                     help="gate, e.g. 'mutual_information\\[p=0.8] > "
                                          "mutual_information\\[p=0.0]' (repeatable); exit 1 "
                                          "if any fails"),
    confidence: float = typer.Option(0.95, "--confidence", help="confidence level of the "
                                     "intervals"),
    power: float = typer.Option(0.8, "--power", help="power for the smallest detectable "
                                "difference and --seeds-for"),
    seeds_for_delta: float = typer.Option(None, "--seeds-for", metavar="DELTA",
                                          help="print how many seeds a true difference of "
                                               "DELTA needs at the variance observed"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="print no table (only the gates; "
                               "with --format json, a document of the verdicts)"),
    columns: str = typer.Option(None, "--columns",
                                help="columns of the rich table, e.g. dropout.p,test_acc"),
    wide: bool = typer.Option(False, "--wide",
                              help="every column of the rich table, even wider than the "
                              "terminal"),
) -> None:
    """Compare p values (or another axis) across seeds, with confidence intervals and CI gates.

    One block per combination of the other swept axes: mean, sd and Student t interval per
    metric, the paired difference against --baseline (trials paired by seed) with the smallest
    difference the seeds can detect, the best value and those not distinguishable from it.
    Trials flagged collapsed are left out of the means (marked †) unless --include-collapsed.

    With two folders (A B): the grid points both ran, matched on their axes minus the keys
    in which the base configs differ; per metric B - A, paired where the sweeps share seeds,
    Welch where they do not.

    Exit code: 0 (every --expect holds), 1 (one fails), 2 (bad folder, option or expression).
    Expectation verdicts go to stderr (and into the JSON document with --format json)."""
    if other is not None:
        _compare_two(sweep_dir, other, by, baseline, metric, best_by, at, include_collapsed,
                     fmt, expect, confidence, seeds_for_delta, columns, wide)
        return
    _compare(sweep_dir, by, baseline, metric, best_by, at, include_collapsed, fmt, expect,
             confidence, power, seeds_for_delta, quiet, parse_columns(columns), wide)


def _compare(sweep_dir: Path, by: str, baseline: str | None, metric: list[str], best_by: str,
             at: str, include_collapsed: bool, fmt: str, expect: list[str], confidence: float,
             power: float, seeds_for_delta: float | None, quiet: bool,
             columns: list[str] | None = None, wide: bool = False) -> None:
    ui = current()
    if fmt not in FORMATS:
        raise CompareError(f"--format {fmt}: choose one of {', '.join(FORMATS)}")
    c = build_comparison(sweep_dir, warn=warn, by=by, baseline=baseline, metrics=metric or None,
                         best_by=best_by, level=confidence, at=parse_at(at),
                         include_collapsed=include_collapsed, power=power)
    verdicts = evaluate(expect, c)  # malformed expressions raise before anything is printed

    if seeds_for_delta is not None:
        if not (seeds_for_delta > 0 and math.isfinite(seeds_for_delta)):
            raise CompareError(f"--seeds-for {seeds_for_delta:g}: give a positive difference "
                               "in the metric's units, e.g. --seeds-for 0.002")
        doc = seeds_for(c, seeds_for_delta)
        if fmt == "json":
            typer.echo(json_text(doc), nl=False)
            ui.json_printed = True
        else:
            _print_seeds_for(c, doc)
    elif fmt == "json":
        doc = {"expectations": []} if quiet else to_json_doc(c)
        if expect or quiet:
            doc["expectations"] = [v.to_dict() for v in verdicts]
        typer.echo(json_text(doc), nl=False)
        ui.json_printed = True
    elif not quiet:
        if fmt == "rich":
            _print_fitted(c, columns, wide, requested=metric)
        else:
            typer.echo(FORMATS[fmt](c), nl=False)
    for v in verdicts:
        style = "green" if v.holds else "bold red"
        ui.err.print(f"[{style}]{'PASS' if v.holds else 'FAIL'}[/] {markup(v.text())}",
                     highlight=False)
    if verdicts:
        failed = sum(not v.holds for v in verdicts)
        ui.err.print(f"{len(verdicts) - failed}/{len(verdicts)} expectation(s) hold",
                     highlight=False)
        raise typer.Exit(1 if failed else 0)


def _compare_two(a: Path, b: Path, by: str, baseline: str | None, metric: list[str],
                 best_by: str, at: str, include_collapsed: bool, fmt: str, expect: list[str],
                 confidence: float, seeds_for_delta: float | None, columns: str | None = None,
                 wide: bool = False) -> None:
    """``compare A B``: options of the one-sweep comparison that have no meaning here are
    refused rather than ignored. On a terminal narrower than the table, the narrow layout
    (report/sweep_pair.py) shows every number in 80 columns; ``--wide`` and a pipe get the
    table at its natural width."""
    from dropout_lab.comparison.pairing import pair_sweeps
    from dropout_lab.comparison.source import load
    from dropout_lab.report.sweep_pair import (
        PAIR_FORMATS,
        render_csv,
        render_json,
        render_rich,
        render_rich_narrow,
    )

    unused = [name for name, given in (("--by", by != P_KEY), ("--baseline", baseline),
                                       ("--best-by", best_by != "test_acc"), ("--expect", expect),
                                       ("--seeds-for", seeds_for_delta is not None),
                                       ("--columns", columns is not None)) if given]
    if unused:
        raise CompareError(f"{', '.join(unused)}: not for two sweeps (compare A B matches grid "
                           "points and prints B - A)")
    if fmt not in PAIR_FORMATS:
        raise CompareError(f"--format {fmt}: with two sweeps choose one of "
                           f"{', '.join(PAIR_FORMATS)}")
    when = parse_at(at)
    pair = pair_sweeps(load(a, epochs=isinstance(when, int)), load(b, epochs=isinstance(when, int)),
                       metrics=metric or None, level=confidence, at=when,
                       include_collapsed=include_collapsed)
    if fmt == "json":
        typer.echo(render_json(pair), nl=False)
        current().json_printed = True
    elif fmt == "csv":
        typer.echo(render_csv(pair), nl=False)
    else:
        ui = current()
        whole = render_rich(pair)
        table = next(r for r in whole.renderables if isinstance(r, Table))
        if ui.out.is_terminal and not wide and natural_width(table, ui.out) > ui.out.width:
            ui.out.print(render_rich_narrow(pair), soft_wrap=False)  # notes wrap at the width
        else:
            ui.print_whole(whole)


def _print_seeds_for(c: Comparison, doc: dict[str, Any]) -> None:
    """The seeds-needed table; on a terminal too narrow for a column per metric, transposed
    (a row per metric), so no metric is hidden and no line wraps."""
    ui = current()
    group = render_seeds_for(c, doc)
    if ui.out.is_terminal:
        table = group.renderables[0]
        if natural_width(table, ui.out) > ui.out.width:  # type: ignore[arg-type]
            group = render_seeds_for(c, doc, transpose=True)
        ui.out.print(group, soft_wrap=False)  # the note wraps at the terminal's width
        return
    ui.print_whole(group)


def _priorities(c: Comparison, requested: list[str] | None = None) -> dict[str, int]:
    """Which columns a narrow terminal hides first: the metrics after the --best-by one, in
    the order shown; the axis, the --best-by metric, the seeds and every metric named with
    -m (all of them with -m all) stay (a metric the user asked for is never hidden: the table
    is transposed instead, see :func:`_print_fitted`)."""
    order = {c.by: 0, "seeds": 1, c.best_by: 0, "epoch": 2}
    for name in requested or []:
        for named in (c.metrics if name == "all" else [name]):  # -m all names every one
            order[named] = 0
    for i, name in enumerate(m for m in c.metrics if m != c.best_by):
        order.setdefault(name, 3 + i)
    return order


def _print_fitted(c: Comparison, columns: list[str] | None, wide: bool,
                  requested: list[str] | None = None) -> None:
    """Each block's table fitted to the terminal (report/terminal_width.py: hidden columns are
    named under it); the legend and notes wrap at the terminal's width. When the columns that
    must stay (the axis, the --best-by metric, every metric named with -m) are still wider
    than the terminal, the tables are transposed (a row per metric) instead of squeezed. A
    pipe gets everything at its natural width."""
    ui = current()
    priorities = _priorities(c, requested)
    group = render_rich(c)
    transposed = False
    if ui.out.is_terminal and not wide and not columns:
        width = ui.out.width
        transposed = any(natural_width(fit_table(t, width, ui.out, priorities).table, ui.out)
                         > width for t in group.renderables if isinstance(t, Table))
        if transposed:
            group = render_rich(c, transpose=True)
    for part in group.renderables:
        if isinstance(part, Table) and transposed:
            ui.out.print(part)
        elif isinstance(part, Table):
            print_table(part, ui.out, priorities, columns, wide)
        elif isinstance(part, Text):
            ui.out.print(part, soft_wrap=not ui.out.is_terminal or wide)
