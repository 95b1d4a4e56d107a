"""Renderers of a :class:`~dropout_lab.comparison.Comparison`: rich, markdown, csv and json
(``FORMATS``), all built on one cell and legend formatter (also used by the HTML report).
``docs/compare.md`` documents the JSON schema."""

from __future__ import annotations

import csv
import io
import json
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from dropout_lab.comparison import Comparison, Row
from dropout_lab.comparison.learned import VARIANT_KEY, learned_vs_swept
from dropout_lab.comparison.learned import to_json as learned_json
from dropout_lab.comparison.selection import describe
from dropout_lab.comparison.values import fmt_value
from dropout_lab.report.cells import NO_SPREAD, CellTable, CellView, estimate, fmt_number
from dropout_lab.safe_text import csv_cell, markup, printable
from dropout_lab.stats import Summary, seeds_needed
from dropout_lab.store import dumps

SCHEMA = "dropout-lab.compare/1"


# -- the shared formatter: the cell model (report/cells.py) decides every number ----------------
def fmt(x: float | None, signed: bool = False) -> str:
    """One number as every table writes it (never '-0.0000'; see cells.fmt_number)."""
    return fmt_number(x, signed)


def pm(s: Summary, signed: bool = False, metric: str | None = None) -> str:
    """'0.9622 ± 0.0040' (mean ± half-width), '0.9900 [0.9200, 1.0000]' when the interval is
    clipped to ``metric``'s range, '0.9622' when n < 2 (see cells.Estimate.text)."""
    return estimate(s, metric).text(signed)


def interval(name: str, s: Summary) -> list[float] | None:
    """[lo, hi] of a level, clipped to the metric's range (a t interval does not know the
    bound: 0.99 ± 0.07 is [0.92, 1.0], not [0.92, 1.06]); the text shows the same."""
    return estimate(s, name).interval


def pct(level: float) -> str:
    return f"{level * 100:g}%"


def value_mark(row: Row) -> str:
    """★ best, ≈ not distinguishable from the best, † a flagged trial in the row."""
    mark = " ★" if row.best else (" ≈" if row.tie else "")
    return mark + (" †" if row.flags else "")


def seeds_text(row: Row) -> str:
    """Trials in the statistics / trials of the row."""
    return f"{row.used}/{row.total}"


def title(c: Comparison) -> str:
    return f"{c.name}: {c.by} {describe(c.at)}"


def legend(c: Comparison) -> str:
    return (f"mean ± half-width of the {pct(c.level)} CI over seeds (Student t); "
            f"Δ = paired difference vs {c.by}={fmt_value(c.baseline)} at the same seeds; "
            f"* = the Δ interval excludes 0; ★ = best {c.by} by {c.best_by}; "
            "≈ = not distinguishable from the best (paired interval contains 0)")


def footnotes(c: Comparison) -> list[str]:
    """What a reader must know besides the numbers: epoch selection, health, power."""
    notes = []
    if c.at != "last":
        epochs = [e for r in c.rows for e in r.epochs]
        span = f" (epochs {min(epochs)}-{max(epochs)})" if epochs else ""
        notes.append(f"numbers {describe(c.at)}{span}; co-adaptation and uncertainty "
                     "statistics are measured after the last trained epoch")
    for block in c.blocks:
        for row in block.rows:
            if not row.flags:
                continue
            where = f"{block.label}, " if c.block_axes else ""
            flags = ", ".join(f"{f} {n}/{row.done}" for f, n in row.flags.items())
            left = (f"; {row.excluded} collapsed trial(s) left out of the statistics"
                    if row.excluded else "")
            notes.append(f"† {where}{c.by}={fmt_value(row.value)}: {flags}{left}")
    if any(r.excluded for r in c.rows):
        notes.append("collapsed = test accuracy near chance or training loss near ln K "
                     "(docs/metrics.md#health-flags); --include-collapsed keeps them")
    if any("under_trained" in r.flags for r in c.rows):
        notes.append("under_trained = still learning fast when the learning rate began to "
                     "decay: its numbers depend on train.epochs, so a difference between p "
                     "values may be one of training speed (docs/metrics.md#health-flags)")
    mdd = power_line(c)
    if mdd:
        notes.append(mdd)
    if len(c.code_versions) > 1:  # results of different code side by side (docs/results.md)
        notes.append("warning: these trials ran on " + str(len(c.code_versions))
                     + " code versions: " + ", ".join(f"{v} ({n} trials)" for v, n
                                                      in c.code_versions.items()))
    return notes


