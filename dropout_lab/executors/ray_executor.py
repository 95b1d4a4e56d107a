"""Run packs as Ray tasks, on a local Ray instance or on a cluster (``--executor ray``).

Each pack (a solo trial is a pack of one) is ONE task declaring its resources (``num_cpus`` =
the pack's threads, and one GPU when its device is cuda). The task loads the data set itself
(from the worker's cache or ``dataset.path``) and returns one :class:`TrialOutcome` per
member; a solo trial's epoch rows and checkpoints reach the driver through a Ray queue while
it runs. Only the driver writes the runs directory, so the cluster needs no shared file
system. A task that is lost (its worker died, its node left) loses every member of its pack,
recorded as failed, so a re-run retries them. Every node needs dropout-lab and its
dependencies installed (the same version as the driver).

Ray is an optional extra (``pip install "dropout-lab[ray]"``) and is imported only here.
"""

from __future__ import annotations

import contextlib
import socket
from collections import deque
from collections.abc import Generator
from typing import Any

from dropout_lab.errors import ExecutorError
from dropout_lab.executors.base import Events, lost_trial, pack_members, run_members
from dropout_lab.packs.plan import Pack
from dropout_lab.packs.train import PackMember
from dropout_lab.trial import TrialOutcome

POLL_SECONDS = 0.5


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ExecutorError(
            "--executor ray needs Ray, which is an optional extra: "
            "pip install \"dropout-lab[ray]\""
        ) from None
    return ray


def _ray_pack(members: list[PackMember], threads: int, workers: int,
              stacked: bool = False, channel: Any = None
              ) -> tuple[str, list[TrialOutcome]]:
    """The body of a Ray task: one pack, its outcomes returned to the driver (no files
    written here), with this task's Ray id (the driver records which task ran which
    members: :attr:`RayExecutor.tasks`). A member continues from its ``resume`` (a
    checkpoint the driver found; ``stacked``: see run_members); epoch rows and checkpoints
    go to the driver through ``channel`` (a Ray queue), which the driver drains before it
    takes the outcomes."""
    import ray

    on_epoch = on_checkpoint = None
    if channel is not None:
        def on_epoch(tid: str, epoch: int, epochs: int, row: dict[str, Any]) -> None:
            channel.put(("epoch", tid, epoch, epochs, row))  # blocks until the queue has it

        def on_checkpoint(tid: str, epoch: int, data: bytes) -> None:
            channel.put(("checkpoint", tid, epoch, data))

    task_id = ray.get_runtime_context().get_task_id() or ""
    return task_id, run_members(members, threads, workers, on_epoch,
                                on_checkpoint=on_checkpoint, stacked=stacked)


def _drain(channel: Any, events: Events) -> None:
    """Pass on every epoch row and checkpoint the tasks have put in ``channel`` so far."""
    n = channel.qsize()
    if not n:
        return
    for message in channel.get_nowait_batch(n):
        if message[0] == "epoch":
            events.epoch(*message[1:])
        else:
            events.checkpoint(*message[1:])


CONNECT_TIMEOUT_SECONDS = 10.0


def _check_reachable(address: str) -> None:
    """Fail fast on an address nobody listens on: ray.init would wait for its GCS for
    minutes. Addresses that are not host:port ("auto", ...) are left to Ray."""
    hostport = address.split("://", 1)[-1]
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        return
    try:
        with socket.create_connection((host.strip("[]"), int(port)),
                                      timeout=CONNECT_TIMEOUT_SECONDS):
            pass
    except OSError as exc:
        raise ExecutorError(f"cannot connect to the Ray cluster at {address}: "
                            f"{exc.strerror or exc} (is `ray start --head` running there?)"
                            ) from None


def _needs_gpu(config: dict[str, Any]) -> bool:
    return config.get("backend") == "torch" and str(config.get("device", "")).startswith("cuda")


class RayExecutor:
    """Connects on construction (a bad address fails before anything is written)."""

    name = "ray"

    def __init__(self, address: str | None = None):
        ray = _import_ray()
        self.address = address
        self.workers = 1
        self.threads = 1
        # (Ray task id, trial ids of its pack) for every task that came back, in order
        self.tasks: list[tuple[str, list[str]]] = []
        self._started_here = not ray.is_initialized()
        if self._started_here:
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                      "logging_level": "warning"}
            if address:
                _check_reachable(address)
            try:
                if address:
                    ray.init(address=address, **kwargs)
                else:  # "local": always a new instance, even when RAY_ADDRESS is set
                    ray.init(address="local", **kwargs)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                where = f"the Ray cluster at {address}" if address else "a local Ray instance"
                first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise ExecutorError(f"cannot connect to {where}: {first}") from None

    def cluster_cpus(self) -> int:
        """CPUs the cluster declares (all nodes), for the workers x threads budget."""
        ray = _import_ray()
        return max(1, int(ray.cluster_resources().get("CPU", 1)))

    def configure(self, workers: int, threads: int) -> None:
        """``workers`` = how many packs are in flight at once; ``threads`` = CPUs per task."""
        self.workers, self.threads = workers, threads

    def close(self) -> None:
        ray = _import_ray()
        if self._started_here and ray.is_initialized():
            ray.shutdown()

    def run(self, packs: list[Pack], events: Events
            ) -> Generator[TrialOutcome, None, None]:
        # Ray sets OMP_NUM_THREADS from num_cpus in its workers, and run_trial limits the BLAS
        # pool with threadpoolctl as the local executor does: equal threads, equal bits.
        ray = _import_ray()
        from ray.util.queue import Queue

        task = ray.remote(_ray_pack)
        queue = deque(packs)
        inflight: dict[Any, Pack] = {}
        # Epoch rows and checkpoints travel from the tasks to the driver through one queue
        # actor (no CPU reserved: it only forwards), as the local executor's pipes carry them.
        channel = Queue(actor_options={"num_cpus": 0})
        try:
            while queue or inflight:
                # Keep at most `workers` tasks submitted, so "started" means running.
                while queue and len(inflight) < self.workers:
                    pack = queue.popleft()
                    # The task gets each member's config as plain data: Ray serializes it, a
                    # node validates it again (run_trial, run_pack).
                    members = pack_members(pack)
                    ref = task.options(num_cpus=self.threads,
                                       num_gpus=1 if _needs_gpu(members[0].config) else 0,
                                       max_retries=0).remote(
                        members, self.threads, self.workers, pack.stacked, channel)
                    inflight[ref] = pack
                    for point in pack.points:
                        events.started(point.trial_id)
                done, _ = ray.wait(list(inflight), num_returns=1, timeout=POLL_SECONDS)
                # a finished task put everything before it returned: drain before its outcome
                _drain(channel, events)
                for ref in done:
                    pack = inflight.pop(ref)
                    try:
                        task_id, outcomes = ray.get(ref)
                    except ray.exceptions.RayError as exc:  # worker died, node lost, ...
                        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                        reason = f"ray task lost ({type(exc).__name__}): {first}"
                        outcomes = [lost_trial(p, reason, self.threads, self.workers)
                                    for p in pack.points]
                    else:
                        self.tasks.append((task_id, [o.trial_id for o in outcomes]))
                    yield from outcomes
        finally:
            for ref in inflight:  # Ctrl-C / --max-failures: cancel what is still running
                try:
                    ray.cancel(ref, force=True)
                except Exception:  # noqa: BLE001 - already finished or gone: nothing to stop
                    pass
            with contextlib.suppress(Exception):  # the cluster may be gone already
                ray.kill(channel.actor)
