"""Parallel speed-up and runner overhead (issue 7). Run it alone: it times things.

    .venv/bin/python benchmarks/bench_parallel.py [--reps 3]

1. The same sweep of 8 small trials (digits, hidden [512], 250 epochs, ~2 s each; change with
   ``--hidden``/``--epochs``) run through the CLI with ``--workers 1 --threads 1`` and
   ``--workers 2 --threads 1``, each ``--fresh``, alternated, ``reps`` times; medians of the
   wall time of the whole command and the speed-up. Target on a 2-core machine: >= 1.8x.
   Networks whose weights outgrow a core's L2 cache (``--hidden "[1024, 1024]" --epochs 12``)
   run ~6 % slower per trial side by side (shared L3 / memory bandwidth), which caps the
   speed-up below 1.8x on the 2-core machine this was measured on.
2. Runner overhead: one trial through ``run_trial`` (what every executor calls) against a bare
   loop calling the same ``trial.prepare``/``trial.train``; target <= 5 %.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

CONFIG = {
    "name": "bench-parallel",
    "dataset": {"name": "digits"},
    "model": {"hidden": [512]},
    "dropout": {"p": 0.5},
    "train": {"epochs": 250, "batch_size": 32, "optimizer": "momentum", "lr": 0.05},
    "eval": {"coadaptation": False, "uncertainty": False},
    "sweep": {"dropout.p": [0.0, 0.2, 0.5, 0.8], "seed": [0, 1]},
}


def time_sweep(cfg_path: Path, runs: Path, workers: int) -> float:
    cmd = [sys.executable, "-m", "dropout_lab", "sweep", str(cfg_path), "--runs-dir", str(runs),
           "--workers", str(workers), "--threads", "1", "--fresh", "--json"]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, env=dict(os.environ, NO_COLOR="1"))
    return time.perf_counter() - t0


def runner_overhead(reps: int) -> tuple[float, float]:
    """Median seconds of (run_trial, bare prepare+train) for one trial, threads=1."""
    from dropout_lab.config import validate
    from dropout_lab.sweep import expand
    from dropout_lab.training import train
    from dropout_lab.trial import prepare, run_trial

    trial = expand(validate(CONFIG))[2]
    cfg_dict = trial.config_dict
    run_trial(cfg_dict, trial.trial_id, trial.params, threads=1)  # warm: data cached, imports
    via_runner, bare = [], []
    for _ in range(reps):
        t0 = time.perf_counter()
        run_trial(cfg_dict, trial.trial_id, trial.params, threads=1)
        via_runner.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        train(prepare(validate(cfg_dict), threads=1))
        bare.append(time.perf_counter() - t0)
    return statistics.median(via_runner), statistics.median(bare)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--hidden", type=yaml.safe_load, default=CONFIG["model"]["hidden"],
                    help="hidden widths, e.g. \"[1024, 1024]\"")
    ap.add_argument("--epochs", type=int, default=CONFIG["train"]["epochs"])
    args = ap.parse_args()
    CONFIG["model"]["hidden"] = args.hidden
    CONFIG["train"]["epochs"] = args.epochs
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    with tempfile.TemporaryDirectory() as tmp:
        cfg_path = Path(tmp) / "bench.yaml"
        cfg_path.write_text(yaml.safe_dump(CONFIG, sort_keys=False))
        times: dict[int, list[float]] = {1: [], 2: []}
        time_sweep(cfg_path, Path(tmp) / "warm", 1)  # page cache, .pyc files
        for _ in range(args.reps):
            for w in (1, 2):
                times[w].append(time_sweep(cfg_path, Path(tmp) / f"w{w}", w))
    m1, m2 = statistics.median(times[1]), statistics.median(times[2])
    print(f"parallel sweep: 8 trials (digits, hidden {args.hidden}, {args.epochs} epochs), "
          f"{cores} core(s), {args.reps} rep(s), wall time of the whole command")
    print(f"  --workers 1 --threads 1: median {m1:6.2f} s   {[round(t, 2) for t in times[1]]}")
    print(f"  --workers 2 --threads 1: median {m2:6.2f} s   {[round(t, 2) for t in times[2]]}")
    print(f"  speed-up: {m1 / m2:.2f}x (target >= 1.8x on 2 cores)")
    via, bare = runner_overhead(max(3, args.reps))
    print(f"runner overhead, one trial: run_trial {via:.3f} s vs bare prepare+train {bare:.3f} s"
          f" -> {100 * (via / bare - 1):+.1f} % (target <= 5 %)")
    print(f"command: {sys.executable} benchmarks/bench_parallel.py --reps {args.reps} "
          f"--hidden '{args.hidden}' --epochs {args.epochs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
