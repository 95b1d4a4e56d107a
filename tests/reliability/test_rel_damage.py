"""A damaged runs directory (issue 12, item 7): every reader (compare, report, plot, ls,
show) and a resumed sweep tolerate it. A damaged trial is reported ``corrupt`` in one
warning line naming its file and skipped; a resume runs it again; a broken sweep.yaml is one
message for that sweep and does not hide the others in ``ls``."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers.reliability import cli, tiny, write_yaml


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("pristine")
    cfg = write_yaml(tmp / "tiny.yaml", tiny())
    run = cli("sweep", cfg, "--runs-dir", tmp / "runs", "--workers", "1")
    assert run.code == 0, run.text
    return tmp / "runs", cfg


def _first_trial(sweep: Path) -> Path:
    return sorted((sweep / "trials").iterdir())[0]


def _result(sweep: Path) -> Path:
    return _first_trial(sweep) / "result.json"


def _edit(change: Callable[[dict], None]) -> Callable[[Path], None]:
    def damage(sweep: Path) -> None:
        r = json.loads(_result(sweep).read_text())
        change(r)
        _result(sweep).write_text(json.dumps(r))
    return damage


def _write(text: str | bytes, where: Callable[[Path], Path] = _result) -> Callable[[Path], None]:
    def damage(sweep: Path) -> None:
        target = where(sweep)
        if isinstance(text, bytes):
            target.write_bytes(text)
        else:
            target.write_text(text)
    return damage


def _replace_with_folder(sweep: Path) -> None:
    _result(sweep).unlink()
    _result(sweep).mkdir()


def _trial_is_a_file(sweep: Path) -> None:
    t = _first_trial(sweep)
    shutil.rmtree(t)
    t.write_text("not a folder")


def _other_trials_id(r: dict) -> None:
    r["trial_id"] = "0123456789ab"


# Damage to one trial: readers exit 0 with the other trials, one warning names the file.
TRIAL_DAMAGE = {
    "result-empty-list": _write("[]"),
    "result-empty-file": _write(""),
    "result-truncated": _write('{"trial_id": "'),
    "result-binary": _write(b"\xff\xfe\x00garbage\x81"),
    "result-null": _write("null"),
    "result-no-trial-id": _write('{"status": "done"}'),
    "result-params-hand-edited": _edit(lambda r: r["params"].update({"dropout.p": 0.9})),
    "result-final-a-string": _edit(lambda r: r.update(final="x")),
    "result-status-unknown": _edit(lambda r: r.update(status="weird")),
    "result-status-corrupt": _edit(lambda r: r.update(status="corrupt")),
    "result-done-without-final": _edit(lambda r: r.pop("final")),
    "result-timing-a-list": _edit(lambda r: r.update(timing=[1, 2])),
    "result-other-trials-id": _edit(_other_trials_id),
    "result-deeply-nested": _write("[" * 100_000 + "]" * 100_000),
    "result-is-a-folder": _replace_with_folder,
    "trial-folder-is-a-file": _trial_is_a_file,
}

# Damage that leaves the results readable (the trial still counts).
HARMLESS_DAMAGE = {
    "metrics-garbage": _write("not json\n", lambda s: _first_trial(s) / "metrics.jsonl"),
    "metrics-a-list-per-line": _write("[]\n[]\n", lambda s: _first_trial(s) / "metrics.jsonl"),
    "metrics-binary": _write(b"\xff\x00\x81", lambda s: _first_trial(s) / "metrics.jsonl"),
    "error-txt-binary": _write(b"\xff\x00\x81", lambda s: _first_trial(s) / "error.txt"),
    "config-yaml-garbage": _write(": : :", lambda s: _first_trial(s) / "config.yaml"),
    "summary-garbage": _write(b"\x00\x01", lambda s: s / "summary.csv"),
    "final-values-strings": _edit(lambda r: r["final"].update(test_acc="high")),
}

SWEEP_FILE_DAMAGE = {
    "sweep-yaml-a-list": _write("[]", lambda s: s / "sweep.yaml"),
    "sweep-yaml-garbage": _write("{{{: [", lambda s: s / "sweep.yaml"),
    "sweep-yaml-empty": _write("", lambda s: s / "sweep.yaml"),
    "sweep-yaml-binary": _write(b"\xff\xfe\x00", lambda s: s / "sweep.yaml"),
    "sweep-yaml-trials-a-string": _write("trials: x\n", lambda s: s / "sweep.yaml"),
    "sweep-yaml-trial-without-params": _write("trials: [{trial_id: abc}]\n",
                                              lambda s: s / "sweep.yaml"),
    "sweep-yaml-trial-id-a-path": _write("trials: [{trial_id: ../../etc, params: {}}]\n",
                                         lambda s: s / "sweep.yaml"),
}


def _damaged(pristine, tmp_path, damage) -> tuple[Path, Path, Path]:
    runs, cfg = pristine
    copy = tmp_path / "runs"
    shutil.copytree(runs, copy)
    # A second, healthy sweep beside it: ls must keep showing it.
    shutil.copytree(runs / "tiny", copy / "healthy")
    sweep = copy / "tiny"
    damage(sweep)
    return copy, sweep, cfg


def _no_traceback(run) -> None:
    assert run.exception is None, f"escaped: {run.exception!r}\n{run.text}"
    assert "Traceback" not in run.text, run.text


# The compare table and show --json (compare --format json, show's table, report and plot read
# the same store.results(); they are run on fewer kinds below: each call costs CI time).
READERS = [("compare",), ("show", "--json")]


@pytest.mark.parametrize("kind", list(TRIAL_DAMAGE))
def test_a_damaged_trial_is_skipped_by_readers_and_rerun_by_a_resume(pristine, tmp_path, kind):
    runs, sweep, cfg = _damaged(pristine, tmp_path, TRIAL_DAMAGE[kind])
    for args in READERS:
        run = cli(args[0], sweep, *args[1:])
        _no_traceback(run)
        assert run.code == 0, (args, run.text)
    shown = cli("show", sweep, "--json")
    statuses = [t["status"] for t in json.loads(shown.out)["trials"]]
    assert statuses.count("corrupt") == 1 and statuses.count("done") == 3, statuses
    listed = cli("ls", runs, "--json")
    _no_traceback(listed)
    names = {s["name"]: s for s in json.loads(listed.out)["sweeps"]}
    assert names["healthy"]["done"] == 4 and names["tiny"]["corrupt"] == 1
    resumed = cli("sweep", cfg, "--runs-dir", runs, "--workers", "1", "--json")
    _no_traceback(resumed)
    assert resumed.code == 0, resumed.text
    executed = [t for t in json.loads(resumed.out)["trials"] if t["executed"]]
    assert len(executed) == 1  # only the damaged trial ran again
    assert [t["status"] for t in json.loads(cli("show", sweep, "--json").out)["trials"]] \
        == ["done"] * 4


def test_the_warning_is_one_line_naming_the_file(pristine, tmp_path):
    _, sweep, _ = _damaged(pristine, tmp_path, TRIAL_DAMAGE["result-empty-list"])
    run = cli("compare", sweep)
    warnings = [line for line in run.err.splitlines() if "corrupt" in line]
    assert len(warnings) == 1 and str(_result(sweep)) in warnings[0], run.err


def test_hand_edited_params_do_not_regroup_the_trial(pristine, tmp_path):
    _, sweep, _ = _damaged(pristine, tmp_path, TRIAL_DAMAGE["result-params-hand-edited"])
    run = cli("compare", sweep, "--format", "json")
    assert run.code == 0
    rows = [r for b in json.loads(run.out)["blocks"] for r in b["rows"]]
    assert sorted(r["value"] for r in rows) == [0.0, 0.5]  # no row for the edited 0.9
    assert sum(r["trials"]["done"] for r in rows) == 3  # the edited trial is skipped
    assert "disagree with the grid" in run.err


@pytest.mark.parametrize("kind", list(HARMLESS_DAMAGE))
def test_damage_beside_the_results_breaks_no_reader(pristine, tmp_path, kind):
    runs, sweep, _ = _damaged(pristine, tmp_path, HARMLESS_DAMAGE[kind])
    for args in [*READERS, ("ls", runs)]:
        run = cli(args[0], *(args[1:] if args[0] == "ls" else (sweep, *args[1:])))
        _no_traceback(run)
        assert run.code == 0, (args, run.text)


@pytest.mark.parametrize("kind", list(SWEEP_FILE_DAMAGE))
def test_a_broken_sweep_yaml_is_one_message_and_hides_no_other_sweep(pristine, tmp_path,
                                                                       kind):
    runs, sweep, cfg = _damaged(pristine, tmp_path, SWEEP_FILE_DAMAGE[kind])
    for args in READERS:
        cli(args[0], sweep, *args[1:]).assert_clean_failure(2, str(sweep))
    listed = cli("ls", runs, "--json")
    _no_traceback(listed)
    assert listed.code == 0
    sweeps = {s["name"]: s for s in json.loads(listed.out)["sweeps"]}
    assert sweeps["healthy"]["done"] == 4 and "error" in sweeps["tiny"]
    resumed = cli("sweep", cfg, "--runs-dir", runs, "--workers", "1")  # rewrites sweep.yaml
    _no_traceback(resumed)
    assert resumed.code == 0, resumed.text
    assert cli("show", sweep).code == 0


@pytest.mark.slow
def test_report_and_plot_tolerate_damage(pristine, tmp_path):
    # Three kinds at once (report and plot take seconds each): an unreadable result, edited
    # params and garbage learning curves, each in another trial.
    def damage(sweep: Path) -> None:
        a, b, c = sorted((sweep / "trials").iterdir())[:3]
        (a / "result.json").write_text("[]")
        r = json.loads((b / "result.json").read_text())
        r["params"]["dropout.p"] = 0.9
        (b / "result.json").write_text(json.dumps(r))
        (c / "metrics.jsonl").write_text("not json\n")

    _, sweep, _ = _damaged(pristine, tmp_path, damage)
    for command in ("report", "plot"):
        run = cli(command, sweep)
        _no_traceback(run)
        assert run.code == 0, (command, run.text)
        if command == "report":  # (warned once per file and process)
            assert "corrupt trial skipped" in run.err
