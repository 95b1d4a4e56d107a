"""``dropout-lab compare SWEEP_DIR``: p values side by side, with intervals and CI gates."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.markup import escape

from dropout_lab.cli.app import err, guard, print_whole
from dropout_lab.expect import evaluate
from dropout_lab.report.compare import DEFAULT_BY, FORMATS, build_comparison, to_json_doc
from dropout_lab.store import dumps


def register(app: typer.Typer) -> None:
    app.command("compare")(compare)


@guard
def compare(
    sweep_dir: Path = typer.Argument(..., help="a sweep folder, e.g. runs/quickstart"),
    by: str = typer.Option(DEFAULT_BY, "--by", help="the axis to compare (rows)"),
    baseline: str = typer.Option(None, "--baseline",
                                 help="value of --by that differences are taken against "
                                      "(default: the smallest)"),
    metric: list[str] = typer.Option([], "--metric", "-m",
                                     help="metric to show (repeatable; 'all' for every one "
                                          "present); default: test_acc gap_acc gap_loss "
                                          "train_acc + co-adaptation/uncertainty if present"),
    best_by: str = typer.Option("test_acc", "--best-by", help="metric that decides the best row"),
    fmt: str = typer.Option("rich", "--format", "-f", help="rich | csv | json | markdown"),
    expect: list[str] = typer.Option([], "--expect", "-e",
                                     help="gate, e.g. 'gap_acc[p=0.5] < gap_acc[p=0.0]' "
                                          "(repeatable); exit 1 if any fails"),
    confidence: float = typer.Option(0.95, "--confidence", help="confidence level of the "
                                     "intervals"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="print no table (only the gates)"),
) -> None:
    """Compare p values (or another axis) across seeds, with confidence intervals and CI gates.

    One block per combination of the other swept axes: mean, sd and Student t interval per
    metric, the paired difference against --baseline (trials paired by seed), the best value
    and those not distinguishable from it.

    Exit code: 0 (every --expect holds), 1 (one fails), 2 (bad folder, option or expression).
    Expectation verdicts go to stderr (and into the JSON document with --format json)."""
    if fmt not in FORMATS:
        from dropout_lab.errors import CompareError

        raise CompareError(f"--format {fmt}: choose one of {', '.join(FORMATS)}")
    c = build_comparison(sweep_dir, by=by, baseline=baseline, metrics=metric or None,
                         best_by=best_by, level=confidence)
    verdicts = evaluate(expect, c)  # malformed expressions raise before anything is printed

    if not quiet:
        if fmt == "rich":
            table = FORMATS["rich"](c)
            print_whole(table, measure=table.renderables[:-1])
        elif fmt == "json":
            doc = to_json_doc(c)
            if expect:
                doc["expectations"] = [{"expression": v.expectation, "block": v.block,
                                        "holds": v.holds, "detail": v.detail} for v in verdicts]
            typer.echo(json.dumps(json.loads(dumps(doc)), indent=2))
        else:
            typer.echo(FORMATS[fmt](c), nl=False)
    for v in verdicts:
        style = "green" if v.holds else "bold red"
        err.print(f"[{style}]{'PASS' if v.holds else 'FAIL'}[/] {escape(v.line()[5:])}",
                  highlight=False)
    if verdicts:
        failed = sum(not v.holds for v in verdicts)
        err.print(f"{len(verdicts) - failed}/{len(verdicts)} expectation(s) hold", highlight=False)
        raise typer.Exit(1 if failed else 0)
