"""Training steps of K members stacked in a pack against K solo trials (torch CPU).

    .venv/bin/python benchmarks/bench_packs_step.py [--members 4 8] [--repeats 5] [--threads 1]
        [--device cuda]

For each MLP below, K networks (inverted dropout, p = 0.5, float32, momentum) start from their
own initial weights. A *solo* block steps each of the K networks S times as the trainer does
on the CPU (gather the mini-batch, sample its noise from the trial's own Generator, call
``train_step``); a *pack* block makes S stacked steps of one TorchPackNetwork holding the K
members (gather K mini-batches on the device, sample the K members' noise from their own
Generators through the variant registry, one ``_step``), as ``packs.epochs.PackEpochs`` does.
Blocks alternate, so slow phases of a shared machine hit both. Reported: median milliseconds
per member-step (one optimizer step of one member), member-steps per second, and
solo/pack = the pack's speed-up, from the medians. packs-sweep's ``--pack auto`` reads these.
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass

import numpy as np
import torch
from machine import CpuTimes

from dropout_lab.backends import registry
from dropout_lab.backends.base import NetSpec, init_weights
from dropout_lab.backends.torch_pack import TorchPackNetwork
from dropout_lab.dropout import make_plan
from dropout_lab.specs.backends import OptimizerSpec
from dropout_lab.variants import HostOps


@dataclass(frozen=True)
class Case:
    name: str
    sizes: tuple[int, ...]
    batch: int
    steps: int  # stacked steps (and steps per solo network) per timed block


CASES = (
    Case("64-128-10, batch 32", (64, 128, 10), 32, 100),
    Case("784-256-256-10, batch 128", (784, 256, 256, 10), 128, 20),
    Case("784-1024-1024-10, batch 128", (784, 1024, 1024, 10), 128, 4),
)
N_EXAMPLES = 2048
P = 0.5


def setups(case: Case, k: int, device: str = "cpu"):
    """(solo block, pack block): closures running one timed block each."""
    sizes = list(case.sizes)
    plan = make_plan("inverted", 0.0, [P] * (len(sizes) - 2), sizes, "float32")
    spec = NetSpec(case.sizes, "relu", "float32", tuple(plan.test_scales()))
    train = OptimizerSpec("momentum", lr=0.01)
    weights = [init_weights(sizes, "relu", np.random.default_rng(seed)) for seed in range(k)]
    data_rng = np.random.default_rng(99)
    x = data_rng.normal(size=(N_EXAMPLES, sizes[0])).astype(np.float32)
    y = data_rng.integers(0, sizes[-1], size=N_EXAMPLES)
    orders = [np.random.default_rng(100 + m).permutation(N_EXAMPLES) for m in range(k)]
    backend = registry.create("torch")
    solos = [backend.build(spec, w, train, device) for w in weights]
    solo_rngs = [np.random.default_rng(200 + m) for m in range(k)]
    bs = case.batch

    on_cpu = device == "cpu"
    x_dev, y_dev = solos[0]._to_backend(x), solos[0]._labels(y)
    orders_dev = [solos[0]._labels(o) for o in orders]

    def solo_block() -> None:
        for m, net in enumerate(solos):
            for s in range(case.steps):
                start = (s * bs) % N_EXAMPLES
                noise = plan.sample(solo_rngs[m], bs)
                if on_cpu:  # the trainer's CPU path (host_epoch): train_step per mini-batch
                    idx = orders[m][start : start + bs]
                    net.train_step(x[idx], y[idx], noise)
                else:  # a device: data resident, no read-back per step (DeviceEpochs)
                    idx_t = orders_dev[m][start : start + bs]
                    with torch.no_grad():
                        net._device_step(x_dev.index_select(0, idx_t),
                                         y_dev.index_select(0, idx_t), net._noise(noise))

    pack = TorchPackNetwork(spec, weights, [train] * k, [plan.test_scales()] * k, device)
    xt, yt = pack._to_backend(x), pack._labels(y)
    ops = HostOps([np.random.default_rng(300 + m) for m in range(k)], "float32")
    idx_all = pack._labels(np.stack(orders))
    rates = np.full(k, P)

    def pack_block() -> None:
        with torch.no_grad():
            for s in range(case.steps):
                start = (s * bs) % N_EXAMPLES
                idx = idx_all[:, start : start + bs].reshape(-1)
                xb = xt.index_select(0, idx).view(k, bs, -1)
                yb = yt.index_select(0, idx).view(k, bs)
                ops.start()
                units: list[torch.Tensor | None] = [None] * (len(sizes) - 1)
                for layer in range(1, len(sizes) - 1):
                    r = plan.kind.sample(ops, (k, bs, sizes[layer]), rates)
                    units[layer] = pack._to_backend(r)
                pack._step(xb, yb, (units, [None] * (len(sizes) - 1)))

    return solo_block, pack_block


def measure(case: Case, k: int, repeats: int, device: str = "cpu") -> dict[str, float]:
    solo_block, pack_block = setups(case, k, device)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    solo_block(), pack_block()  # warm-up: buffers, first-touch allocations
    solo_t, pack_t = [], []
    for _ in range(repeats):
        sync()
        t0 = time.perf_counter()
        solo_block()
        sync()
        solo_t.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        pack_block()
        sync()
        pack_t.append(time.perf_counter() - t0)
    member_steps = k * case.steps
    solo_ms = statistics.median(solo_t) / member_steps * 1e3
    pack_ms = statistics.median(pack_t) / member_steps * 1e3
    return {"solo_ms": solo_ms, "pack_ms": pack_ms, "speedup": solo_ms / pack_ms}


def load_average() -> str:
    try:
        return " ".join(open("/proc/loadavg").read().split()[:3])
    except OSError:
        return "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, nargs="+", default=[4, 8])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="the two smaller networks only")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__} on {args.device}, {args.threads} thread(s), float32, "
          f"inverted p = {P}, "
          f"momentum; load average at start: {load_average()}")
    print(f"{'network':<30} {'K':>3} {'solo ms/step':>13} {'pack ms/step':>13} "
          f"{'solo steps/s':>13} {'pack steps/s':>13} {'speed-up':>9}")
    cases = CASES[:2] if args.quick else CASES
    with CpuTimes() as cpu:
        for case in cases:
            for k in args.members:
                r = measure(case, k, args.repeats, args.device)
                print(f"{case.name:<30} {k:>3} {r['solo_ms']:>13.3f} {r['pack_ms']:>13.3f} "
                      f"{1e3 / r['solo_ms']:>13.0f} {1e3 / r['pack_ms']:>13.0f} "
                      f"{r['speedup']:>8.2f}x", flush=True)
    print(f"load average at the end: {load_average()}; {cpu.summary()}")
    print("(a member-step is one optimizer step of one member; medians over repeats)")


if __name__ == "__main__":
    main()
