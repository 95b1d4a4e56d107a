"""Run every benchmark in this folder, one after another (they time things: run them alone).

    make bench            # or: .venv/bin/python benchmarks/run_all.py [name-filter]

Each benchmark prints its own table and the command that reproduces it. Speed targets live
here, never in the test suite: timings on shared machines are noisy, so each benchmark
reports medians of repeated runs and ratios measured side by side in one run.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def main() -> int:
    here = Path(__file__).parent
    pattern = sys.argv[1] if len(sys.argv) > 1 else ""
    scripts = sorted(p for p in here.glob("bench_*.py") if pattern in p.name)
    status = 0
    for script in scripts:
        print(f"\n=== {script.name} ===", flush=True)
        status |= subprocess.call([sys.executable, str(script)])
    return status


if __name__ == "__main__":
    sys.exit(main())