def power_line(c: Comparison) -> str | None:
    """The smallest difference from the baseline that the seeds could detect, per row, for the
    metric that decides the best row (every shown metric's is in the JSON and CSV)."""
    name = c.best_by
    parts, ns = [], set()
    for block in c.blocks:
        for row in block.rows:
            cell = row.cells.get(name)
            if cell is None or cell.diff is None or row.is_baseline or cell.diff.n == 0:
                continue
            where = f"{block.label}: " if c.block_axes else ""
            # no spread (one pair, or pairs that all agree): nothing to size a difference by
            mdd = NO_SPREAD if cell.mdd is None else fmt_number(cell.mdd)
            parts.append(f"{where}{fmt_value(row.value)} {mdd}")
            ns.add(cell.diff.n)
    if not parts:
        return None
    n = "/".join(str(k) for k in sorted(ns))
    return (f"smallest {name} difference vs baseline detectable with {pct(c.power)} power "
            f"(n={n} paired seeds), by {c.by}: " + ", ".join(parts)
            + "; --seeds-for DELTA: seeds a difference needs")


# -- rich ------------------------------------------------------------------------------------
def render_rich(c: Comparison, transpose: bool = False) -> Group:
    """One rich table per block; each cell: mean ± CI, then Δ vs baseline on a second line.
    ``transpose``: a row per value of the axis and metric instead (:func:`_transposed`), for
    a terminal too narrow for a column per metric."""
    if transpose:
        return _transposed(c)
    table = CellTable(c)
    tables: list[RenderableType] = []
    for block in c.blocks:
        head = f"{title(c)}: {block.label}" if c.block_axes else title(c)
        t = Table(title=markup(head), title_justify="left", show_lines=True)
        t.add_column(markup(c.by), justify="right", no_wrap=True)
        t.add_column("seeds", justify="right", no_wrap=True)
        if c.at != "last":
            t.add_column("epoch", justify="right", no_wrap=True)
        for name in c.metrics:
            # a metric column wraps its cells on a narrow terminal rather than cut them with
            # an ellipsis (a pipe prints the table at its natural width: nothing wraps)
            t.add_column(markup(name), justify="right")
        for row in block.rows:
            views = table.of(row)
            label = Text(printable(fmt_value(row.value)) + value_mark(row),
                         style="bold green" if row.best else ("green" if row.tie else ""))
            cells: list[RenderableType] = [
                label, Text(seeds_text(row), style="" if row.used == row.total else "red")]
            if c.at != "last":
                cells.append(_epochs_text(row))
            for name in c.metrics:
                view = views[name]
                txt = Text(view.value.text())
                if view.baseline:
                    txt.append("\nbaseline", style="dim")
                elif view.delta is not None:
                    sig = view.significant
                    txt.append(f"\nΔ {view.delta.text(signed=True)}" + (" *" if sig else ""),
                               style="bold" if sig else "dim")
                cells.append(txt)
            t.add_row(*cells)
        tables.append(t)
    tables.append(Text(printable(legend(c)), style="dim"))
    for note in footnotes(c):
        tables.append(Text(printable(note), style="yellow" if note.startswith("†") else "dim"))
    tables.extend(render_learned_rich(c))
    return Group(*tables)


def render_learned_rich(c: Comparison) -> list[RenderableType]:
    """Learned vs swept (concrete dropout beside the swept optimum, comparison/learned.py):
    a line naming the optimum, then one row per starting p, within 80 columns."""
    out: list[RenderableType] = []
    for e in learned_vs_swept(c):
        where = f" ({_selectors_text(e.selectors)})" if e.selectors else ""
        opt = e.optimum
        if opt is None:
            head = ("no swept optimum: no trials of fixed p agree with these on the other "
                    f"axes (sweep {VARIANT_KEY} as an axis, e.g. [inverted, concrete])")
        else:
            seed_best = sorted({fmt_value(v) for v in opt.seed_best.values()})
            head = (f"swept optimum: {c.by} = {fmt_value(opt.value)}, {e.metric} "
                    f"{pm(opt.metric, metric=e.metric)} (n={opt.metric.n}); each seed's "
                    f"best: {', '.join(seed_best)}")
        t = Table(title=markup(f"learned vs swept{where}"), title_justify="left",
                  show_lines=True)
        t.add_column("from", justify="right", no_wrap=True)  # the p it started from
        t.add_column("n", justify="right", no_wrap=True)  # seeds
        t.add_column("learned p", justify="left", no_wrap=True)
        t.add_column(markup(e.metric), justify="right", no_wrap=True)
        t.add_column("Δ vs optimum", justify="right", no_wrap=True)
        for r in e.rows:
            layers = "\n".join(f"{'input' if layer == 0 else f'layer {layer}'} {pm(s)}"
                               for layer, s in enumerate(r.learned_p) if s is not None)
            d = None if r.diff is None or r.diff.n == 0 else r.diff.summary
            if d is not None and d.mean is not None and abs(d.mean) < 1e-12:
                d = replace(d, mean=0.0)  # equal accuracies: a sum of float rounding errors
            diff = "-" if d is None else pm(d, signed=True) + (" *" if d.excludes_zero else "")
            t.add_row(fmt_value(r.start), str(len(r.seeds)), layers or "none (p = 0)",
                      pm(r.metric, metric=e.metric), diff)
        out.append(t)
        out.append(Text(textwrap.fill(printable(head), LEARNED_WIDTH)))
    if out:
        out.append(Text(textwrap.fill(
            f"from: the {c.by} concrete dropout started from; n: seeds; learned p: its p per "
            f"unit layer, mean ± half-width of the {pct(c.level)} CI over seeds; Δ: minus the "
            "swept optimum, paired by seed, * when its interval excludes 0 "
            "(docs/concrete.md)", LEARNED_WIDTH), style="dim"))
    return out


