"""utils.business against closed forms, hand computations and simulation."""

import numpy as np
import pytest
from scipy import stats

from utils import business


def test_incremental_conversions_is_treated_minus_control_times_targeted():
    y = np.array([1, 1, 0, 1, 0, 0, 1, 0])
    treated = np.array([1, 0, 1, 1, 0, 1, 0, 0])
    score = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2])
    top = slice(0, 4)  # the top half by score
    expected = (y[top][treated[top] == 1].mean() - y[top][treated[top] == 0].mean()) * 4
    assert business.incremental_conversions(y, treated, score, 0.5) == pytest.approx(expected)
    with pytest.raises(ValueError, match="both treated and control"):
        business.incremental_conversions(y, np.ones(8), score, 0.5)
    with pytest.raises(ValueError, match="fraction"):
        business.incremental_conversions(y, treated, score, 0.0)


def test_cost_per_1k_requests_counts_idle_time():
    assert business.cost_per_1k_requests(7.2, 20.0, 1.0) == pytest.approx(0.1)
    assert business.cost_per_1k_requests(7.2, 20.0, 0.25) == pytest.approx(0.4)
    with pytest.raises(ValueError):
        business.cost_per_1k_requests(1.0, 10.0, 0.0)


def test_npv_and_payback():
    assert business.npv([-100, 60, 60], 0.0) == 20
    assert business.npv([-100, 60, 60], 0.1) == pytest.approx(-100 + 60 / 1.1 + 60 / 1.21)
    assert business.payback_period([-100, 30, 30, 50]) == 3 and business.payback_period([-1, -1]) is None


def test_ab_sample_size_gives_the_stated_power_in_simulation():
    base, lift = 0.2, 0.25
    n = business.ab_sample_size(base, lift)
    rng = np.random.default_rng(0)
    a, b = rng.binomial(n, base, 4000), rng.binomial(n, base * (1 + lift), 4000)
    pooled = (a + b) / (2 * n)
    z = (b - a) / n / np.sqrt(2 * pooled * (1 - pooled) / n)
    power = np.mean(np.abs(z) > stats.norm.ppf(0.975))
    assert power == pytest.approx(0.8, abs=0.03)
    assert business.ab_test_days(base, lift, n) == 2  # two arms of n users each
