"""``dropout-lab report SWEEP_DIR``: one self-contained HTML file (tables + embedded plots)."""

from __future__ import annotations

from pathlib import Path

import typer

from dropout_lab.cli.app import current, guard
from dropout_lab.cli.compare import AT_HELP
from dropout_lab.cli.store_warnings import warn
from dropout_lab.comparison import build_comparison, parse_at
from dropout_lab.config import P_KEY
from dropout_lab.report.output_file import check_output, write_output
from dropout_lab.safe_text import markup


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
    ui = current()
    from dropout_lab.report.html import render_html
    from dropout_lab.report.plots import render_all

    if output is not None:
        check_output(output, "--output")
    c = build_comparison(sweep_dir, warn=warn, by=by, baseline=baseline, metrics=metric or None,
                         level=confidence, at=parse_at(at), include_collapsed=include_collapsed,
                         epochs=True, weights=True)
    plots, notes = render_all(c)
    html = render_html(c, plots, notes).encode("utf-8")
    path = write_output(output or Path(sweep_dir) / "report.html", html, "--output")
    if json_out:
        ui.print_json({"report": str(path), "plots": [p.name for p in plots], "notes": notes})
        return
    ui.out.print(markup(str(path)), highlight=False)
    for note in notes:
        ui.note(note)
