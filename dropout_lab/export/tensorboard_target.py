"""TensorBoard: one run folder per trial, scalars per epoch (step = epoch), the final values
(``final/*``), every statistic (``coadaptation/...``, ``uncertainty/...``, ``health/...``) and
the health flags (``health/flag/<flag>``, 1.0 when raised) at the last epoch.

Exporting again rewrites a trial's run folder (its earlier event files are removed), so
TensorBoard shows each point once, not once per export.

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

from dropout_lab.api import Sweep
from dropout_lab.errors import OutputError
from dropout_lab.export import epoch_values, health_tags, numeric, trial_statistics
from dropout_lab.health import FLAGS


def run_name(params: dict[str, Any], trial_id: str) -> str:
    """A folder name TensorBoard shows as the run: ``dropout.p=0.5,seed=0-<trial id>``."""
    label = ",".join(f"{k}={json.dumps(v, separators=(',', ':'))}" for k, v in params.items())
    label = re.sub(r"[^A-Za-z0-9.,=_\-\[\]]", "_", label)
    return f"{label}-{trial_id}" if label else trial_id


def _scalar(tag: str, value: float, step: int, wall_time: float) -> Event:
    return Event(wall_time=wall_time, step=step,
                 summary=Summary(value=[Summary.Value(tag=tag, simple_value=value)]))


def _clear(run_dir: Path) -> None:
    """Remove the event files an earlier export wrote here (only those: other files stay)."""
    for old in run_dir.glob("events.out.tfevents.*"):
        if old.is_file():
            old.unlink()


def export(sweep: Sweep, dest: Path | None = None) -> dict[str, Any]:
    """Write ``dest/<sweep>/<run>/events.out.tfevents.*``; point TensorBoard at ``dest``."""
    if dest is None:
        raise OutputError("export --to tensorboard needs the folder to write to: "
                          "dropout-lab export SWEEP --to tensorboard DIR")
    root = Path(dest) / sweep.path.name
    runs, points = 0, 0
    for trial in sweep.trials:
        rows = trial.curve()
        if not rows and not trial.final:
            continue
        run_dir = root / run_name(trial.params, trial.trial_id)
        run_dir.mkdir(parents=True, exist_ok=True)
        _clear(run_dir)
        writer = EventFileWriter(str(run_dir))
        wall = float((trial.result.get("timing") or {}).get("started_at") or time.time())
        try:
            for row in rows:
                step = int(row.get("epoch", 0))
                wall += float(row.get("epoch_seconds") or 0.0)
                for key, number in epoch_values(row).items():
                    writer.add_event(_scalar(key, number, step, wall))
                    points += 1
            last = int(rows[-1].get("epoch", 0)) if rows else 0
            at_end = {f"final/{k}": numeric(v) for k, v in (trial.final or {}).items()}
            at_end.update(trial_statistics(trial))
            if health_tags(trial):
                flags = (trial.health or {}).get("flags") or []
                at_end.update({f"health/flag/{f}": float(f in flags) for f in FLAGS})
            for tag, value in at_end.items():
                if value is not None:
                    writer.add_event(_scalar(tag, value, last, wall))
                    points += 1
        finally:
            writer.close()
        runs += 1
    return {"to": "tensorboard", "logdir": str(root), "runs": runs, "scalars": points}
