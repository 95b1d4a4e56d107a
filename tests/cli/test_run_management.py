"""rm, gc, note/tags, ls --sort/--filter, sweep history counts and show of one trial."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import time
from pathlib import Path

import yaml

from tests.helpers.fake_sweeps import write_sweep


def _failed_one(params):
    return "failed" if params == {"dropout.p": 0.5, "seed": 1} else "done"


def _add_old_trials(sweep: Path, n: int) -> list[str]:
    """Trial folders of an earlier grid: on disk, absent from sweep.yaml."""
    ids = []
    for i in range(n):
        d = sweep / "trials" / f"old{i}"
        d.mkdir(parents=True)
        (d / "result.json").write_text(json.dumps({"trial_id": f"old{i}", "status": "done",
                                                   "params": {}, "final": {}}))
        ids.append(f"old{i}")
    return ids


# -- history ----------------------------------------------------------------------------------

def test_ls_and_show_count_every_trial_on_disk_and_those_of_the_grid(cli, tmp_path):
    sweep = write_sweep(tmp_path, "alpha")
    _add_old_trials(sweep, 11)
    code, out, err = cli("ls", tmp_path, "--json")
    assert code == 0, err
    s = json.loads(out)["sweeps"][0]
    assert (s["total"], s["on_disk"], s["in_grid_on_disk"]) == (9, 20, 9)
    code, out, err = cli("show", sweep, "--json")
    assert code == 0, err
    assert json.loads(out)["history"] == {"on_disk": 20, "in_grid": 9, "other": 11,
                                          "earlier": 0, "hidden": 11}
    code, out, _ = cli("show", sweep)
    # folders that sweep.yaml does not list (written before it kept earlier grids) are
    # counted as not shown, and gc named as the way to list them
    assert "on disk: 20 trial folder(s), 9 of the current grid; 11 not shown" in out


def test_a_rerun_with_another_grid_keeps_the_old_trials_visible(cli, tiny_config, tmp_path):
    runs = tmp_path / "runs"
    assert cli("sweep", tiny_config, "--runs-dir", runs, "--workers", "1")[0] == 0
    # other seeds: another grid of the same config (another base config is refused: a sweep
    # folder holds one experiment, see docs/results.md); the earlier grid's trials stay part
    # of the sweep (issue 21, item 2)
    assert cli("sweep", tiny_config, "--runs-dir", runs, "--workers", "1",
               "--set", "sweep.seed=[2,3]")[0] == 0
    code, out, _ = cli("ls", runs, "--json")
    s = json.loads(out)["sweeps"][0]
    assert (s["total"], s["done"], s["on_disk"]) == (8, 8, 8)


# -- rm ---------------------------------------------------------------------------------------

def test_rm_without_a_terminal_refuses_without_yes(cli, tmp_path):
    sweep = write_sweep(tmp_path)
    code, out, err = cli("rm", sweep)
    assert code == 2 and "--yes" in err and sweep.is_dir()


def test_rm_yes_removes_the_sweep(cli, tmp_path):
    sweep = write_sweep(tmp_path)
    code, out, err = cli("rm", sweep, "--yes")
    assert code == 0, err
    assert not sweep.exists() and "9 trial folder(s)" in out


def test_rm_refuses_a_folder_that_is_not_a_sweep(cli, tmp_path):
    (tmp_path / "precious").mkdir()
    (tmp_path / "precious" / "file.txt").write_text("keep me")
    code, _, err = cli("rm", tmp_path / "precious", "--yes")
    assert code == 2 and "not a sweep folder" in err
    assert (tmp_path / "precious" / "file.txt").exists()


def _rm_on_a_terminal(sweep: Path, answer: bytes) -> tuple[int, str]:
    """Run `dropout-lab rm` with a real pseudo-terminal as stdin and type ``answer``."""
    main, child = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "dropout_lab", "rm", str(sweep)],
                            stdin=child, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=dict(os.environ, NO_COLOR="1"))
    os.close(child)
    time.sleep(0.2)
    os.write(main, answer)
    out, err = proc.communicate(timeout=60)
    os.close(main)
    return proc.returncode, (out + err).decode()


def test_rm_asks_on_a_terminal(tmp_path):
    sweep = write_sweep(tmp_path)
    code, text = _rm_on_a_terminal(sweep, b"n\n")
    assert code == 2 and "delete" in text and "not confirmed" in text and sweep.is_dir()
    code, text = _rm_on_a_terminal(sweep, b"y\n")
    assert code == 0 and not sweep.exists(), text


# -- gc ---------------------------------------------------------------------------------------

def test_gc_is_a_dry_run_by_default_and_apply_removes(cli, tmp_path):
    sweep = write_sweep(tmp_path, status=_failed_one)
    old = _add_old_trials(sweep, 2)
    (sweep / "trials" / "t000" / "result.json").write_text("{ torn")  # corrupt
    code, out, err = cli("gc", sweep, "--json")
    assert code == 0, err
    plan = json.loads(out)
    assert plan["not_in_grid"] == old and plan["corrupt"] == ["t000"]
    failed = [t for t in plan["failed"]]
    assert len(failed) == 1 and plan["total"] == 4 and plan["applied"] is False
    assert all((sweep / "trials" / t).exists() for t in old + failed + ["t000"])
    code, out, _ = cli("gc", sweep)
    assert "would remove old0  (not in the current grid)" in out and "--apply" in out
    code, out, err = cli("gc", sweep, "--apply")
    assert code == 0, err
    assert not any((sweep / "trials" / t).exists() for t in old + failed + ["t000"])
    assert len(list((sweep / "trials").iterdir())) == 7  # 9 - 1 failed - 1 corrupt
    code, out, _ = cli("gc", sweep)
    assert "nothing to clean" in out


def test_gc_keeps_pending_trials_and_failed_ones_on_request(cli, tmp_path):
    sweep = write_sweep(tmp_path, status=lambda p: "pending" if p["seed"] == 0 else
                        _failed_one(p))
    code, out, _ = cli("gc", sweep, "--json", "--keep-failed")
    assert json.loads(out)["total"] == 0


# -- note, tags, sort, filter -----------------------------------------------------------------

def test_note_and_tags_show_in_ls_and_filter_selects(cli, tmp_path):
    a = write_sweep(tmp_path, "alpha")
    write_sweep(tmp_path, "beta", status=_failed_one)
    code, out, err = cli("note", a, "baseline for the paper", "--tag", "paper", "-t", "mnist")
    assert code == 0, err
    assert json.loads((a / "meta.json").read_text()) == {
        "note": "baseline for the paper", "tags": ["paper", "mnist"]}
    code, out, _ = cli("ls", tmp_path)
    line = next(x for x in out.splitlines() if "alpha" in x)
    assert "paper, mnist" in line and "baseline for the paper" in line
    code, out, _ = cli("ls", tmp_path, "--filter", "tag=paper", "--json")
    assert [s["name"] for s in json.loads(out)["sweeps"]] == ["alpha"]
    code, out, _ = cli("ls", tmp_path, "--filter", "status=failed", "--json")
    assert [s["name"] for s in json.loads(out)["sweeps"]] == ["beta"]
    code, out, _ = cli("ls", tmp_path, "--filter", "name=b*", "--json")
    assert [s["name"] for s in json.loads(out)["sweeps"]] == ["beta"]
    code, out, _ = cli("note", a, "--untag", "paper", "--json")
    assert json.loads(out)["tags"] == ["mnist"]
    code, out, _ = cli("note", a, "", "--json")
    assert "note" not in json.loads(out)


def test_ls_sort(cli, tmp_path):
    write_sweep(tmp_path, "a", status=_failed_one)
    write_sweep(tmp_path, "b", axes={"dropout.p": [0.0], "seed": [0]})
    write_sweep(tmp_path, "c", axes={"dropout.p": [0.0, 0.5], "seed": [0]})
    names = lambda out: [s["name"] for s in json.loads(out)["sweeps"]]  # noqa: E731
    assert names(cli("ls", tmp_path, "--json", "--sort", "total")[1]) == ["b", "c", "a"]
    assert names(cli("ls", tmp_path, "--json", "--sort", "-total")[1]) == ["a", "c", "b"]
    assert names(cli("ls", tmp_path, "--json", "--sort", "-failed")[1])[0] == "a"


def test_bad_sort_filter_and_tag_exit_2(cli, tmp_path):
    sweep = write_sweep(tmp_path)
    assert "choose one of" in cli("ls", tmp_path, "--sort", "size")[2]
    assert "use tag=NAME" in cli("ls", tmp_path, "--filter", "colour=red")[2]
    code, _, err = cli("note", sweep, "--tag", "a,b")
    assert code == 2 and "a tag is one word" in err


# -- show of one trial ------------------------------------------------------------------------

def test_show_one_trial_folder(cli, tiny_config, tmp_path):
    runs = tmp_path / "runs"
    assert cli("sweep", tiny_config, "--runs-dir", runs, "--workers", "1")[0] == 0
    trial = sorted((runs / "tiny" / "trials").iterdir())[0]
    code, out, err = cli("show", trial, "--json")
    assert code == 0, err
    doc = json.loads(out)
    rows = [json.loads(x) for x in (trial / "metrics.jsonl").read_text().splitlines()]
    assert doc["status"] == "done" and doc["config"]["train"]["epochs"] == 2
    assert doc["curves"]["epochs"] == 2
    assert doc["curves"]["test_acc"]["last"] == rows[-1]["test_acc"]
    assert doc["curves"]["test_acc"]["best"] == max(r["test_acc"] for r in rows)
    assert doc["final"]["test_acc"] == rows[-1]["test_acc"]
    assert doc["env"]["backend"] == "numpy" and "train_seconds" in doc["timing"]
    code, out, _ = cli("show", trial)
    assert code == 0
    for heading in ("config", "final", "timing", "env", "curves over 2 epoch(s)"):
        assert heading in out
    cfg = yaml.safe_load((trial / "config.yaml").read_text())
    assert f"lr: {cfg['train']['lr']}" in out


def test_show_orders_model_sizes_by_number(cli, tmp_path):
    sweep = write_sweep(tmp_path, axes={"model.hidden": [[128], [32], [64, 64]], "seed": [0]})
    code, out, _ = cli("show", sweep, "--json")
    assert [t["params"]["model.hidden"] for t in json.loads(out)["trials"]] == \
        [[32], [128], [64, 64]]


def test_rm_and_gc_apply_refuse_a_sweep_that_is_running(cli, tmp_path):
    """A sweep holds runs/<name>/.lock while it runs: rm and gc --apply name it and remove
    nothing (the lock is taken here exactly as a running sweep takes it)."""
    from dropout_lab.store import SweepLock

    sweep = write_sweep(tmp_path)
    with SweepLock(sweep) as running:
        running.acquire()
        code, _, err = cli("rm", sweep, "--yes")
        assert code == 2 and "in use by another sweep" in err and sweep.is_dir()
        code, _, err = cli("gc", sweep, "--apply")
        assert code == 2 and "in use by another sweep" in err
    assert cli("rm", sweep, "--yes")[0] == 0 and not sweep.exists()
