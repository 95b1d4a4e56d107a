"""Headless matplotlib figures of a comparison (PNG bytes; written by ``plot``, embedded by
``report``).

Figures are built with ``matplotlib.figure.Figure`` and the Agg canvas directly, never through
``pyplot``: no global figure state, no display needed. Each figure function returns None when
its data is absent (e.g. no co-adaptation statistics in the results), and ``render_all`` turns
that into a note instead of an error.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np

matplotlib.use("Agg")  # headless even if a display is set; before anything draws

from matplotlib.axes import Axes  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from dropout_lab.comparison import Block, Comparison  # noqa: E402
from dropout_lab.comparison.metric_names import clip  # noqa: E402
from dropout_lab.comparison.selection import describe  # noqa: E402
from dropout_lab.comparison.values import fmt_value  # noqa: E402
from dropout_lab.config import P_KEY  # noqa: E402
from dropout_lab.errors import EnvironmentFault  # noqa: E402

DPI = 100
MAX_BLOCKS = 6  # blocks drawn per figure; the rest are noted


@dataclass(frozen=True)
class Plot:
    name: str  # file stem: <name>.png
    title: str
    png: bytes


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    return buf.getvalue()


def _axis_label(c: Comparison) -> str:
    if c.by == P_KEY:
        return "p = probability of dropping a unit"
    return c.by


def _x_positions(c: Comparison) -> tuple[Callable[[Any], float], list[float], list[str]]:
    """Numeric axes use their value; anything else (model sizes, names) gets even spacing."""
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in c.values)
    if numeric:
        return float, [float(v) for v in c.values], [fmt_value(v) for v in c.values]
    index = {fmt_value(v): i for i, v in enumerate(c.values)}
    return (lambda v: float(index[fmt_value(v)])), list(map(float, range(len(c.values)))), \
        [fmt_value(v) for v in c.values]


def _colors(n: int) -> list[Any]:
    cmap = matplotlib.colormaps["viridis"]
    return [cmap(0.1 + 0.8 * i / max(1, n - 1)) for i in range(n)]


def _block_label(c: Comparison, block: Block) -> str:
    return block.label if c.block_axes else "all trials"


BANDLESS_NOTE = "ringed point: no band, n/a (no spread: one seed or equal values)"


def _metric_panels(c: Comparison, panels: list[tuple[str, str]], title: str,
                   ncols: int | None = None) -> Figure | None:
    """One panel per metric: mean against the grouping key, one line per block, CI band;
    ``ncols`` panels per row (default: all in one row)."""
    panels = [(m, label) for m, label in panels if m in c.present]
    if not panels:
        return None
    xpos, ticks, ticklabels = _x_positions(c)
    ncols = min(ncols or len(panels), len(panels))
    nrows = -(-len(panels) // ncols)
    fig = Figure(figsize=(4.6 * ncols, 3.8 * nrows), layout="constrained")
    grid = fig.subplots(nrows, ncols, squeeze=False)
    axes = [ax for row in grid for ax in row]
    for spare in axes[len(panels):]:
        spare.set_visible(False)
    axes = axes[:len(panels)]
    blocks = c.blocks[:MAX_BLOCKS]
    colors = _colors(len(blocks))
    nseeds = max((r.cells[panels[0][0]].summary.n for b in blocks for r in b.rows), default=0)
    bandless = False  # a point without a band (one seed, or seeds that all agree)
    for ax, (m, label) in zip(axes, panels, strict=True):
        for block, color in zip(blocks, colors, strict=True):
            pts = [(xpos(r.value), r.cells[m].summary) for r in block.rows
                   if r.cells[m].summary.mean is not None]
            if not pts:
                continue
            xs = [x for x, _ in pts]
            ax.plot(xs, [s.mean for _, s in pts], marker="o", color=color,
                    label=_block_label(c, block))
            # A band only where it says something: a zero-width interval (no spread) would
            # draw as a line and read as certainty, so such points get a hollow marker and
            # the legend says why they have no band.
            band = [(x, s.lo, s.hi) for x, s in pts
                    if s.lo is not None and s.hi is not None and not s.no_spread]
            lone = [(x, s.mean) for x, s in pts if s.no_spread]
            if lone:
                bandless = True
                ax.plot([x for x, _ in lone], [y for _, y in lone], linestyle="none",
                        marker="o", markersize=10, markerfacecolor="none",
                        markeredgecolor=color)
            if band:
                edges = [clip(m, lo, hi) for _, lo, hi in band]  # accuracies end at 1
                ax.fill_between([x for x, _, _ in band], [a for a, _ in edges],
                                [b for _, b in edges], color=color, alpha=0.2,
                                linewidth=0)
        ax.set_xticks(ticks, ticklabels)
        ax.set_xlabel(_axis_label(c))
        ax.set_ylabel(label)
        ax.set_title(m)
        ax.grid(alpha=0.3)
    legend = f"mean, band = {c.level * 100:g}% CI ({nseeds} seeds)"
    if bandless:
        legend += f"\n{BANDLESS_NOTE}"
    if axes[0].get_legend_handles_labels()[0]:  # nothing plotted (every trial unreadable)
        axes[0].legend(title=legend, fontsize=8, title_fontsize=8)
    fig.suptitle(f"{c.name}: {title}")
    return fig


def accuracy_figure(c: Comparison) -> Figure | None:
    return _metric_panels(c, [("test_acc", "test accuracy (fraction correct)"),
                              ("gap_acc", "gap: train acc - test acc (fraction)"),
                              ("gap_loss", "gap: test loss - train loss (nats)")],
                          f"accuracy and generalization gap against {c.by}, {describe(c.at)}")


def coadaptation_figure(c: Comparison) -> Figure | None:
    return _metric_panels(c, [("ablation_auc", "ablation AUC (accuracy x fraction)"),
                              ("synergy", "pairwise ablation synergy (loss, nats)")],
                          f"reliance on single units against {c.by}")


def _layers(c: Comparison, family: str) -> list[str]:
    return [m for m in c.present if m.startswith(f"{family}[")]


def layers_figure(c: Comparison) -> Figure | None:
    """Per hidden layer: correlation, scale-free DeCov and sparsity against the axis, one
    panel per (statistic, layer): the layers can move in opposite directions."""
    families = [(f, label) for f, label in (("corr", "mean |corr| between units"),
                                            ("decov_std", "DeCov of standardized units"),
                                            ("zero", "fraction of zero activations"))
                if _layers(c, f)]
    depth = max((len(_layers(c, f)) for f, _ in families), default=0)
    # one row per hidden layer, one column per statistic (landscape, layers read downwards)
    panels = [(f"{f}[{layer}]", f"{label}, layer {layer}")
              for layer in range(1, depth + 1) for f, label in families]
    if not panels:
        return None
    return _metric_panels(c, panels, f"co-adaptation per hidden layer against {c.by}",
                          len(families))


def _grid(n: int, ncols: int = 3, size: tuple[float, float] = (4.2, 3.4)
          ) -> tuple[Figure, list[Axes]]:
    ncols = min(ncols, n)
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(size[0] * ncols, size[1] * nrows), layout="constrained")
    axes: list[Axes] = list(fig.subplots(nrows, ncols, squeeze=False).ravel())
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes


def learning_curves_figure(c: Comparison) -> Figure | None:
    """Train (dashed) and test (solid) accuracy per epoch, mean over seeds, one colour per value."""
    blocks = c.blocks[:MAX_BLOCKS]
    curves: dict[int, list[tuple[Any, dict[int, list[float]], dict[int, list[float]]]]] = {}
    for bi, block in enumerate(blocks):
        for row in block.rows:
            train: dict[int, list[float]] = {}
            test: dict[int, list[float]] = {}
            for rec in row.records:
                for m in rec.epochs or []:
                    if m.get("train_acc") is not None and m.get("test_acc") is not None:
                        train.setdefault(m["epoch"], []).append(m["train_acc"])
                        test.setdefault(m["epoch"], []).append(m["test_acc"])
            if test:
                curves.setdefault(bi, []).append((row.value, train, test))
    if not curves:
        return None
    fig, axes = _grid(len(curves))
    colors = _colors(len(c.values))
    color_of = {fmt_value(v): col for v, col in zip(c.values, colors, strict=True)}
    for ax, (bi, rows) in zip(axes, curves.items(), strict=False):
        for value, train, test in rows:
            ep = sorted(test)
            color = color_of[fmt_value(value)]
            ax.plot(ep, [sum(test[e]) / len(test[e]) for e in ep], color=color,
                    label=f"{fmt_value(value)}")
            ax.plot(ep, [sum(train[e]) / len(train[e]) for e in ep], color=color, ls="--")
        ax.set_xlabel("epoch")
        ax.set_ylabel("accuracy (fraction correct)")
        ax.set_title(_block_label(c, blocks[bi]), fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(title=f"{c.by} (solid test, dashed train)", fontsize=7, title_fontsize=7)
    fig.suptitle(f"{c.name}: learning curves, mean over seeds")
    return fig


@dataclass(frozen=True)
class EpochBand:
    """One metric over the epochs, over seeds: mean, lowest and highest seed per epoch."""

    epochs: list[int]
    mean: list[float]
    lo: list[float]
    hi: list[float]


def epoch_band(runs: list[list[dict[str, Any]]], metric: str) -> EpochBand | None:
    """Per epoch, the mean and the range (min, max) of ``metric`` over the runs (seeds) that
    recorded it at that epoch: mean = sum(v) / n. None when no run has the metric."""
    by_epoch: dict[int, list[float]] = {}
    for rows in runs:
        for row in rows:
            v = row.get(metric)
            if isinstance(v, (int, float)) and math.isfinite(v) and "epoch" in row:
                by_epoch.setdefault(int(row["epoch"]), []).append(float(v))
    if not by_epoch:
        return None
    epochs = sorted(by_epoch)
    return EpochBand(epochs, [sum(by_epoch[e]) / len(by_epoch[e]) for e in epochs],
                     [min(by_epoch[e]) for e in epochs], [max(by_epoch[e]) for e in epochs])


# Panels of the curves figure: (metric, y label)
CURVE_PANELS = [("test_loss", "test loss (nats)"), ("test_acc", "test accuracy (fraction)"),
                ("gap_acc", "gap: train acc - test acc")]


def epoch_curves_figure(c: Comparison) -> Figure | None:
    """Loss, test accuracy and gap over the epochs, one line per value of ``c.by`` (per p):
    mean over seeds, band from the lowest to the highest seed; one row of panels per block."""
    blocks = c.blocks[:MAX_BLOCKS]
    drawn: list[tuple[Block, list[tuple[Any, dict[str, EpochBand]]]]] = []
    for block in blocks:
        lines = []
        for row in block.rows:
            runs = [rec.epochs or [] for rec in row.records]
            bands = {m: b for m, _ in CURVE_PANELS if (b := epoch_band(runs, m)) is not None}
            if bands:
                lines.append((row.value, bands))
        if lines:
            drawn.append((block, lines))
    if not drawn:
        return None
    fig = Figure(figsize=(4.6 * len(CURVE_PANELS), 3.4 * len(drawn)), layout="constrained")
    axes = fig.subplots(len(drawn), len(CURVE_PANELS), squeeze=False)
    colors = _colors(len(c.values))
    color_of = {fmt_value(v): col for v, col in zip(c.values, colors, strict=True)}
    # a line from one seed has no range: its band would collapse onto it, silently
    single = sorted({fmt_value(row.value) for block, _ in drawn for row in block.rows
                     if len([r for r in row.records if r.epochs]) == 1})
    for (block, lines), row_axes in zip(drawn, axes, strict=True):
        for ax, (metric, label) in zip(row_axes, CURVE_PANELS, strict=True):
            for value, bands in lines:
                band = bands.get(metric)
                if band is None:
                    continue
                color = color_of[fmt_value(value)]
                ax.plot(band.epochs, band.mean, color=color, label=fmt_value(value))
                edges = [clip(metric, a, b) for a, b in zip(band.lo, band.hi, strict=True)]
                ax.fill_between(band.epochs, [a for a, _ in edges], [b for _, b in edges],
                                color=color, alpha=0.2, linewidth=0)
            ax.set_xlabel("epoch")
            ax.set_ylabel(label)
            ax.set_title(f"{metric}" + (f" ({_block_label(c, block)})" if c.block_axes else ""),
                         fontsize=9)
            ax.grid(alpha=0.3)
        title = f"{c.by}: mean, band = seed range"
        if single:
            title += f"\nno band (one seed): {c.by} = {', '.join(single)}"
        row_axes[0].legend(title=title, fontsize=7, title_fontsize=7)
    fig.suptitle(f"{c.name}: curves over epochs per {c.by}")
    return fig


def _mean_lists(lists: list[list[float]]) -> list[float]:
    n = min(len(x) for x in lists)
    return [sum(x[i] for x in lists) / len(lists) for i in range(n)]


def ablation_figure(c: Comparison) -> Figure | None:
    """Accuracy when a growing fraction of hidden units is ablated, one line per value."""
    blocks = c.blocks[:MAX_BLOCKS]
    panels = []
    for block in blocks:
        lines = []
        for row in block.rows:
            abl = [(r.get("coadaptation") or {}).get("ablation") or {} for r in row.results]
            abl = [a for a in abl if a.get("fractions") and a.get("curve")]
            if abl:
                lines.append((row.value, abl[0]["fractions"], _mean_lists([a["curve"]
                                                                            for a in abl])))
        if lines:
            panels.append((block, lines))
    if not panels:
        return None
    fig, axes = _grid(len(panels))
    color_of = {fmt_value(v): col for v, col in zip(c.values, _colors(len(c.values)), strict=True)}
    for ax, (block, lines) in zip(axes, panels, strict=False):
        for value, fr, curve in lines:
            ax.plot(fr[:len(curve)], curve, marker=".", color=color_of[fmt_value(value)],
                    label=fmt_value(value))
        ax.set_xlabel("fraction of hidden units ablated")
        ax.set_ylabel("test accuracy (fraction correct)")
        ax.set_title(_block_label(c, block), fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(title=c.by, fontsize=7, title_fontsize=7)
    fig.suptitle(f"{c.name}: ablation curves (robustness to removing units), mean over seeds")
    return fig


def _pooled(bins: list[dict[str, Any]]) -> tuple[list[float], list[float]]:
    """Pool reliability bins over seeds, weighting each bin by its count.

    Empty bins are stored with null confidence/accuracy (NaN in JSON): they carry no weight."""
    n = min(len(b.get("count") or []) for b in bins)
    conf, acc = [], []
    for i in range(n):
        used = [b for b in bins if b["count"][i] and b["confidence"][i] is not None
                and b["accuracy"][i] is not None]
        w = sum(b["count"][i] for b in used)
        if w > 0:
            conf.append(sum(b["confidence"][i] * b["count"][i] for b in used) / w)
            acc.append(sum(b["accuracy"][i] * b["count"][i] for b in used) / w)
    return conf, acc


def reliability_figure(c: Comparison) -> Figure | None:
    """Reliability diagram of the first block: MC dropout vs deterministic, one panel per value."""
    block = c.blocks[0]
    panels = []
    for row in block.rows:
        rel = [((r.get("uncertainty") or {}).get("reliability") or {}) for r in row.results]
        rel = [x for x in rel if x.get("mc") and x.get("det")]
        if rel:
            panels.append((row, _pooled([x["det"] for x in rel]), _pooled([x["mc"] for x in rel])))
    if not panels:
        return None
    fig, axes = _grid(len(panels), ncols=4, size=(3.4, 3.4))
    for ax, (row, det, mc) in zip(axes, panels, strict=False):
        ax.plot([0, 1], [0, 1], color="0.6", lw=1, ls=":", label="perfect calibration")
        ax.plot(*det, marker="s", color="tab:gray", label="deterministic")
        ax.plot(*mc, marker="o", color="tab:blue", label="MC dropout")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("confidence (max class probability)")
        ax.set_ylabel("accuracy (fraction correct)")
        ax.set_title(f"{c.by} = {fmt_value(row.value)}", fontsize=9)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    where = f" ({block.label})" if c.block_axes else ""
    fig.suptitle(f"{c.name}: reliability diagram{where}, bins pooled over seeds")
    return fig


WEIGHT_UNITS = 100  # first-layer units drawn per value (a 10 x 10 grid, as in Srivastava Fig. 7)


def weights_figure(c: Comparison) -> Figure | None:
    """The incoming weights of first-layer units as images (inputs that form a square, e.g.
    28 x 28 pixels), one grid per value of the axis, from the first seed of the first block;
    each unit scaled to its own largest |weight| (grey = 0)."""
    block = c.blocks[0]
    grids = []
    for row in block.rows:
        w = next((r.weights["W0"] for r in row.records if r.weights and "W0" in r.weights),
                 None)
        if w is None:
            continue
        side = math.isqrt(w.shape[0])
        if side * side != w.shape[0]:
            return None  # inputs are not an image
        grids.append((row.value, w[:, :WEIGHT_UNITS], side))
    if not grids:
        return None
    fig, axes = _grid(len(grids), ncols=min(3, len(grids)), size=(3.6, 3.8))
    for ax, (value, w, side) in zip(axes, grids, strict=False):
        k = w.shape[1]
        cols = math.ceil(math.sqrt(k))
        rows = math.ceil(k / cols)
        canvas = np.zeros((rows * (side + 1), cols * (side + 1)))  # 1-pixel gaps at 0
        for u in range(k):
            unit = w[:, u].reshape(side, side)
            r0, c0 = (u // cols) * (side + 1), (u % cols) * (side + 1)
            canvas[r0:r0 + side, c0:c0 + side] = unit / (np.abs(unit).max() or 1.0)
        ax.imshow(canvas, cmap="gray", vmin=-1, vmax=1, interpolation="nearest")
        ax.set_title(f"{c.by} = {fmt_value(value)}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    where = f" ({block.label})" if c.block_axes else ""
    fig.suptitle(f"{c.name}: incoming weights of {WEIGHT_UNITS} first-layer units{where}")
    return fig


# The registry of figures: file stem -> (title, builder).
FIGURES: dict[str, tuple[str, Callable[[Comparison], Figure | None]]] = {
    "accuracy_vs_p": ("Test accuracy and generalization gap", accuracy_figure),
    "learning_curves": ("Learning curves", learning_curves_figure),
    "epoch_curves": ("Loss, accuracy and gap over epochs", epoch_curves_figure),
    "layers_vs_p": ("Co-adaptation per hidden layer", layers_figure),
    "coadaptation_vs_p": ("Reliance on single units", coadaptation_figure),
    "weights": ("First-layer weights", weights_figure),
    "ablation_curves": ("Ablation curves", ablation_figure),
    "reliability": ("MC-dropout reliability diagram", reliability_figure),
}

_ABSENT = {
    "learning_curves": "no per-epoch metrics (metrics.jsonl) in the finished trials",
    "epoch_curves": "no per-epoch metrics (metrics.jsonl) in the finished trials",
    "coadaptation_vs_p": "no co-adaptation statistics in the results (eval.coadaptation)",
    "layers_vs_p": "no co-adaptation statistics in the results (eval.coadaptation)",
    "weights": "no first-layer weights stored (eval.save_weights) or inputs that are not a "
               "square image",
    "ablation_curves": "no ablation curves in the results (eval.coadaptation)",
    "reliability": "no uncertainty statistics in the results (eval.uncertainty)",
    "accuracy_vs_p": "no finished trials",
}


def render_all(c: Comparison) -> tuple[list[Plot], list[str]]:
    """Every figure whose data is present, and a note for each one skipped."""
    plots, notes = [], []
    for name, (title, build) in FIGURES.items():
        try:
            fig = build(c)
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            # results written by another version of the statistics: note it, draw the rest
            notes.append(f"{name}: skipped, unexpected data in the results ({exc!r})")
            continue
        if fig is None:
            notes.append(f"{name}: skipped, {_ABSENT[name]}")
            continue
        plots.append(Plot(name, title, _png(fig)))
    if len(c.blocks) > MAX_BLOCKS:
        notes.append(f"only the first {MAX_BLOCKS} of {len(c.blocks)} blocks are drawn")
    return plots, notes


def write_plots(plots: list[Plot], out_dir: Path) -> list[Path]:
    """Write each plot as out_dir/<name>.png (atomically: temporary file, then rename; a
    refusal, such as a full disk, leaves no temporary file behind)."""
    from dropout_lab.store import atomic_write_bytes

    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EnvironmentFault.from_os_error(exc, "cannot write", out_dir) from None
    paths = []
    for p in plots:
        path = out_dir / f"{p.name}.png"
        atomic_write_bytes(path, p.png)
        paths.append(path)
    return paths
