"""Progress of a running sweep: a live rich display on a terminal, plain lines otherwise.

It prints nothing of its own: it is handed the console to draw on (the CLI's application
object owns it, ``Application.err``)."""

from __future__ import annotations

import time
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.text import Text

from dropout_lab.result import Status


def fmt_seconds(s: float) -> str:
    """``1m05s`` / ``2h03m``: durations for people."""
    if s < 60:
        return f"{s:.1f}s"
    s = int(round(s))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def fmt_number(v: float) -> str:
    """4 decimals for ordinary values; 4 significant digits in exponent form for huge or tiny
    ones (a loss of 1e36 is ``1e+36``, never 37 digits of fixed point)."""
    if v != v or v in (float("inf"), float("-inf")):
        return str(v)
    if v != 0 and (abs(v) >= 1e5 or abs(v) < 1e-4):
        return f"{v:.4g}"
    return f"{v:.4f}"


def epoch_numbers(row: dict[str, Any] | None) -> str:
    """``  loss 0.3120  test acc 0.9012`` from an epoch row (loss: the mean training loss of the
    epoch's mini-batches, with dropout on, as the optimizer saw it)."""
    if not row:
        return ""
    parts = []
    for label, key in (("loss", "fit_loss"), ("test acc", "test_acc")):
        value = row.get(key)
        if isinstance(value, (int, float)):
            parts.append(f"{label} {fmt_number(value)}")
    return "".join(f"  {p}" for p in parts)


class SweepProgress:
    """Counts trials queued / running / done / failed and estimates the time left.

    ``console``: where it draws (the application's stderr console). ``live`` picks the rich
    display (default: when the console is a terminal) or plain line-by-line output (CI
    logs)."""

    def __init__(self, total: int, skipped: int, console: Console,
                 live: bool | None = None, workers: int = 1, header: str | None = None):
        self.console = console
        self.live = self.console.is_terminal if live is None else live
        self.total = total
        self.skipped = skipped
        self.queued = total
        self.running: dict[str, tuple[int, int]] = {}
        self.last_row: dict[str, dict[str, Any]] = {}  # latest epoch row of a running trial
        self.done = 0
        self.failed = 0
        self.pruned = 0  # stopped by a search's pruner (not a failure)
        self.t0 = time.monotonic()
        self._durations: list[float] = []
        self._starts: dict[str, float] = {}
        self._live: Live | None = None
        self.workers = max(1, workers)
        self.header = header  # e.g. "executor local: 2 workers x 1 thread (auto)"

    # -- the Events protocol ------------------------------------------------------------------
    def started(self, trial_id: str) -> None:
        self.queued -= 1
        self.running[trial_id] = (0, 0)
        self._starts[trial_id] = time.monotonic()
        if not self.live:
            self._line(f"start  {trial_id}")
        self._refresh()

    def epoch(self, trial_id: str, epoch: int, epochs: int,
              row: dict[str, Any] | None = None) -> None:
        self.running[trial_id] = (epoch, epochs)
        if row is not None:
            self.last_row[trial_id] = row
        self._refresh()

    def checkpoint(self, trial_id: str, epoch: int, data: bytes) -> None:
        pass  # the runner writes checkpoints; nothing to show

    def finished(self, trial_id: str, status: str) -> None:
        if trial_id not in self._starts:  # an executor that does not report starts
            self.queued -= 1
        self.running.pop(trial_id, None)
        self.last_row.pop(trial_id, None)
        start = self._starts.pop(trial_id, None)
        if start is not None:
            self._durations.append(time.monotonic() - start)
        if status == Status.DONE:
            self.done += 1
        elif status == Status.PRUNED:
            self.pruned += 1
        else:
            self.failed += 1
        if not self.live:
            ended = self.done + self.failed + self.pruned
            self._line(f"{status:<6} {trial_id}  [{ended}/{self.total}] "
                       f"{self._eta_text()}")
        self._refresh()

    # -- rendering ----------------------------------------------------------------------------
    def eta_seconds(self) -> float | None:
        """Time left, from the mean duration of the finished trials: the queued ones take a
        mean each, a running one the rest of a mean; the work is shared by the workers."""
        if not self._durations:
            return None
        mean = sum(self._durations) / len(self._durations)
        now = time.monotonic()
        running_left = sum(max(0.0, mean - (now - self._starts.get(tid, now)))
                           for tid in self.running)
        return (self.queued * mean + running_left) / self.workers

    def _eta_text(self) -> str:
        eta = self.eta_seconds()
        elapsed = fmt_seconds(time.monotonic() - self.t0)
        return f"elapsed {elapsed}" + ("" if eta is None else f", ~{fmt_seconds(eta)} left")

    def render(self) -> Text:
        t = Text()
        t.append(f"trials {self.done + self.failed + self.pruned}/{self.total}", style="bold")
        t.append(f"  queued {self.queued}  running {len(self.running)}  ")
        t.append(f"done {self.done}", style="green")
        t.append("  ")
        t.append(f"failed {self.failed}", style="red" if self.failed else "")
        if self.pruned:
            t.append(f"  pruned {self.pruned}", style="yellow")
        if self.skipped:
            t.append(f"  (reused {self.skipped})", style="dim")
        t.append(f"  {self._eta_text()}\n", style="dim")
        if self.header:
            t.append(f"  {self.header}\n", style="dim")
        for tid, (ep, eps) in list(self.running.items())[:8]:
            t.append(f"  {tid}  " + (f"epoch {ep}/{eps}" if eps else "running")
                     + epoch_numbers(self.last_row.get(tid)) + "\n", style="cyan")
        return t

    def _line(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False, soft_wrap=True)

    def _refresh(self) -> None:
        if self._live is not None:
            self._live.update(self.render())

    def __enter__(self) -> SweepProgress:
        if self.live:
            self._live = Live(self.render(), console=self.console, refresh_per_second=8,
                              transient=True)
            self._live.__enter__()
        else:
            self._line(f"sweep: {self.total} trial(s) to run"
                       + (f", {self.skipped} reused" if self.skipped else "")
                       + (f"; {self.header}" if self.header else ""))
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._live is not None:
            self._live.__exit__(exc_type, exc, tb)
            self._live = None
