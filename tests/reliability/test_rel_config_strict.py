"""Config strictness (issue 21, "Config strictness"): what pydantic's lax mode and PyYAML would
accept in silence is one exit-2 message naming the key, with no traceback and nothing written.

Each case failed before the fix: accepted in silence (exit 0), or a traceback."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from tests.helpers.reliability import cli, tiny, write_yaml

BASE = yaml.safe_dump(tiny(sweep={}), sort_keys=False)


def _file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


# (id, YAML text appended to a valid config, words the message must hold)
FILE_CASES = [
    ("section-twice", "dropout: {p: 0.2}\n", ["'dropout'", "given twice"]),
    ("key-twice-nested", "sweep: {seed: [0], seed: [1]}\n", ["'seed'", "given twice"]),
    ("seed-twice", "sweep: {seed: [0, 0]}\n", ["'seed'", "twice"]),
    ("p-0.5-0.50", "sweep: {dropout.p: [0.5, 0.50]}\n", ["'dropout.p'", "twice"]),
    ("p-0-0.0", "sweep: {dropout.p: [0, 0.0]}\n", ["'dropout.p'", "same value"]),
    ("hidden-twice", "sweep: {model.hidden: [[8], [8]]}\n", ["'model.hidden'", "twice"]),
    ("axis-name", "sweep: {name: [a, b]}\n", ["'name'", "cannot be an axis"]),
    ("axis-section", "sweep: {train: [{lr: 0.1}, {lr: 0.2}]}\n", ["'train'", "whole section"]),
    ("axis-sweep", "sweep: {sweep: [[], []]}\n", ["'sweep'", "cannot be an axis"]),
    ("p-string", "sweep: {dropout.p: ['0.5']}\n", ["dropout.p", "not text"]),
    ("seed-5000-digits", "seed: " + "9" * 5000 + "\n", ["too long"]),
    ("dataset-seed-huge", "sweep: {dataset.seed: [" + "9" * 40 + "]}\n", ["dataset.seed"]),
]


@pytest.mark.parametrize("case_id, extra, needles", FILE_CASES, ids=[c[0] for c in FILE_CASES])
def test_config_file_refusals(tmp_path, case_id, extra, needles):
    # a key given twice at the top level: the base has the section, the extra repeats it
    text = BASE.replace("sweep: {}\n", "") + extra
    cfg = _file(tmp_path, text)
    cli("validate", cfg).assert_clean_failure(2, *needles)
    run = cli("sweep", cfg, "--runs-dir", tmp_path / "runs")
    run.assert_clean_failure(2, *needles)
    assert not (tmp_path / "runs").exists()  # refused before anything is written


# (id, --set arguments, words the message must hold)
SET_CASES = [
    ("p-text", ["dropout.p='0.5'"], ["dropout.p", "not text"]),
    ("lr-text", ["train.lr='0.1'"], ["train.lr", "not text"]),
    ("epochs-float", ["train.epochs=1.0e+3"], ["train.epochs", "not a float"]),
    ("hidden-float", ["model.hidden=[16.0]"], ["model.hidden", "not a float"]),
    ("batch-float", ["train.batch_size=32.0"], ["train.batch_size", "not a float"]),
    ("seed-5000-digits", ["seed=" + "9" * 5000], ["--set seed", "too long"]),
    ("name-comma-axis", ["name=a,b"], ["name=a,b", "takes one value"]),
    ("name-escape", ["name=a\x1b[31mb"], ["--set name", "not valid YAML"]),
    ("name-bell", ["name=a\x07b"], ["--set name", "not valid YAML"]),
    ("name-multibyte-too-long", ["name=" + "é" * 200], ["name", "bytes", "255"]),
    ("seed-axis-twice", ["sweep.seed=[1,1]"], ["'seed'", "twice"]),
    ("seed-comma-twice", ["seed=3,3"], ["'seed'", "twice"]),
    ("p-comma-same", ["dropout.p=0.5,0.50"], ["'dropout.p'", "twice"]),
    ("train-size-1", ["dataset.train_size=1"], ["dataset.train_size"]),
    ("classes-over-examples", ["dataset.n_classes=50", "dataset.n_train=10"],
     ["dataset.n_classes = 50", "dataset.n_train = 10"]),
    ("classes-over-default-size", ["dataset.n_train=null", "dataset.n_classes=2000"],
     ["n_classes = 2000", "n_train = 1000"]),
    ("train-size-under-classes", ["dataset.train_size=2"], ["train_size = 2", "3 classes"]),
]


@pytest.mark.parametrize("case_id, sets, needles", SET_CASES, ids=[c[0] for c in SET_CASES])
def test_set_refusals(tmp_path, case_id, sets, needles):
    cfg = write_yaml(tmp_path / "c.yaml", tiny())
    args = [a for s in sets for a in ("--set", s)]
    cli("validate", cfg, *args).assert_clean_failure(2, *needles)
    run = cli("sweep", cfg, *args, "--runs-dir", tmp_path / "runs", "--dry-run")
    run.assert_clean_failure(2, *needles)
    assert not (tmp_path / "runs").exists()


def test_what_stays_valid(tmp_path):
    """The checks refuse only what they name: integers for floats, option sections as axes
    (lr_schedule), distinct values, and a merge key (<<) overridden by its mapping."""
    cfg = write_yaml(tmp_path / "ok.yaml", tiny(
        dropout={"p": 0.5}, train={"epochs": 2, "batch_size": 32, "lr": 1},
        sweep={"dropout.p": [0, 0.25], "seed": [0, 1],
               "train.lr_schedule": ["constant", "cosine"]}))
    run = cli("validate", cfg, "--json")
    assert run.code == 0, run.text
    doc = json.loads(run.out)
    assert doc["trials"] == 8 and doc["config"]["train"]["lr"] == 1.0
    no_eval = {k: v for k, v in tiny(sweep={}).items() if k != "eval"}
    merged = _file(tmp_path, yaml.safe_dump(no_eval, sort_keys=False)
                   + "eval: {<<: {mc_samples: 3, ece_bins: 5}, mc_samples: 2}\n")
    run = cli("validate", merged, "--json")
    assert run.code == 0, run.text
    assert json.loads(run.out)["config"]["eval"]["mc_samples"] == 2


@pytest.mark.parametrize("option, value", [("--workers", "1" + "0" * 23),
                                           ("--threads", "1" + "0" * 23),
                                           ("--workers", "1e23"), ("--threads", "0"),
                                           ("--workers", "-1")])
@pytest.mark.parametrize("dry", [True, False])
def test_out_of_range_workers_and_threads(tmp_path, option, value, dry):
    cfg = write_yaml(tmp_path / "c.yaml", tiny())
    run = cli("sweep", cfg, option, value, "--runs-dir", tmp_path / "runs",
              *(["--dry-run"] if dry else []))
    assert run.code == 2 and run.exception is None, run.text
    assert option in run.err and "Traceback" not in run.text
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("dry", [True, False])
def test_a_runs_dir_that_is_not_a_folder(tmp_path, dry):
    cfg = write_yaml(tmp_path / "c.yaml", tiny())
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for runs in (cfg, fifo, Path("/dev/null")):
        run = cli("sweep", cfg, "--runs-dir", runs, *(["--dry-run"] if dry else []))
        run.assert_clean_failure(2, str(runs), "not a folder")


def test_validate_json_with_a_control_character_is_one_document(tmp_path):
    cfg = write_yaml(tmp_path / "c.yaml", tiny())
    run = cli("validate", cfg, "--json", "--set", "name=a\x01b")
    assert run.code == 2 and run.exception is None and "Traceback" not in run.text
    doc = json.loads(run.out)
    assert doc["code"] == 2 and doc["key"] == "name" and doc["kind"] == "ConfigError"


def test_an_over_long_name_leaves_no_runs_dir(tmp_path):
    cfg = write_yaml(tmp_path / "c.yaml", tiny(name="ü" * 130))  # 260 bytes > NAME_MAX
    run = cli("sweep", cfg, "--runs-dir", tmp_path / "runs")
    run.assert_clean_failure(2, "name", "255")
    assert not (tmp_path / "runs").exists()


def test_over_long_path_components_are_bad_input_not_the_machine(tmp_path):
    long = "a" * 300  # NAME_MAX is 255 bytes
    cfg = write_yaml(tmp_path / "c.yaml", tiny())
    cli("validate", tmp_path / f"{long}.yaml").assert_clean_failure(2, long[:50])
    run = cli("sweep", cfg, "--runs-dir", tmp_path / long)
    assert run.code == 2 and run.exception is None and "Traceback" not in run.text, run.text
    cli("ls", tmp_path / long).assert_clean_failure(2)
    cli("schema", "-o", tmp_path / long).assert_clean_failure(2)
