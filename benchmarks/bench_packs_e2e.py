"""End to end in one process: a config's grid as one pack against its trials one by one.

    REPS=3 .venv/bin/python benchmarks/bench_packs_e2e.py configs/quickstart.yaml [KEY=VALUE ...]

The grid (backend torch, device cpu, 1 thread) runs twice per repeat: every trial alone
(``run_trial``), then all of them as one pack (``run_pack``). Printed per repeat: wall time of
each, the training part (solo: summed ``train_seconds``; pack: its training time) and the
after-training statistics (summed ``stats_seconds``), the ratios, and the largest difference
in final test accuracy between a member and its solo trial. Not the sweep (no store, no
workers): that is packs-sweep's benchmark; this isolates what the pack itself changes.
"""
from __future__ import annotations

import os
import sys
import time

from dropout_lab.config import load_config
from dropout_lab.packs import PackMember, run_pack
from dropout_lab.sweep import expand
from dropout_lab.trial import run_trial


def main() -> None:
    cfg = load_config(sys.argv[1], ["backend=torch", "device=cpu", *sys.argv[2:]])
    members = [PackMember(p.config_dict, p.trial_id, p.params) for p in expand(cfg)]
    load = " ".join(open("/proc/loadavg").read().split()[:3])
    print(f"{len(members)} trials; load average {load}")
    for _ in range(int(os.environ.get("REPS", "2"))):
        t0 = time.perf_counter()
        solos = [run_trial(m.config, m.trial_id, m.params, threads=1) for m in members]
        t_solo = time.perf_counter() - t0
        t0 = time.perf_counter()
        packed = run_pack(members, threads=1)
        t_pack = time.perf_counter() - t0
        tr_s = sum(o.result["timing"]["train_seconds"] for o in solos)
        st_s = sum(o.result["timing"].get("stats_seconds", 0) for o in solos)
        st_p = sum(o.result["timing"].get("stats_seconds", 0) for o in packed)
        tr_p = max(o.result["timing"]["train_seconds"] for o in packed)
        diff = max(abs(a.result["final"]["test_acc"] - b.result["final"]["test_acc"])
                   for a, b in zip(solos, packed, strict=True))
        print(f"solo {t_solo:.1f} s (train {tr_s:.1f}, stats {st_s:.1f}); pack {t_pack:.1f} s "
              f"(train {tr_p:.1f}, stats {st_p:.1f}); whole x{t_solo / t_pack:.2f}, training "
              f"x{tr_s / tr_p:.2f}; max |test_acc diff| {diff:.4f}", flush=True)


if __name__ == "__main__":
    main()
