"""utils.monitoring against scipy and brute-force formulas: PSI, KS, unbiased MMD², Fisher, EWC, reservoir."""

import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn

from utils import monitoring


@pytest.mark.parametrize("seed", range(5))
def test_ks_statistic_equals_scipy_with_ties(seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 8, 50 + seed).astype(float)          # heavy ties
    b = rng.normal(3, 2, 70).round()
    assert monitoring.ks_statistic(a, b) == pytest.approx(stats.ks_2samp(a, b).statistic, abs=1e-12)


def test_psi_is_zero_without_drift_grows_with_it_and_survives_empty_bins():
    rng = np.random.default_rng(0)
    reference = rng.normal(size=5000)
    shifts = [monitoring.psi(reference, rng.normal(mu, 1, 5000)) for mu in (0.0, 0.2, 0.5, 1.0)]
    assert shifts[0] < 0.01 and all(a < b for a, b in zip(shifts, shifts[1:]))
    far = monitoring.psi(reference, rng.normal(50, 1, 100))       # every current value in the last bin
    assert np.isfinite(far) and far > 5


def test_psi_matches_its_formula_on_a_hand_case():
    reference = np.arange(10.0)                                    # quantile edges at 4.5 -> two bins of 5
    current = np.array([0.0, 1, 2, 7, 8, 9, 9, 9, 9, 9])           # 3 below, 7 above
    expected = (0.3 - 0.5) * np.log(0.3 / 0.5) + (0.7 - 0.5) * np.log(0.7 / 0.5)
    assert monitoring.psi(reference, current, bins=2) == pytest.approx(expected, abs=1e-12)


def test_drift_inputs_are_refused_clearly():
    with pytest.raises(ValueError, match="NaN"):
        monitoring.psi([1.0, np.nan], [1.0, 2.0])
    with pytest.raises(ValueError, match="non-empty 1-D"):
        monitoring.ks_statistic([], [1.0])
    with pytest.raises(ValueError, match="bins"):
        monitoring.psi([1.0, 2.0], [1.0], bins=1)


def test_mmd2_unbiased_matches_the_brute_force_sum_and_the_test_detects_a_shift():
    rng = np.random.default_rng(1)
    X, Y, gamma = rng.normal(size=(12, 3)), rng.normal(0.3, 1, size=(9, 3)), 0.5
    k = lambda a, b: np.exp(-gamma * np.sum((a - b) ** 2))
    xx = sum(k(X[i], X[j]) for i in range(12) for j in range(12) if i != j) / (12 * 11)
    yy = sum(k(Y[i], Y[j]) for i in range(9) for j in range(9) if i != j) / (9 * 8)
    xy = sum(k(x, y) for x in X for y in Y) / (12 * 9)
    assert monitoring.mmd2_unbiased(X, Y, gamma) == pytest.approx(xx + yy - 2 * xy, abs=1e-12)
    same = monitoring.mmd_permutation_test(rng.normal(size=(80, 2)), rng.normal(size=(80, 2)), 0.5, n_permutations=100)
    moved = monitoring.mmd_permutation_test(rng.normal(size=(80, 2)), rng.normal(0.8, 1, size=(80, 2)), 0.5, n_permutations=100)
    assert same[1] > 0.05 and moved[1] < 0.02


def test_confidence_accuracy_equals_accuracy_in_expectation_for_a_calibrated_model():
    rng = np.random.default_rng(2)
    p = rng.uniform(0, 1, 200_000)
    y = rng.uniform(0, 1, p.size) < p                               # labels drawn from p: calibrated
    assert monitoring.confidence_accuracy(p) == pytest.approx(np.mean((p >= 0.5) == y), abs=0.005)


def test_fisher_diagonal_equals_per_example_loops_and_ewc_is_its_weighted_distance():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 3))
    X, y = torch.randn(10, 4), torch.randint(0, 3, (10,))
    fisher = monitoring.fisher_diagonal(model, X, y, batch_size=3)
    slow = {name: torch.zeros_like(p) for name, p in model.named_parameters()}
    for i in range(10):
        model.zero_grad()
        nn.functional.cross_entropy(model(X[i:i + 1]), y[i:i + 1]).backward()
        for name, p in model.named_parameters():
            slow[name] += p.grad.pow(2) / 10
    assert all(torch.allclose(fisher[n], slow[n], atol=1e-6) for n in slow)
    anchor = {n: p.detach().clone() for n, p in model.named_parameters()}
    assert monitoring.ewc_penalty(model, fisher, anchor, lam=10.0).item() == 0.0
    with torch.no_grad():
        model[0].weight[0, 0] += 2.0
    expected = 10.0 / 2 * fisher["0.weight"][0, 0] * 4.0
    assert monitoring.ewc_penalty(model, fisher, anchor, lam=10.0).item() == pytest.approx(expected.item(), rel=1e-6)
    with pytest.raises(ValueError, match="missing"):
        monitoring.ewc_penalty(model, {}, anchor, lam=1.0)


def test_reservoir_sample_is_uniform_over_the_stream():
    counts = np.zeros(20)
    for seed in range(4000):
        for item in monitoring.reservoir_sample(range(20), 5, seed=seed):
            counts[item] += 1
    expected = 4000 * 5 / 20
    assert stats.chisquare(counts, np.full(20, expected)).pvalue > 0.001
    assert monitoring.reservoir_sample(range(100), 5, seed=1) == monitoring.reservoir_sample(range(100), 5, seed=1)
    with pytest.raises(ValueError, match="k must be"):
        monitoring.reservoir_sample(range(3), 0)


def test_adwin_finds_an_abrupt_change_soon_and_stays_quiet_without_one():
    rng = np.random.default_rng(3)
    quiet = (rng.random(3000) < 0.1).astype(float)
    assert monitoring.adwin_changes(quiet) == []
    stream = np.r_[(rng.random(1500) < 0.1), (rng.random(1500) < 0.4)].astype(float)
    changes = monitoring.adwin_changes(stream)
    assert changes and 1500 <= changes[0] < 1650
    with pytest.raises(ValueError, match="in \\[0, 1\\]"):
        monitoring.adwin_changes([0.5, 2.0])
