"""What the machine was doing while a benchmark ran: CPU steal and load, and the 2-thread ceiling.

On a shared virtual machine the same benchmark gives different 2-thread ratios from one hour
to the next (docs/performance.md): the hypervisor may take time from a vCPU ("steal"), and the
second vCPU may add anything from ~1.4x to ~1.9x to one matrix product. These helpers put
that state beside a benchmark's numbers so a reader can tell a slow machine from slow code:

* :class:`CpuTimes` reads ``/proc/stat`` (Linux) before and after a block and reports the share
  of CPU time that was stolen, busy and idle;
* :func:`gemm_ceiling` times the MNIST MLP's biggest product (128 x 1024 @ 1024 x 1024,
  float32) on NumPy's BLAS at 1 and 2 threads, interleaved: no whole training step can scale
  better from 1 to 2 threads than its products do at that moment.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

_STAT = Path("/proc/stat")
# Fields of the "cpu" line of /proc/stat, in order (user ... steal); see proc(5).
_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


def _cpu_line() -> dict[str, int] | None:
    try:
        first = _STAT.read_text().splitlines()[0].split()
    except (OSError, IndexError):
        return None
    if first[0] != "cpu":
        return None
    return {name: int(v) for name, v in zip(_FIELDS, first[1:], strict=False)}


class CpuTimes:
    """``with CpuTimes() as c: ...`` then ``c.summary()``: steal / busy / idle shares of all
    CPUs' time during the block (None where /proc/stat is missing)."""

    def __enter__(self) -> CpuTimes:
        self.start, self.end = _cpu_line(), None
        return self

    def __exit__(self, *exc: object) -> None:
        self.end = _cpu_line()

    def shares(self) -> dict[str, float] | None:
        if self.start is None or self.end is None:
            return None
        delta = {k: self.end[k] - self.start[k] for k in self.start}
        total = sum(delta.values()) or 1
        idle = delta["idle"] + delta["iowait"]
        steal = delta["steal"]
        return {"steal": steal / total, "idle": idle / total,
                "busy": (total - idle - steal) / total}

    def summary(self) -> str:
        s = self.shares()
        if s is None:
            return "CPU times: not available (no /proc/stat)"
        return (f"CPU time while measuring: busy {s['busy']:.0%}, idle {s['idle']:.0%}, "
                f"stolen by the hypervisor {s['steal']:.1%}")


def gemm_ceiling(repeats: int = 7, calls: int = 30) -> tuple[float, float]:
    """(ms per call at 1 thread, at 2 threads) of a 128 x 1024 @ 1024 x 1024 float32 product,
    medians of ``repeats`` interleaved blocks of ``calls`` calls."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((128, 1024), dtype=np.float32)
    b = rng.standard_normal((1024, 1024), dtype=np.float32)
    out = np.empty((128, 1024), dtype=np.float32)
    times: dict[int, list[float]] = {1: [], 2: []}
    for _ in range(repeats):
        for n in (1, 2):
            with threadpool_limits(limits=n):
                np.matmul(a, b, out=out)  # warm: the thread pool wakes up
                t0 = time.perf_counter()
                for _ in range(calls):
                    np.matmul(a, b, out=out)
                times[n].append((time.perf_counter() - t0) / calls * 1e3)
    return statistics.median(times[1]), statistics.median(times[2])

