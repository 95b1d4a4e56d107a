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


def _is_boolean(param: object) -> bool:
    """A bool-typed option, on click's parameters or on the vendored click of Typer >= 0.22
    (which keeps the annotation in ``type_descriptor``)."""
    described = getattr(param, "type_descriptor", None)
    if described is not None:
        return described.annotation is bool
    return getattr(getattr(param, "type", None), "name", "") == "boolean"


def test_every_boolean_option_is_a_flag_and_every_help_paragraph_is_one_line():
    """Issue 22: `--dry-run`, never `--dry-run <bool>` (the help of every command and group
    command, read from click's own parameters, not from the rendered text); and a help
    paragraph is one line in the source rich wraps, so it never breaks mid-sentence at 80
    columns (cli/__init__.py reflows the docstrings)."""
    from typer.main import get_command

    group = get_command(app)
    commands = {"": group}
    for name, cmd in group.commands.items():  # type: ignore[attr-defined]
        commands[name] = cmd
        for sub, sub_cmd in (getattr(cmd, "commands", None) or {}).items():
            commands[f"{name} {sub}"] = sub_cmd
    booleans = 0
    for name, cmd in commands.items():
        for param in cmd.params:
            if param.param_type_name == "option" and _is_boolean(param):
                booleans += 1
                assert param.is_flag, f"{name} {param.opts}: a boolean option that takes a value"
        for paragraph in (cmd.help or "").split("\n\n")[1:]:
            assert "\n" not in paragraph.strip(), (name, paragraph)
    assert booleans >= 10  # the walk found the flags (--json, --dry-run, --wide, ...)
