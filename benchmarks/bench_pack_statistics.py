"""The after-training statistics of a pack's members: batched against member by member.

    nice -n 15 .venv/bin/python benchmarks/bench_pack_statistics.py [--members 6]
        [--hidden 256,256] [--samples 2000] [--mc 30] [--repeats 3] [--dtype float32]

K members (torch CPU, 1 thread; mnist-quick's shape by default: 784-256-256-10, p = 0, 0.2,
0.5, 0.8, 0.9, ... per member, eval.max_samples 2000, mc_samples 30) are trained one epoch
on synthetic data (the statistics see trained, different networks), then their statistics
are computed twice per repeat, alternating: ``after_training`` member by member (what an
unpacked trial and, before issue 19's remainder, a pack did) and ``after_training_many`` with
the pack's stacked forward (the Monte Carlo passes of the members as one stacked pass).
Printed: the median seconds of each, the ratio, the share of the Monte Carlo part, and the
largest relative difference between the two ways' numbers. The load average is printed
before and after: read the ratio, not the absolute times, on a shared machine.
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from dropout_lab.config import validate
from dropout_lab.metrics import after_training, after_training_many
from dropout_lab.packs.stacked import _stacked_forward
from dropout_lab.training import train
from dropout_lab.trial import prepare

RATES = (0.0, 0.2, 0.5, 0.8, 0.9, 0.5, 0.2, 0.8)


def _load() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def _flatten(d: object, out: list[float]) -> list[float]:
    if isinstance(d, dict):
        for v in d.values():
            _flatten(v, out)
    elif isinstance(d, list):
        for v in d:
            _flatten(v, out)
    elif isinstance(d, float):
        out.append(d)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--members", type=int, default=6)
    ap.add_argument("--hidden", default="256,256")
    ap.add_argument("--samples", type=int, default=2000)
    ap.add_argument("--mc", type=int, default=30)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--dtype", default="float32")
    args = ap.parse_args()
    hidden = [int(h) for h in args.hidden.split(",")]
    preps = []
    for k in range(args.members):
        cfg = validate({
            "name": "bench", "backend": "torch", "device": "cpu", "dtype": args.dtype,
            "seed": k // len(RATES),
            "dataset": {"name": "synthetic", "n_train": 2000, "n_test": args.samples,
                        "n_features": 784, "n_classes": 10},
            "model": {"hidden": hidden}, "dropout": {"p": RATES[k % len(RATES)]},
            "train": {"epochs": 1, "batch_size": 128, "optimizer": "momentum", "lr": 0.05},
            "eval": {"max_samples": args.samples, "mc_samples": args.mc}})
        prep = prepare(cfg, threads=1)
        train(prep)
        preps.append(prep)
    print(f"{args.members} members 784-{'-'.join(map(str, hidden))}-10 {args.dtype}, "
          f"{args.samples} samples, mc {args.mc}; load average {_load()}", flush=True)
    alone_s, batched_s, mc_alone, mc_batched = [], [], [], []
    worst = 0.0
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        alone = [after_training(p) for p in preps]
        alone_s.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        batched = after_training_many(preps, _stacked_forward(preps))
        batched_s.append(time.perf_counter() - t0)
        # the Monte Carlo part alone: uncertainty only
        for p in preps:
            p.config.eval.coadaptation = False
        t0 = time.perf_counter()
        [after_training(p) for p in preps]
        mc_alone.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        after_training_many(preps, _stacked_forward(preps))
        mc_batched.append(time.perf_counter() - t0)
        for p in preps:
            p.config.eval.coadaptation = True
        a = np.array(_flatten(alone, []))
        b = np.array(_flatten(batched, []))
        ok = np.isfinite(a) & np.isfinite(b)
        worst = max(worst, float(np.max(np.abs(a[ok] - b[ok]) / np.maximum(1e-12, np.abs(a[ok])))))
        print(f"  repeat: member by member {alone_s[-1]:.2f} s, batched {batched_s[-1]:.2f} s "
              f"(uncertainty only: {mc_alone[-1]:.2f} s vs {mc_batched[-1]:.2f} s)", flush=True)
    ma, mb = statistics.median(alone_s), statistics.median(batched_s)
    print(f"median: member by member {ma:.2f} s, batched {mb:.2f} s, x{ma / mb:.2f}; "
          f"uncertainty only {statistics.median(mc_alone):.2f} s vs "
          f"{statistics.median(mc_batched):.2f} s, "
          f"x{statistics.median(mc_alone) / statistics.median(mc_batched):.2f}; "
          f"max relative difference {worst:.1e}; load average {_load()}")


if __name__ == "__main__":
    main()
