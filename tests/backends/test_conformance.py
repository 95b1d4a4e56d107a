"""The conformance suite: one set of checks over every registered backend and dropout variant.

In the spirit of scikit-learn's common checks: every backend in the registry is held to the
NumPy reference (forward, gradients, optimizer steps, whole training runs) and to known
answers (finite differences, mask statistics, Monte Carlo means, bit-identical reruns).
A backend whose package is missing is skipped with the reason shown by ``pytest -ra``.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

from dropout_lab import concrete, seeds, variants
from dropout_lab.backends import registry
from dropout_lab.backends.base import NetSpec, Network, init_weights
from dropout_lab.config import TrainConfig, validate
from dropout_lab.dropout import make_plan
from dropout_lab.errors import BackendError
from dropout_lab.training import train
from dropout_lab.trial import prepare
from tests.helpers.configs import TINY
from tests.helpers.requires import backend_params

BACKENDS = registry.names()
VARIANTS = tuple(variants.names())  # the variant registry: every registered variant
OTHERS = [n for n in BACKENDS if n != "numpy"]  # held to the numpy reference
OPTIMIZERS = ("sgd", "momentum", "adam")
AGREE = 1e-5  # float64 agreement between backends (observed: ~1e-15)

# A small net with every feature switched on: input dropout, two hidden layers with their own
# rates (p given as a per-layer list).
SIZES = [12, 20, 16, 4]
INPUT_P, HIDDEN_P = 0.2, [0.5, 0.3]
# concrete dropout's temperature and regulariser weights (wr, dr): large enough that the
# regulariser's share of every gradient is checked (the other variants ignore them)
CONCRETE = (0.1, 1e-2, 1e-2)


def backend_named(name: str):
    if name == "torch":
        pytest.importorskip("torch", reason="the torch backend needs PyTorch")
    return registry.create(name)


def case(variant: str, dtype: str = "float64", activation: str = "relu", n: int = 24,
         seed: int = 0, train: TrainConfig | None = None):
    """(spec, weights, train config, plan, x, y) for the small net, all from explicit seeds."""
    plan = make_plan(variant, INPUT_P, HIDDEN_P, SIZES, dtype, *CONCRETE)
    spec = NetSpec.of_plan(SIZES, activation, dtype, plan)
    weights = init_weights(SIZES, activation, np.random.default_rng(seed))
    # Non-zero biases, so that bias handling (no weight decay, gradients) is exercised.
    data_rng = np.random.default_rng(seed + 1)
    weights = [(w, data_rng.normal(0, 0.1, size=b.shape)) for w, b in weights]
    x = data_rng.normal(size=(n, SIZES[0])).astype(dtype)
    y = data_rng.integers(0, SIZES[-1], size=n)
    return spec, weights, train or TrainConfig(), plan, x, y


def build(name: str, spec, weights, train) -> Network:
    return backend_named(name).build(spec, weights, train.optimizer_spec(), "cpu")


def assert_close(a, b, what: str, tol: float = AGREE):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, what
    err = float(np.abs(a - b).max()) if a.size else 0.0
    assert err <= tol * max(1.0, float(np.abs(b).max())), f"{what}: max |diff| = {err:.3g}"


# -- the contract ----------------------------------------------------------------------------
@pytest.mark.parametrize("name", backend_params(BACKENDS))
def test_backend_fills_the_protocol(name):
    backend = backend_named(name)
    assert backend.name == name
    assert backend.resolve_device("cpu") == "cpu"
    assert backend.resolve_device("auto") in ("cpu", "cuda")
    with pytest.raises(BackendError, match="'gpu0'"):
        backend.resolve_device("gpu0")
    versions = backend.versions()
    assert versions and all(isinstance(v, str) for v in versions.values())

    spec, weights, tc, plan, x, y = case("inverted", dtype="float32")
    original = copy.deepcopy(weights)
    net = backend.build(spec, weights, tc.optimizer_spec(), "cpu")
    assert isinstance(net, Network)
    logits = net.forward(x)
    assert isinstance(logits, np.ndarray) and logits.shape == (len(x), SIZES[-1])
    assert logits.dtype == np.float32
    # Training must not write into the caller's arrays, and get_weights returns copies.
    net.train_step(x, y, plan.sample(np.random.default_rng(0), len(x)))
    for (w, b), (w0, b0) in zip(weights, original, strict=True):
        assert np.array_equal(w, w0) and np.array_equal(b, b0)
    got = net.get_weights()
    got[0][0][...] = 0.0
    assert np.abs(net.get_weights()[0][0]).sum() > 0


@pytest.mark.parametrize("name", backend_params(BACKENDS))
def test_ablating_a_unit_equals_deleting_its_outgoing_weights(name):
    spec, weights, tc, _, x, _ = case("inverted")
    net = build(name, spec, weights, tc)
    keep = np.ones(SIZES[1])
    keep[[3, 7]] = 0.0
    logits, hidden = net.forward(x, ablate=[keep, None], return_hidden=True)
    assert [h.shape for h in hidden] == [(len(x), d) for d in SIZES[1:-1]]
    assert np.all(hidden[0][:, [3, 7]] == 0)
    cut = copy.deepcopy(weights)
    cut[1][0][[3, 7], :] = 0.0  # rows 3 and 7 of W_1: the ablated units' outgoing weights
    assert_close(logits, build(name, spec, cut, tc).forward(x), "ablated logits")


# -- agreement with the reference ------------------------------------------------------------
@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("name", backend_params(OTHERS))
def test_forward_and_gradients_match_reference(name, variant):
    spec, weights, tc, plan, x, y = case(variant)
    ref, net = build("numpy", spec, weights, tc), build(name, spec, weights, tc)
    noise = plan.sample(np.random.default_rng(5), len(x))

    assert_close(net.forward(x), ref.forward(x), "eval logits (test-time scaling)")
    # Monte Carlo dropout: a training-mode pass through the same interface, no update.
    assert_close(net.forward(x, noise), ref.forward(x, noise), "MC-dropout logits")
    ablate = [np.where(np.arange(d) % 3 == 0, 0.0, 1.0) for d in SIZES[1:-1]]
    out, hid = net.forward(x, noise, ablate=ablate, return_hidden=True)
    ref_out, ref_hid = ref.forward(x, noise, ablate=ablate, return_hidden=True)
    assert_close(out, ref_out, "ablated MC logits")
    for layer, (h, rh) in enumerate(zip(hid, ref_hid, strict=True), start=1):
        assert_close(h, rh, f"hidden layer {layer}")

    loss, grads = net.loss_and_grads(x, y, noise)
    ref_loss, ref_grads = ref.loss_and_grads(x, y, noise)
    assert abs(loss - ref_loss) <= AGREE
    for layer, ((dw, db), (rdw, rdb)) in enumerate(zip(grads, ref_grads, strict=True)):
        assert_close(dw, rdw, f"dW_{layer}")
        assert_close(db, rdb, f"db_{layer}")
    if plan.concrete is not None:  # the learned logits' gradient (torch: by autograd)
        dtheta, ref_dtheta = (n.loss_and_logit_grad(x, y, noise)[1] for n in (net, ref))
        assert np.all(ref_dtheta != 0), "every unit layer learns its p here"
        assert_close(dtheta, ref_dtheta, "dloss/dtheta")


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize("name", backend_params(OTHERS))
def test_optimizer_steps_match_reference(name, optimizer, variant):
    """A few steps with weight decay and a binding max-norm cap agree to 1e-5 (float64)."""
    tc = TrainConfig(optimizer=optimizer, lr=0.1, momentum=0.9, weight_decay=1e-2, max_norm=1.2)
    spec, weights, tc, plan, x, y = case(variant, train=tc)
    ref, net = build("numpy", spec, weights, tc), build(name, spec, weights, tc)
    rng = np.random.default_rng(9)
    capped = 0  # columns the cap rescaled, summed over steps
    for step in range(6):
        noise = plan.sample(rng, len(x))
        assert abs(net.train_step(x, y, noise) - ref.train_step(x, y, noise)) <= AGREE, step
        for rw, _ in ref.get_weights():
            norms = np.linalg.norm(rw, axis=0)
            assert norms.max() <= 1.2 + 1e-9
            capped += int(np.isclose(norms, 1.2, rtol=1e-12).sum())
    for layer, ((w, b), (rw, rb)) in enumerate(zip(net.get_weights(), ref.get_weights(),
                                                   strict=True)):
        assert_close(w, rw, f"W_{layer} after 6 {optimizer} steps")
        assert_close(b, rb, f"b_{layer} after 6 {optimizer} steps")
    if plan.concrete is not None:
        assert_close(net.learned_p(), ref.learned_p(), f"learned p after 6 {optimizer} steps")
        assert ref.learned_p() != [INPUT_P, *HIDDEN_P], "p moved: the check can fail"
    assert capped > 0, "max_norm never bound: the test would not see a max-norm bug"


# -- known answers ---------------------------------------------------------------------------
def _directional_check(make, weights, x, y, noise, rng):
    """Central difference of the loss along a random direction D of each parameter tensor vs
    <grad, D>: (L(theta + eps D) - L(theta - eps D)) / (2 eps) = <dL/dtheta, D> + O(eps^2).
    ``make(weights)`` builds a network holding ``weights``."""
    _, grads = make(weights).loss_and_grads(x, y, noise)
    eps = 1e-6
    for layer in range(len(weights)):
        for which in (0, 1):  # W, b
            direction = rng.normal(size=weights[layer][which].shape)

            def loss_at(sign: float, layer=layer, which=which, direction=direction) -> float:
                moved = copy.deepcopy(weights)
                pair = list(moved[layer])
                pair[which] = pair[which] + sign * eps * direction
                moved[layer] = tuple(pair)
                return make(moved).loss_and_grads(x, y, noise)[0]

            numeric = (loss_at(1.0) - loss_at(-1.0)) / (2 * eps)
            analytic = float((grads[layer][which] * direction).sum())
            what = f"{'Wb'[which]}_{layer}"
            assert abs(numeric - analytic) <= 1e-6 * max(1.0, abs(analytic)), (
                f"{what}: finite difference {numeric:.8g} vs gradient {analytic:.8g}")


@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("name", backend_params(BACKENDS))
def test_gradients_match_finite_differences(name, variant, activation):
    spec, weights, tc, plan, x, y = case(variant, activation=activation)
    rng = np.random.default_rng(3)
    noise = plan.sample(rng, len(x))
    _directional_check(lambda w: build(name, spec, w, tc), weights, x, y, noise, rng)
    if plan.concrete is None:
        return
    # concrete dropout: dloss/dtheta of each unit layer's logit, through the relaxed mask
    # and the regulariser, against a central difference
    net = build(name, spec, weights, tc)
    _, dtheta = net.loss_and_logit_grad(x, y, noise)
    theta = net._logits()
    eps = 1e-6
    for layer in range(len(theta)):
        moved = []
        for sign in (1.0, -1.0):
            t = theta.copy()
            t[layer] += sign * eps
            net.set_logits(t)
            moved.append(net.loss_and_logit_grad(x, y, noise)[0])
        numeric = (moved[0] - moved[1]) / (2 * eps)
        assert abs(numeric - dtheta[layer]) <= 1e-6 * max(1.0, abs(dtheta[layer])), (
            f"theta_{layer}: finite difference {numeric:.8g} vs gradient {dtheta[layer]:.8g}")


def test_finite_difference_check_catches_a_wrong_gradient():
    """The check above can fail: a gradient 1% off in one layer is caught and named."""
    spec, weights, tc, plan, x, y = case("inverted", activation="tanh")
    net_cls = type(build("numpy", spec, weights, tc))

    class OnePercentOff(net_cls):
        def loss_and_grads(self, x, y, noise):
            loss, grads = super().loss_and_grads(x, y, noise)
            grads[1] = (grads[1][0] * 1.01, grads[1][1])
            return loss, grads

    rng = np.random.default_rng(3)
    noise = plan.sample(rng, len(x))
    with pytest.raises(AssertionError, match="W_1"):
        _directional_check(lambda w: OnePercentOff(spec, w, tc), weights, x, y, noise, rng)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
@pytest.mark.parametrize("variant", VARIANTS)
def test_masks_drop_a_fraction_p(variant, p):
    """Each unit layer gets its own rate; the dropped fraction is p within 5 binomial sigmas,
    kept entries have the variant's value, and gaussian noise has mean 1, variance p/(1-p)."""
    sizes = [300, 400, 200, 10]
    rates = [p / 2, p, 0.0]  # input rate, hidden 1, hidden 2 switched off
    plan = make_plan(variant, rates[0], rates[1:], sizes, "float64")
    noise = plan.sample(seeds.rng(0, "dropout"), 250)
    if plan.concrete is not None:  # uniforms; the network relaxes them with its p (t small)
        noise.units = [None if u is None else concrete.relax(
            u, float(np.log(rate / (1 - rate))), 1e-4)[0] for u, rate in zip(
            noise.units, rates, strict=True)]
    for layer, rate in enumerate(rates):
        if variant == "dropconnect":
            assert noise.units[layer] is None
            r = noise.weights[layer]
            assert r is None or r.shape == (sizes[layer], sizes[layer + 1])
        else:
            assert noise.weights[layer] is None
            r = noise.units[layer]
            assert r is None or r.shape == (250, sizes[layer])
        if rate == 0:
            assert r is None
            continue
        if variant == "gaussian":
            sigma2 = rate / (1 - rate)  # the variance of inverted dropout's r
            assert abs(r.mean() - 1) <= 5 * np.sqrt(sigma2 / r.size)
            # Var of the sample variance of a normal: 2 sigma^4 / (n - 1).
            assert abs(r.var() - sigma2) <= 5 * sigma2 * np.sqrt(2 / (r.size - 1))
            continue
        keep_value = 1 / (1 - rate) if variant in ("inverted", "dropconnect", "concrete") \
            else 1.0
        if variant == "concrete":  # t = 1e-4: r is 0 or 1/(1-p) but for u within ~t of 1 - p
            between = ~(np.isclose(r, 0, atol=1e-6) | np.isclose(r, keep_value, atol=1e-6))
            assert between.mean() < 1e-2
            r = np.where(r < 0.5 * keep_value, 0.0, keep_value)
        dropped = float((r == 0).mean())
        assert abs(dropped - rate) <= 5 * np.sqrt(rate * (1 - rate) / r.size), (layer, dropped)
        assert np.allclose(r[r != 0], keep_value)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("name", backend_params(BACKENDS))
