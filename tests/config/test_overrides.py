"""--set as people know it from Hydra: KEY=a,b makes an axis; errors name the --set argument."""

from __future__ import annotations

import json

import pytest

from dropout_lab.config import CommaList, apply_overrides, parse_override
from dropout_lab.errors import ConfigError
from tests.helpers.configs import TINY


@pytest.mark.parametrize("text, key, value", [
    ("dropout.p=0.1,0.2", "dropout.p", [0.1, 0.2]),
    ("model.hidden=[8],[32,32]", "model.hidden", [[8], [32, 32]]),
    ("dataset.name=digits,synthetic", "dataset.name", ["digits", "synthetic"]),
])
def test_a_bare_comma_list_is_a_list_of_values(text, key, value):
    k, v = parse_override(text)
    assert (k, v) == (key, value) and isinstance(v, CommaList)


@pytest.mark.parametrize("text, value", [
    ("model.hidden=[64,64]", [64, 64]),  # inside brackets: one value
    ("dataset.path='a,b'", "a,b"),       # inside quotes: one value
    ("dropout.p=0.3", 0.3),
])
def test_commas_inside_brackets_or_quotes_are_one_value(text, value):
    _, v = parse_override(text)
    assert v == value and not isinstance(v, CommaList)


def test_comma_list_makes_an_axis_and_keeps_the_other_axes():
    data = apply_overrides(TINY, ["dropout.p=0.1,0.2", "model.hidden=[8],[16]"])
    assert data["sweep"]["dropout.p"] == [0.1, 0.2]
    assert data["sweep"]["model.hidden"] == [[8], [16]]
    assert data["sweep"]["seed"] == [0, 1]


def test_the_grid_of_a_comma_list_through_the_cli(cli, tiny_config):
    code, out, err = cli("validate", tiny_config, "--set", "dropout.p=0.1,0.2,0.3", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["axes"]["dropout.p"] == [0.1, 0.2, 0.3] and doc["trials"] == 6  # x 2 seeds


@pytest.mark.parametrize("arg, expected", [
    ("dropout.p=0.1,2", "--set dropout.p=0.1,2: dropout.p: p = 2.0 is outside [0, 1)"),
    ("train.lr=-1", "--set train.lr=-1: train.lr: Input should be greater than 0"),
    ("dropout.p=abc", "--set dropout.p=abc: dropout.p:"),
    ("train.epochs=[1", "--set train.epochs=[1: value '[1' is not valid YAML"),
])
def test_override_errors_name_the_set_argument_not_the_file(cli, tiny_config, arg, expected):
    code, out, err = cli("validate", tiny_config, "--set", arg)
    assert code == 2 and out == ""
    assert expected in err
    assert str(tiny_config) not in err
    assert "Traceback" not in err


def test_an_error_in_the_file_still_names_the_file(cli, write_config):
    path = write_config({**TINY, "train": {**TINY["train"], "lr": -1}})
    code, _, err = cli("validate", path, "--set", "dropout.p=0.2")
    assert code == 2 and str(path) in err and "train.lr" in err and "--set" not in err


def test_union_error_is_said_once():
    with pytest.raises(ConfigError) as exc:
        apply_overrides(TINY, ["dropout.p=abc"])
    assert len(str(exc.value).splitlines()) == 1
    assert exc.value.key == "dropout.p"
