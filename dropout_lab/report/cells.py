"""The cell model: every number of a comparison table, decided once, for every renderer.

A :class:`CellView` holds one metric in one row: the mean, the interval (clipped to the range
the metric can take: an accuracy interval ends at 1), its half-width, the paired difference
against the baseline with its interval and whether that interval excludes 0, whether the row
is the baseline, and the smallest detectable difference. :func:`cells` builds them once per
comparison; the rich, markdown, CSV, JSON and HTML renderers only lay them out, so the ``±``
a terminal shows and the ``ci`` of the JSON cannot disagree, and no renderer re-parses
another's text.

Number text (:func:`fmt_number`): 4 decimals; a value that is not 0 but rounds to 0.0000
(synergy of 1e-5) is written in scientific notation, never ``-0.0000``. An interval is
written ``mean ± half`` when it is symmetric after clipping and ``mean [lo, hi]`` when the
clip made it asymmetric. No spread (one seed, or seeds that all agree): ``n/a (no spread)``
where a spread is needed.
"""

from __future__ import annotations

from dataclasses import dataclass

from dropout_lab.comparison import Comparison, Row
from dropout_lab.comparison.metric_names import clip
from dropout_lab.stats import Summary

NO_SPREAD = "n/a (no spread)"
DECIMALS = 4


def fmt_number(x: float | None, signed: bool = False) -> str:
    """'0.9622', '+0.0123' (signed), '-' for None; never '-0.0000': an exact 0 is '0.0000'
    (or '+0.0000'), a non-zero value below the last decimal '-1.2e-05'."""
    if x is None:
        return "-"
    if x == 0:
        return "+0.0000" if signed else "0.0000"
    if abs(x) < 0.5 * 10 ** -DECIMALS:
        return f"{x:+.1e}" if signed else f"{x:.1e}"
    return f"{x:+.{DECIMALS}f}" if signed else f"{x:.{DECIMALS}f}"


@dataclass(frozen=True)
class Estimate:
    """A mean with its interval as every renderer shows it: ``lo``/``hi`` already clipped,
    ``half_width`` None unless the clipped interval is symmetric around the mean."""

    n: int
    mean: float | None
    sd: float | None
    lo: float | None
    hi: float | None
    no_spread: bool  # one value, or values that all agree: the interval says nothing

    @property
    def half_width(self) -> float | None:
        if self.mean is None or self.lo is None or self.hi is None:
            return None
        lower, upper = self.mean - self.lo, self.hi - self.mean
        return upper if abs(lower - upper) <= 1e-12 * max(1.0, abs(self.mean)) else None

    @property
    def interval(self) -> list[float] | None:
        return None if self.lo is None or self.hi is None else [self.lo, self.hi]

    def text(self, signed: bool = False) -> str:
        """'0.9622 ± 0.0040', '0.9900 [0.9200, 1.0000]' (clipped), '0.9622' (n = 1),
        '0.9622 ± 0.0000' (no spread), '-'."""
        if self.mean is None:
            return "-"
        head = fmt_number(self.mean, signed)
        if self.lo is None or self.hi is None:
            return head
        if self.no_spread:  # a width of float rounding (7e-16) is a width of 0
            return f"{head} ± {fmt_number(0.0)}"
        half = self.half_width
        if half is not None:
            return f"{head} ± {fmt_number(half)}"
        return f"{head} [{fmt_number(self.lo, signed)}, {fmt_number(self.hi, signed)}]"

    def spread_text(self, signed: bool = False) -> str:
        """The interval part of :meth:`text` alone ('± 0.0040', '[0.92, 1.00]'); '' without."""
        full, head = self.text(signed), fmt_number(self.mean, signed)
        return full[len(head):].strip() if self.mean is not None else ""


def estimate(s: Summary, metric: str | None = None) -> Estimate:
    """``s`` with its interval clipped to ``metric``'s range (None: not clipped)."""
    lo, hi = s.lo, s.hi
    if metric is not None and lo is not None and hi is not None:
        lo, hi = clip(metric, lo, hi)
    return Estimate(s.n, s.mean, s.sd, lo, hi, s.no_spread)


@dataclass(frozen=True)
class CellView:
    """One metric in one row, as every renderer lays it out."""

    metric: str
    value: Estimate  # the mean over seeds, interval clipped to the metric's range
    delta: Estimate | None  # paired difference vs the baseline (None in the baseline row)
    significant: bool  # the delta's interval excludes 0 (never from a zero-width interval)
    baseline: bool
    mdd: float | None  # smallest detectable difference; None: no spread, or no pairing

    @property
    def mdd_text(self) -> str:
        if self.delta is None:
            return "-"
        return NO_SPREAD if self.mdd is None else fmt_number(self.mdd)


def cell_view(name: str, row: Row) -> CellView:
    cell = row.cells[name]
    delta = None
    significant = False
    if cell.diff is not None and not row.is_baseline:
        delta = estimate(cell.diff.summary)
        significant = cell.diff.summary.excludes_zero
    return CellView(name, estimate(cell.summary, name), delta, significant, row.is_baseline,
                    cell.mdd)


class CellTable:
    """The CellViews of every row and shown metric of a comparison, built once per table."""

    def __init__(self, c: Comparison):
        self._rows = {id(row): {name: cell_view(name, row) for name in c.metrics}
                      for row in c.rows}

    def of(self, row: Row) -> dict[str, CellView]:
        """metric -> CellView for one row of the comparison the table was built from."""
        return self._rows[id(row)]
