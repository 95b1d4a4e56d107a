"""Read a sweep folder into :class:`~dropout_lab.comparison.model.SweepData` (the only I/O of
the comparison), through the store's one reader. Parameters come from the grid in sweep.yaml,
never from the result files. The trials of earlier grids of the same config (added seeds,
added p values) are part of the sweep: they are read too, and their axis values added."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dropout_lab.comparison.model import SweepData, TrialRecord
from dropout_lab.result import Status
from dropout_lab.store import SweepStore, Warn


def load(sweep_dir: Path, epochs: bool = False, weights: bool = False,
         warn: Warn | None = None, earlier: bool = True) -> SweepData:
    """Every trial of the sweep with its result: the current grid and (``earlier``) the
    finished trials of its earlier grids; ``epochs`` also reads metrics.jsonl (``--at N``,
    learning curves), ``weights`` the first-layer weights (weight images). ``warn`` is
    called once per damaged file skipped (the store prints nothing)."""
    store = SweepStore(Path(sweep_dir), warn=warn)
    doc = store.read_sweep()  # read again by results(): a few KB, kept simple
    # a search's range axis ({min, max, ...}) has the values its trials drew
    axes = {k: list(v) if isinstance(v, list) else [] if isinstance(v, dict) else [v]
            for k, v in dict(doc.get("sweep") or {}).items()}
    config = doc.get("config")
    base: dict[str, Any] = config if isinstance(config, dict) else {}
    trials = []
    for result in store.results(earlier):  # damaged trials come back as status 'corrupt'
        tid = result["trial_id"]
        for k, v in result["params"].items():  # values only an earlier grid has
            if k in axes and v not in axes[k]:
                axes[k].append(v)
        rec = TrialRecord(tid, dict(result["params"]), result)
        if epochs and rec.status in (Status.DONE, Status.PRUNED):
            rec.epochs = store.load_metrics(tid)
        if weights and rec.status == Status.DONE:
            rec.weights = store.load_weights(tid)
        trials.append(rec)
    hidden = store.history(doc)["hidden"] if earlier else 0
    if hidden and warn is not None:  # say what is not read, and how to see it
        warn(f"note: {hidden} trial folder(s) under {Path(sweep_dir) / 'trials'} are not part "
             "of this sweep's current config (another backend or config value, replaced, or "
             f"damaged); 'dropout-lab show {sweep_dir}' counts them, 'dropout-lab gc "
             f"{sweep_dir}' lists them")
    return SweepData(str(base.get("name") or Path(sweep_dir).name), Path(sweep_dir), axes, base,
                     trials)
