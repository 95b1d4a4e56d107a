"""TensorBoard: one run folder per trial, scalars per epoch (step = epoch), final values.

Written with TensorBoard's own event-file writer (no TensorFlow, no torch needed). This
module is imported only by ``export --to tensorboard`` (the optional extra [tensorboard]).
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

from tensorboard.compat.proto.event_pb2 import Event
from tensorboard.compat.proto.summary_pb2 import Summary
from tensorboard.summary.writer.event_file_writer import EventFileWriter

from dropout_lab.errors import OutputError
from dropout_lab.export import ExportedSweep, numeric


def run_name(params: dict[str, Any], trial_id: str) -> str:
    """A folder name TensorBoard shows as the run: ``dropout.p=0.5,seed=0-<trial id>``."""
    label = ",".join(f"{k}={json.dumps(v, separators=(',', ':'))}" for k, v in params.items())
    label = re.sub(r"[^A-Za-z0-9.,=_\-\[\]]", "_", label)
    return f"{label}-{trial_id}" if label else trial_id


def _scalar(tag: str, value: float, step: int, wall_time: float) -> Event:
    return Event(wall_time=wall_time, step=step,
                 summary=Summary(value=[Summary.Value(tag=tag, simple_value=value)]))


def export(sweep: ExportedSweep, dest: Path | None = None) -> dict[str, Any]:
    """Write ``dest/<sweep>/<run>/events.out.tfevents.*``; point TensorBoard at ``dest``."""
    if dest is None:
        raise OutputError("export --to tensorboard needs the folder to write to: "
                          "dropout-lab export SWEEP --to tensorboard DIR")
    root = Path(dest) / sweep.name
    runs, points = 0, 0
    for trial in sweep.trials:
        if not trial.rows and not trial.final:
            continue
        run_dir = root / run_name(trial.params, trial.trial_id)
        run_dir.mkdir(parents=True, exist_ok=True)
        writer = EventFileWriter(str(run_dir))
        wall = trial.started_at or time.time()
        try:
            for row in trial.rows:
                step = int(row.get("epoch", 0))
                wall += float(row.get("epoch_seconds") or 0.0)
                for key, raw in row.items():
                    value = numeric(raw)
                    if key in ("epoch", "epoch_seconds") or value is None:
                        continue
                    writer.add_event(_scalar(key, value, step, wall))
                    points += 1
            last = int(trial.rows[-1].get("epoch", 0)) if trial.rows else 0
            for key, raw in trial.final.items():
                value = numeric(raw)
                if value is not None:
                    writer.add_event(_scalar(f"final/{key}", value, last, wall))
                    points += 1
        finally:
            writer.close()
        runs += 1
    return {"to": "tensorboard", "logdir": str(root), "runs": runs, "scalars": points}
