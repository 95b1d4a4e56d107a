"""``dropout-lab report SWEEP_DIR``: one self-contained HTML file (tables + embedded plots)."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.markup import escape

from dropout_lab.cli.app import err, guard, out
from dropout_lab.cli.compare import AT_HELP
from dropout_lab.cli.store_warnings import warn
from dropout_lab.comparison import build_comparison, parse_at
from dropout_lab.config import P_KEY
from dropout_lab.store import check_output_path


def register(app: typer.Typer) -> None:
    app.command("report")(report)


@guard
def report(
    sweep_dir: Path = typer.Argument(..., help="a sweep folder, e.g. runs/quickstart"),
    output: Path = typer.Option(None, "--output", "-o",
                                help="the HTML file to write (default SWEEP_DIR/report.html)"),
    by: str = typer.Option(P_KEY, "--by", help="the axis to compare"),
    at: str = typer.Option("last", "--at", help=AT_HELP),
    include_collapsed: bool = typer.Option(False, "--include-collapsed",
                                           help="keep trials flagged collapsed in the means"),
    baseline: str = typer.Option(None, "--baseline", help="reference value of --by"),
    metric: list[str] = typer.Option([], "--metric", "-m", help="metric to show (repeatable)"),
    json_out: bool = typer.Option(False, "--json", help="print one JSON document on stdout"),
    confidence: float = typer.Option(0.95, "--confidence", help="confidence level"),
) -> None:
    """Write one self-contained HTML report (tables + plots) to SWEEP_DIR/report.html.

    Comparison tables, the plots embedded as images, inline CSS, no external resources: open
    it in a browser or attach it to a message."""
    from dropout_lab.report.html import write_report
    from dropout_lab.report.plots import render_all

    if output is not None:
        check_output_path(output, "--output")
    c = build_comparison(sweep_dir, warn=warn, by=by, baseline=baseline, metrics=metric or None,
                         level=confidence, at=parse_at(at), include_collapsed=include_collapsed,
                         epochs=True, weights=True)
    plots, notes = render_all(c)
    path = write_report(c, plots, notes, output or Path(sweep_dir) / "report.html")
    if json_out:
        typer.echo(json.dumps({"report": str(path), "plots": [p.name for p in plots],
                               "notes": notes}, indent=2))
        return
    out.print(escape(str(path)), highlight=False)
    for note in notes:
        err.print(f"[yellow]note:[/] {escape(note)}", highlight=False)
