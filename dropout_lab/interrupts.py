"""Signals held while something must not be cut in half.

A leaf module (standard library only), so that the runner and a trial's checkpoint encoding
share one way of holding Ctrl-C, SIGTERM and SIGHUP."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType


@contextlib.contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Hold Ctrl-C/SIGTERM/SIGHUP for the body, then deliver the first one caught. The runner
    holds them while the summary is written (a signal right after the last trial must not leave
    the sweep without summary.csv); a checkpoint holds them while it is serialised (a
    KeyboardInterrupt inside ``np.savez`` left its zip writer open, and the ValueError its
    clean-up raised replaced the interrupt: the trial was stored as failed). Off the main
    thread signals are never delivered here, so the body just runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[signal.Signals] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        caught.append(signal.Signals(signum))

    sigs = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {s: signal.signal(s, hold) for s in sigs}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if caught:
            handler = previous[caught[0]]
            if callable(handler):  # Python's own SIGINT handler included
                handler(caught[0], None)
