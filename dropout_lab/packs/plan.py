"""Pending grid points -> packs: the unit of work an executor runs (issue 19).

A :class:`Pack` is a list of grid points that train as one stacked network
(:func:`dropout_lab.packs.train.run_pack`); a point that cannot be packed (its
:func:`~dropout_lab.packs.train.pack_key` is None: the NumPy backend, say) is a pack of one
and runs exactly as an unpacked trial does. :func:`group` is the one place that decides which
points share a pack; it takes any list of points (the sweep's pending points, or a search's
suggested points, issue 23) and is deterministic:

* points pack together only when their keys are equal; a point that continues from a solo
  trial's checkpoint (``GridPoint.resume``) runs alone; one that continues from a pack's
  checkpoint (``GridPoint.resume_in_pack``: the epoch it stopped at) packs only with points
  of its key stopped at the same epoch (a pack's members step in lockstep), and runs on the
  pack's code path even alone or under ``--pack 1`` (:attr:`Pack.stacked`), so that it ends
  bit for bit as its uninterrupted pack;
* each pack holds at most ``max_size`` points, consecutive in the order given (grid order);
* ``spread`` (the workers that will run the packs) caps the pack size at
  ``ceil(packable / spread)``, so that 8 points on 2 workers make 2 packs of 4, not one of 8
  and an idle worker;
* a key's points are cut into packs whose sizes differ by at most one (9 points, at most 4
  per pack: 3 + 3 + 3, not 4 + 4 + 1), the larger ones first, and whose number is a multiple
  of the spread where the points allow (20 points, at most 8, 2 workers: 4 packs of 5, not
  3 packs of 7 + 7 + 6 that would leave a worker idle for a third of the sweep);
* packs come out in the order of their first point.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from dropout_lab.config import ExperimentConfig
from dropout_lab.sweep import GridPoint

# (config) -> hashable key, None when the point cannot be packed
KeyFunction = Callable[[ExperimentConfig], "Hashable | None"]


@dataclass(frozen=True)
class Pack:
    """Grid points that one task trains together (one point: an ordinary solo trial).

    It pickles as the points do: a worker process or a Ray task gets the pack itself."""

    points: tuple[GridPoint, ...]

    @property
    def size(self) -> int:
        return len(self.points)

    @property
    def trial_ids(self) -> list[str]:
        return [p.trial_id for p in self.points]

    @property
    def stacked(self) -> bool:
        """True when the points train as one stacked network even if there is one: more
        than one point, or a point continuing from a pack's checkpoint."""
        return self.size > 1 or any(p.resume_in_pack is not None for p in self.points)

    @property
    def config(self) -> ExperimentConfig:
        """The first member's config: what every member shares (backend, device, network,
        data set) is read from it."""
        return self.points[0].config


@dataclass(frozen=True)
class Packing:
    """How a sweep cuts its points into packs: at most ``max_size`` members, spread over at
    least ``spread`` packs where the points allow (``max_size`` 1: every point alone)."""

    max_size: int = 1
    spread: int = 1

    def group(self, points: Sequence[GridPoint]) -> list[Pack]:
        return group(points, self.max_size, self.spread)

    def describe(self) -> str:
        return "unpacked" if self.max_size == 1 else f"packs of up to {self.max_size}"


def solo(points: Sequence[GridPoint]) -> list[Pack]:
    """Every point alone (``--pack 1``: today's behaviour)."""
    return [Pack((p,)) for p in points]


def group(points: Sequence[GridPoint], max_size: int, spread: int = 1,
          key: KeyFunction | None = None) -> list[Pack]:
    """Cut ``points`` into packs of at most ``max_size`` points with equal keys (see the module
    docstring for the rules). ``key`` defaults to :func:`dropout_lab.packs.train.pack_key`."""
    if max_size < 1:
        raise ValueError(f"max_size must be at least 1, got {max_size}")
    if key is None:
        from dropout_lab.packs.train import pack_key

        key = pack_key
    if max_size == 1 and all(p.resume_in_pack is None for p in points):
        return solo(points)
    by_key: dict[Any, list[int]] = {}  # key -> indices of its points, in order
    singles: list[int] = []
    for i, point in enumerate(points):
        k: Hashable | None
        if point.resume_in_pack is not None:  # a pack's checkpoint: with its epoch's points
            base = key(point.config)
            k = None if base is None else (base, "resumed after epoch", point.resume_in_pack)
        elif point.resume is not None or max_size == 1:
            k = None  # a solo trial's checkpoint: it resumes alone
        else:
            k = key(point.config)
        if k is None:
            singles.append(i)
        else:
            by_key.setdefault(k, []).append(i)
    packable = sum(len(v) for v in by_key.values())
    size = max(1, min(max_size, math.ceil(packable / max(1, spread)))) if packable else 1
    chunks: list[list[int]] = [[i] for i in singles]
    for indices in by_key.values():
        start = 0
        for length in pack_sizes(len(indices), size, spread):
            chunks.append(indices[start:start + length])
            start += length
    chunks.sort(key=lambda c: c[0])
    return [Pack(tuple(points[i] for i in c)) for c in chunks]


def pack_sizes(n: int, max_size: int, spread: int = 1) -> list[int]:
    """The sizes, larger first, of the packs ``n`` points of one key are cut into: the fewest
    packs of at most ``max_size``, their number rounded up to a multiple of ``spread`` (but
    never more packs than points), sizes differing by at most one."""
    if n == 0:
        return []
    count = math.ceil(n / max(1, max_size))
    if spread > 1 and count % spread:
        count = min(n, spread * math.ceil(count / spread))
    base, extra = divmod(n, count)
    return [base + 1] * extra + [base] * (count - extra)
