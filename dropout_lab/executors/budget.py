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

import os
from dataclasses import dataclass

from dropout_lab.errors import ExecutorError

# Below this many weights a trial's matrix products are too small for BLAS threads to pay
# off (digits with hidden [512] has 38k weights); such trials always get one thread.
SMALL_TRIAL_WEIGHTS = 100_000


def available_cores() -> int:
    """CPU cores this process may use (the affinity mask, e.g. a container's or SLURM's)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


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
    small trials or ``n >= c`` -> 1 thread each; else ``c // n`` threads (``c // workers``
    when ``--workers`` is given). Workers then fill
    the cores: ``min(pending, c // threads)`` (at least 1)."""
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
            threads = max(1, cores // workers)
        elif grid >= cores:
            threads = 1
        else:
            threads = max(1, cores // max(1, grid))
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
