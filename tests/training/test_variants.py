"""The variant registry (dropout_lab/variants.py): host masks bit for bit what they were before
the registry (so stored results and the conformance suite stay valid), per-member p for packs,
the device primitives, and a clear error on a typo."""

from __future__ import annotations

import numpy as np
import pytest

from dropout_lab import variants
from dropout_lab.config import VARIANTS
from dropout_lab.dropout import make_plan
from dropout_lab.errors import ConfigError
from dropout_lab.variants import HostOps

SIZES = [12, 20, 16, 4]
RATES = [0.2, 0.5, 0.3]


# -- the formulas as dropout.py wrote them before the registry (the reference) ---------------
def old_bernoulli(rng, shape, p, scale, dtype):
    buf = np.empty(shape, dtype=dtype)
    n = buf.size
    u = rng.bit_generator.random_raw((n + 1) // 2).view(np.uint32)[:n].reshape(shape)
    threshold = np.uint32(min(round(p * 2.0**32), 2**32 - 1))
    keep_value = 1.0 / (1.0 - p) if scale else 1.0
    np.greater_equal(u, threshold, out=buf, casting="unsafe")
    if keep_value != 1.0:
        buf *= buf.dtype.type(keep_value)
    return buf


def old_gaussian(rng, shape, p, dtype):
    buf = np.empty(shape, dtype=dtype)
    rng.standard_normal(out=buf, dtype=buf.dtype)
    buf *= buf.dtype.type(np.sqrt(p / (1.0 - p)))
    buf += 1
    return buf


def old_sample(variant, rates, sizes, rng, batch, dtype):
    units, weights = [None] * len(rates), [None] * len(rates)
    for layer, p in enumerate(rates):
        if p <= 0:
            continue
        if variant == "concrete":  # (new with the registry) the uniforms of its relaxed mask
            units[layer] = rng.random((batch, sizes[layer]), dtype=dtype)
        elif variant == "dropconnect":
            weights[layer] = old_bernoulli(rng, (sizes[layer], sizes[layer + 1]), p, True, dtype)
        elif variant == "gaussian":
            units[layer] = old_gaussian(rng, (batch, sizes[layer]), p, dtype)
        else:
            units[layer] = old_bernoulli(rng, (batch, sizes[layer]), p, variant == "inverted",
                                         dtype)
    return units, weights


def old_test_scales(variant, rates):
    return [1.0 - r for r in rates] if variant == "standard" else [1.0] * len(rates)


def same(a, b):
    return (a is None and b is None) or (a is not None and b is not None
                                         and a.dtype == b.dtype and np.array_equal(a, b))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("variant", VARIANTS)
def test_host_masks_are_bit_for_bit_the_previous_formulas(variant, dtype):
    """Fixed seeds, several steps (a smaller last batch, a rate of 0 in the middle): every
    array equal to the bit, and the stream left in the same state."""
    rates = [0.2, 0.0, 0.35]
    plan = make_plan(variant, rates[0], rates[1:], SIZES, dtype)
    for seed in (0, 7, 12345):
        new_rng, old_rng = np.random.default_rng(seed), np.random.default_rng(seed)
        for batch in (24, 24, 9, 24):
            noise = plan.sample(new_rng, batch)
            units, weights = old_sample(variant, rates, SIZES, old_rng, batch, dtype)
            assert all(same(a, b) for a, b in zip(noise.units, units, strict=True))
            assert all(same(a, b) for a, b in zip(noise.weights, weights, strict=True))
        assert new_rng.integers(2**62) == old_rng.integers(2**62)
    assert plan.test_scales() == old_test_scales(variant, rates)


def test_registry_is_the_config_literal_and_lists_names_on_a_typo():
    assert tuple(variants.names()) == VARIANTS
    with pytest.raises(ConfigError, match=r"'invertd'.*did you mean 'inverted'.*known: inverted"):
        variants.get("invertd")
    with pytest.raises(ConfigError, match="unknown dropout variant"):
        make_plan("concrete-ish", 0.0, [0.5], [4, 8, 2])


@pytest.mark.parametrize("variant", VARIANTS)
def test_per_member_p_gives_each_member_its_solo_noise(variant):
    """Packed host noise: shape (K, ...), one Generator and one p per member; slice k is bit
    for bit what member k draws alone, and a member of p = 0 draws nothing (noise 1)."""
    if variant == "concrete":
        pytest.skip("concrete dropout never packs (its p is learned): packs/train.pack_key")
    kind = variants.get(variant)
    p = np.array([0.5, 0.0, 0.25])
    shape = (3, 6, 10)
    rngs = [np.random.default_rng(s) for s in (1, 2, 3)]
    ops = HostOps(rngs, "float32")
    ops.start(p > 0)
    packed = kind.sample(ops, shape, p)
    for k, seed in enumerate((1, 2, 3)):
        if p[k] == 0:
            assert np.array_equal(packed[k], np.ones(shape[1:], dtype=np.float32))
            continue
        solo = kind.sample(HostOps(np.random.default_rng(seed), "float32"), shape[1:], p[k])
        assert np.array_equal(packed[k], solo)
    # member 1 drew nothing: its stream is untouched
    assert rngs[1].integers(2**62) == np.random.default_rng(2).integers(2**62)


@pytest.mark.parametrize("variant", VARIANTS)
def test_device_primitives_match_the_solo_device_draws(variant):
    """TorchOps (backends/torch_device.py) per member equals the solo device draw."""
    if variant == "concrete":
        pytest.skip("concrete dropout never packs (its p is learned): packs/train.pack_key")
    torch = pytest.importorskip("torch")
    from dropout_lab.backends.torch_device import TorchOps

    kind = variants.get(variant)
    p = np.array([0.3, 0.0, 0.6])
    cpu = torch.device("cpu")

    def gen(seed):
        return torch.Generator(device=cpu).manual_seed(seed)

    ops = TorchOps([gen(s) for s in (4, 5, 6)], cpu, torch.float64)
    ops.draw = p > 0
    packed = kind.sample(ops, (3, 5, 7), p)
    for k, seed in enumerate((4, 5, 6)):
        if p[k] == 0:
            assert torch.equal(packed[k], torch.ones(5, 7, dtype=torch.float64))
            continue
        solo = kind.sample(TorchOps(gen(seed), cpu, torch.float64), (5, 7), float(p[k]))
        assert torch.equal(packed[k], solo)


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_variant_keeps_the_mean_of_its_formula(variant):
    """Known answers: E[r] = 1 for inverted, gaussian and dropconnect, 1 - p for standard and
    unscaled; the kept fraction is 1 - p (host draws)."""
    p = 0.3
    r = variants.get(variant).sample(HostOps(np.random.default_rng(0), "float64"),
                                     (400, 500), p)
    if variant == "concrete":  # the uniforms; as t -> 0 the network's r is inverted dropout's
        from dropout_lab.concrete import relax

        r = relax(r, float(np.log(p / (1 - p))), 1e-6)[0]
    expected = 1.0 - p if variant in ("standard", "unscaled") else 1.0
    assert abs(r.mean() - expected) < 5e-3
    if variant != "gaussian":
        assert abs((r != 0).mean() - (1 - p)) < 5e-3


def test_uniform_primitive_host_and_device():
    """The uniform primitive (for relaxed masks with a learned p, issue 23): on [0, 1), mean
    1/2; per member from its own stream, a member that draws nothing untouched."""
    u = HostOps(np.random.default_rng(0), "float64").uniform((500, 400))
    assert u.min() >= 0.0 and u.max() < 1.0 and abs(u.mean() - 0.5) < 5e-3
    rngs = [np.random.default_rng(1), np.random.default_rng(2)]
    ops = HostOps(rngs, "float32")
    ops.start(np.array([True, False]))
    packed = ops.uniform((2, 3, 4))
    assert np.array_equal(packed[0], np.random.default_rng(1).random((3, 4), dtype=np.float32))
    assert rngs[1].integers(2**62) == np.random.default_rng(2).integers(2**62)
    torch = pytest.importorskip("torch")
    from dropout_lab.backends.torch_device import TorchOps

    t = TorchOps(torch.Generator().manual_seed(0), torch.device("cpu"), torch.float64)
    draws = t.uniform((500, 400))
    assert float(draws.min()) >= 0.0 and float(draws.max()) < 1.0
    assert abs(float(draws.mean()) - 0.5) < 5e-3
