"""The trial vocabulary: Status writes and reads back as plain strings; result.json has exactly
the keys and types that dropout_lab/result.py and docs/results.md describe."""

from __future__ import annotations

import copy
import csv
import io
import json
import types
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints, is_typeddict

import pytest

import dropout_lab
from dropout_lab.config import validate
from dropout_lab.result import (
    FINAL_KEYS,
    UNSUCCESSFUL,
    BestEpoch,
    Env,
    Final,
    Result,
    Status,
    Timing,
)
from dropout_lab.store import SweepStore
from dropout_lab.sweep import expand
from dropout_lab.trial import run_trial


def test_a_status_is_written_as_its_plain_string():
    assert json.dumps({"status": Status.DONE}) == '{"status": "done"}'
    assert json.dumps({Status.PENDING: 1}) == '{"pending": 1}'
    assert f"{Status.DIVERGED:<9}|" == "diverged |"
    assert str(Status.CORRUPT) == "corrupt" and f"{Status.FAILED}" == "failed"
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow([Status.DONE])
    assert buf.getvalue() == "done\n"


def test_a_status_read_from_an_old_file_compares_equal():
    read = json.loads('{"status": "diverged"}')["status"]
    assert read == Status.DIVERGED and read in UNSUCCESSFUL
    assert Status(read) is Status.DIVERGED
    assert {"done": 3}[Status.DONE] == 3  # same hash as the string: count dicts keep working
    assert "done" != Status.FAILED


def test_the_statuses_are_the_five_the_code_knows():
    assert [s.value for s in Status] == ["done", "failed", "diverged", "pending", "corrupt"]


# -- result.json: the keys a real trial writes are the documented ones -----------------------

# A tiny trial, as the training tests run them (synthetic data: no download, a second).
_TINY = {
    "name": "schema",
    "dataset": {"name": "synthetic", "n_train": 120, "n_test": 80, "n_features": 8,
                "n_classes": 3, "val_fraction": 0.25},
    "model": {"hidden": [16]},
    "dropout": {"p": 0.5},
    "train": {"epochs": 2, "batch_size": 32, "optimizer": "momentum", "lr": 0.05},
    "eval": {"mc_samples": 4, "max_samples": 80, "pair_samples": 4, "ablation_draws": 1},
}
ROOT = Path(dropout_lab.__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "results.md"
# Keys written only for one status (every other optional key: done trials only).
ONLY_WHEN = {"reason": Status.DIVERGED, "error": Status.FAILED}
ONLY_RESUMED = {"resumed"}  # a trial continued from a checkpoint (training/test_checkpoint.py)
ONLY_CONCRETE = {"learned_p"}  # dropout.variant: concrete (backends/test_concrete.py)


def _stored(tmp_path: Path, **section_changes: dict) -> dict:
    """Run one trial, store its outcome as a sweep does, and read result.json back."""
    data = copy.deepcopy(_TINY)
    for section, changes in section_changes.items():
        data[section].update(changes)
    (point,) = expand(validate(data))
    out = run_trial(point.config_dict, point.trial_id, point.params)
    store = SweepStore(tmp_path)
    store.write_outcome(point.trial_id, out.result, out.metrics, out.error, out.arrays)
    path = store.trial_dir(point.trial_id) / "result.json"
    return json.loads(path.read_text(encoding="utf-8"))


def _conforms(value: object, hint: object) -> bool:
    """Whether a JSON value has the type a TypedDict field declares (recursively for nested
    TypedDicts; ``Any`` holds anything)."""
    if hint is Any:
        return True
    if hint is float:  # JSON writes 1.0 as 1.0 but a float field may hold an int-valued float
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is type(None):
        return value is None
    if is_typeddict(hint):
        hints = get_type_hints(hint)
        return (isinstance(value, dict) and set(value) <= set(hints)
                and hint.__required_keys__ <= set(value)
                and all(_conforms(v, hints[k]) for k, v in value.items()))
    origin, args = get_origin(hint), get_args(hint)
    if origin in (Union, types.UnionType):
        return any(_conforms(value, a) for a in args)
    if origin is list:
        return isinstance(value, list) and all(_conforms(v, args[0]) for v in value)
    if origin is dict:
        return isinstance(value, dict) and all(_conforms(v, args[1]) for v in value.values())
    if hint is Status:
        return value in [s.value for s in Status]
    return isinstance(value, hint)  # type: ignore[arg-type]


def _expected_keys(status: Status, statistics: bool = True) -> set[str]:
    """The top-level keys the schema says a trial with ``status`` has."""
    keys = set(get_type_hints(Result)) - ONLY_RESUMED - ONLY_CONCRETE
    if status != Status.DONE:
        keys = set(Result.__required_keys__) | {"final", "timing", "env"}
    keys = {k for k in keys if ONLY_WHEN.get(k, status) == status}
    if not statistics:
        keys -= {"coadaptation", "uncertainty"}
    return keys | {k for k, s in ONLY_WHEN.items() if s == status}


def test_a_done_trials_result_json_has_exactly_the_documented_keys(tmp_path):
    result = _stored(tmp_path)
    assert result["status"] == "done"
    assert set(result) == _expected_keys(Status.DONE)
    assert _conforms(result, Result), result
    assert tuple(result["final"]) == FINAL_KEYS == tuple(get_type_hints(Final))
    assert result["best_epoch"]["by"] == "val_acc"  # the validation split fills best_epoch


def test_a_concrete_trial_adds_exactly_learned_p(tmp_path):
    result = _stored(tmp_path, dropout={"variant": "concrete", "p": 0.3})
    assert set(result) == _expected_keys(Status.DONE) | ONLY_CONCRETE
    assert _conforms(result, Result), result
    assert result["learned_p"][0] is None and 0 < result["learned_p"][1] < 1


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the overflow is the point here
def test_failed_and_diverged_trials_have_their_own_keys(tmp_path):
    failed = _stored(tmp_path / "f", dataset={"train_size": 1000})  # more than there is
    assert failed["status"] == "failed" and set(failed) == _expected_keys(Status.FAILED)
    assert _conforms(failed, Result), failed
    diverged = _stored(tmp_path / "d", train={"lr": 1e30, "optimizer": "sgd"})
    assert diverged["status"] == "diverged"
    assert set(diverged) == _expected_keys(Status.DIVERGED) and _conforms(diverged, Result)


def test_without_statistics_a_done_trial_has_no_statistics_sections(tmp_path):
    result = _stored(tmp_path, eval={"coadaptation": False, "uncertainty": False})
    assert set(result) == _expected_keys(Status.DONE, statistics=False)


def test_every_key_of_the_schema_is_documented_in_results_md():
    text = DOCS.read_text(encoding="utf-8")
    for td in (Result, Final, BestEpoch, Timing, Env):
        for key in get_type_hints(td):
            assert f"| `{key}`" in text or f", `{key}`" in text, (td.__name__, key)
    assert "(docs/results.md)" in (ROOT / "README.md").read_text(encoding="utf-8")
