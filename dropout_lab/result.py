"""The status of a trial: one vocabulary for what result.json's ``status`` says.

:class:`Status` is a ``str`` enum, so a member *is* its string: ``json.dumps(Status.DONE)``
writes ``"done"`` (result.json, summary.csv and every JSON output stay as they were) and a
status read back from an old file compares equal to the member (``"done" == Status.DONE``).
"""

from __future__ import annotations

from enum import Enum


class Status(str, Enum):
    """What became of a trial (result.json ``status``).

    (``enum.StrEnum`` needs Python 3.11; we support 3.10, so ``str()`` and ``format()`` are
    defined here to give the plain string, as StrEnum's do, in f-strings and CSV cells.)"""

    DONE = "done"  # trained to the end (or early-stopped): ``final`` holds its numbers
    FAILED = "failed"  # an exception, or its worker was lost: ``error`` says why
    DIVERGED = "diverged"  # a non-finite loss: ``reason`` names the epoch
    # Never written to result.json; readers report these for a trial of the grid:
    PENDING = "pending"  # no result.json yet (not run, or running now)
    CORRUPT = "corrupt"  # a result.json that cannot be read or does not fit the grid

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)


# A trial that ran and did not finish: a re-run retries it, ``gc`` drops it, exit code 1.
UNSUCCESSFUL = (Status.FAILED, Status.DIVERGED)