def test_mc_mean_matches_test_time_output(name, variant):
    """Averaged over masks, the dropped-out pass equals the test-time pass: E[r] = 1 for
    inverted, gaussian and dropconnect; standard gets there by its (1-p) test-time scale.
    unscaled (the mistake) is off by exactly that factor: E[logits] = (1-p) h W + b.
    concrete: at p = 1/2 (theta = 0) the logistic noise is symmetric, so E[z] = 1/2 and
    E[r] = E[1 - z] / (1 - p) = 1 exactly (at other p only as the temperature goes to 0).

    One hidden layer with dropout on it only, so the logits are linear in the noise; the same
    input repeated N times gives N independent unit masks in one pass (dropconnect draws one
    weight mask per pass, so it takes N passes)."""
    p, n, sizes = 0.5, 20000, [8, 32, 5]
    plan = make_plan(variant, 0.0, [p], sizes, "float64")
    spec = NetSpec.of_plan(sizes, "relu", "float64", plan)
    weights = init_weights(sizes, "relu", np.random.default_rng(1))
    weights = [(w, np.full(b.shape, 0.3)) for w, b in weights]
    net = build(name, spec, weights, TrainConfig())
    x = np.repeat(np.random.default_rng(2).normal(size=(1, sizes[0])), n, axis=0)
    rng = seeds.rng(0, "dropout")
    if variant == "dropconnect":  # one weight mask per pass: n passes of one example
        n = 3000
        mc = np.concatenate([net.forward(x[:1], plan.sample(rng, 1)) for _ in range(n)])
    else:
        mc = net.forward(x, plan.sample(rng, n))
    mean, se = mc.mean(axis=0), mc.std(axis=0) / np.sqrt(n)
    test_time = net.forward(x[:1])[0]
    if variant == "unscaled":
        h = np.maximum(x[:1] @ weights[0][0] + weights[0][1], 0)
        expected = (1 - p) * (h @ weights[1][0])[0] + weights[1][1]
        assert np.all(np.abs(mean - expected) <= 5 * se)
        assert np.abs(mean - test_time).max() > 20 * se.max()  # the train/test mismatch
    else:
        assert np.all(np.abs(mean - test_time) <= 5 * se), (mean, test_time, se)


