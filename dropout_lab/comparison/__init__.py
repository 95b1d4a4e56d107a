"""Comparing the values of an axis across seeds: the model (no rendering, no I/O) and the one
function that reads a sweep folder into it. Renderers live in :mod:`dropout_lab.report`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from dropout_lab.comparison.model import Block, Cell, Comparison, Row, SweepData, TrialRecord, build
from dropout_lab.comparison.selection import At, parse_at
from dropout_lab.comparison.source import load

__all__ = ["At", "Block", "Cell", "Comparison", "Row", "SweepData", "TrialRecord", "build",
           "build_comparison", "load", "parse_at"]


def build_comparison(sweep_dir: Path, *, epochs: bool = False, weights: bool = False,
                     warn: Callable[[str], None] | None = None, **options: Any) -> Comparison:
    """Read ``sweep_dir`` and build its comparison (``options``: those of :func:`build`).
    ``--at N`` needs the per-epoch rows, so they are read whenever ``at`` is a number.
    ``warn``: called once per damaged file the reader skipped."""
    at = options.get("at", "last")
    return build(load(sweep_dir, epochs=epochs or isinstance(at, int), weights=weights,
                      warn=warn), **options)
