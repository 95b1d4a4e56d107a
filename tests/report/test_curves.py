"""Curves over epochs: metrics.jsonl grows epoch by epoch, live numbers, the curves figure."""

from __future__ import annotations

import io
import json

import pytest
from rich.console import Console

from dropout_lab.config import validate
from dropout_lab.executors.local import LocalExecutor
from dropout_lab.executors.serial import SerialExecutor
from dropout_lab.report.plots import epoch_band
from dropout_lab.report.progress import SweepProgress, epoch_numbers, fmt_number
from dropout_lab.runner import run_sweep
from dropout_lab.store import SweepStore
from tests.helpers.configs import TINY


class Watcher:
    """Events that read the trial's metrics.jsonl each time an epoch is reported."""

    def __init__(self, runs_dir):
        self.runs_dir = runs_dir
        self.seen: list[tuple[str, int, int]] = []  # (trial, epoch, lines on disk then)
        self.rows: list[dict] = []

    def started(self, trial_id):
        pass

    def epoch(self, trial_id, epoch, epochs, row):
        path = SweepStore(self.runs_dir / "tiny").trial_dir(trial_id) / "metrics.jsonl"
        lines = path.read_text().splitlines()
        assert json.loads(lines[-1]) == json.loads(json.dumps(row))
        self.seen.append((trial_id, epoch, len(lines)))
        self.rows.append(row)

    def finished(self, trial_id, status):
        pass


@pytest.mark.parametrize("make", [lambda: SerialExecutor(1), lambda: LocalExecutor(2, 1)],
                         ids=["serial", "local"])
def test_metrics_jsonl_has_one_line_per_finished_epoch_while_the_trial_runs(tmp_path, make):
    cfg = validate({**TINY, "train": {**TINY["train"], "epochs": 3}})
    watcher = Watcher(tmp_path)
    executor = make()
    try:
        report = run_sweep(cfg, tmp_path, executor, events=watcher)
    finally:
        executor.close()
    assert report.all_done
    # When epoch e is reported, the file already holds exactly e lines (appended, flushed).
    assert sorted(s[1:] for s in watcher.seen) == sorted([(e, e) for e in (1, 2, 3)] * 4)
    store = SweepStore(tmp_path / "tiny")
    for t in report.trials:
        rows = store.load_metrics(t.point.trial_id)
        assert [r["epoch"] for r in rows] == [1, 2, 3]


def test_a_rerun_starts_the_metrics_file_over(tmp_path):
    cfg = validate(TINY)
    store = SweepStore(tmp_path / "tiny")
    store.trials_dir.mkdir(parents=True)
    store.start_metrics("x")
    store.append_metrics_row("x", {"epoch": 1, "loss": float("nan")})
    assert store.load_metrics("x") == [{"epoch": 1, "loss": None}]  # NaN stored as null
    store.start_metrics("x")
    assert store.load_metrics("x") == []
    assert cfg.train.epochs == 2


def test_progress_shows_the_latest_loss_and_test_accuracy():
    assert epoch_numbers({"fit_loss": 0.31204, "test_acc": 0.9012}) == \
        "  loss 0.3120  test acc 0.9012"
    assert epoch_numbers(None) == ""
    assert epoch_numbers({"fit_loss": 1.2345e36}) == "  loss 1.234e+36"  # never 37 digits
    p = SweepProgress(total=2, skipped=0, console=Console(file=io.StringIO()), live=False)
    p.started("abc")
    p.epoch("abc", 2, 5, {"fit_loss": 0.5, "test_acc": 0.75, "epoch": 2})
    text = p.render().plain
    assert "abc  epoch 2/5  loss 0.5000  test acc 0.7500" in text
    p.finished("abc", "done")
    assert "abc" not in p.render().plain


def test_epoch_band_known_answer():
    runs = [[{"epoch": 1, "m": 0.2}, {"epoch": 2, "m": 0.6}],
            [{"epoch": 1, "m": 0.4}, {"epoch": 2, "m": 1.0}],
            [{"epoch": 1, "m": 0.9}]]  # a shorter run counts where it has values
    band = epoch_band(runs, "m")
    assert band.epochs == [1, 2]
    assert band.mean == pytest.approx([0.5, 0.8])
    assert band.lo == [0.2, 0.6] and band.hi == [0.9, 1.0]
    assert epoch_band(runs, "absent") is None


def test_plot_and_report_include_the_epoch_curves(rendered):
    # the session's plot set and report (tests/conftest.py), rendered once
    code, out, err = rendered.plot
    assert code == 0, err
    assert str(rendered.sweep / "plots" / "epoch_curves.png") in json.loads(out)["plots"]
    html = rendered.report_path.read_text()
    assert 'alt="Loss, accuracy and gap over epochs"' in html


@pytest.mark.parametrize("value, text", [(0.5, "0.5000"), (12345.678, "12345.6780"),
                                         (1e36, "1e+36"), (-3.2e-7, "-3.2e-07"), (0.0, "0.0000"),
                                         (float("nan"), "nan")])
def test_fmt_number(value, text):
    assert fmt_number(value) == text