# -- determinism and whole training runs -----------------------------------------------------
def trial_config(name: str, variant: str, **train):
    data = copy.deepcopy(TINY)
    data["sweep"] = {}
    data["backend"] = name
    data["dropout"] = {"p": [0.5], "input_p": 0.2, "variant": variant}
    data["train"].update(train)
    return validate(data)


def run(config):
    prep = prepare(config, threads=1)
    rows = train(prep)
    return [{k: v for k, v in r.items() if k != "epoch_seconds"} for r in rows], \
        prep.network.get_weights()


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("name", backend_params(BACKENDS))
def test_same_seed_is_bit_identical(name, variant):
    backend_named(name)
    cfg = trial_config(name, variant)
    rows_a, weights_a = run(cfg)
    rows_b, weights_b = run(cfg)
    assert rows_a == rows_b
    for (wa, ba), (wb, bb) in zip(weights_a, weights_b, strict=True):
        assert np.array_equal(wa, wb) and np.array_equal(ba, bb)
    other_seed = cfg.model_copy(update={"seed": 1})
    assert run(other_seed)[0] != rows_a  # the seed matters: the check above can fail


class BatchRecorder:
    """Wraps a network and records the mini-batches train() feeds it (then trains as usual)."""

    def __init__(self, net):
        self.net, self.batches = net, []

    def train_step(self, x, y, noise):
        self.batches.append(x.copy())
        return self.net.train_step(x, y, noise)

    def __getattr__(self, attr):
        return getattr(self.net, attr)


