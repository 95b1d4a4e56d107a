"""What one checkpoint costs (issue 20, item 1): the number behind ``checkpoint_every: auto``.

    .venv/bin/python benchmarks/bench_checkpoint.py [--backend numpy|torch] [--reps 5]

A [1024, 1024] network on 784 inputs and 10 classes (the main job's wide half, MNIST-sized)
after 39 of 40 epochs: the medians of capturing its checkpoint in the trial
(``checkpoint.capture``), taking it to the driver (a pickle round trip, as the local
executor's pipe does), writing it atomically with fsync (the driver), and parsing it back
(a resume). docs/reliability.md compares the sum with an epoch of that network.
"""

from __future__ import annotations

import argparse
import pickle
import statistics
import tempfile
import time
from pathlib import Path

from dropout_lab import checkpoint
from dropout_lab.config import validate
from dropout_lab.store.files import atomic_write_bytes
from dropout_lab.training import LoopState, TrainingLog
from dropout_lab.trial import prepare

ROW = {"lr": 0.05, "momentum": 0.9, "fit_loss": 0.1, "train_loss": 0.1, "train_acc": 0.9,
       "test_loss": 0.1, "test_acc": 0.9, "gap_acc": 0.0, "gap_loss": 0.0, "train_n": 10000,
       "epoch_seconds": 10.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="numpy", choices=["numpy", "torch"])
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    cfg = validate({"backend": args.backend, "model": {"hidden": [1024, 1024]},
                    "dataset": {"name": "synthetic", "n_train": 200, "n_test": 50,
                                "n_features": 784, "n_classes": 10},
                    "train": {"epochs": 40}})
    prep = prepare(cfg, threads=1)
    state, log = LoopState.start(0), TrainingLog()
    state.epoch = 39
    log.rows = [dict(ROW, epoch=e) for e in range(1, 40)]
    folder = Path(tempfile.mkdtemp(prefix="bench-checkpoint-"))
    times: dict[str, list[float]] = {"capture": [], "to the driver": [], "write + fsync": [],
                                     "parse": []}
    size = 0
    for _ in range(args.reps):
        t0 = time.perf_counter()
        blob = checkpoint.capture(prep, state, log, "bench", 1.0)
        t1 = time.perf_counter()
        pickle.loads(pickle.dumps(("checkpoint", "bench", 39, blob)))
        t2 = time.perf_counter()
        atomic_write_bytes(folder / "checkpoint.npz", blob)
        t3 = time.perf_counter()
        checkpoint.parse(blob)
        t4 = time.perf_counter()
        for key, dt in zip(times, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
            times[key].append(dt)
        size = len(blob)
    medians = {k: 1000 * statistics.median(v) for k, v in times.items()}
    print(f"{args.backend}: checkpoint of [784, 1024, 1024, 10] = {size / 1e6:.1f} MB; "
          + ", ".join(f"{k} {v:.0f} ms" for k, v in medians.items())
          + f"; total {sum(medians.values()):.0f} ms (median of {args.reps})")


if __name__ == "__main__":
    main()
