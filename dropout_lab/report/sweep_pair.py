"""Renderers of ``compare A B`` (:class:`~dropout_lab.comparison.pairing.SweepPair`): a rich
table, tidy CSV and the JSON document (built by :func:`dropout_lab.comparison.pairing.to_json_doc`).
"""

from __future__ import annotations

import csv
import io
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from dropout_lab.comparison.pairing import PAIRED, Difference, SweepPair, to_json_doc
from dropout_lab.comparison.selection import describe
from dropout_lab.comparison.values import fmt_value
from dropout_lab.report.render import fmt, json_text, pct, pm

PAIR_FORMATS = ("rich", "csv", "json")


def _test(d: Difference) -> str:
    """How B - A was tested: 'paired n=3' or 'Welch df=2.9'."""
    if d.kind == PAIRED:
        return f"paired n={len(d.seeds)}"
    return "Welch" + ("" if d.df is None else f" df={d.df:.1f}")


def _diff_text(d: Difference) -> str:
    if d.mean is None:
        return "-"
    ci = "" if d.lo is None else f" [{fmt(d.lo, True)}, {fmt(d.hi, True)}]"
    return f"{fmt(d.mean, True)}{ci}" + (" *" if d.excludes_zero else "")


def header_lines(pair: SweepPair) -> list[str]:
    """Which sweep is A and which B, what differs, what the points are matched on."""
    differ = "; ".join(f"{k}: {fmt_value(a)} -> {fmt_value(b)}" for k, (a, b) in
                       pair.differ.items()) or "nothing (same base config)"
    lines = [f"A: {pair.a.name} ({pair.a.sweep_dir})", f"B: {pair.b.name} ({pair.b.sweep_dir})",
             f"base configs differ in: {differ}",
             f"matched on: {', '.join(pair.matched_on) or 'nothing (one point)'}; "
             f"{describe(pair.at)}"]
    return lines


def notes(pair: SweepPair) -> list[str]:
    out = [f"B - A with its {pct(pair.level)} interval; paired over the seeds both sides "
           "ran, Welch (unpaired) where they share none; * the interval excludes 0."]
    for side, points in (("A", pair.only_a), ("B", pair.only_b)):
        if points:
            shown = "; ".join(", ".join(f"{k}={fmt_value(v)}" for k, v in p.items())
                              for p in points[:3])
            more = f" and {len(points) - 3} more" if len(points) > 3 else ""
            out.append(f"only in {side} (not compared): {shown}{more}")
    return out


def render_rich(pair: SweepPair) -> Group:
    """One table: a line per point and metric (its natural width is about 105 columns with
    one matched axis; :func:`render_rich_narrow` is the same numbers for 80)."""
    table = Table(title=f"{pair.a.name} (A) vs {pair.b.name} (B)")
    for key in pair.matched_on:
        table.add_column(key, justify="right")
    for name in ("metric", "A", "B", "B - A", "test"):
        table.add_column(name, justify="left" if name in ("metric", "test") else "right")
    for p in pair.points:
        for i, (name, cell) in enumerate(p.metrics.items()):
            keys = [fmt_value(p.params[k]) if i == 0 else "" for k in pair.matched_on]
            table.add_row(*keys, name, pm(cell.a), pm(cell.b), _diff_text(cell.diff),
                          _test(cell.diff))
    return Group(*[Text(line) for line in header_lines(pair)], table,
                 *[Text(n, style="dim") for n in notes(pair)])


def _point_label(pair: SweepPair, params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={fmt_value(params[k])}" for k in pair.matched_on) or "the one point"


def render_rich_narrow(pair: SweepPair) -> Group:
    """The same rows for a narrow terminal (80 columns): every point is a row of its own
    naming its axes, A and B share a cell (two lines), the difference's interval goes under
    its mean, and the test is a note when every difference used the same one. No metric is
    left out: metrics are rows, and rows are never hidden."""
    tests = {_test(c.diff) for p in pair.points for c in p.metrics.values()}
    one_test = tests.pop() if len(tests) == 1 else None
    table = Table(title=f"{pair.a.name} (A) vs {pair.b.name} (B)")
    table.add_column("point / metric")
    table.add_column("A / B", justify="right")
    table.add_column("B - A", justify="right")
    for i, p in enumerate(pair.points):
        if i:
            table.add_section()
        table.add_row(Text(_point_label(pair, p.params), style="bold"), "", "")
        for name, cell in p.metrics.items():
            d = cell.diff
            lines = ["-" if d.mean is None else fmt(d.mean, True) + (" *" if d.excludes_zero
                                                                    else "")]
            if d.lo is not None:
                lines.append(f"[{fmt(d.lo, True)}, {fmt(d.hi, True)}]")
            if one_test is None:
                lines.append(_test(d))
            table.add_row(Text("  " + name), Text(f"A {pm(cell.a)}\nB {pm(cell.b)}"),
                          Text("\n".join(lines)))
    extra = [f"every difference: {one_test}"] if one_test else []
    return Group(*[Text(line) for line in header_lines(pair)], table,
                 *[Text(n, style="dim") for n in [*notes(pair), *extra]])


CSV_COLUMNS = ["metric", "a_n", "a_mean", "a_sd", "b_n", "b_mean", "b_sd", "test", "diff_mean",
               "diff_ci_lo", "diff_ci_hi", "diff_df", "diff_excludes_zero", "paired_seeds"]


def render_csv(pair: SweepPair) -> str:
    """Tidy CSV: one line per (point, metric); the matched axes get a column each."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([*pair.matched_on, *CSV_COLUMNS])

    def v(x: Any) -> Any:
        return "" if x is None else x

    for p in pair.points:
        for name, c in p.metrics.items():
            d = c.diff
            w.writerow([*[fmt_value(p.params[k]) for k in pair.matched_on], name,
                        c.a.n, v(c.a.mean), v(c.a.sd), c.b.n, v(c.b.mean), v(c.b.sd), d.kind,
                        v(d.mean), v(d.lo), v(d.hi), v(d.df), d.excludes_zero,
                        " ".join(map(str, d.seeds))])
    return buf.getvalue()


def render_json(pair: SweepPair) -> str:
    return json_text(to_json_doc(pair))
