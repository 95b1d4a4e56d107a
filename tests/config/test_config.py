"""Config validation: good and bad cases through the CLI (message + exit code 2, no traceback)."""

from __future__ import annotations

import copy

import pytest

from dropout_lab.config import apply_overrides, load_config, parse_override
from dropout_lab.errors import ConfigError
from tests.helpers.configs import TINY


def with_change(path: str, value):
    data = copy.deepcopy(TINY)
    node = data
    parts = path.split(".")
    for p in parts[:-1]:
        node = node.setdefault(p, {})
    node[parts[-1]] = value
    return data


def test_validate_prints_resolved_config_and_grid_size(cli, tiny_config):
    code, out, err = cli("validate", tiny_config)
    assert code == 0, err
    assert "4 trial(s) in the grid" in out
    assert "variant: inverted" in out  # a default, resolved into the printed config


@pytest.mark.parametrize(
    "change, expected",
    [
        (("dropout.pp", 0.5), "unknown key 'dropout.pp'; did you mean 'dropout.p'?"),
        (("trian", {}), "unknown key 'trian'; did you mean 'train'?"),
        (("train.epochs", "ten"), "train.epochs"),
        (("dropout.p", 1.0), "dropout.p: p = 1.0 is outside [0, 1)"),
        (("dropout.p", -0.1), "outside [0, 1)"),
        (("dropout.input_p", 1.5), "dropout.input_p"),
        (("train.lr", -0.1), "train.lr: Input should be greater than 0"),
        (("train.optimizer", "adamw"), "train.optimizer"),
        (("dropout.variant", "alpha"), "dropout.variant"),
        (("model.hidden", [0]), "model.hidden: every width must be a positive integer"),
        (("dataset.name", "mnsit"), "unknown data set 'mnsit'"),
        (("backend", "jax"), "unknown backend 'jax'"),
        (("dataset.test_fraction", 0.2),
         "data set 'synthetic' does not take option 'test_fraction'"),
        (("dataset.path", "/data"), "data set 'synthetic' reads no files"),
        (("sweep", {"dropout.p": [0.1, 1.2]}), "sweep point dropout.p=1.2"),
        (("sweep", {"droput.p": [0.1]}), "did you mean 'dropout.p'?"),
        (("sweep", {"seed": []}), "axis 'seed' has no values"),
        (("dropout.p", [0.5, 0.5]), "dropout.p has 2 values but model.hidden has 1 layers"),
    ],
)
def test_bad_config_is_rejected_with_the_key_named(cli, write_config, tmp_path, change, expected):
    path = write_config(with_change(*change))
    code, out, err = cli("sweep", path, "--runs-dir", tmp_path / "runs")
    assert code == 2
    assert expected in err
    assert "Traceback" not in err + out
    assert not (tmp_path / "runs").exists(), "a bad config must not write anything"


@pytest.mark.parametrize(
    "override, expected",
    [
        ("dropout.pp=0.3", "did you mean 'dropout.p'?"),
        ("train.epochs", "expected KEY=VALUE"),
        ("train.epochs=[1", "not valid YAML"),
        ("sweep.seed=3", "a sweep axis needs a list"),
        ("train.lr=-1", "train.lr"),
    ],
)
def test_bad_override(cli, tiny_config, override, expected):
    code, _, err = cli("validate", tiny_config, "--set", override)
    assert code == 2
    assert expected in err


def test_missing_file_and_bad_yaml(cli, tmp_path):
    code, _, err = cli("validate", tmp_path / "nope.yaml")
    assert code == 2 and "does not exist" in err
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ntrain: [1, 2\n")
    code, _, err = cli("validate", bad)
    assert code == 2 and "not valid YAML" in err and "line" in err


def test_overrides_yaml_values_and_axes(tiny_config):
    cfg = load_config(tiny_config, ["model.hidden=[32, 16]", "dropout.p=0.25",
                                    "sweep.train.lr=[0.1, 0.01]"])
    assert cfg.model.hidden == [32, 16]
    assert cfg.dropout.p == 0.25
    assert "dropout.p" not in cfg.sweep  # fixing a swept key removes that axis
    assert cfg.sweep["train.lr"] == [0.1, 0.01]
    assert cfg.sweep["seed"] == [0, 1]


def test_parse_override_yaml_typing():
    assert parse_override("a.b=0.5") == ("a.b", 0.5)
    assert parse_override("a=[1, 2]") == ("a", [1, 2])
    assert parse_override("a=true") == ("a", True)
    assert parse_override("a=adam") == ("a", "adam")
    with pytest.raises(ConfigError):
        parse_override("=3")


def test_apply_overrides_does_not_mutate_input():
    raw = {"sweep": {"dropout.p": [0.1]}}
    apply_overrides(raw, ["dropout.p=0.2"])
    assert raw == {"sweep": {"dropout.p": [0.1]}}


def test_name_defaults_to_file_stem(write_config):
    data = copy.deepcopy(TINY)
    del data["name"]
    cfg = load_config(write_config(data, "my_sweep.yaml"))
    assert cfg.name == "my_sweep"


def test_deep_flow_nesting_is_refused_before_the_yaml_parser():
    """5,000 nested [ took PyYAML's scanner ~20 s (quadratic in the depth) before its
    recursion limit refused it: the depth is checked first, on the text."""
    from dropout_lab.config import MAX_YAML_DEPTH, flow_depth, load_yaml_text

    assert flow_depth("a: " + "[" * 150 + "]" * 150) == 150
    assert flow_depth("a: [[1], {b: [2]}]\n" * 60) == 3  # many brackets, shallow
    quoted = "a: '" + "[" * 150 + "'\nb: \"" + "{" * 150 + "\"\n# " + "[" * 150 + "\n"
    assert flow_depth(quoted) == 0  # inside quotes and comments they do not nest
    assert load_yaml_text(quoted, "q")["a"] == "[" * 150
    deep = "name: d\nx: " + "[" * (MAX_YAML_DEPTH + 1) + "]" * (MAX_YAML_DEPTH + 1) + "\n"
    with pytest.raises(ConfigError, match="nested too deeply"):
        load_yaml_text(deep, "deep.yaml")
    with pytest.raises(ConfigError, match="nested too deeply"):
        load_yaml_text("trials: " + "[" * 5000 + "]" * 5000 + "\n", "sweep.yaml")
    ok = "x: " + "[" * MAX_YAML_DEPTH + "]" * MAX_YAML_DEPTH + "\n"
    assert load_yaml_text(ok, "ok.yaml")["x"] is not None
