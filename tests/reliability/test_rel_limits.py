"""Limits and validation cost (issue 12, items 2 and 6; issue 14, "validate each grid point
once"): the grid size is checked from the axis lengths before anything is expanded, and one
sweep validates each grid point exactly once in the driver."""

from __future__ import annotations

import json
from collections import Counter

import pytest
import yaml

from dropout_lab import config as config_module
from dropout_lab.config import ConfigError, ExperimentConfig, load_yaml_text
from dropout_lab.sweep import expand
from tests.helpers.reliability import cli, tiny, write_yaml


@pytest.fixture
def validations(monkeypatch) -> Counter:
    """Counts ExperimentConfig validations in this process, by the validated content."""
    seen: Counter = Counter()
    original = ExperimentConfig.model_validate

    def counting(data, *args, **kwargs):
        key = json.dumps({k: v for k, v in data.items() if k != "name"}, sort_keys=True,
                         default=str) if isinstance(data, dict) else repr(data)
        seen[key] += 1
        return original(data, *args, **kwargs)

    monkeypatch.setattr(ExperimentConfig, "model_validate", staticmethod(counting))
    return seen


@pytest.mark.slow
def test_one_sweep_validates_each_grid_point_once(tmp_path, validations):
    # --workers 2: trials run in worker processes, so every validation counted here is the
    # driver's (config, grid, plan, store, summary).
    cfg = write_yaml(tmp_path / "c.yaml", tiny(sweep={"dropout.p": [0.0, 0.5],
                                                      "seed": [0, 1, 2]}))
    run = cli("sweep", cfg, "--runs-dir", tmp_path / "runs", "--workers", "2",
              "--threads", "1", "--json")
    assert run.code == 0, run.text
    points = {k: n for k, n in validations.items() if '"sweep"' not in k}
    base = {k: n for k, n in validations.items() if '"sweep"' in k}
    assert len(points) == 6, validations  # every grid point ...
    assert set(points.values()) == {1}, validations  # ... validated exactly once
    assert sum(base.values()) == 1  # and the base config once


def test_expand_validates_each_point_once(validations):
    cfg = config_module.validate({"sweep": {"dropout.p": [0.1, 0.2, 0.3], "seed": [0, 1]}})
    validations.clear()
    assert len(expand(cfg)) == 6
    assert sum(validations.values()) == 6 and set(validations.values()) == {1}


def test_a_huge_grid_is_refused_from_its_axis_lengths_before_expanding(tmp_path,
                                                                          validations):
    axes = {"seed": list(range(1000)), "dropout.p": [i / 1000 for i in range(1000)]}
    path = write_yaml(tmp_path / "c.yaml", tiny(sweep=axes))
    for command in (["validate"], ["sweep", "--dry-run"], ["sweep"]):
        validations.clear()
        run = cli(*command, path, *(["--runs-dir", tmp_path / "runs"] if command[0] == "sweep"
                                    else []))
        run.assert_clean_failure(2, "1,000,000 trials", "--max-trials")
        assert sum(validations.values()) == 1  # the base only: no grid point was built
    assert not (tmp_path / "runs").exists()


def test_alias_expansion_is_measured_on_the_graph_not_built():
    # 10 aliases per level, 30 levels: 10^30 values if built; refused from a graph of ~300.
    lines = ["a0: &a0 [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 30)]
    with pytest.raises(ConfigError, match="expands"):
        load_yaml_text("\n".join(lines), "bomb.yaml")
    # An honest document with aliases below the limit still loads.
    ok = load_yaml_text("base: &b {epochs: 3}\ntrain: *b\n", "ok.yaml")
    assert ok == yaml.safe_load("base: {epochs: 3}\ntrain: {epochs: 3}\n")


def test_max_trials_raises_the_cap_for_sweep_validate_and_dry_run(tmp_path):
    path = write_yaml(tmp_path / "c.yaml", tiny(sweep={"seed": list(range(12))}))
    cli("validate", path, "--max-trials", "11").assert_clean_failure(2, "12 trials")
    run = cli("validate", path, "--max-trials", "12")
    assert run.code == 0 and "12 trial(s)" in run.out
