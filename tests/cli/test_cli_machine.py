"""Machine-readable output: --version, schema, JSON errors under --json, shell completion."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml

from dropout_lab import __version__
from dropout_lab.config import validate
from tests.helpers.fake_sweeps import write_sweep


def test_version(cli):
    code, out, _ = cli("--version")
    assert code == 0 and out.strip() == f"dropout-lab {__version__}"


def test_schema_is_the_pydantic_json_schema_and_describes_a_real_config(cli, tmp_path):
    code, out, err = cli("schema")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["type"] == "object" and doc["additionalProperties"] is False
    assert {"dataset", "model", "dropout", "train", "sweep"} <= set(doc["properties"])
    # The quickstart config uses only keys the schema declares, at every level.
    quick = yaml.safe_load(open("configs/quickstart.yaml", encoding="utf-8"))
    validate(quick)
    for key, value in quick.items():
        assert key in doc["properties"], key
        ref = doc["properties"][key].get("$ref")
        if ref and isinstance(value, dict):
            sub = doc["$defs"][ref.rsplit("/", 1)[-1]]
            assert set(value) <= set(sub["properties"]), (key, set(value) - set(sub["properties"]))
    code, _, err = cli("schema", "-o", tmp_path / "s.json")
    assert code == 0, err
    assert json.loads((tmp_path / "s.json").read_text()) == doc


@pytest.mark.parametrize("args", [
    ("ls", "{tmp}/missing", "--json"),
    ("show", "{tmp}/missing", "--json"),
    ("gc", "{tmp}/missing", "--json"),
    ("note", "{tmp}/missing", "hello", "--json"),
    ("rm", "{tmp}/missing", "--yes", "--json"),
    ("export", "{tmp}/missing", "--to", "tensorboard", "{tmp}/tb", "--json"),
    ("datasets", "fetch", "digits", "--json"),
])
def test_errors_under_json_are_one_json_object_on_stdout(cli, tmp_path, args):
    code, out, err = cli(*[a.format(tmp=tmp_path) for a in args])
    assert code == 2
    doc = json.loads(out)
    assert doc["code"] == 2 and doc["error"] and "key" in doc
    assert doc["error"].splitlines()[0] in err  # the human line is still on stderr


def test_json_error_of_an_override_names_its_key(cli, tiny_config, tmp_path):
    code, out, err = cli("sweep", tiny_config, "--runs-dir", tmp_path / "runs", "--json",
                         "--set", "train.lr=-1")
    assert code == 2
    doc = json.loads(out)
    assert doc["key"] == "train.lr" and doc["kind"] == "ConfigError"
    assert doc["error"].startswith("--set train.lr=-1: ")
    assert not (tmp_path / "runs").exists()  # nothing half-written


def test_errors_without_json_leave_stdout_empty(cli, tmp_path):
    code, out, err = cli("show", tmp_path / "missing")
    assert code == 2 and out == "" and "no such sweep folder" in err


def test_commands_that_print_take_json(cli, tmp_path, tiny_config, rendered):
    sweep = write_sweep(tmp_path)
    for args in (("ls", tmp_path), ("show", sweep), ("gc", sweep), ("note", sweep, "x"),
                 ("validate", tiny_config), ("show", sweep / "trials" / "t000")):
        code, out, err = cli(*args, "--json")
        assert code == 0, (args, err)
        json.loads(out)
    # plot and report: the session's runs with --json (tests/conftest.py, rendered once)
    for code, out, err in (rendered.plot, rendered.report):
        assert code == 0, err
        json.loads(out)


def test_shell_completion_is_on(cli):
    code, out, _ = cli("--help")
    assert code == 0 and "--install-completion" in out
    # Click's completion protocol, as the installed bash script calls it.
    env = dict(os.environ, _DROPOUT_LAB_COMPLETE="complete_bash", COMP_WORDS="dropout-lab sh",
               COMP_CWORD="1")
    res = subprocess.run([sys.executable, "-m", "dropout_lab"], env=env, capture_output=True,
                         text=True, timeout=60)
    assert "show" in res.stdout.split() and "sweep" not in res.stdout.split(), res


def test_command_summaries_are_whole_sentences_on_one_line(cli):
    code, out, _ = cli("--help")
    assert code == 0
    # The ls summary spans two docstring lines; the list must not cut it at the line break.
    flat = " ".join(line.strip("│ ") for line in out.splitlines())
    assert "finished trials of earlier grids), trial folders on disk" in " ".join(flat.split())


@pytest.mark.parametrize("args, key", [
    (("show", "--json"), "sweep_dir"),
    (("ls", "--json", "--no-such-option"), None),
    (("compare", "-f", "json"), "sweep_dir"),
])
def test_command_line_errors_under_json_are_json_too(cli, args, key):
    code, out, err = cli(*args)
    assert code == 2
    doc = json.loads(out)
    assert doc["kind"] == "UsageError" and doc["code"] == 2 and doc["key"] == key
    assert doc["error"] in " ".join(err.replace("│", " ").split()) or doc["error"][:20] in err


def test_command_line_errors_without_json_leave_stdout_empty(cli):
    code, out, _ = cli("show")
    assert code == 2 and out == ""
