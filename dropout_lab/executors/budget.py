"""Choosing workers x threads: how many trials run at once, and how many threads each gets.

The determinism contract makes the thread count part of a trial's identity: OpenBLAS sums a
float32 product in a different order with 1 and 2 threads (measured here: max difference
6e-5 on a 64x784 @ 784x1024 product), so the same trial with another thread count gives
other numbers. Hence two rules:

* the number of **workers** follows what is left to run (never more processes than pending
  trials, never more busy threads than cores);
* the number of **threads** follows the *grid* and the *size* of a trial, not what is left:
  resuming a half-finished sweep picks the same thread count as the first run did, so the
  resumed trials give the numbers they would have given without the interruption.

Explicit ``--workers``/``--threads`` always win (a warning is returned when they ask for more
busy threads than cores).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

from dropout_lab.errors import ExecutorError

# Below this many weights a trial's matrix products are too small for BLAS threads to pay
# off (digits with hidden [512] has 38k weights); such trials always get one thread.
SMALL_TRIAL_WEIGHTS = 100_000

# Cores auto leaves to other processes when it gives a trial several BLAS threads: a thread
# pool larger than the free cores stalls (threads spin waiting for a descheduled peer).
HEADROOM_CORES = 1

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_CGROUP = Path("/proc/self/cgroup")


def available_cores(cgroup_root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP) -> int:
    """CPUs this process may use: the affinity mask (a container's cpuset, SLURM, taskset),
    further capped by a cgroup CPU quota (Docker ``--cpus``, Kubernetes limits), rounded up.
    ``os.cpu_count`` counts the machine's cores, which a container may not be allowed to
    use: threads beyond the quota are throttled, not run."""
    try:
        cores = max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        cores = max(1, os.cpu_count() or 1)
    quota = cgroup_cpu_quota(cgroup_root, proc_cgroup)
    if quota is not None:
        cores = min(cores, max(1, math.ceil(quota - 1e-9)))
    return cores


def cgroup_cpu_quota(cgroup_root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP
                     ) -> float | None:
    """CPUs' worth of time per second this process's cgroup may use (quota / period), or
    None when there is no quota. cgroup v2: ``cpu.max`` ("max 100000" or "200000 100000");
    v1: ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us`` (quota -1 = none). The process's own
    cgroup is read from ``/proc/self/cgroup``; its ancestors are checked too (the tightest
    quota wins), then the root."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return None
    limits: list[float] = []
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if controllers == "":  # v2 unified hierarchy: "0::/path"
            for d in _dirs_up(cgroup_root, path):
                limits += _v2_quota(d / "cpu.max")
        elif "cpu" in controllers.split(","):  # v1: "4:cpu,cpuacct:/path"
            for base in (cgroup_root / controllers, cgroup_root / "cpu"):
                if base.is_dir():
                    for d in _dirs_up(base, path):
                        limits += _v1_quota(d)
                    break
    return min(limits) if limits else None


def _dirs_up(base: Path, path: str) -> list[Path]:
    """base/path and each of its ancestors up to base itself."""
    parts = [p for p in path.strip("/").split("/") if p]
    return [base.joinpath(*parts[:k]) for k in range(len(parts), -1, -1)]


def _v2_quota(cpu_max: Path) -> list[float]:
    try:
        quota, period = cpu_max.read_text().split()[:2]
    except (OSError, ValueError):
        return []
    return [] if quota == "max" else [int(quota) / int(period)]


def _v1_quota(d: Path) -> list[float]:
    try:
        quota = int((d / "cpu.cfs_quota_us").read_text())
        period = int((d / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return []
    return [quota / period] if quota > 0 and period > 0 else []


@dataclass(frozen=True)
class Budget:
    workers: int
    threads: int
    auto: bool  # True when at least one of the two was chosen automatically
    warning: str | None = None

    def describe(self) -> str:
        w = "worker" if self.workers == 1 else "workers"
        t = "thread" if self.threads == 1 else "threads"
        return f"{self.workers} {w} x {self.threads} {t}" + (" (auto)" if self.auto else "")


def choose(pending: int, grid: int, cores: int, largest_trial_weights: int | None = None,
           workers: int | None = None, threads: int | None = None) -> Budget:
    """Workers and threads for ``pending`` trials out of a grid of ``grid`` on ``cores`` cores.

    ``largest_trial_weights`` is the weight count of the biggest trial of the grid (None when
    unknown: treated as big). Auto rule, from the grid size ``n`` and the cores ``c``:
    small trials or ``n >= c`` -> 1 thread each; else ``(c - 1) // n`` threads
    (``(c - 1) // workers`` when ``--workers`` is given), at least 1: one core's worth of
    headroom, because a multi-threaded BLAS that shares its cores with one other busy process
    runs several times slower than with one thread fewer (measured: 2 threads 4x slower than 1
    on a busy 2-core machine, docs/parallel.md). Workers then fill the cores:
    ``min(pending, c // threads)`` (at least 1)."""
    if workers is not None and workers < 1:
        raise ExecutorError(f"--workers must be at least 1, got {workers}")
    if threads is not None and threads < 1:
        raise ExecutorError(f"--threads must be at least 1, got {threads}")
    cores = max(1, cores)
    auto = workers is None or threads is None
    if threads is None:
        small = largest_trial_weights is not None and largest_trial_weights < SMALL_TRIAL_WEIGHTS
        if small:
            threads = 1
        elif workers is not None:
            threads = max(1, (cores - HEADROOM_CORES) // workers)
        elif grid >= cores:
            threads = 1
        else:
            threads = max(1, (cores - HEADROOM_CORES) // max(1, grid))
    if workers is None:
        workers = max(1, min(max(1, pending), cores // threads))
    warning = None
    if workers * threads > cores:
        warning = (f"{workers} workers x {threads} threads = {workers * threads} busy threads on "
                   f"{cores} core(s): trials will compete for the CPU")
    return Budget(workers=workers, threads=threads, auto=auto, warning=warning)


def weight_count(sizes: list[int]) -> int:
    """Weights of an MLP with layer sizes [inputs, hidden..., classes] (biases excluded)."""
    return sum(a * b for a, b in zip(sizes[:-1], sizes[1:], strict=True))
