"""Executors run grid points (one trial each) and yield their outcomes; the runner stores them.

One selection point (:func:`create`) for the ``--executor`` names:

* ``local`` (default): ``--workers 1`` runs in this process (:mod:`.serial`), more workers
  run in a pool of processes (:mod:`.local`);
* ``ray``: Ray tasks on a local Ray instance or on a cluster (:mod:`.ray_executor`).

Workers x threads come from :mod:`.budget`.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass

from dropout_lab.errors import ExecutorError
from dropout_lab.executors import budget as budgets
from dropout_lab.executors.base import Events, Executor

__all__ = ["NAMES", "Events", "Executor", "Selected", "check", "create"]

NAMES = ("local", "ray")


@dataclass
class Selected:
    executor: Executor
    budget: budgets.Budget

    def describe(self) -> str:
        where = getattr(self.executor, "address", None)
        return (f"executor {self.executor.name}" + (f" at {where}" if where else "")
                + f": {self.budget.describe()}")


def check(name: str, ray_address: str | None = None) -> None:
    """Raise ExecutorError for an unknown executor name or options that do not fit it."""
    if name not in NAMES:
        close = difflib.get_close_matches(name, NAMES, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ExecutorError(f"unknown executor {name!r}{hint} (known: {', '.join(NAMES)})")
    if ray_address and name != "ray":
        raise ExecutorError("--ray-address needs --executor ray")
    if name == "ray":
        from dropout_lab.executors.ray_executor import _import_ray

        _import_ray()  # not installed: the one-line message naming the extra


def create(name: str, pending: int, grid: int, workers: int | None = None,
           threads: int | None = None, ray_address: str | None = None,
           largest_weights: Callable[[], int | None] | None = None) -> Selected:
    """Build the executor called ``name`` with its workers x threads budget.

    ``largest_weights`` returns the weight count of the grid's biggest trial; it is only
    called when the automatic thread choice depends on it (it may load a data set)."""
    check(name, ray_address)

    if name == "ray":
        from dropout_lab.executors.ray_executor import RayExecutor

        ray_exec = RayExecutor(ray_address)
        try:
            cores = ray_exec.cluster_cpus()
            chosen = _choose(pending, grid, cores, workers, threads, largest_weights)
        except BaseException:
            ray_exec.close()
            raise
        ray_exec.configure(chosen.workers, chosen.threads)
        return Selected(ray_exec, chosen)

    chosen = _choose(pending, grid, budgets.available_cores(), workers, threads,
                     largest_weights)
    if chosen.workers == 1:
        from dropout_lab.executors.serial import SerialExecutor

        return Selected(SerialExecutor(threads=chosen.threads), chosen)
    from dropout_lab.executors.local import LocalExecutor

    return Selected(LocalExecutor(workers=chosen.workers, threads=chosen.threads), chosen)


def _choose(pending: int, grid: int, cores: int, workers: int | None, threads: int | None,
            largest_weights: Callable[[], int | None] | None) -> budgets.Budget:
    weights = None
    # The trial size matters only to an automatic thread count above one.
    if threads is None and largest_weights is not None and (grid < cores or workers is not None):
        weights = largest_weights()
    return budgets.choose(pending, grid, cores, weights, workers=workers, threads=threads)
