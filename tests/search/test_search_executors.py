"""The two hooks a search gives an executor: a feed (asked for work when a worker is idle)
and a stop test (a pruned trial ends after its current epoch as status pruned). Serial stops
at exactly the epoch the test said; local after that epoch or a later one (a message), well
before the end."""

from __future__ import annotations

import pytest

from dropout_lab.config import validate
from dropout_lab.executors.local import LocalExecutor
from dropout_lab.executors.serial import SerialExecutor
from dropout_lab.packs.plan import Pack
from dropout_lab.result import Status
from dropout_lab.runner import NullEvents
from dropout_lab.sweep import expand

EPOCHS = 150


def _points(n: int):
    cfg = validate({"name": "feed", "dataset": {"name": "digits"}, "model": {"hidden": [16]},
                    "train": {"epochs": EPOCHS, "batch_size": 64},
                    "eval": {"coadaptation": False, "uncertainty": False,
                             "save_weights": "none", "train_subset": 100},
                    "sweep": {"seed": list(range(n))}})
    return expand(cfg)


@pytest.mark.slow
@pytest.mark.parametrize("make", [lambda: SerialExecutor(threads=1),
                                  lambda: LocalExecutor(workers=2, threads=1)],
                         ids=["serial", "local"])
def test_feed_and_stop(make):
    points = _points(3)
    fed: list[str] = []
    queue = list(points)

    def feed():
        if not queue:
            return []
        point = queue.pop(0)
        fed.append(point.trial_id)
        return [Pack((point,))]

    seen: dict[str, int] = {}

    class Events(NullEvents):
        def epoch(self, trial_id, epoch, epochs, row):
            seen[trial_id] = epoch

    stop_first = points[0].trial_id
    executor = make()
    outcomes = list(executor.run([], Events(), feed=feed,
                                 stop=lambda tid: tid == stop_first and seen.get(tid, 0) >= 2))
    assert sorted(o.trial_id for o in outcomes) == sorted(p.trial_id for p in points)
    assert fed == [p.trial_id for p in points]  # each point fed once, in order
    by_id = {o.trial_id: o for o in outcomes}
    stopped = by_id[stop_first]
    assert stopped.status == Status.PRUNED
    assert stopped.result["final"] is None and stopped.result["stopped_by"] == "pruned"
    trained = stopped.result["epochs_trained"]
    if isinstance(executor, SerialExecutor):
        assert trained == 2
    else:
        assert 2 <= trained < EPOCHS
    assert len(stopped.metrics) == trained
    assert all(by_id[p.trial_id].status == Status.DONE for p in points[1:])
