"""Range axes and the search: section in the config (no Optuna needed): the endpoints rule of
a range with a step, the validation messages (exit 2, one line naming the problem), --set,
and the schema."""

from __future__ import annotations

import json

import pytest

from dropout_lab.config import ConfigError, RangeAxis, grid_values, validate
from tests.helpers.configs import TINY


def _cfg(sweep, search=None, **extra):
    data = dict(TINY, sweep=sweep, **extra)
    if search is not None:
        data["search"] = search
    return data


@pytest.mark.parametrize("lo, hi, step, expected", [
    (0.0, 0.9, 0.1, [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]),  # max included
    (0.0, 0.5, 0.2, [0.0, 0.2, 0.4]),  # the step does not divide: stops below max
    (0.1, 0.1, 0.5, [0.1]),  # min == max: one value
    (0.0, 0.3, 0.1, [0.0, 0.1, 0.2, 0.3]),  # 0.3 / 0.1 = 2.9999999999999996: still included
])
def test_grid_values_include_both_ends_when_the_step_divides(lo, hi, step, expected):
    assert grid_values(RangeAxis(min=lo, max=hi, step=step)) == expected


def test_a_range_with_a_step_and_no_search_is_a_grid():
    cfg = validate(_cfg({"dropout.p": {"min": 0.0, "max": 0.5, "step": 0.25}, "seed": [0, 1]}))
    assert cfg.sweep["dropout.p"] == [0.0, 0.25, 0.5]
    assert cfg.search is None


@pytest.mark.parametrize("axis, message", [
    ({"min": 0.6, "max": 0.2}, "min = 0.6 is more than max = 0.2"),
    ({"min": 0.0, "max": 0.5, "log": True}, "log: true needs min > 0"),
    ({"min": 0.1, "max": 0.5, "log": True, "step": 0.1}, "log and step cannot be combined"),
    ({"min": 0.0, "max": 0.5, "stride": 0.1}, "stride: unknown key"),
    ({"min": 0.0, "max": 0.5}, "a range without a step: give it a step"),
    ({"min": 0.0, "max": 1.2, "step": 0.4}, "outside [0, 1)"),  # 1.2 itself is a grid value
])
def test_bad_ranges_are_one_clear_error(axis, message):
    with pytest.raises(ConfigError) as exc:
        validate(_cfg({"dropout.p": axis}))
    assert message in str(exc.value)


def test_a_range_end_outside_the_keys_domain_is_refused_for_a_search():
    with pytest.raises(ConfigError) as exc:
        validate(_cfg({"dropout.p": {"min": 0.0, "max": 1.0}},
                      {"method": "tpe", "trials": 4, "metric": "test_acc"}))
    assert "range end 1.0" in str(exc.value) and "outside [0, 1)" in str(exc.value)


@pytest.mark.parametrize("search, message", [
    ({"method": "tpe"}, "method tpe needs a number of trials"),
    ({"method": "random", "trials": 3}, "search.metric val_acc needs a validation split"),
    ({"method": "tpe", "trials": 3, "metric": "corr[1]"}, "not measured every epoch"),
    ({"method": "grid", "trials": 3, "metric": "test_acc"}, "method grid needs a step"),
    ({"method": "tpe", "trials": 3, "metric": "test_acc", "early_terminate": {"type": "x"}},
     "early_terminate.type"),
])
def test_bad_search_sections(search, message):
    with pytest.raises(ConfigError) as exc:
        validate(_cfg({"dropout.p": {"min": 0.0, "max": 0.5}}, search))
    assert message in str(exc.value)


def test_the_seed_axis_is_never_a_range():
    with pytest.raises(ConfigError, match="sweep.seed must be a list"):
        validate(_cfg({"dropout.p": [0.1], "seed": {"min": 0, "max": 3, "step": 1}}))


def test_cli_range_syntax_says_the_yaml_form(cli, tiny_config):
    code, out, err = cli("validate", tiny_config, "--set", "dropout.p=range(0,0.9,0.1)")
    assert code == 2 and "Traceback" not in err
    assert "Hydra's sweeper syntax" in err
    assert "--set 'dropout.p={min: 0.0, max: 0.9, step: 0.1}'" in err.replace("\n", " ")


def test_cli_set_a_range_axis(cli, tiny_config):
    code, out, err = cli("validate", tiny_config, "--json", "--set",
                         "dropout.p={min: 0, max: 0.9, step: 0.3}")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["axes"]["dropout.p"] == [0.0, 0.3, 0.6, 0.9] and doc["trials"] == 8


def test_cli_validate_shows_a_search(cli, write_config):
    path = write_config(_cfg({"dropout.p": {"min": 0.0, "max": 0.9}, "seed": [0, 1]},
                             {"method": "tpe", "trials": 5, "metric": "test_acc"}))
    code, out, err = cli("validate", path)
    assert code == 0, err
    assert "search tpe: up to 5 suggestion(s) x 2 seed(s) = 10 trial(s) over dropout.p in " \
           "[0.0, 0.9]" in out.replace("\n", " ")


def test_schema_knows_both_axis_forms(cli):
    code, out, _ = cli("schema")
    doc = json.loads(out)
    axis = doc["properties"]["sweep"]["additionalProperties"]
    refs = json.dumps(axis)
    assert '"type": "array"' in refs and "RangeAxis" in refs
    assert set(doc["$defs"]["RangeAxis"]["properties"]) == {"min", "max", "log", "step"}
    assert "SearchConfig" in doc["$defs"] and "search" in doc["properties"]


def test_search_section_does_not_change_trial_ids():
    from dropout_lab.sweep import expand

    plain = expand(validate(_cfg({"dropout.p": [0.0, 0.5]})))
    searched = validate(_cfg({"dropout.p": [0.0, 0.5]}, {"method": "grid", "metric": "test_acc"}))
    assert searched.trial_dict() == plain[0].config.trial_dict() | {
        "dropout": searched.trial_dict()["dropout"]}
    assert "search" not in plain[0].config.trial_dict()
