"""MLflow: one parent run per sweep, one child run per trial (params, per-epoch metrics with
their steps, final metrics, tags), through MLflow's own tracking client.

Imported only by ``export --to mlflow`` (the optional extra [mlflow]); works with any
tracking URI MLflow takes: SQLite (``sqlite:///path/mlflow.db``), a tracking server, or with
MLflow 2 a local folder (``file:...``; MLflow 3 refuses folders: one exit-2 message suggesting
the SQLite URI).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from mlflow import __version__ as mlflow_version
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from dropout_lab import __version__
from dropout_lab.config.overrides import flatten_dotted
from dropout_lab.errors import OutputError
from dropout_lab.export import ExportedSweep, numeric
from dropout_lab.result import Status

BATCH = 900  # MLflow takes at most 1000 metrics per log_batch call
PARAM_CHARS = 6000  # MLflow's limit on a param value
# MLflow run status of each trial status; anything else: FAILED
STATUS: dict[str, str] = {Status.DONE: "FINISHED", Status.PENDING: "SCHEDULED"}


def _param(value: Any) -> str:
    text = json.dumps(value) if isinstance(value, (list, dict)) else str(value)
    return text[:PARAM_CHARS]


def _store_error(exc: MlflowException, tracking_uri: str | None) -> OutputError:
    """One line for a tracking store MLflow will not open. MLflow 3 refuses a folder
    (``file:///...``, ``./mlruns``): the message suggests a SQLite file in that folder."""
    text = str(exc)
    uri = tracking_uri or "MLflow's default (MLFLOW_TRACKING_URI or ./mlruns)"
    if "filesystem tracking backend" in text or "FileStore" in text:
        folder = (tracking_uri or "").removeprefix("file://") or "."
        sqlite = f"sqlite:///{Path(folder).absolute() / 'mlflow.db'}"
        return OutputError(f"--tracking-uri {uri}: MLflow {mlflow_version} no longer logs into a "
                           f"folder; log into a SQLite file instead: --tracking-uri {sqlite}")
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return OutputError(f"--tracking-uri {uri}: MLflow refused the tracking store: {first}")


def export(sweep: ExportedSweep, tracking_uri: str | None = None,
           experiment: str | None = None) -> dict[str, Any]:
    """Log the sweep into ``experiment`` (default ``dropout-lab/<sweep name>``); returns the
    parent run id and the number of child runs. Exporting again adds a new parent run."""
    name = experiment or f"dropout-lab/{sweep.name}"
    try:  # the store is opened lazily: a refused one fails at the first call
        client = MlflowClient(tracking_uri=tracking_uri)
        found = client.get_experiment_by_name(name)
        exp_id = found.experiment_id if found is not None else client.create_experiment(name)
    except MlflowException as exc:
        raise _store_error(exc, tracking_uri) from None
    now = int(time.time() * 1000)
    parent = client.create_run(exp_id, run_name=sweep.name, tags={
        "dropout_lab.sweep_dir": str(sweep.root), "dropout_lab.version": __version__,
        "dropout_lab.axes": json.dumps(sweep.axes)})
    parent_id = parent.info.run_id
    client.log_batch(parent_id, params=[Param(k, _param(v)) for k, v in flatten_dotted(
        sweep.config).items()][:100])
    children = 0
    for trial in sweep.trials:
        run = client.create_run(exp_id, run_name=trial.trial_id, tags={
            "mlflow.parentRunId": parent_id, "dropout_lab.trial_id": trial.trial_id,
            "dropout_lab.status": trial.status, "dropout_lab.sweep": sweep.name})
        run_id = run.info.run_id
        params = {**flatten_dotted(trial.config), **trial.params}
        items = [Param(k, _param(v)) for k, v in params.items()]
        for i in range(0, len(items), 100):  # MLflow takes at most 100 params per batch
            client.log_batch(run_id, params=items[i:i + 100])
        start = int((trial.started_at or time.time()) * 1000)
        metrics: list[Metric] = []
        elapsed = 0.0
        for row in trial.rows:
            step = int(row.get("epoch", 0))
            elapsed += float(row.get("epoch_seconds") or 0.0)
            for key, raw in row.items():
                value = numeric(raw)
                if key not in ("epoch", "epoch_seconds") and value is not None:
                    metrics.append(Metric(key, value, start + int(elapsed * 1000), step))
        last = int(trial.rows[-1].get("epoch", 0)) if trial.rows else 0
        for key, raw in trial.final.items():
            value = numeric(raw)
            if value is not None:
                metrics.append(Metric(f"final.{key}", value, start + int(elapsed * 1000), last))
        for i in range(0, len(metrics), BATCH):
            client.log_batch(run_id, metrics=metrics[i:i + BATCH])
        client.set_tag(run_id, "dropout_lab.epochs", str(len(trial.rows)))
        client.set_terminated(run_id, STATUS.get(trial.status, "FAILED"))
        children += 1
    client.log_batch(parent_id, tags=[RunTag("dropout_lab.trials", str(children))])
    client.set_terminated(parent_id, "FINISHED", end_time=now)
    return {"to": "mlflow", "experiment": name, "experiment_id": exp_id,
            "parent_run_id": parent_id, "runs": children,
            "tracking_uri": client._tracking_client.tracking_uri}
