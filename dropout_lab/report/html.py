"""One self-contained HTML report: comparison tables, plots as base64 data URIs, inline CSS.

The page loads nothing from anywhere (no scripts, fonts or style sheets), so it can be attached
to a message or opened from disk offline.
"""

from __future__ import annotations

import base64
import datetime as _dt
from html import escape
from pathlib import Path

import yaml

from dropout_lab.comparison import Comparison, Row
from dropout_lab.comparison.values import fmt_value
from dropout_lab.report.cells import CellTable, CellView, Estimate, fmt_number
from dropout_lab.report.plots import Plot
from dropout_lab.report.render import footnotes, pct, seeds_text, title, value_mark
from dropout_lab.store import atomic_write_text

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto;
       max-width: 1200px; padding: 0 1rem; color: #1b1b1b; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.2rem; margin-top: 2rem; }
table { border-collapse: collapse; margin: 0.5rem 0 0.3rem; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #ccc; padding: 0.3rem 0.6rem; text-align: right; vertical-align: top;
         white-space: nowrap; }
.scroll { overflow-x: auto; }
/* Wide comparisons (ten metrics) fit 1400 px: a cell may break between the mean and its
   "± half-width", never inside a number; the scroll box is the fallback for even more. */
table.compare { font-size: 0.9em; }
table.compare td { white-space: normal; padding: 0.25rem 0.4rem; }
table.compare th { white-space: normal; padding: 0.25rem 0.4rem; }
.v { white-space: nowrap; }
th { background: #f1f3f5; }
tr.best td { background: #e6f4ea; } tr.best td.value { font-weight: bold; }
tr.tie td.value { color: #1e7b34; }
.diff { color: #666; font-size: 0.85em; } .diff.sig { color: #111; font-weight: bold; }
.legend, .meta { color: #555; font-size: 0.9em; }
figure { margin: 1.5rem 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9em; }
pre { background: #f6f8fa; padding: 0.8rem; overflow-x: auto; font-size: 0.85em; }
"""


def _estimate_html(e: Estimate, signed: bool = False) -> str:
    """An estimate of the cell model as HTML: the mean and its interval as two unbreakable
    pieces, so a narrow column wraps between them and never inside a number."""
    head = fmt_number(e.mean, signed)
    spread = e.spread_text(signed)
    if e.mean is None or not spread:
        return escape(head)
    return f'<span class="v">{escape(head)}</span> <span class="v">{escape(spread)}</span>'


def _row_html(c: Comparison, row: Row, views: dict[str, CellView]) -> str:
    cls = "best" if row.best else ("tie" if row.tie else "")
    cells = [f'<td class="value">{escape(fmt_value(row.value) + value_mark(row))}</td>',
             f"<td>{escape(seeds_text(row))}</td>"]
    for name in c.metrics:
        view = views[name]
        text = _estimate_html(view.value)
        if view.baseline:
            text += '<div class="diff">baseline</div>'
        elif view.delta is not None and view.delta.mean is not None:
            sig = view.significant
            text += (f'<div class="diff{" sig" if sig else ""}">Δ '
                     f'{_estimate_html(view.delta, signed=True)}{" *" if sig else ""}</div>')
        cells.append(f"<td>{text}</td>")
    return f'<tr class="{cls}">' + "".join(cells) + "</tr>"


def render_html(c: Comparison, plots: list[Plot], notes: list[str]) -> str:
    """The whole page as one string."""
    table = CellTable(c)
    rows = c.rows
    done = sum(r.done for r in rows)
    failed = sum(r.failed for r in rows)
    total = sum(r.total for r in rows)
    axes = c.axes
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>dropout-lab report: {escape(c.name)}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>dropout-lab report: {escape(c.name)}</h1>",
        f'<p class="meta">sweep folder <code>{escape(str(c.sweep_dir))}</code> · '
        f"trials: {done} done, {failed} failed, {total - done - failed} pending, {total} total · "
        f"generated {now}</p>",
        '<p class="meta">axes: ' + "; ".join(
            f"<code>{escape(k)}</code> = {escape(', '.join(fmt_value(v) for v in vals))}"
            for k, vals in axes.items()) + "</p>",
        '<p class="meta">p is the probability of <b>dropping</b> a unit (Srivastava et al. 2014 '
        "write p for keeping it: keep = 1 - p).</p>",
    ]
    for block in c.blocks:
        heading = f"{title(c)}: {block.label}" if c.block_axes else title(c)
        parts.append(f"<h2>{escape(heading)}</h2>")
        head = "".join(f"<th>{escape(h)}</th>" for h in [c.by, "seeds", *c.metrics])
        parts.append(f'<div class="scroll"><table class="compare"><thead><tr>{head}</tr></thead>'
                     "<tbody>")
        parts.extend(_row_html(c, row, table.of(row)) for row in block.rows)
        parts.append("</tbody></table></div>")
        if block.best_value is not None:
            ties = ", ".join(fmt_value(v) for v in block.tie_values) or "none"
            parts.append(f'<p class="legend">best {escape(c.by)} by {escape(c.best_by)}: '
                         f"<b>{escape(fmt_value(block.best_value))}</b>; "
                         f"not distinguishable from it: {escape(ties)}</p>")
    parts.append(
        f'<p class="legend">Each cell: mean ± half-width of the {pct(c.level)} confidence '
        f"interval over seeds (Student t). Δ: paired difference against {escape(c.by)} = "
        f"{escape(fmt_value(c.baseline))} at the same seeds "
        "(every p starts from the same weights); "
        "<b>bold *</b> when its interval excludes 0. ★ best row, ≈ not distinguishable from it "
        "(paired interval of the difference contains 0). † a trial of the row is flagged by "
        "the health checks (see below).</p>")
    parts.extend(f'<p class="legend">{escape(n)}</p>' for n in footnotes(c))
    if plots:
        parts.append("<h2>Plots</h2>")
    for p in plots:
        data = base64.b64encode(p.png).decode("ascii")
        parts.append(f'<figure><img alt="{escape(p.title)}" src="data:image/png;base64,{data}">'
                     f"<figcaption>{escape(p.title)}</figcaption></figure>")
    if notes:
        parts.append("<h2>Notes</h2><ul>" + "".join(f"<li>{escape(n)}</li>" for n in notes)
                     + "</ul>")
    config = yaml.safe_dump(c.base_config, sort_keys=False)
    parts.append(f"<details><summary>resolved base config</summary><pre>{escape(config)}</pre>"
                 "</details>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_report(c: Comparison, plots: list[Plot], notes: list[str], path: Path) -> Path:
    """Write the page atomically (a half-written report never replaces a good one)."""
    path = Path(path)
    if path.is_dir():
        path = path / "report.html"
    atomic_write_text(path, render_html(c, plots, notes))
    return path
