"""The statistics end to end: through a sweep, across backends, and the read-out shortcut."""

from __future__ import annotations

import copy
import importlib.util
import json
import math

import numpy as np
import pytest

from dropout_lab.backends import registry
from dropout_lab.config import validate
from dropout_lab.metrics import Probe, after_training, held_out
from dropout_lab.training import train
from dropout_lab.trial import prepare
from tests.helpers.configs import TINY

LAYER_KEYS = {"layer", "units", "mean_abs_corr", "decov", "decov_std", "participation_ratio",
              "participation_ratio_norm", "mean_activation", "zero_fraction", "dead_fraction",
              "selectivity", "corr_units", "corr_min_active"}
UNCERTAINTY_KEYS = {"mc_samples", "mc_acc", "mc_nll", "det_acc", "det_nll", "predictive_entropy",
                    "mutual_information", "ece_det", "ece_mc", "brier_det", "brier_mc",
                    "mc_curve", "reliability"}


def config(**changes):
    data = copy.deepcopy(TINY)
    data["sweep"] = {}
    for key, value in changes.items():
        section, field = key.split("__")
        if section == "top":
            data[field] = value
        else:
            data[section][field] = value
    return validate(data)


def trial_results(runs_dir):
    return [json.loads(p.read_text()) for p in sorted(runs_dir.glob("*/trials/*/result.json"))]


# -- through the CLI ------------------------------------------------------------------------
def test_sweep_stores_both_sections_with_the_schema(cli, tiny_config, tmp_path):
    code, out, err = cli("sweep", tiny_config, "--runs-dir", tmp_path / "runs")
    assert code == 0, err
    results = trial_results(tmp_path / "runs")
    assert len(results) == 4
    for r in results:
        co, un = r["coadaptation"], r["uncertainty"]
        assert [layer["layer"] for layer in co["layers"]] == [1]
        assert set(co["layers"][0]) == LAYER_KEYS and co["layers"][0]["units"] == 16
        ab = co["ablation"]
        assert ab["fractions"] == pytest.approx([0.1 * k for k in range(10)])
        assert len(ab["curve"]) == 10 and 0 <= ab["auc"] <= 1
        assert set(ab["pair_synergy"]) == {"mean", "frac_above", "threshold", "pairs"}
        assert ab["pair_synergy"]["pairs"] <= 4
        assert set(un) == UNCERTAINTY_KEYS
        assert un["mc_samples"] == 4 and un["mc_curve"]["T"] == [1, 2, 5, 10, 20, 50]
        assert len(un["reliability"]["edges"]) == 16
        assert sum(un["reliability"]["mc"]["count"]) == 80  # the whole test split (80 <= 2000)
        assert un["det_acc"] == pytest.approx(r["final"]["test_acc"])  # same data, eval mode
        if r["params"]["dropout.p"] == 0.0:
            assert un["mutual_information"] == 0.0
        else:
            assert un["mutual_information"] > 0.0
        assert r["timing"]["stats_seconds"] > 0
    # The end-of-sweep table shows the co-adaptation column and the ablation AUC.
    assert "corr[1]" in out and "ablation_auc" in out  # compare's names


@pytest.mark.parametrize("off", ["coadaptation", "uncertainty"])
def test_each_section_can_be_turned_off(cli, tiny_config, tmp_path, off):
    code, _, err = cli("sweep", tiny_config, "--runs-dir", tmp_path / "runs",
                       "--set", f"eval.{off}=false")
    assert code == 0, err
    on = {"coadaptation", "uncertainty"} - {off}
    for r in trial_results(tmp_path / "runs"):
        assert off not in r
        assert all(k in r for k in on)


def test_both_off_computes_nothing(cli, tiny_config, tmp_path):
    code, out, err = cli("sweep", tiny_config, "--runs-dir", tmp_path / "runs",
                         "--set", "eval.coadaptation=false", "--set", "eval.uncertainty=false")
    assert code == 0, err
    for r in trial_results(tmp_path / "runs"):
        assert "coadaptation" not in r and "uncertainty" not in r
    assert "ablation_auc" not in out


