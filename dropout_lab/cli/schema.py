"""``dropout-lab schema``: the config's JSON Schema (from the pydantic models), for editors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from dropout_lab.backends import registry as backend_registry
from dropout_lab.cli.app import current, guard
from dropout_lab.config import ExperimentConfig
from dropout_lab.data import registry as dataset_registry
from dropout_lab.report.output_file import check_output, write_output


def register(app: typer.Typer) -> None:
    app.command("schema")(schema)


# p is a probability of dropping: 0 <= p < 1 (config.models._check_p)
_PROBABILITY = {"type": "number", "minimum": 0, "exclusiveMaximum": 1}


def config_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of a config file, as pydantic derives it from the models,
    with what the validators check by code added for editors: the names the registries know
    (backend, dataset.name) as enums, and the range of every drop probability."""
    doc = ExperimentConfig.model_json_schema()
    doc["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    doc["title"] = "dropout-lab config"
    defs = doc["$defs"]
    doc["properties"]["backend"]["enum"] = backend_registry.names()
    defs["DatasetConfig"]["properties"]["name"]["enum"] = dataset_registry.names()
    dropout = defs["DropoutConfig"]["properties"]
    dropout["p"]["anyOf"] = [dict(_PROBABILITY),
                             {"type": "array", "items": dict(_PROBABILITY), "minItems": 1}]
    dropout["input_p"].update(_PROBABILITY)
    return doc


@guard
def schema(
    output: Path = typer.Option(None, "--output", "-o",
                                help="write the schema to this file instead of stdout"),
) -> None:
    """Print the JSON Schema of a config file, so an editor can check and complete the YAML.

    For example, with the YAML language server, write the schema to a file and put
    '# yaml-language-server: $schema=dropout-lab.schema.json' at the top of the config.

    On a terminal, long lines wrap at its width; a pipe and --output get the JSON as is."""
    if output is not None:
        check_output(output, "--output")
    text = json.dumps(config_schema(), indent=2) + "\n"
    ui = current()
    if output is None and ui.out.is_terminal:
        # For a person at a terminal: long descriptions wrap at its width (a pipe and -o get
        # the JSON byte for byte, one string per line).
        from rich.json import JSON

        ui.out.print(JSON(text, indent=2), soft_wrap=False)
    elif output is None:
        typer.echo(text, nl=False)
    else:
        write_output(output, text.encode("utf-8"), "--output")
