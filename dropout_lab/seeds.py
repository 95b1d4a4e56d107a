"""Named random streams derived from one trial seed.

Each purpose has its own ``np.random.Generator`` (SeedSequence spawn keys), so changing p
changes only the dropout stream: every p of a sweep starts from the same weights and sees the
mini-batches in the same order, which makes comparisons between p values paired.
No global random state is used anywhere in dropout-lab.
"""

from __future__ import annotations

import numpy as np

_STREAMS = {"init": 0, "order": 1, "dropout": 2, "eval": 3, "subset": 4, "curves": 5}


def rng(seed: int, stream: str) -> np.random.Generator:
    """The generator for one named stream of a seed (``init``, ``order``, ``dropout``, ...)."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_STREAMS[stream],)))
