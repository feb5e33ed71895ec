"""utils.abtest against statsmodels and SciPy, and by simulation."""

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import proportion_effectsize, proportions_ztest

from utils import abtest, business


@pytest.mark.parametrize("sa, na, sb, nb", [(100, 1000, 130, 1000), (1030, 10_000, 1100, 10_000), (5, 40, 1, 70),
                                            (450, 500, 430, 520), (0, 100, 3, 100)])
def test_two_proportion_ztest_equals_statsmodels(sa, na, sb, nb):
    z, p = abtest.two_proportion_ztest(sa, na, sb, nb)
    z_ref, p_ref = proportions_ztest([sb, sa], [nb, na])
    assert z == pytest.approx(z_ref, abs=1e-9) and p == pytest.approx(p_ref, abs=1e-9)


def test_two_proportion_ztest_is_elementwise_and_degenerate_rates_give_no_evidence():
    z, p = abtest.two_proportion_ztest(np.array([100, 0]), 1000, np.array([130, 0]), 1000)
    assert z[0] == pytest.approx(abtest.two_proportion_ztest(100, 1000, 130, 1000)[0]) and (z[1], p[1]) == (0, 1)
    with pytest.raises(ValueError, match="successes <= trials"):
        abtest.two_proportion_ztest(11, 10, 5, 10)


@pytest.mark.parametrize("p1, p2", [(0.10, 0.11), (0.20, 0.22), (0.05, 0.04), (0.5, 0.6), (0.01, 0.012)])
def test_sample_size_per_arm_within_one_percent_of_statsmodels(p1, p2):
    reference = NormalIndPower().solve_power(proportion_effectsize(p2, p1), alpha=0.05, power=0.8, ratio=1)
    assert abs(abtest.sample_size_per_arm(p1, p2) / reference - 1) < 0.01
    assert abs(abtest.sample_size_per_arm(p1, p2) / business.ab_sample_size(p1, p2 / p1 - 1) - 1) < 0.01


def test_sample_size_gives_its_power_in_simulation():
    n = abtest.sample_size_per_arm(0.10, 0.12)
    rng = np.random.default_rng(0)
    _, p = abtest.two_proportion_ztest(rng.binomial(n, 0.10, 4000), n, rng.binomial(n, 0.12, 4000), n)
    assert abs(np.mean(p < 0.05) - 0.8) < 0.03
    with pytest.raises(ValueError, match="zero difference"):
        abtest.sample_size_per_arm(0.1, 0.1)


def test_sample_ratio_mismatch_equals_scipy_chisquare():
    for n_a, n_b, share in ((50_000, 49_000, 0.5), (10, 12, 0.5), (900, 2_000, 0.3)):
        expected = stats.chisquare([n_a, n_b], [share * (n_a + n_b), (1 - share) * (n_a + n_b)]).pvalue
        assert abtest.sample_ratio_mismatch(n_a, n_b, share) == pytest.approx(expected, abs=1e-12)


def test_paired_difference_bound_equals_the_paired_t_statistic_and_beats_the_unpaired_error():
    rng = np.random.default_rng(0)
    a = rng.random(5000) < 0.87
    b = a.copy()
    flip = rng.random(5000) < 0.02                  # B differs from A on 2% of rows, mostly for the worse
    b[flip] = np.where(rng.random(flip.sum()) < 0.66, False, True)
    r = abtest.paired_difference_bound(a, b)
    t = stats.ttest_rel(a.astype(float), b.astype(float)).statistic
    assert r["cost"] / r["se"] == pytest.approx(t, rel=1e-9)
    assert r["upper"] == pytest.approx(r["cost"] + stats.norm.ppf(0.95) * r["se"])
    unpaired = np.sqrt(a.mean() * (1 - a.mean()) / a.size + b.mean() * (1 - b.mean()) / b.size)
    assert r["se"] < unpaired / 3


@pytest.mark.parametrize("a, b, confidence, message", [([1, 0], [1], 0.95, "equal length"), ([1], [1], 0.95, ">= 2"),
                                                        ([1, 0], [0, 1], 1.0, "confidence")])
def test_paired_difference_bound_refuses_bad_input(a, b, confidence, message):
    with pytest.raises(ValueError, match=message):
        abtest.paired_difference_bound(a, b, confidence=confidence)