@pytest.mark.parametrize("name", backend_params(BACKENDS))
def test_p_changes_neither_initial_weights_nor_batch_order(name):
    """Separate random streams: runs that differ only in p start from identical weights and
    see identical mini-batches in identical order; only the masks differ."""
    backend_named(name)
    runs = []
    for p in (0.0, 0.7):
        cfg = trial_config(name, "inverted")
        cfg.dropout.p = [p]
        prep = prepare(cfg)
        weights = prep.network.get_weights()
        prep.network = BatchRecorder(prep.network)
        train(prep)
        runs.append((weights, prep.network.batches, prep.network.get_weights()))
    (w_a, batches_a, end_a), (w_b, batches_b, end_b) = runs
    for (a, _), (b, _) in zip(w_a, w_b, strict=True):
        assert np.array_equal(a, b)
    assert len(batches_a) == len(batches_b) > 2
    assert all(np.array_equal(a, b) for a, b in zip(batches_a, batches_b, strict=True))
    assert not np.array_equal(end_a[0][0], end_b[0][0])  # p did change the training


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("name", backend_params(OTHERS))
@pytest.mark.parametrize("p", [0.0, 0.5])
def test_training_matches_reference_float64(name, variant, p):
    """Whole training runs agree, with dropout (both backends get the same masks) and
    without (the noise-free path)."""
    cfg = trial_config(name, variant, optimizer="adam", lr=0.01, weight_decay=1e-3,
                       max_norm=2.0).model_copy(update={"dtype": "float64"})
    cfg.dropout.p, cfg.dropout.input_p = [p], p / 2
    rows, weights = run(cfg)
    ref_rows, ref_weights = run(cfg.model_copy(update={"backend": "numpy"}))
    for row, ref_row in zip(rows, ref_rows, strict=True):
        for key, value in ref_row.items():
            if key == "learned_p":  # concrete dropout: one p per unit layer
                assert_close(row[key], value, f"epoch {row['epoch']}: learned_p")
                continue
            assert abs(row[key] - value) <= AGREE, (row["epoch"], key)
    for (w, _), (rw, _) in zip(weights, ref_weights, strict=True):
        assert_close(w, rw, "trained weights")


