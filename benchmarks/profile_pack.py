"""Where a packed mnist-quick-sized pack spends its time (cProfile), on synthetic data.

    nice -n 15 .venv/bin/python benchmarks/profile_pack.py [EPOCHS] [--rows 45]

One pack of 6 members of mnist-quick's shape (784-256-256-10, float32, batch 128, momentum
0.9, cosine lr, max-norm 3, 10,000 training rows with a 10% validation split, 2,000 test
rows, eval.max_samples 2000, mc_samples 30), p = 0, 0.2, 0.5, 0.8, 0.9 (seed 0) and 0 (seed
1), torch CPU, 1 thread, on synthetic data (no MNIST needed): run_pack under cProfile. Prints
each member's timing section and the profile's top functions by cumulative time (torch's
import included: it is part of a pack's cost in a fresh worker).
"""
from __future__ import annotations

import copy
import cProfile
import pstats
import sys
import time

from dropout_lab.config import validate
from dropout_lab.packs import PackMember, run_pack
from dropout_lab.sweep import trial_id_of

BASE = {
    "name": "profile", "backend": "torch", "device": "cpu", "dtype": "float32",
    "dataset": {"name": "synthetic", "n_train": 11112, "n_test": 2000, "n_features": 784,
                "n_classes": 10, "val_fraction": 0.1},
    "model": {"hidden": [256, 256]}, "dropout": {"p": 0.5, "input_p": 0.0},
    "train": {"epochs": 3, "batch_size": 128, "optimizer": "momentum", "lr": 0.05,
              "lr_schedule": {"kind": "cosine"}, "momentum": 0.9, "max_norm": 3.0},
    "eval": {"max_samples": 2000, "mc_samples": 30},
}


def main() -> None:
    epochs = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 3
    rows = int(sys.argv[sys.argv.index("--rows") + 1]) if "--rows" in sys.argv else 45
    members = []
    for p, seed in ((0.0, 0), (0.2, 0), (0.5, 0), (0.8, 0), (0.9, 0), (0.0, 1)):
        raw = copy.deepcopy(BASE)
        raw["dropout"]["p"], raw["seed"], raw["train"]["epochs"] = p, seed, epochs
        cfg = validate(raw)
        members.append(PackMember(cfg.trial_dict(), trial_id_of(cfg), {}))
    with open("/proc/loadavg") as f:
        print("load average", " ".join(f.read().split()[:3]))
    profile = cProfile.Profile()
    t0 = time.perf_counter()
    profile.enable()
    outcomes = run_pack(members, threads=1)
    profile.disable()
    print(f"pack of {len(members)}, {epochs} epochs: {time.perf_counter() - t0:.1f} s")
    for o in outcomes:
        print(o.status, {k: round(v, 2) for k, v in o.result["timing"].items()
                         if k.endswith("seconds")})
    pstats.Stats(profile).sort_stats("cumulative").print_stats(rows)


if __name__ == "__main__":
    main()
