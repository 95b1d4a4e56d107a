"""The detail page of one trial, which ``dropout-lab show runs/<sweep>/trials/<id>`` prints
(cli/show.py): the folder read as it is on disk through the store's one reader
(:class:`~dropout_lab.store.TrialView`). Not a command of its own (formerly
``cli/show_trial.py``)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import yaml
from rich.syntax import Syntax
from rich.table import Table

from dropout_lab.cli.app import current
from dropout_lab.cli.store_warnings import print_warnings
from dropout_lab.data.fingerprint import describe_data
from dropout_lab.environment import describe_code
from dropout_lab.errors import StoreError
from dropout_lab.report.progress import fmt_number, fmt_seconds
from dropout_lab.result import Status
from dropout_lab.safe_text import markup
from dropout_lab.store import METRICS_FILE, RESULT_FILE, TrialView, dumps
from dropout_lab.store.reading import lstat_kind


def is_trial_folder(path: Path) -> bool:
    """An entry under ``trials/`` (a folder, or a symlink or file there, which ``show``
    reports as corrupt rather than reading it as a sweep)."""
    return path.parent.name == "trials" and lstat_kind(path.parent.parent / "sweep.yaml") \
        is not None and lstat_kind(path) is not None


def _num(row: dict[str, Any], key: str) -> float | None:
    v = row.get(key)
    return float(v) if isinstance(v, (int, float)) and math.isfinite(v) else None


def curve_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per metric over the epochs: first, last, best (min for losses and the gap, max for
    accuracies) and the epoch of the best."""
    summary: dict[str, Any] = {"epochs": len(rows)}
    for key in ("fit_loss", "train_loss", "test_loss", "train_acc", "test_acc", "gap_acc"):
        values = [(r.get("epoch", i + 1), _num(r, key)) for i, r in enumerate(rows)]
        points = [(e, v) for e, v in values if v is not None]
        if not points:
            continue
        best = (max if key.endswith("_acc") and key != "gap_acc" else min)(
            points, key=lambda p: p[1])
        summary[key] = {"first": points[0][1], "last": points[-1][1], "best": best[1],
                        "best_epoch": best[0]}
    return summary


def learned_p_of(result: dict[str, Any], rows: list[dict[str, Any]]) -> list[Any] | None:
    """Concrete dropout's learned p per unit layer (0 = the input): result.json's, or the
    last epoch's row of a trial still running; None under any other variant."""
    learned = result.get("learned_p")
    if not isinstance(learned, list) and rows and isinstance(rows[-1].get("learned_p"), list):
        learned = rows[-1]["learned_p"]
    return learned if isinstance(learned, list) else None


def show_trial(trial_dir: Path, json_out: bool) -> None:
    """Config, final metrics, health (when the trial recorded it), timing, env, curves."""
    ui = current()
    view = TrialView(trial_dir.parent.parent, trial_dir.name)
    stored, problem = view.check_result()
    if problem:
        raise StoreError(f"{trial_dir / RESULT_FILE}: corrupt ({problem}); "
                         f"'dropout-lab gc {trial_dir.parent.parent}' removes corrupt trials")
    config = view.config()
    rows, bad = view.metrics_and_bad()
    result: dict[str, Any] = dict(stored) if stored else {"trial_id": trial_dir.name,
                                                          "status": Status.PENDING}
    error = view.error_text()
    print_warnings(view.warnings)
    doc = {
        "trial_dir": str(trial_dir), "trial_id": result.get("trial_id", trial_dir.name),
        "status": result.get("status"), "params": result.get("params"), "config": config,
        "final": result.get("final"), "learned_p": learned_p_of(result, rows),
        "health": result.get("health"),
        "timing": result.get("timing"), "env": result.get("env"),
        "curves": curve_summary(rows), "unreadable_metric_lines": bad,
        "error": error,
    }
    if json_out:
        ui.print_json(json.loads(dumps(doc)))
        return
    status = str(doc["status"] or "?")
    ui.out.print(f"[bold]trial {markup(str(doc['trial_id']))}[/]: {markup(status)}  "
              f"{markup(json.dumps(doc['params'] or {}))}", highlight=False, soft_wrap=False)
    if config is not None:
        ui.out.print("[bold]config[/]")
        ui.out.print(Syntax(yaml.safe_dump(config, sort_keys=False), "yaml", theme="ansi_dark",
                         background_color="default"))
    if doc["final"]:
        ui.out.print("[bold]final[/]  " + markup("  ".join(
            f"{k} {_fmt(v)}" for k, v in doc["final"].items())), highlight=False,
            soft_wrap=False)
    if doc["learned_p"]:
        ui.out.print("[bold]learned p[/]  " + markup("  ".join(
            f"{'input' if layer == 0 else f'layer {layer}'} {_fmt(p)}"
            for layer, p in enumerate(doc["learned_p"]) if p is not None)) + "  (concrete)",
            highlight=False, soft_wrap=False)
    if doc["health"]:
        ui.out.print("[bold]health[/]")
        for k, v in doc["health"].items():
            ui.out.print(f"  {markup(str(k))}: {markup(_fmt(v))}", highlight=False, soft_wrap=False)
    timing = doc["timing"] or {}
    parts = [f"{k.removesuffix('_seconds')} {fmt_seconds(v)}" for k, v in timing.items()
             if k.endswith("_seconds") and isinstance(v, (int, float))]
    if parts:
        ui.out.print("[bold]timing[/]  " + "  ".join(parts), highlight=False, soft_wrap=False)
    env = doc["env"] or {}
    if env:
        versions = env.get("versions") or {}
        plain = {k: v for k, v in env.items()
                 if k not in ("versions", "code", "data") and v is not None}
        ui.out.print("[bold]env[/]  " + markup("  ".join(f"{k} {v}" for k, v in plain.items())),
                  highlight=False, soft_wrap=False)  # wrapped at the terminal's width
        if versions:
            ui.out.print("  versions: " + markup(", ".join(f"{k} {v}"
                                                           for k, v in versions.items())),
                      highlight=False, soft_wrap=False)
        if "code" in env:  # the code version the trial ran (docs/results.md)
            ui.out.print("  code: " + markup(describe_code(env.get("code"))), highlight=False,
                      soft_wrap=False)
        if "data" in env:
            ui.out.print("  data: " + markup(describe_data(env.get("data"))), highlight=False,
                      soft_wrap=False)
    curves = doc["curves"]
    if curves["epochs"]:
        table = Table(title=f"curves over {curves['epochs']} epoch(s)", title_justify="left")
        for col in ("metric", "first", "last", "best", "at epoch"):
            table.add_column(col, justify="left" if col == "metric" else "right")
        for key, s in curves.items():
            if key == "epochs":
                continue
            table.add_row(markup(key), _fmt(s["first"]), _fmt(s["last"]), _fmt(s["best"]),
                          str(s["best_epoch"]))
        ui.out.print(table)
    else:
        ui.out.print("curves: no epoch recorded", highlight=False, soft_wrap=False)
    if bad:
        ui.out.print(f"[yellow]{bad} unreadable line(s) in {METRICS_FILE} left out[/]",
                  highlight=False, soft_wrap=False)
    if error:
        ui.out.print("[bold red]error[/]  " + markup(error.strip().splitlines()[-1]),
                  highlight=False, soft_wrap=False)


def _fmt(v: Any) -> str:
    """Short numbers, never 37-digit fixed point (see fmt_number)."""
    if isinstance(v, float):
        return fmt_number(v)
    if isinstance(v, (list, dict)):
        return json.dumps(v)
    return str(v)
