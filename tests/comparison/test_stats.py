"""Confidence intervals and paired differences against values computed by hand / from tables."""

from __future__ import annotations

import math

import pytest

from dropout_lab.stats import paired_difference, summarize, t_quantile


@pytest.mark.parametrize("level, df, table", [
    (0.95, 1, 12.706), (0.95, 2, 4.303), (0.95, 4, 2.776), (0.95, 5, 2.571),
    (0.95, 10, 2.228), (0.95, 30, 2.042), (0.90, 10, 1.812), (0.99, 5, 4.032),
])
def test_t_quantile_matches_printed_tables(level, df, table):
    assert t_quantile(level, df) == pytest.approx(table, abs=5e-4)


def test_t_quantile_rejects_bad_arguments():
    with pytest.raises(ValueError):
        t_quantile(1.0, 3)
    with pytest.raises(ValueError):
        t_quantile(0.95, 0)


def test_summary_of_one_to_five():
    # mean 3, sd sqrt(2.5), half-width t_{.975,4} * sd / sqrt(5) = 2.776445 * 1.581139 / 2.236068
    s = summarize([1, 2, 3, 4, 5])
    assert s.n == 5 and s.mean == pytest.approx(3.0)
    assert s.sd == pytest.approx(math.sqrt(2.5))
    assert s.half_width == pytest.approx(1.963243, abs=1e-6)
    assert (s.lo, s.hi) == (pytest.approx(1.036757, abs=1e-6), pytest.approx(4.963243, abs=1e-6))
    assert s.excludes_zero  # [1.04, 4.96] lies above 0
    assert not summarize([-1, 1, 3]).excludes_zero  # mean 1, half 4.97: contains 0


def test_summary_of_two_uses_t_with_one_degree_of_freedom():
    s = summarize([0.90, 0.92])  # sd = 0.0141421, half = 12.7062 * sd / sqrt(2) = 0.127062
    assert s.half_width == pytest.approx(0.127062, abs=1e-6)
    assert s.excludes_zero


def test_single_value_has_no_interval_and_empty_has_no_mean():
    one = summarize([0.7])
    assert (one.n, one.mean, one.sd, one.lo, one.hi) == (1, 0.7, None, None, None)
    assert not one.excludes_zero and one.half_width is None
    none = summarize([])
    assert none.n == 0 and none.mean is None


def test_non_finite_values_are_ignored():
    s = summarize([1.0, float("nan"), 3.0, None])
    assert s.n == 2 and s.mean == 2.0


def test_constant_values_give_a_zero_width_interval():
    s = summarize([0.5, 0.5, 0.5])
    assert s.lo == s.hi == 0.5
    # issue 21 item 7: a zero-width interval is never evidence, at any n
    assert not s.excludes_zero and s.uninformative and s.no_spread


def test_paired_difference_pairs_by_seed_not_by_position():
    a = {2: 0.96, 0: 0.93, 1: 0.96}  # insertion order differs from b's
    b = {0: 0.90, 1: 0.92, 2: 0.94, 3: 0.10}  # seed 3 only in b: dropped, never paired
    d = paired_difference(a, b)
    assert d.seeds == (0, 1, 2)
    assert d.diffs == pytest.approx((0.03, 0.04, 0.02))
    # mean .03, sd .01, half = 4.302653 * .01 / sqrt(3) = 0.0248414
    assert d.summary.mean == pytest.approx(0.03)
    assert d.summary.half_width == pytest.approx(0.0248414, abs=1e-6)
    assert d.summary.excludes_zero


def test_pairing_is_narrower_than_comparing_two_independent_intervals():
    # a shared per-seed offset cancels in the paired difference
    a = {0: 0.80, 1: 0.90, 2: 0.70}
    b = {0: 0.79, 1: 0.89, 2: 0.69}
    d = paired_difference(a, b).summary
    assert d.mean == pytest.approx(0.01) and d.half_width == pytest.approx(0.0, abs=1e-12)
    sa, sb = summarize(a.values()), summarize(b.values())
    assert sa.lo < sb.hi  # unpaired intervals overlap: no difference visible without pairing


def test_paired_difference_with_one_common_seed_is_undefined():
    d = paired_difference({0: 0.9, 1: 0.8}, {1: 0.7})
    assert d.n == 1 and d.summary.lo is None and not d.summary.excludes_zero
    assert d.to_dict()["ci"] is None


def test_zero_width_interval_from_two_seeds_is_no_evidence():
    from dropout_lab.stats import paired_difference

    # two seeds, the same one-example step each: sd = 0, the t interval collapses to a point
    d = paired_difference({0: 0.9778, 1: 0.9756}, {0: 0.9733, 1: 0.9711}).summary
    assert d.n == 2 and d.sd < 1e-12 and abs(d.hi - d.lo) < 1e-12
    assert not d.excludes_zero
    # with three seeds the same zero spread does not count either (issue 21 item 7)
    d3 = paired_difference({0: 0.5, 1: 0.6, 2: 0.7}, {0: 0.4, 1: 0.5, 2: 0.6}).summary
    assert d3.sd < 1e-12 and not d3.excludes_zero and d3.no_spread


def test_no_spread_has_no_detectable_difference_and_no_seed_count():
    from dropout_lab.stats import min_detectable_difference, seeds_needed

    # the formula gives 0 and 2 for sd = 0: "detectable difference 0.0000", "2 seeds needed"
    assert min_detectable_difference(0.0, 3) is None
    assert seeds_needed(0.01, 0.0) is None
    assert min_detectable_difference(0.01, 3) > 0 and seeds_needed(0.01, 0.01) >= 2
    assert summarize([0.9]).no_spread and not summarize([0.9, 0.91]).no_spread
