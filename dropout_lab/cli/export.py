"""``dropout-lab export SWEEP --to mlflow|tensorboard``: hand a sweep to another viewer."""

from __future__ import annotations

from pathlib import Path

import typer

from dropout_lab.cli.app import current, guard
from dropout_lab.cli.store_warnings import warn
from dropout_lab.errors import OutputError
from dropout_lab.export import TARGETS
from dropout_lab.export import export as run_export
from dropout_lab.safe_text import markup


def register(app: typer.Typer) -> None:
    app.command("export")(export)


@guard
def export(
    sweep_dir: Path = typer.Argument(..., help="a sweep folder, e.g. runs/quickstart"),
    dest: Path = typer.Argument(None, help="for --to tensorboard: the log folder to write"),
    to: str = typer.Option(..., "--to", help=f"{' | '.join(TARGETS)}"),
    tracking_uri: str = typer.Option(None, "--tracking-uri",
                                     help="for --to mlflow: where to log (a SQLite file as "
                                     "sqlite:///abs/path/mlflow.db, or a server; a folder as "
                                     "file:///abs/path with MLflow 2 only); default: MLflow's "
                                     "own (MLFLOW_TRACKING_URI)"),
    experiment: str = typer.Option(None, "--experiment",
                                   help="for --to mlflow: experiment name (default "
                                   "dropout-lab/<sweep>)"),
    json_out: bool = typer.Option(False, "--json", help="print one JSON document on stdout"),
) -> None:
    """Export a sweep's trials to MLflow or TensorBoard.

    MLflow: one parent run per sweep and a child run per trial of the current grid (params,
    per-epoch metrics with steps, final metrics, every statistic, health flags as tags, and
    result, curve and weights as artifacts; the parent gets the plots and report written by
    plot/report). Exporting again updates the same runs. TensorBoard: event files, one run
    folder per trial, one scalar per metric and epoch, the statistics at the last epoch.

    Needs the extra: pip install "dropout-lab[mlflow]" or "dropout-lab[tensorboard]"."""
    ui = current()
    if to == "mlflow":
        if dest is not None:
            raise OutputError("export --to mlflow takes no folder; use --tracking-uri "
                              f"sqlite:///{dest.resolve() / 'mlflow.db'} to log into a SQLite "
                              "file in that folder")
        summary = run_export(sweep_dir, warn=warn, to="mlflow", tracking_uri=tracking_uri,
                             experiment=experiment)
    elif to == "tensorboard":
        if tracking_uri or experiment:
            raise OutputError("--tracking-uri and --experiment are for --to mlflow")
        if dest is None:  # checked here too: the message needs no TensorBoard installed
            raise OutputError("export --to tensorboard needs the folder to write to: "
                              "dropout-lab export SWEEP --to tensorboard DIR")
        summary = run_export(sweep_dir, warn=warn, to="tensorboard", dest=dest)
    else:
        summary = run_export(sweep_dir, to, warn=warn)  # raises the OutputError listing the targets
    if json_out:
        ui.print_json(summary)
    elif to == "mlflow":
        ui.out.print(f"exported {summary['runs']} trial run(s) ({summary['created']} new, "
                  f"{summary['replaced']} replaced, {summary['unchanged']} unchanged) under "
                  "parent run "
                  f"{summary['parent_run_id']} (experiment {markup(summary['experiment'])}, "
                  f"{markup(str(summary['tracking_uri']))})", highlight=False)
    else:
        ui.out.print(f"wrote {summary['runs']} TensorBoard run(s), {summary['scalars']} scalars, "
                  f"to {markup(summary['logdir'])}; view: tensorboard --logdir "
                  f"{markup(str(dest))}", highlight=False)
