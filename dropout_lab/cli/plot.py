"""``dropout-lab plot SWEEP_DIR``: PNG figures of a sweep in SWEEP_DIR/plots/."""

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
    app.command("plot")(plot)


@guard
def plot(
    sweep_dir: Path = typer.Argument(..., help="a sweep folder, e.g. runs/quickstart"),
    out_dir: Path = typer.Option(None, "--out", "-o",
                                 help="where to write the PNG files (default SWEEP_DIR/plots)"),
    by: str = typer.Option(P_KEY, "--by", help="the axis on the x axis / in the legend"),
    at: str = typer.Option("last", "--at", help=AT_HELP),
    include_collapsed: bool = typer.Option(False, "--include-collapsed",
                                           help="keep trials flagged collapsed in the means"),
    json_out: bool = typer.Option(False, "--json", help="print one JSON document on stdout"),
    confidence: float = typer.Option(0.95, "--confidence", help="confidence level of the bands"),
) -> None:
    """Draw PNG figures of a sweep into SWEEP_DIR/plots (headless).

    Accuracy and gap against p with confidence bands (one line per model size / block),
    learning curves, co-adaptation per hidden layer against p, reliance on single units,
    first-layer weight images, ablation curves and the MC-dropout reliability diagram.
    Figures whose data is absent are skipped with a note."""
    from dropout_lab.report.plots import render_all, write_plots  # matplotlib: only when drawing

    if out_dir is not None:
        check_output_path(out_dir, "--out", folder=True)
    c = build_comparison(sweep_dir, warn=warn, by=by, level=confidence, at=parse_at(at),
                         include_collapsed=include_collapsed, epochs=True, weights=True)
    plots, notes = render_all(c)
    paths = write_plots(plots, out_dir or Path(sweep_dir) / "plots")
    if json_out:
        typer.echo(json.dumps({"plots": [str(p) for p in paths], "notes": notes}, indent=2))
        return
    for p in paths:
        out.print(escape(str(p)), highlight=False)
    for note in notes:
        err.print(f"[yellow]note:[/] {escape(note)}", highlight=False)