@pytest.mark.parametrize("name", backend_params(OTHERS))
def test_p0_training_on_digits_matches_reference_float32(name):
    """float32, p = 0, the digits data set: final losses within 1e-4, accuracies within two
    test (or training) examples. Not bit-identical: each library sums a float32 matrix
    product in its own order, so results differ in the last bits and drift slowly."""
    backend_named(name)
    data = {"name": "digits-p0", "backend": name, "dtype": "float32",
            "dataset": {"name": "digits", "test_fraction": 0.25}, "model": {"hidden": [64]},
            "dropout": {"p": 0.0},
            "train": {"epochs": 3, "batch_size": 32, "optimizer": "momentum", "lr": 0.05}}
    rows, _ = run(validate(data))
    ref_rows, _ = run(validate(dict(data, backend="numpy")))
    last, ref = rows[-1], ref_rows[-1]
    for key in ("fit_loss", "train_loss", "test_loss"):
        assert abs(last[key] - ref[key]) <= 1e-4, (key, last[key], ref[key])
    n_test, n_train = 450, 1347  # digits: 1797 examples, 25% held out (stratified)
    assert abs(last["test_acc"] - ref["test_acc"]) * n_test <= 2 + 1e-9
    assert abs(last["train_acc"] - ref["train_acc"]) * n_train <= 2 + 1e-9
    assert ref["test_acc"] > 0.85  # the comparison is between trained networks