def test_bad_eval_value_is_one_line_and_exit_2(cli, tiny_config, tmp_path):
    code, _, err = cli("sweep", tiny_config, "--runs-dir", tmp_path / "runs",
                       "--set", "eval.mc_samples=0")
    assert code == 2
    assert "eval.mc_samples" in err and "Traceback" not in err
    assert not (tmp_path / "runs").exists() or not trial_results(tmp_path / "runs")


# -- reproducibility and the held-out sample ------------------------------------------------
def trained(cfg):
    prep = prepare(cfg)
    train(prep)
    return prep


def test_statistics_are_reproducible_from_the_seed_and_independent_of_each_other():
    cfg = config()
    a = after_training(trained(cfg))
    b = after_training(trained(cfg))
    assert json.dumps(a) == json.dumps(b)
    only_unc = after_training(trained(config(eval__coadaptation=False)))
    assert json.dumps(only_unc["uncertainty"]) == json.dumps(a["uncertainty"])
    other_seed = after_training(trained(config(top__seed=1)))
    assert json.dumps(other_seed) != json.dumps(a)


def test_max_samples_limits_the_held_out_sample():
    prep = trained(config(eval__max_samples=30))
    out = after_training(prep)
    assert sum(out["uncertainty"]["reliability"]["det"]["count"]) == 30
    x, y = held_out(prep.data.x_test, prep.data.y_test, 30, np.random.default_rng(0))
    x2, _ = held_out(prep.data.x_test, prep.data.y_test, 30, np.random.default_rng(0))
    assert len(y) == 30 and np.array_equal(x, x2)
    assert held_out(x, y, 100, np.random.default_rng(0))[0] is x  # small enough: all of it


# -- the read-out shortcut equals the backend's forward -------------------------------------
@pytest.mark.parametrize("variant", ["inverted", "standard", "gaussian", "dropconnect"])
def test_readout_shortcut_matches_backend_forward(variant):
    cfg = config(dropout__variant=variant, top__dtype="float64")
    prep = trained(cfg)
    net, x = prep.network, prep.data.x_test
    probe = Probe.build(net, prep.plan, prep.spec.test_scales, x, prep.data.y_test, 3)
    assert np.allclose(probe.readout, probe.logits, atol=1e-10)
    units = [1, 4, 9]
    mask = np.ones(16)
    mask[units] = 0
    assert np.allclose(probe.logits_without([units]), net.forward(x, ablate=[mask]), atol=1e-10)
    each = probe.logits_without_each(0, [[1], [4, 9]])
    m1, m49 = np.ones(16), np.ones(16)
    m1[1] = 0
    m49[[4, 9]] = 0
    assert np.allclose(each[0], net.forward(x, ablate=[m1]), atol=1e-10)
    assert np.allclose(each[1], net.forward(x, ablate=[m49]), atol=1e-10)
    assert probe.noise_only_in_readout
    z = probe.mc_logits(np.random.default_rng(3))
    noise = prep.plan.sample(np.random.default_rng(3), len(x))
    assert np.allclose(z, net.forward(x, noise=noise), atol=1e-10)


