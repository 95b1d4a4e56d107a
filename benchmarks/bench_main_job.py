"""The main job against the machine's limit: configs/mnist.yaml, measured and projected.

    .venv/bin/python benchmarks/bench_main_job.py [--data /path/to/mnist] [--epochs 2]
        [--config configs/mnist.yaml] [--threads 1] [--workers 2] [--no-dry-run]

Reads the config file (so it follows changes to it). For every distinct model size of its
grid (``model.hidden``), one trial at the config's settings (dropout p of the base config,
float32, its optimizer and batch size) trains for ``--epochs`` epochs on real MNIST when
``--data`` names a folder with the four IDX files, else on generated data of the same shape
(60,000 + 10,000 examples, 784 features, 10 classes). Printed per model size: seconds per
epoch (training steps, per-epoch evaluation of the training and test sets, total),
multiply-adds per epoch, achieved GFLOP/s of the training steps and of the whole epoch, this
machine's single-process sgemm peak at the same thread count (measured in the same run),
and their ratio. Then the projected wall time of the whole sweep: every trial of the grid at
its measured seconds per epoch x the config's epochs, plus its after-training statistics
(timed once per size), spread over ``--workers`` workers longest-first; and, unless
``--no-dry-run``, what ``dropout-lab sweep CONFIG --dry-run`` estimates for the same grid and
budget, with the ratio (the goal: within 25%).

FLOPs: one multiply-add = 2 FLOPs. A training step of N examples through layers d_0..d_L
does N d_l d_{l+1} multiply-adds per layer forward, as many for dW_l = a_l^T g_l, and as many
again for g_{l-1} = g_l W_l^T except at the first layer; evaluation does the forward only.

Bar (issue 11): >= 70% of the sgemm peak for the [1024, 1024] training step.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from dropout_lab import seeds
from dropout_lab.backends.base import train_epoch
from dropout_lab.config import ExperimentConfig, load_config
from dropout_lab.estimate import _makespan, dry_run
from dropout_lab.evaluation import epoch_metrics
from dropout_lab.sweep import expand
from dropout_lab.trial import after_training_statistics, prepare

ROOT = Path(__file__).resolve().parents[1]
SGEMM_N = 2048


def sgemm_peak(threads: int, repeats: int = 7) -> float:
    """GFLOP/s of a 2048^3 float32 product in this process (best of ``repeats``)."""
    rng = np.random.default_rng(0)
    a = rng.random((SGEMM_N, SGEMM_N), dtype=np.float32)
    b = rng.random((SGEMM_N, SGEMM_N), dtype=np.float32)
    out = np.empty_like(a)
    with threadpool_limits(limits=threads):
        np.matmul(a, b, out=out)  # warm-up: thread start, first touch
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            np.matmul(a, b, out=out)
            times.append(time.perf_counter() - t0)
    return 2 * SGEMM_N**3 / min(times) / 1e9


def step_macs(sizes: list[int], n: int) -> int:
    """Multiply-adds of one training step of n examples (forward, dW, and g for l > 0)."""
    layers = [a * b for a, b in zip(sizes[:-1], sizes[1:], strict=True)]
    return n * (3 * sum(layers) - layers[0])


def forward_macs(sizes: list[int], n: int) -> int:
    return n * sum(a * b for a, b in zip(sizes[:-1], sizes[1:], strict=True))


def measure_shape(cfg: ExperimentConfig, epochs: int, threads: int) -> dict[str, float]:
    """Seconds per epoch (train steps, evaluation) and the statistics' seconds of one trial."""
    prep = prepare(cfg, threads)
    data, net, plan = prep.data, prep.network, prep.plan
    n, bs = len(data.y_train), cfg.train.batch_size
    order_rng = seeds.rng(cfg.seed, "order")
    noise_rng = seeds.rng(cfg.seed, "dropout")
    train_s, eval_s = [], []
    for _ in range(epochs):
        perm = order_rng.permutation(n)
        t0 = time.perf_counter()
        train_epoch(net, data.x_train, data.y_train, perm, bs, plan, noise_rng,
                    cfg.dropout.noise)  # the trainer's own epoch
        t1 = time.perf_counter()
        epoch_metrics(net, data)
        t2 = time.perf_counter()
        train_s.append(t1 - t0)
        eval_s.append(t2 - t1)
    t3 = time.perf_counter()
    after_training_statistics(prep)
    stats = time.perf_counter() - t3
    sizes = list(prep.spec.sizes)
    n_eval = n + len(data.y_test) + (0 if data.y_val is None else len(data.y_val))
    return {"train": statistics.median(train_s), "eval": statistics.median(eval_s),
            "stats": stats, "train_macs": step_macs(sizes, bs) * (n / bs),
            "eval_macs": forward_macs(sizes, n_eval), "n": n}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "configs" / "mnist.yaml"))
    parser.add_argument("--data", default=None, help="folder with the MNIST IDX files")
    parser.add_argument("--epochs", type=int, default=2, help="epochs measured per size")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--no-dry-run", action="store_true")
    args = parser.parse_args(argv)
    print("$ python benchmarks/bench_main_job.py " + " ".join(sys.argv[1:] if argv is None
                                                              else argv))
    if args.data:
        overrides = [f"dataset.path={args.data}"]
        where = f"real MNIST from {args.data}"
    else:
        overrides = ["dataset.name=synthetic", "dataset.n_train=60000", "dataset.n_test=10000",
                     "dataset.n_features=784", "dataset.n_classes=10"]
        where = "generated data of MNIST's shape (60,000 + 10,000 x 784, 10 classes)"
    cfg = load_config(args.config, overrides)
    trials = expand(cfg)
    shapes: dict[str, ExperimentConfig] = {}
    for t in trials:
        shapes.setdefault(repr(t.config.model.hidden), t.config)
    print(f"{args.config}: {len(trials)} trials, {cfg.train.epochs} epochs each; {where}; "
          f"{args.threads} thread(s); {args.epochs} epoch(s) measured per model size\n")

    peak = sgemm_peak(args.threads)
    print(f"sgemm peak ({SGEMM_N}^3 float32, {args.threads} thread(s), best of 7): "
          f"{peak:.1f} GFLOP/s\n")
    header = (f"{'hidden':>14} {'train s/ep':>10} {'eval s/ep':>9} {'total s/ep':>10} "
              f"{'stats s':>7} {'train GFLOP/s':>13} {'% peak':>6} {'epoch GFLOP/s':>13}")
    print(header)
    per_shape: dict[str, dict[str, float]] = {}
    for key, shape_cfg in shapes.items():
        m = measure_shape(shape_cfg, args.epochs, args.threads)
        per_shape[key] = m
        train_gflops = 2 * m["train_macs"] / m["train"] / 1e9
        total = m["train"] + m["eval"]
        epoch_gflops = 2 * (m["train_macs"] + m["eval_macs"]) / total / 1e9
        print(f"{key:>14} {m['train']:10.2f} {m['eval']:9.2f} {total:10.2f} {m['stats']:7.2f} "
              f"{train_gflops:13.1f} {100 * train_gflops / peak:5.0f}% {epoch_gflops:13.1f}")

    epochs = cfg.train.epochs
    seconds = []
    for t in trials:
        m = per_shape[repr(t.config.model.hidden)]
        seconds.append(t.config.train.epochs * (m["train"] + m["eval"]) + m["stats"])
    projected = _makespan(seconds, args.workers)
    print(f"\nprojected wall time of the sweep ({len(trials)} trials x {epochs} epochs on "
          f"{args.workers} worker(s) x {args.threads} thread(s), no contention between "
          f"workers): {projected / 60:.1f} min")
    big = per_shape.get(repr([1024, 1024]))
    if big is not None:
        share = 100 * 2 * big["train_macs"] / big["train"] / 1e9 / peak
        print(f"[1024, 1024] training step: {share:.0f}% of the sgemm peak  "
              f"[bar >= 70%: {'ok' if share >= 70 else 'MISSED'}]")
    if not args.no_dry_run:
        with tempfile.TemporaryDirectory() as runs:
            dr = dry_run(cfg, Path(runs), fresh=True, workers=args.workers,
                         threads=args.threads)
        if dr.seconds is None:
            print("dry-run estimate: unknown (a probe failed)")
        else:
            ratio = dr.seconds / projected
            ok = abs(ratio - 1) <= 0.25
            print(f"dry-run estimate: {dr.seconds / 60:.1f} min = {ratio:.2f}x the projection  "
                  f"[bar within 25%: {'ok' if ok else 'MISSED'}]")
            for note in dr.probe:
                print(f"  probe: {note}")
    print(f"(seconds per epoch are medians of {args.epochs}; projection excludes worker start)"
          if math.isfinite(projected) else "")
    return 0


if __name__ == "__main__":
    sys.exit(main())
