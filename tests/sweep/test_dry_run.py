"""``sweep --dry-run``: the trials, which are skipped as done, sizes and a time estimate; the
runs directory is never touched."""

from __future__ import annotations

import json
from pathlib import Path

from dropout_lab.estimate import _makespan
from tests.helpers.configs import TINY


def _snapshot(root: Path) -> dict[str, float]:
    return {str(p): p.stat().st_mtime_ns for p in root.rglob("*")} if root.exists() else {}


def test_dry_run_writes_nothing_and_lists_every_trial(cli, tiny_config, tmp_path):
    runs = tmp_path / "runs"
    code, out, err = cli("sweep", tiny_config, "--runs-dir", runs, "--dry-run", "--json")
    assert code == 0, err
    assert not runs.exists()
    doc = json.loads(out)
    assert doc["dry_run"] is True and len(doc["trials"]) == 4
    assert {t["action"] for t in doc["trials"]} == {"run"}
    # synthetic: 8 features -> hidden 16 -> 3 classes
    assert {t["weights"] for t in doc["trials"]} == {8 * 16 + 16 * 3}
    assert all(t["estimate_seconds"] > 0 for t in doc["trials"])
    assert doc["estimate_seconds"] > 0 and doc["threads"] == 1


def test_dry_run_after_a_partial_run_shows_skips_and_reruns(cli, write_config, tmp_path,
                                                            monkeypatch):
    runs = tmp_path / "runs"
    cfg = dict(TINY, sweep={"dataset.train_size": [60, 100], "seed": [0, 1]})
    path = write_config(cfg)
    code, _, _ = cli("sweep", path, "--runs-dir", runs, "--workers", "1")
    assert code == 0
    # The train_size 100 trials failed (a train_size above the data is now refused before
    # training, so the failure is written as a failed run would have written it).
    for result in runs.glob("tiny/trials/*/result.json"):
        r = json.loads(result.read_text())
        if r["params"]["dataset.train_size"] == 100:
            result.write_text(json.dumps(dict(r, status="failed", final=None)))
    # ... and that shape cannot be probed either.
    import dropout_lab.estimate

    real_prepare = dropout_lab.estimate.prepare

    def prepare(config, threads):
        if config.dataset.train_size == 100:
            raise RuntimeError("probe of this shape fails")
        return real_prepare(config, threads)

    monkeypatch.setattr(dropout_lab.estimate, "prepare", prepare)  # the probe's trial set-up
    before = _snapshot(runs)
    code, out, _ = cli("sweep", path, "--runs-dir", runs, "--dry-run", "--json")
    assert code == 0
    assert _snapshot(runs) == before  # not one file written or touched
    actions = {(t["params"]["dataset.train_size"], t["action"], t["stored_status"])
               for t in json.loads(out)["trials"]}
    assert actions == {(60, "skip", "done"), (100, "rerun", "failed")}
    # The failing shape cannot be probed: the estimate says so instead of guessing.
    assert json.loads(out)["estimate_seconds"] is None

    code, out, _ = cli("sweep", path, "--runs-dir", runs, "--dry-run")
    assert code == 0
    assert "skip (done)" in out and "run (was failed)" in out
    assert "timing probe failed" in out and "nothing was written" in out


def test_dry_run_text_table(cli, tiny_config, tmp_path):
    code, out, _ = cli("sweep", tiny_config, "--runs-dir", tmp_path / "runs", "--dry-run",
                       "--workers", "2", "--threads", "1")
    assert code == 0
    assert "4 to run" in out and "2 worker(s) x 1 thread(s)" in out and "estimated time" in out


def test_makespan_longest_first():
    # Two workers: [5] and [3, 2] -> 5; one worker: the sum.
    assert _makespan([3.0, 5.0, 2.0], 2) == 5.0
    assert _makespan([3.0, 5.0, 2.0], 1) == 10.0
    assert _makespan([1.0] * 8, 2) == 4.0
