"""What the after-training statistics cost: the quickstart sweep with them on and off.

    .venv/bin/python benchmarks/bench_metrics_cost.py [--repeats 5] [--config FILE]

Two measurements, each run side by side (on, off, on, off, ...) so slow phases of a shared
machine hit both, reported as medians over the repeats:

* in-process: ``run_sweep`` with the serial executor and 1 thread, every trial retrained
  (``fresh``) - the compute the statistics add to the sweep itself;
* command: ``dropout-lab sweep CONFIG --fresh`` as a subprocess with default options - the
  wall time a user waits for, interpreter start-up and imports included.

Overhead = (median(on) - median(off)) / median(off). Also printed: the statistics' own time
per trial (``timing.stats_seconds`` in result.json), split by p, from the in-process runs.

Project bar (checked here, never in the test suite): the statistics add at most 10% to the
wall time of the quickstart sweep.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OFF = ["eval.coadaptation=false", "eval.uncertainty=false"]


def in_process(config: Path, overrides: list[str], runs: Path) -> tuple[float, list[dict]]:
    from dropout_lab.config import load_config
    from dropout_lab.executors.serial import SerialExecutor
    from dropout_lab.runner import run_sweep

    cfg = load_config(config, overrides)
    t0 = time.perf_counter()
    report = run_sweep(cfg, runs, SerialExecutor(threads=1), fresh=True)
    return time.perf_counter() - t0, report.results()


def command(config: Path, overrides: list[str], runs: Path) -> float:
    exe = Path(sys.executable).with_name("dropout-lab")
    args = [str(exe), "sweep", str(config), "--fresh", "--runs-dir", str(runs)]
    for o in overrides:
        args += ["--set", o]
    t0 = time.perf_counter()
    subprocess.run(args, check=True, capture_output=True, cwd=ROOT)
    return time.perf_counter() - t0


def overhead(on: list[float], off: list[float]) -> float:
    return (statistics.median(on) - statistics.median(off)) / statistics.median(off)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "quickstart.yaml")
    parser.add_argument("--skip-command", action="store_true",
                        help="only the in-process measurement")
    args = parser.parse_args(argv)
    print(f"$ .venv/bin/python benchmarks/bench_metrics_cost.py --repeats {args.repeats}"
          + (" --skip-command" if args.skip_command else ""))

    tmp = Path(tempfile.mkdtemp(prefix="bench-metrics-"))
    times: dict[str, list[float]] = defaultdict(list)
    stats_by_p: dict[float, list[float]] = defaultdict(list)
    try:
        in_process(args.config, OFF, tmp / "warm")  # imports and data set cache, not timed
        for _ in range(args.repeats):
            t, results = in_process(args.config, [], tmp / "on")
            times["process on"].append(t)
            for r in results:
                stats_by_p[r["params"].get("dropout.p")].append(r["timing"]["stats_seconds"])
            times["process off"].append(in_process(args.config, OFF, tmp / "off")[0])
            if not args.skip_command:
                times["command on"].append(command(args.config, [], tmp / "con"))
                times["command off"].append(command(args.config, OFF, tmp / "coff"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"{'measurement':14} {'median s':>9} {'min s':>7} {'max s':>7}")
    for key, vals in times.items():
        print(f"{key:14} {statistics.median(vals):9.3f} {min(vals):7.3f} {max(vals):7.3f}")
    print("statistics per trial (median ms), by dropout.p: " + ", ".join(
        f"{p}: {statistics.median(v) * 1e3:.1f}" for p, v in sorted(stats_by_p.items())))
    report = {"process_overhead": overhead(times["process on"], times["process off"])}
    if not args.skip_command:
        report["command_overhead"] = overhead(times["command on"], times["command off"])
    for key, value in report.items():
        print(f"{key}: {value * 100:+.1f}%  (bar: <= +10%)")
    print(json.dumps({k: round(v, 4) for k, v in report.items()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