@pytest.mark.parametrize("hidden", [[8, 6], [8, 6, 5]])
@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize("variant", ["inverted", "standard"])
def test_tail_shortcut_matches_backend_forward(variant, activation, hidden):
    """Clamping units of an EARLIER layer: the rank-|S| update of the next pre-activation plus
    the layers above (float64 NumPy) equals the backend's whole forward pass with the same
    units ablated; the empty set gives the unablated logits ("standard" has test-time
    scales != 1, so the scale indexing is checked too)."""
    prep = trained(config(model__hidden=hidden, model__activation=activation,
                          dropout__variant=variant, dropout__input_p=0.2, top__dtype="float64"))
    net, x = prep.network, prep.data.x_test
    probe = Probe.build(net, prep.plan, prep.spec.test_scales, x, prep.data.y_test, 3)
    assert probe.has_tail  # found the activation on the network's spec
    np.testing.assert_allclose(probe.tail_logits(0), net.forward(x), rtol=0, atol=1e-10)
    for layer in range(len(hidden) - 1):
        sets = [[1], [2, 5], [0, 3, 4]]
        each = probe.logits_without_each(layer, sets)
        for k, units in enumerate(sets):
            ablate = [None] * len(hidden)
            ablate[layer] = np.ones(hidden[layer])
            ablate[layer][units] = 0
            np.testing.assert_allclose(each[k], net.forward(x, ablate=ablate), rtol=0,
                                       atol=1e-10)
    # Without the activation the backend path runs, and gives the same numbers.
    plain = Probe.build(net, prep.plan, prep.spec.test_scales, x, prep.data.y_test, 3)
    plain.activation = None
    np.testing.assert_allclose(plain.logits_without_each(0, [[2, 5]])[0],
                               probe.logits_without_each(0, [[2, 5]])[0], rtol=0, atol=1e-10)


def test_noise_in_an_earlier_layer_uses_the_backend():
    prep = trained(config(model__hidden=[8, 8], dropout__input_p=0.2, top__dtype="float64"))
    probe = Probe.build(prep.network, prep.plan, prep.spec.test_scales, prep.data.x_test,
                        prep.data.y_test, 3)
    assert not probe.noise_only_in_readout
    z = probe.mc_logits(np.random.default_rng(3))
    noise = prep.plan.sample(np.random.default_rng(3), len(prep.data.x_test))
    assert np.allclose(z, prep.network.forward(prep.data.x_test, noise=noise))
    out = after_training(prep)
    assert [layer["layer"] for layer in out["coadaptation"]["layers"]] == [1, 2]
    assert out["coadaptation"]["ablation"]["pair_synergy"]["pairs"] <= 8  # 4 per layer


# -- both backends give the same statistics for the same weights ----------------------------
def _available(name: str) -> bool:
    target = registry.get_spec(name).target.split(":")[0]
    try:
        return importlib.util.find_spec(target) is not None and \
            (registry.get_spec(name).requires is None
             or importlib.util.find_spec(registry.get_spec(name).requires) is not None)
    except ModuleNotFoundError:
        return False


def _flatten(value, prefix=""):
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _flatten(v, f"{prefix}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _flatten(v, f"{prefix}[{i}]")
    else:
        yield prefix, value


@pytest.mark.parametrize("hidden,input_p", [([16], 0.0), ([12, 10], 0.2)])
@pytest.mark.parametrize("name", registry.names())
def test_every_backend_gives_the_reference_statistics(name, hidden, input_p):
    """Weights trained on NumPy, loaded into each backend: every number agrees to 1e-5."""
    if not _available(name):
        pytest.skip(f"backend {name!r} is not available in this build")
    # float64: in float32 an example that sits on a decision boundary could flip an accuracy
    # by 1/N between backends, which says nothing about the statistics code.
    ref_cfg = config(model__hidden=hidden, dropout__input_p=input_p, top__dtype="float64")
    ref = trained(ref_cfg)
    weights = ref.network.get_weights()
    cfg = config(model__hidden=hidden, dropout__input_p=input_p, top__backend=name,
                 top__dtype="float64")
    other = prepare(cfg)
    other.network = other.backend.build(other.spec, weights, cfg.train.optimizer_spec(),
                                       other.device)
    a, b = after_training(ref), after_training(other)
    flat_a, flat_b = dict(_flatten(a)), dict(_flatten(b))
    assert flat_a.keys() == flat_b.keys()
    for key, va in flat_a.items():
        vb = flat_b[key]
        if isinstance(va, float) and math.isnan(va):
            assert math.isnan(vb), key
        else:
            assert vb == pytest.approx(va, rel=1e-5, abs=1e-5), key
