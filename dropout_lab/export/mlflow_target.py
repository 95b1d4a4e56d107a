"""MLflow: one parent run per sweep, one child run per trial, through MLflow's tracking client.

A child run carries the trial's params (its resolved config), per-epoch metrics with their
steps, the final numbers (``final.*``), every statistic (``coadaptation/...``,
``uncertainty/...``, ``health/...``), the health flags as tags (``dropout_lab.health.*``) and
its files as artifacts (result.json, metrics.jsonl, weights.npz when kept). The parent run
carries the base config, sweep.yaml, summary.csv, and the plots (SWEEP/plots/*.png) and the
report (SWEEP/report.html) when ``plot`` / ``report`` have written them.

Exporting again updates instead of adding: the parent run is found by its tags
``dropout_lab.sweep_dir`` and ``dropout_lab.config_hash`` (the base config's) and reused; a
trial's child run is kept when its result is unchanged (tag ``dropout_lab.fingerprint``) and
replaced (the old one deleted) when the trial ran again. A folder reused for another config
(``--fresh``) gets a new parent run: MLflow params cannot change.

Imported only by ``export --to mlflow`` (the optional extra [mlflow]); works with any
tracking URI MLflow takes: a local folder (``file:...``), SQLite, or a tracking server.
Artifacts go where the experiment's artifact location says. A new experiment on a SQLite
file gets ``mlartifacts/`` beside the database (MLflow's own default, ./mlruns under the
current folder, would scatter them wherever the command ran); ``artifact_location`` chooses.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

from mlflow import __version__ as mlflow_version
from mlflow.entities import Metric, Param, Run, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from dropout_lab import __version__
from dropout_lab.api import Sweep, Trial
from dropout_lab.config import flatten_dotted
from dropout_lab.errors import OutputError
from dropout_lab.export import (
    epoch_values,
    health_tags,
    numeric,
    trial_config,
    trial_statistics,
)
from dropout_lab.result import Status
from dropout_lab.store import (
    METRICS_FILE,
    RESULT_FILE,
    SUMMARY_FILE,
    SWEEP_FILE,
    WEIGHTS_FILE,
    SweepStore,
)

BATCH = 900  # MLflow takes at most 1000 metrics per log_batch call
PARAM_BATCH = 100  # and at most 100 params
PARAM_CHARS = 6000  # MLflow's limit on a param value
# MLflow run status of each trial status; anything else: FAILED. A pruned trial (stopped by a
# search) is KILLED, MLflow's word for a run ended on purpose before its end.
STATUS: dict[str, str] = {Status.DONE: "FINISHED", Status.PENDING: "SCHEDULED",
                          Status.PRUNED: "KILLED"}
SWEEP_TAG = "dropout_lab.sweep_dir"
FINGERPRINT_TAG = "dropout_lab.fingerprint"
CONFIG_TAG = "dropout_lab.config_hash"


def _param(value: Any) -> str:
    text = json.dumps(value) if isinstance(value, (list, dict)) else str(value)
    return text[:PARAM_CHARS]


def fingerprint(trial: Trial) -> str:
    """A hash of the trial's result: it changes when the trial runs again."""
    blob = json.dumps(trial.result, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _all_runs(client: MlflowClient, exp_id: str, where: str) -> list[Run]:
    runs: list[Run] = []
    token = None
    while True:
        page = client.search_runs([exp_id], filter_string=where, max_results=1000,
                                  page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def default_artifact_location(tracking_uri: str) -> str | None:
    """``file://<folder of the database>/mlartifacts`` for a SQLite file, else None (MLflow
    decides)."""
    prefix = "sqlite:///"
    if not tracking_uri.startswith(prefix) or tracking_uri.endswith(":memory:"):
        return None
    db = Path(tracking_uri[len(prefix):])
    return (db.parent.resolve() / "mlartifacts").as_uri()


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


def export(sweep: Sweep, tracking_uri: str | None = None, experiment: str | None = None,
           artifact_location: str | None = None) -> dict[str, Any]:
    """Log the sweep into ``experiment`` (default ``dropout-lab/<sweep folder name>``); returns
    the parent run id and how many child runs were created, replaced or left as they were."""
    name = experiment or f"dropout-lab/{sweep.path.name}"
    try:  # a store MLflow refuses (MLflow 3: a folder) fails here, at creation or first use
        client = MlflowClient(tracking_uri=tracking_uri)
        found = client.get_experiment_by_name(name)
    except MlflowException as exc:
        raise _store_error(exc, tracking_uri) from None
    if found is not None:
        exp_id = found.experiment_id
    else:
        uri = str(client._tracking_client.tracking_uri)
        exp_id = client.create_experiment(
            name, artifact_location=artifact_location or default_artifact_location(uri))
    where = str(Path(sweep.path).resolve())
    # The folder and its base config name the parent: a folder reused for another config
    # (--fresh) gets a new parent run, as MLflow params cannot change.
    config_hash = hashlib.sha256(json.dumps(sweep.config, sort_keys=True).encode()).hexdigest()
    parents = _all_runs(client, exp_id, f"tags.`{SWEEP_TAG}` = '{_quote(where)}' and "
                        f"tags.`{CONFIG_TAG}` = '{config_hash[:16]}'")
    parents = [r for r in parents if "mlflow.parentRunId" not in r.data.tags]
    if parents:
        parent_id = parents[0].info.run_id
    else:
        parent_id = client.create_run(exp_id, run_name=sweep.path.name, tags={
            SWEEP_TAG: where, CONFIG_TAG: config_hash[:16]}).info.run_id
        params = [Param(k, _param(v)) for k, v in flatten_dotted(sweep.config).items()]
        for i in range(0, len(params), PARAM_BATCH):
            client.log_batch(parent_id, params=params[i:i + PARAM_BATCH])
    children = {r.data.tags.get("dropout_lab.trial_id"): r for r in _all_runs(
        client, exp_id, f"tags.`mlflow.parentRunId` = '{parent_id}'")}
    counts = {"created": 0, "replaced": 0, "unchanged": 0}
    store = SweepStore(sweep.path)
    for trial in sweep.trials:
        old = children.get(trial.trial_id)
        if old is not None and old.data.tags.get(FINGERPRINT_TAG) == fingerprint(trial):
            counts["unchanged"] += 1
            continue
        if old is not None:
            client.delete_run(old.info.run_id)  # the trial ran again: its new run replaces it
        _child(client, exp_id, parent_id, sweep, trial, store)
        counts["replaced" if old is not None else "created"] += 1
    artifacts = _parent_artifacts(client, parent_id, sweep.path)
    client.log_batch(parent_id, tags=[
        RunTag("dropout_lab.trials", str(len(sweep.trials))),
        RunTag("dropout_lab.version", __version__),
        RunTag("dropout_lab.axes", json.dumps(sweep.axes)),
        RunTag("dropout_lab.exported_at", str(int(time.time())))])
    client.set_terminated(parent_id, "FINISHED")
    return {"to": "mlflow", "experiment": name, "experiment_id": exp_id,
            "parent_run_id": parent_id, "runs": len(sweep.trials), **counts,
            "artifacts": artifacts, "tracking_uri": client._tracking_client.tracking_uri}


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace("'", "\\'")


def _child(client: MlflowClient, exp_id: str, parent_id: str, sweep: Sweep, trial: Trial,
           store: SweepStore) -> None:
    """One trial's run: params, metrics, statistics, tags, artifacts."""
    tags = {"mlflow.parentRunId": parent_id, "dropout_lab.trial_id": trial.trial_id,
            "dropout_lab.status": str(trial.status), "dropout_lab.sweep": sweep.path.name,
            FINGERPRINT_TAG: fingerprint(trial)}
    tags.update({f"dropout_lab.health.{k}": v for k, v in health_tags(trial).items()})
    run_id = client.create_run(exp_id, run_name=trial.trial_id, tags=tags).info.run_id
    items = [Param(k, _param(v)) for k, v in trial_config(trial).items()]
    for i in range(0, len(items), PARAM_BATCH):
        client.log_batch(run_id, params=items[i:i + PARAM_BATCH])
    rows = trial.curve()
    start = int(float(trial.result.get("timing", {}).get("started_at") or time.time()) * 1000)
    metrics: list[Metric] = []
    elapsed = 0.0
    for row in rows:
        step = int(row.get("epoch", 0))
        elapsed += float(row.get("epoch_seconds") or 0.0)
        for key, number in epoch_values(row).items():
            metrics.append(Metric(key, number, start + int(elapsed * 1000), step))
    last = int(rows[-1].get("epoch", 0)) if rows else 0
    end = start + int(elapsed * 1000)
    for key, raw in (trial.final or {}).items():
        value = numeric(raw)
        if value is not None:
            metrics.append(Metric(f"final.{key}", value, end, last))
    metrics.extend(Metric(k, v, end, last) for k, v in trial_statistics(trial).items())
    for i in range(0, len(metrics), BATCH):
        client.log_batch(run_id, metrics=metrics[i:i + BATCH])
    client.set_tag(run_id, "dropout_lab.epochs", str(len(rows)))
    folder = store.trial_dir(trial.trial_id)
    for name in (RESULT_FILE, METRICS_FILE, WEIGHTS_FILE):
        if (folder / name).is_file():
            client.log_artifact(run_id, str(folder / name))
    client.set_terminated(run_id, STATUS.get(trial.status, "FAILED"))


def _parent_artifacts(client: MlflowClient, parent_id: str, root: Path) -> list[str]:
    """sweep.yaml, summary.csv, report.html and plots/<figure>.png (the figures ``plot``
    draws), those that exist; logged again
    on every export (same artifact paths: the newer file replaces the older)."""
    logged = []
    for name in (SWEEP_FILE, SUMMARY_FILE, "report.html"):
        if (root / name).is_file():
            client.log_artifact(parent_id, str(root / name))
            logged.append(name)
    from dropout_lab.report.plots import FIGURES  # the names ``plot`` writes

    for figure in FIGURES:
        png = root / "plots" / f"{figure}.png"
        if png.is_file():
            client.log_artifact(parent_id, str(png), artifact_path="plots")
            logged.append(f"plots/{png.name}")
    return logged
