"""Read a sweep folder into :class:`~dropout_lab.comparison.model.SweepData` (the only I/O of
the comparison). Parameters come from the grid in sweep.yaml, never from the result files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dropout_lab.comparison.model import SweepData, TrialRecord
from dropout_lab.result import Status
from dropout_lab.store import SweepStore


def load(sweep_dir: Path, epochs: bool = False, weights: bool = False) -> SweepData:
    """Every trial of the current grid with its result; ``epochs`` also reads metrics.jsonl
    (``--at N``, learning curves), ``weights`` the first-layer weights (weight images)."""
    store = SweepStore(Path(sweep_dir))
    doc = store.read_sweep()  # read again by results(): a few KB, kept simple
    axes = dict(doc.get("sweep") or {})
    config = doc.get("config")
    base: dict[str, Any] = config if isinstance(config, dict) else {}
    trials = []
    for result in store.results():  # damaged trials come back as status 'corrupt'
        tid = result["trial_id"]
        rec = TrialRecord(tid, dict(result["params"]), result)
        if epochs and rec.status == Status.DONE:
            rec.epochs = store.load_metrics(tid)
        if weights and rec.status == Status.DONE:
            rec.weights = store.load_weights(tid)
        trials.append(rec)
    return SweepData(str(base.get("name") or Path(sweep_dir).name), Path(sweep_dir), axes, base,
                     trials)