@pytest.mark.parametrize("optimizer", ["momentum", "adam"])
@pytest.mark.parametrize("name", backend_params(BACKENDS))
def test_optimizer_state_never_becomes_subnormal(name, optimizer):
    """A weight whose gradient turns to zero (its input went blank) has a momentum that decays
    geometrically; without the periodic flush it passes through the subnormal range, where x86
    arithmetic is hundreds of times slower (seen: 3x slower training at p = 0.8 on digits)."""
    spec, weights, _, _, x, y = case("inverted", dtype="float32")
    net = build(name, spec, weights, TrainConfig(optimizer=optimizer, lr=1e-3, momentum=0.9))
    net.train_step(x, y, None)  # every weight gets a gradient once...
    x = x.copy()
    x[:, 0] = 0.0  # ...then input 0 is blank: its weights' gradients are exactly zero
    tiny = np.finfo(np.float32).tiny
    # 0.9^k takes a momentum of ~1e-2 below float32's smallest normal (1.2e-38) after ~800
    # steps and to zero after ~950; check the whole way through.
    worst = 0
    for step in range(1000):
        net.train_step(x, y, None)
        if step >= 700 and step % 10 == 0:
            state = [np.asarray(getattr(t, "cpu", lambda t=t: t)()) for t in net._m + net._v]
            worst = max(worst, sum(int(((np.abs(s) < tiny) & (s != 0)).sum()) for s in state))
    assert worst == 0, f"{worst} subnormal optimizer-state entries"