LEARNED_WIDTH = 80  # the learned-vs-swept section's lines, whatever the terminal


def _selectors_text(selectors: dict[str, Any]) -> str:
    return ", ".join(f"{k}={fmt_value(v)}" for k, v in selectors.items())


def _row_label(c: Comparison, row: Row) -> Text:
    label = Text(printable(fmt_value(row.value)) + value_mark(row),
                 style="bold green" if row.best else ("green" if row.tie else ""))
    label.append(f"  seeds {seeds_text(row)}", style="" if row.used == row.total else "red")
    if c.at != "last":
        label.append(f"  epoch {_epochs_text(row)}")
    return label


def _transposed(c: Comparison) -> Group:
    """The same cells as :func:`render_rich`, a row per value of the axis (its marks and
    seeds) followed by a row per metric: three columns whatever the number of metrics, so
    every metric named with ``-m`` is shown whole on an 80-column terminal."""
    table = CellTable(c)
    tables: list[RenderableType] = []
    for block in c.blocks:
        head = f"{title(c)}: {block.label}" if c.block_axes else title(c)
        t = Table(title=markup(head), title_justify="left")
        t.add_column(markup(f"{c.by} / metric"))
        t.add_column("mean", justify="right")
        t.add_column("Δ vs baseline", justify="right")
        for i, row in enumerate(block.rows):
            if i:
                t.add_section()
            t.add_row(_row_label(c, row), "", "")
            views = table.of(row)
            for name in c.metrics:
                view = views[name]
                if view.baseline:
                    delta = Text("baseline", style="dim")
                elif view.delta is not None:
                    sig = view.significant
                    delta = Text(f"Δ {view.delta.text(signed=True)}" + (" *" if sig else ""),
                                 style="bold" if sig else "dim")
                else:
                    delta = Text("")
                t.add_row(Text("  " + printable(name)), Text(view.value.text()), delta)
        tables.append(t)
    tables.append(Text(printable(legend(c)), style="dim"))
    for note in footnotes(c):
        tables.append(Text(printable(note), style="yellow" if note.startswith("†") else "dim"))
    tables.extend(render_learned_rich(c))
    return Group(*tables)


def _epochs_text(row: Row) -> str:
    if not row.epochs:
        return "-"
    lo, hi = min(row.epochs), max(row.epochs)
    return str(lo) if lo == hi else f"{lo}-{hi}"


# -- markdown ----------------------------------------------------------------------------------
def _md(text: object) -> str:
    """Text for a markdown table cell: control characters escaped, ``|`` escaped (a pipe in a
    value would split the cell)."""
    return printable(text).replace("|", "\\|")


