"""Packs against today's best unpacked setting, whole sweeps side by side (issue 19).
Run it alone: it times things.

    .venv/bin/python benchmarks/bench_packs.py [--workloads quickstart,mnist-quick,main-256,
        main-1024] [--data /path/to/mnist] [--reps 3] [--settings numpy,torch,packed,auto]
        [--pack 8] [--epochs N] [--set KEY=VALUE ...]

Each workload runs through the real CLI (``python -m dropout_lab sweep ... --fresh --json``,
one process per run, so interpreter start, imports and data loading are counted) under each
setting, the settings alternated within every repeat:

* ``numpy``: today's default and best unpacked setting, the numpy backend, 2 workers x 1
  thread (``--pack 1``);
* ``torch``: the torch backend unpacked, 2 workers x 1 thread (``--pack 1``);
* ``packed``: the torch backend, 2 workers x 1 thread, ``--pack N`` (``--pack``, default 8:
  the spread over 2 workers makes 2 packs of half the grid at most 8 each);
* ``auto``: the torch backend, 2 workers x 1 thread, ``--pack auto`` (what a user gets).

Workloads: ``quickstart`` (configs/quickstart.yaml, digits, 8 trials); ``mnist-quick``
(configs/mnist-quick.yaml on real MNIST, 25 trials; ``--data`` names the IDX folder);
``main-256`` and ``main-1024``: one epoch of configs/mnist.yaml's [256, 256] and
[1024, 1024] halves (20 trials each; after-training statistics off: training is measured).
``--epochs`` overrides the epochs of every workload (a reduced run: say so).

Printed per workload and setting: the median wall time of the whole command, the training
throughput (examples x epochs summed over the trials, per second of wall time) and the
speed-up against ``numpy``; ``uptime`` before and after (the machine is shared).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

WORKLOADS: dict[str, tuple[str, list[str]]] = {
    "quickstart": ("configs/quickstart.yaml", []),
    "mnist-quick": ("configs/mnist-quick.yaml", []),
    "main-256": ("configs/mnist.yaml", ["sweep.model.hidden=[[256,256]]", "train.epochs=1",
                                        "eval.coadaptation=false", "eval.uncertainty=false"]),
    "main-1024": ("configs/mnist.yaml", ["sweep.model.hidden=[[1024,1024]]", "train.epochs=1",
                                         "eval.coadaptation=false",
                                         "eval.uncertainty=false"]),
}
MNIST = {"mnist-quick", "main-256", "main-1024"}


def setting_args(setting: str, pack: int) -> list[str]:
    backend = "numpy" if setting == "numpy" else "torch"
    args = ["--set", f"backend={backend}", "--workers", "2", "--threads", "1"]
    if backend == "torch":
        args += ["--set", "device=cpu"]
    pack_arg = {"numpy": "1", "torch": "1", "packed": str(pack), "auto": "auto"}[setting]
    return args + ["--pack", pack_arg]


def run_once(workload: str, setting: str, pack: int, data: str | None, epochs: int | None,
             runs: Path, extra: list[str] | None = None) -> tuple[float, int, list[int | None]]:
    """(wall seconds, training examples x epochs over the trials, pack sizes seen)."""
    config, sets = WORKLOADS[workload]
    cmd = [sys.executable, "-m", "dropout_lab", "sweep", str(ROOT / config), "--runs-dir",
           str(runs), "--fresh", "--json", *setting_args(setting, pack)]
    for s in sets:
        cmd += ["--set", s]
    if epochs is not None:
        cmd += ["--set", f"train.epochs={epochs}"]
    for s in extra or []:
        cmd += ["--set", s]
    if workload in MNIST and data:
        cmd += ["--set", f"dataset.path={data}"]
    t0 = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True,
                         env=dict(os.environ, NO_COLOR="1"), cwd=ROOT)
    wall = time.perf_counter() - t0
    if res.returncode != 0:
        raise SystemExit(f"{workload}/{setting} failed ({res.returncode}):\n{res.stderr[-2000:]}")
    doc = json.loads(res.stdout)
    examples, packs = 0, []
    sweep_dir = Path(doc["sweep_dir"])
    for t in doc["trials"]:
        trial = sweep_dir / "trials" / t["trial_id"]
        rows = [json.loads(x) for x in (trial / "metrics.jsonl").read_text().splitlines()]
        examples += sum(r.get("train_n", 0) for r in rows)  # examples trained per epoch
        result = json.loads((trial / "result.json").read_text())
        packs.append(result["env"].get("pack", {}).get("size"))
    return wall, examples, packs


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "uptime unavailable"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workloads", default="quickstart,mnist-quick,main-256,main-1024")
    ap.add_argument("--settings", default="numpy,torch,packed,auto")
    ap.add_argument("--data", default=None, help="folder with the MNIST IDX files")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--pack", type=int, default=8, help="--pack of the 'packed' setting")
    ap.add_argument("--epochs", type=int, default=None, help="override every workload's epochs")
    ap.add_argument("--set", dest="sets", action="append", default=[],
                    help="one more --set for every run (a reduced grid: say so)")
    args = ap.parse_args()
    workloads = args.workloads.split(",")
    settings = args.settings.split(",")
    for w in workloads:
        if w not in WORKLOADS:
            raise SystemExit(f"unknown workload {w!r} (known: {', '.join(WORKLOADS)})")
    print(f"before: {uptime()}", flush=True)
    print(f"cores: {len(os.sched_getaffinity(0))}, reps {args.reps}, --pack {args.pack}, "
          f"epochs {'as configured' if args.epochs is None else args.epochs}, "
          f"sets {args.sets}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for w in workloads:
            walls: dict[str, list[float]] = {s: [] for s in settings}
            examples: dict[str, int] = {}
            packs: dict[str, list[int | None]] = {}
            for rep in range(args.reps):
                order = settings if rep % 2 == 0 else settings[::-1]
                for s in order:
                    wall, ex, sizes = run_once(w, s, args.pack, args.data, args.epochs,
                                               Path(tmp) / f"{w}-{s}", args.sets)
                    walls[s].append(wall)
                    examples[s], packs[s] = ex, sizes
                    print(f"  {w} {s} rep {rep + 1}: {wall:.1f} s", flush=True)
            print(f"\n{w}: median of {args.reps}")
            print("| setting | wall (s) | examples x trials / s | vs numpy | packs |")
            print("|---|---:|---:|---:|---|")
            base = statistics.median(walls["numpy"]) if "numpy" in walls else None
            for s in settings:
                m = statistics.median(walls[s])
                speed = f"{base / m:.2f}x" if base else "-"
                sizes = sorted({p for p in packs[s] if p is not None}, reverse=True)
                shown = ", ".join(map(str, sizes)) if sizes else "none"
                print(f"| {s} | {m:.1f} | {examples[s] / m:,.0f} | {speed} | {shown} |")
            print(flush=True)
    print(f"after: {uptime()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
