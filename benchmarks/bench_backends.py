"""Training throughput of the numpy and torch backends, and what dropout costs a step.

    .venv/bin/python benchmarks/bench_backends.py [--repeats 7] [--threads 1] [--quick]

For each MLP below, both backends are built from the same initial weights and trained on the
same random float32 batches, measured side by side: every repeat times a block of steps on
numpy, then the same block on torch, so slow phases of a shared machine hit both. A step is
what the trainer does per mini-batch: sample the dropout noise (NumPy, both backends) and
call ``train_step``. Reported: median step time over repeats, throughput (examples/s), the
numpy/torch throughput ratio, and the dropout cost = (step(p=0.5) - step(p=0)) / step(p=0),
all from medians; the fastest repeat ("best ms") is shown too, as a check on machine noise.
With more than one thread, every block starts after a short pause, so that neither library's
spinning worker threads are still running when the other's block starts (``SETTLE_SECONDS``).

Project bars (checked here, never in the test suite): numpy throughput >= torch CPU on the
same MLP; dropout (inverted, p=0.5) costs at most 10% of a numpy training step.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits

from dropout_lab.backends import registry
from dropout_lab.backends.base import NetSpec, init_weights
from dropout_lab.dropout import make_plan
from dropout_lab.specs.backends import OptimizerSpec


@dataclass(frozen=True)
class Case:
    name: str
    sizes: tuple[int, ...]
    batch: int
    steps: int  # steps per timed block


CASES = (
    Case("mnist-mlp 784-1024-1024-10", (784, 1024, 1024, 10), 128, 20),
    Case("digits quickstart 64-256-10", (64, 256, 10), 32, 300),
)


def make_step(backend_name: str, case: Case, p: float, threads: int):
    """A closure running ``steps`` trainer steps (noise sampling + train_step) on one net."""
    backend = registry.create(backend_name)
    backend.set_threads(threads)
    sizes = list(case.sizes)
    plan = make_plan("inverted", 0.0, [p] * (len(sizes) - 2), sizes, "float32")
    spec = NetSpec(case.sizes, "relu", "float32", tuple(plan.test_scales()))
    weights = init_weights(sizes, "relu", np.random.default_rng(0))
    net = backend.build(spec, weights, OptimizerSpec("momentum", lr=0.01), "cpu")
    data_rng = np.random.default_rng(1)
    n_batches = 8
    xs = data_rng.random((n_batches, case.batch, sizes[0]), dtype=np.float32)
    ys = data_rng.integers(0, sizes[-1], size=(n_batches, case.batch))
    noise_rng = np.random.default_rng(2)

    def run(steps: int) -> float:
        t0 = time.perf_counter()
        for i in range(steps):
            k = i % n_batches
            net.train_step(xs[k], ys[k], plan.sample(noise_rng, case.batch))
        return (time.perf_counter() - t0) / steps

    run(3)  # warm-up: first-touch allocations, torch's lazy initialisation
    return run


# Pause before every timed block when the libraries run thread pools. Their worker threads
# spin for a while after a call returns (OpenBLAS, torch's OpenMP), so without a pause a
# block of one backend competes with the other's still-spinning threads: measured at 2
# threads, torch took 19.8-20.1 ms per step right after NumPy blocks and 14.2-14.7 ms after
# a 0.5 s pause (NumPy: +0.5-1.6 ms after torch blocks).
SETTLE_SECONDS = 0.5


def measure(case: Case, variants: dict[str, tuple[str, float]], repeats: int, threads: int,
            steps: int) -> dict[str, list[float]]:
    """Seconds per step of every repeat for each (backend, p) variant, interleaved."""
    runners = {key: make_step(b, case, p, threads) for key, (b, p) in variants.items()}
    times: dict[str, list[float]] = {key: [] for key in runners}
    for _ in range(repeats):
        for key, run in runners.items():
            if threads > 1:
                time.sleep(SETTLE_SECONDS)  # let the other library's threads go idle
            times[key].append(run(steps))
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="fewer steps (a smoke run)")
    args = parser.parse_args(argv)
    try:
        import torch
    except ImportError:
        print("torch is not installed: nothing to compare against", file=sys.stderr)
        return 1

    variants = {"numpy p=0": ("numpy", 0.0), "torch p=0": ("torch", 0.0),
                "numpy p=0.5": ("numpy", 0.5), "torch p=0.5": ("torch", 0.5)}
    cmd = "python benchmarks/bench_backends.py " + " ".join(argv if argv is not None
                                                              else sys.argv[1:])
    print(f"$ {cmd.strip()}")
    print(f"numpy {np.__version__}, torch {torch.__version__}, threads={args.threads}, "
          f"median of {args.repeats} interleaved repeats, float32, momentum SGD, "
          "inverted dropout on every hidden layer\n")
    header = (f"{'model':30} {'batch':>5} {'backend':>12} {'ms/step':>9} {'examples/s':>11} "
              f"{'best ms':>8}")
    ok = True
    with threadpool_limits(limits=args.threads):
        for case in CASES:
            steps = max(2, case.steps // 5) if args.quick else case.steps
            times = measure(case, variants, args.repeats, args.threads, steps)
            med = {key: statistics.median(ts) for key, ts in times.items()}
            print(header)
            for key, sec in med.items():
                print(f"{case.name:30} {case.batch:5d} {key:>12} {sec * 1e3:9.3f} "
                      f"{case.batch / sec:11.0f} {min(times[key]) * 1e3:8.3f}")
            ratio = med["torch p=0"] / med["numpy p=0"]
            np_cost = (med["numpy p=0.5"] - med["numpy p=0"]) / med["numpy p=0"]
            torch_cost = (med["torch p=0.5"] - med["torch p=0"]) / med["torch p=0"]
            ratio_ok, cost_ok = ratio >= 1.0, np_cost <= 0.10
            ok &= ratio_ok and cost_ok
            print(f"  numpy/torch throughput (p=0): {ratio:.2f}x  "
                  f"[bar >= 1.00: {'ok' if ratio_ok else 'MISSED'}]")
            print(f"  dropout cost, numpy: {np_cost * 100:+.1f}% of a step  "
                  f"[bar <= 10%: {'ok' if cost_ok else 'MISSED'}];  torch: "
                  f"{torch_cost * 100:+.1f}%\n")
    print("all bars met" if ok else "some bars missed (see above)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