def render_markdown(c: Comparison) -> str:
    """GitHub-flavoured markdown: one table per block, Δ in parentheses, significant in bold."""
    table = CellTable(c)
    lines = [f"### {_md(c.name)}: {_md(c.by)} compared over seeds, {describe(c.at)}", ""]
    for block in c.blocks:
        if c.block_axes:
            lines += [f"**{_md(block.label)}**", ""]
        lines.append("| " + " | ".join([f"`{_md(c.by)}`", "seeds", *map(_md, c.metrics)]) + " |")
        lines.append("|" + "---:|" * (2 + len(c.metrics)))
        for row in block.rows:
            value = _md(fmt_value(row.value))
            value = f"**{value}** ★" if row.best else (f"{value} ≈" if row.tie else value)
            value += " †" if row.flags else ""
            cells = [value, seeds_text(row)]
            views = table.of(row)
            for name in c.metrics:
                view = views[name]
                text = view.value.text()
                if view.baseline:
                    text += " (baseline)"
                elif view.delta is not None and view.delta.mean is not None:
                    d = f"Δ {view.delta.text(signed=True)}"
                    text += f" (**{d}**)" if view.significant else f" ({d})"
                cells.append(text)
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    lines.append(f"_mean ± half-width of the {pct(c.level)} CI over seeds (Student t); "
                 f"Δ = paired difference vs {_md(c.by)}={_md(fmt_value(c.baseline))} at the "
                 "same seeds, "
                 f"**bold** when its interval excludes 0; ★ = best {c.by} by {c.best_by}; "
                 "≈ = not distinguishable from the best._")
    for note in footnotes(c):
        lines += ["", f"_{_md(note)}_"]
    return "\n".join(lines) + "\n"


# -- json --------------------------------------------------------------------------------------
def to_json_doc(c: Comparison) -> dict[str, Any]:
    """The stable JSON document (schema ``dropout-lab.compare/1``, see docs/compare.md)."""
    table = CellTable(c)
    blocks = []
    for block in c.blocks:
        rows = []
        for row in block.rows:
            rows.append({
                "value": row.value,
                "trials": {"done": row.done, "failed": row.failed, "total": row.total},
                "excluded": row.excluded,
                "seeds": row.seeds,
                "epochs": row.epochs,
                "flags": row.flags,
                "baseline": row.is_baseline,
                "best": row.best,
                "indistinguishable_from_best": row.tie,
                "metrics": {name: _metric_doc(name, row, table.of(row)[name])
                            for name in c.metrics},
            })
        blocks.append({"selectors": block.selectors, "rows": rows,
                       "best": None if block.best_value is None else
                       {"metric": c.best_by, "value": block.best_value,
                        "indistinguishable": block.tie_values}})
    doc = {"schema": SCHEMA, "sweep": c.name, "sweep_dir": str(c.sweep_dir), "by": c.by,
           "at": c.at, "include_collapsed": c.include_collapsed,
           "baseline": c.baseline, "confidence": c.level, "power": c.power,
           "best_by": c.best_by, "metrics": c.metrics, "block_axes": c.block_axes,
           "blocks": blocks, "notes": footnotes(c)}
    learned = learned_vs_swept(c)
    if learned:  # concrete dropout's trials beside the swept optimum (comparison/learned.py)
        doc["learned_vs_swept"] = learned_json(c, learned)
    return doc


def _metric_doc(name: str, row: Row, view: CellView) -> dict[str, Any]:
    cell = row.cells[name]
    doc = {**cell.summary.to_dict(), "ci": view.value.interval}
    doc["diff"] = None if cell.diff is None else {
        **cell.diff.to_dict(), "mdd": cell.mdd, "no_spread": cell.diff.summary.no_spread}
    return doc


def render_json(c: Comparison) -> str:
    return json_text(to_json_doc(c))


def json_text(doc: Any) -> str:
    """JSON with NaN/inf as null (store.dumps cleans them), indented."""
    return json.dumps(json.loads(dumps(doc)), indent=2) + "\n"


# -- csv ---------------------------------------------------------------------------------------
CSV_COLUMNS = ["block", "by", "value", "metric", "n", "mean", "sd", "ci_lo", "ci_hi",
               "diff_n", "diff_mean", "diff_sd", "diff_ci_lo", "diff_ci_hi", "diff_excludes_zero",
               "diff_mdd", "baseline", "best", "indistinguishable_from_best", "trials_done",
               "trials_total", "trials_excluded", "flags"]


