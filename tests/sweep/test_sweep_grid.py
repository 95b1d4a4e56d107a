"""Grid expansion and trial ids."""

from __future__ import annotations

import copy

import pytest

from dropout_lab.config import ConfigError, validate
from dropout_lab.sweep import expand, trial_id_of
from tests.helpers.configs import TINY


def cfg_with(sweep):
    data = copy.deepcopy(TINY)
    data["sweep"] = sweep
    return validate(data)


def test_grid_is_the_cartesian_product_in_written_order():
    trials = expand(cfg_with({"dropout.p": [0.0, 0.5, 0.8], "model.hidden": [[8], [16, 16]],
                              "seed": [0, 1]}))
    assert len(trials) == 12
    assert [t.params for t in trials[:3]] == [
        {"dropout.p": 0.0, "model.hidden": [8], "seed": 0},
        {"dropout.p": 0.0, "model.hidden": [8], "seed": 1},
        {"dropout.p": 0.0, "model.hidden": [16, 16], "seed": 0},
    ]
    t = trials[-1]
    assert t.config.dropout.p == 0.8 and t.config.model.hidden == [16, 16] and t.config.seed == 1
    assert len({t.trial_id for t in trials}) == 12


def test_no_axes_is_one_trial():
    trials = expand(cfg_with({}))
    assert len(trials) == 1 and trials[0].params == {}


def test_trial_ids_are_stable_and_content_derived():
    a = expand(cfg_with({"dropout.p": [0.0, 0.5], "seed": [0, 1]}))
    b = expand(cfg_with({"seed": [1, 0], "dropout.p": [0.5, 0.0]}))  # other axis order
    assert {t.trial_id for t in a} == {t.trial_id for t in b}
    # the same point written directly (no sweep) has the same id
    data = copy.deepcopy(TINY)
    data["sweep"] = {}
    data["dropout"]["p"] = 0.5
    data["seed"] = 1
    direct = validate(data)
    assert trial_id_of(direct) in {t.trial_id for t in a}
    # renaming the sweep does not change ids; changing a setting does
    data["name"] = "other"
    assert trial_id_of(validate(data)) == trial_id_of(direct)
    data["train"]["epochs"] = 3
    assert trial_id_of(validate(data)) != trial_id_of(direct)


def test_int_and_float_p_give_the_same_trial():
    a = expand(cfg_with({"dropout.p": [0, 0.5]}))
    b = expand(cfg_with({"dropout.p": [0.0, 0.5]}))
    assert [t.trial_id for t in a] == [t.trial_id for t in b]
    assert a[0].params == {"dropout.p": 0.0}


def test_duplicate_axis_values_are_refused():
    """One value twice on an axis is a typo, refused with the axis named (issue 21); it used
    to collapse into one trial in silence."""
    with pytest.raises(ConfigError, match="axis 'seed' lists one value twice"):
        cfg_with({"seed": [0, 0, 1]})
