"""Help and schema that tell the truth (issue 22, "Output that fits" and "Schema"): boolean
options are shown as flags, and the JSON Schema carries the enums and bounds the validators
check in code."""

from __future__ import annotations

import json

import pytest

from dropout_lab.backends import registry as backends
from dropout_lab.cli import app
from dropout_lab.config import VARIANTS
from dropout_lab.data import registry as datasets
from tests.helpers.reliability import cli

COMMANDS = [[c.name] for c in app.registered_commands if c.name] + [
    ["datasets", "list"], ["datasets", "fetch"], []]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "root")
def test_boolean_options_are_shown_as_flags(command, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    run = cli(*command, "--help")
    assert run.code == 0, run.text
    assert "--help" in run.out and "<bool>" not in run.out


def test_schema_has_the_registry_enums_and_the_bounds_of_p():
    run = cli("schema")
    assert run.code == 0, run.text
    doc = json.loads(run.out)
    assert doc["properties"]["backend"]["enum"] == backends.names()
    assert doc["$defs"]["DatasetConfig"]["properties"]["name"]["enum"] == datasets.names()
    dropout = doc["$defs"]["DropoutConfig"]["properties"]
    assert dropout["variant"]["enum"] == list(VARIANTS)
    number, array = dropout["p"]["anyOf"]
    assert number == {"type": "number", "minimum": 0, "exclusiveMaximum": 1}
    assert array["items"] == number and array["minItems"] == 1
    assert dropout["input_p"]["minimum"] == 0 and dropout["input_p"]["exclusiveMaximum"] == 1