def render_csv(c: Comparison) -> str:
    """Tidy CSV: one line per (block, value, metric); the block axes get a column each.

    Text cells a spreadsheet would run as a formula (starting with = + - @, a tab or a
    carriage return) get a leading apostrophe (:func:`dropout_lab.safe_text.csv_cell`)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([csv_cell(a) for a in [*c.block_axes, *CSV_COLUMNS]])

    def cellv(v: Any) -> Any:
        if v is None:
            return ""
        if isinstance(v, (list, dict)):
            return csv_cell(json.dumps(v))
        if isinstance(v, bool):
            return str(v).lower()
        return csv_cell(v)

    for block in c.blocks:
        for row in block.rows:
            for name in c.metrics:
                cell = row.cells[name]
                s, d = cell.summary, cell.diff
                ds = d.summary if d is not None else None
                ci: Sequence[float | None] = interval(name, s) or [None, None]
                flags = ";".join(f"{f}={n}" for f, n in row.flags.items())
                w.writerow([cellv(block.selectors[a]) for a in c.block_axes] + [cellv(v) for v in [
                    block.label, c.by, row.value, name, s.n, s.mean, s.sd, ci[0], ci[1],
                    ds.n if ds else None, ds.mean if ds else None, ds.sd if ds else None,
                    ds.lo if ds else None, ds.hi if ds else None,
                    ds.excludes_zero if ds else None, cell.mdd, row.is_baseline, row.best,
                    row.tie, row.done, row.total, row.excluded, flags]])
    return buf.getvalue()


# The registry of output formats: name -> renderer (rich returns a renderable, others text).
FORMATS: dict[str, Callable[[Comparison], Group | str]] = {
    "rich": render_rich,
    "csv": render_csv,
    "json": render_json,
    "markdown": render_markdown,
}


# -- seeds needed ------------------------------------------------------------------------------
def seeds_for(c: Comparison, delta: float) -> dict[str, Any]:
    """For each non-baseline row and shown metric: the paired sd observed and the seeds a true
    difference of ``delta`` would need (power c.power, level c.level)."""
    rows = []
    for block in c.blocks:
        for row in block.rows:
            if row.is_baseline:
                continue
            entry: dict[str, Any] = {"selectors": block.selectors, "value": row.value,
                                     "metrics": {}}
            for name in c.metrics:
                d = row.cells[name].diff
                sd = None if d is None else d.summary.sd
                no_spread = d is None or d.summary.no_spread
                entry["metrics"][name] = {
                    "n": None if d is None else d.n, "sd": sd, "no_spread": no_spread,
                    "seeds_needed": None if no_spread or sd is None else
                    seeds_needed(delta, sd, c.level, c.power)}
            rows.append(entry)
    return {"delta": delta, "confidence": c.level, "power": c.power, "by": c.by,
            "baseline": c.baseline, "metrics": c.metrics, "rows": rows}


def _seeds_cell(m: dict[str, Any]) -> str:
    need = m["seeds_needed"]
    return NO_SPREAD if m["no_spread"] else \
        f"{'>' + str(100000) if need is None else need} (sd {fmt_number(m['sd'])})"


def render_seeds_for(c: Comparison, doc: dict[str, Any], transpose: bool = False) -> Group:
    """The seeds-needed table: one row per compared value and a column per metric, or with
    ``transpose`` one row per metric and a column per value (what fits a narrow terminal:
    there are usually fewer values than metrics)."""
    t = Table(title=markup(f"{c.name}: seeds needed to detect a difference of "
                           f"{doc['delta']:g} vs {c.by}={fmt_value(c.baseline)} "
                           f"({pct(c.level)} confidence, {pct(c.power)} power)"),
              title_justify="left")
    labels = []
    for entry in doc["rows"]:
        label = fmt_value(entry["value"])
        if c.block_axes:
            label = ", ".join(f"{k}={fmt_value(v)}" for k, v in entry["selectors"].items()) + \
                f": {label}"
        labels.append(label)
    if transpose:
        t.add_column("metric", no_wrap=True)
        for label in labels:
            t.add_column(markup(f"{c.by}={label}"), justify="right")
        for name in c.metrics:
            t.add_row(markup(name), *[_seeds_cell(entry["metrics"][name])
                                      for entry in doc["rows"]])
    else:
        if c.block_axes:
            t.add_column("block", no_wrap=True)
        t.add_column(markup(c.by), justify="right", no_wrap=True)
        for name in c.metrics:
            t.add_column(markup(name), justify="right", no_wrap=True)
        for entry in doc["rows"]:
            cells = []
            if c.block_axes:
                cells.append(markup(", ".join(f"{k}={fmt_value(v)}"
                                              for k, v in entry["selectors"].items())))
            cells.append(markup(fmt_value(entry["value"])))
            cells += [_seeds_cell(entry["metrics"][name]) for name in c.metrics]
            t.add_row(*cells)
    note = Text("sd = spread of the paired per-seed differences observed now (needs 2 seeds); "
                "seeds needed = smallest n whose minimum detectable difference "
                "(t_(1+level)/2,n-1 + t_power,n-1) sd / sqrt(n) is at most the difference",
                style="dim")
    return Group(t, note)

