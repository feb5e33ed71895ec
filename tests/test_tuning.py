"""utils.tuning against closed forms, scikit-learn's Gaussian process, Monte Carlo and scikit-learn's stacking."""

import math

import numpy as np
import pytest
from scipy import stats
from sklearn.datasets import load_iris
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import RBF, ConstantKernel
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_predict
from sklearn.neighbors import KNeighborsClassifier

from utils import tuning as tu
from utils.data import stratified_kfold_indices


def test_expected_improvement_equals_its_integral():
    rng = np.random.default_rng(0)
    for mu, sigma, best in [(0.3, 0.5, 0.1), (-1.0, 2.0, 0.5), (2.0, 0.1, 0.0)]:
        draws = rng.normal(mu, sigma, 400_000)
        assert tu.expected_improvement(mu, sigma, best) == pytest.approx(np.maximum(draws - best, 0).mean(), abs=5e-3)
    assert tu.expected_improvement([0.0, 5.0], [0.0, 0.0], 1.0).tolist() == [0.0, 0.0]
    assert tu.expected_improvement(0.0, 1.0, 0.0, xi=0.5) < tu.expected_improvement(0.0, 1.0, 0.0)
    with pytest.raises(ValueError):
        tu.expected_improvement(0.0, -1.0, 0.0)


def test_gp_posterior_equals_scikit_learn():
    rng = np.random.default_rng(1)
    x, xq = rng.random((12, 3)), rng.random((50, 3))
    y = np.sin(4 * x[:, 0]) + x[:, 1]
    y = y - y.mean()
    mean, std = tu.gp_posterior(x, y, xq, length_scale=0.3, signal=1.5, noise=1e-4)
    gp = GaussianProcessRegressor(ConstantKernel(1.5, "fixed") * RBF(0.3, "fixed"), alpha=1e-4, optimizer=None).fit(x, y)
    sk_mean, sk_std = gp.predict(xq, return_std=True)
    np.testing.assert_allclose(mean, sk_mean, atol=1e-8)
    np.testing.assert_allclose(std, sk_std, atol=1e-6)


def test_searches_return_scores_in_trial_order():
    objective = lambda x: -float(((x - 0.3) ** 2).sum())  # noqa: E731
    for search in (tu.random_search, tu.grid_search, tu.gp_search):
        scores = search(objective, 2, 16, seed=3)
        assert len(scores) == 16 and np.array_equal(scores, search(objective, 2, 16, seed=3))
    assert len(tu.grid_points(4, 3)) == 81 and len(tu.grid_search(objective, 4, 80)) == 16   # 2^4: the largest full grid
    assert tu.best_so_far([1, 0, 3, 2]).tolist() == [1, 1, 3, 3]
    assert tu.trials_to_reach([0.1, 0.5, 0.9], 0.5) == 2 and tu.trials_to_reach([0.1], 0.5) == math.inf


def test_successive_halving_keeps_the_best_third_and_counts_the_budget():
    calls = []

    def evaluate(config, budget):
        calls.append((config, budget))
        return config * budget   # larger configs are better, at every budget
    result = tu.successive_halving(list(range(27)), evaluate, 1, 9, eta=3)
    assert result["best"] == 26 and [len(r[1]) for r in result["rungs"]] == [27, 9, 3]
    assert [r[0] for r in result["rungs"]] == [1, 3, 9] and result["budget_spent"] == 27 * 1 + 9 * 3 + 3 * 9
    assert {c for c, b in calls if b == 3} == set(range(18, 27))
    assert tu.successive_halving([5, 1, 5], lambda c, b: c, 1, 100)["best_index"] == 0   # ties: the first
    assert len(tu.successive_halving(list(range(10)), evaluate, 1, 27)["rungs"][1][1]) == 3   # floor(10 / 3)
    for bad in [dict(eta=1), dict(min_budget=0), dict(min_budget=5, max_budget=1)]:
        with pytest.raises(ValueError):
            tu.successive_halving([1, 2], evaluate, **{"min_budget": 1, "max_budget": 9, **bad})


def test_expected_max_of_normals_equals_monte_carlo():
    rng = np.random.default_rng(2)
    for n in (1, 3, 30):
        assert tu.expected_max_of_normals(n) == pytest.approx(rng.standard_normal((200_000, n)).max(1).mean(), abs=5e-3)
    assert tu.expected_max_of_normals(1) == pytest.approx(0.0, abs=1e-9)
    assert tu.expected_max_of_normals(2) == pytest.approx(1 / math.sqrt(math.pi))
    with pytest.raises(ValueError):
        tu.expected_max_of_normals(0)
    assert stats.norm.cdf(0) == 0.5


def test_out_of_fold_proba_equals_cross_val_predict():
    X, y = load_iris(return_X_y=True)
    folds = stratified_kfold_indices(y, k=5, seed=0)
    ours = tu.out_of_fold_proba(lambda: LogisticRegression(max_iter=500), X, y, folds)
    theirs = cross_val_predict(LogisticRegression(max_iter=500), X, y, cv=folds, method="predict_proba")
    np.testing.assert_allclose(ours, theirs)
    in_sample = KNeighborsClassifier(1).fit(X, y).predict_proba(X)
    assert (in_sample.argmax(1) == y).all() and (tu.out_of_fold_proba(lambda: KNeighborsClassifier(1), X, y, folds)
                                                 .argmax(1) != y).any()
    with pytest.raises(ValueError):
        tu.out_of_fold_proba(lambda: LogisticRegression(), X, y, folds[:2])


def test_log_marginal_likelihood_equals_scikit_learn_and_the_fit_picks_its_maximum():
    rng = np.random.default_rng(4)
    x = rng.random((15, 2))
    y = np.sin(5 * x[:, 0]) + 0.3 * x[:, 1]
    y = y - y.mean()
    for length_scale in (0.1, 0.4, 1.3):
        gp = GaussianProcessRegressor(ConstantKernel(1.0, "fixed") * RBF(length_scale, "fixed"), alpha=1e-4,
                                      optimizer=None).fit(x, y)
        assert tu.gp_log_marginal_likelihood(x, y, length_scale=length_scale, noise=1e-4) == \
            pytest.approx(gp.log_marginal_likelihood_value_, rel=1e-9)
    grid = (0.05, 0.2, 0.5, 1.0)
    best = tu.fit_length_scale(x, y, grid=grid, noise=1e-4)
    assert best == max(grid, key=lambda ls: tu.gp_log_marginal_likelihood(x, y, length_scale=ls, noise=1e-4))
    line = np.linspace(0, 1, 12)[:, None]
    assert tu.fit_length_scale(line, np.sin(2 * line[:, 0])) > tu.fit_length_scale(line, np.sin(20 * line[:, 0]))
    with pytest.raises(ValueError):
        tu.gp_log_marginal_likelihood(x, y, length_scale=0.0)
    with pytest.raises(ValueError):
        tu.fit_length_scale(x, y, grid=())
    with pytest.raises(ValueError):
        tu.gp_search(lambda v: 0.0, 2, 6, length_scale="auto")


def test_gp_search_with_a_fixed_width_still_runs():
    objective = lambda x: -float(((x - 0.3) ** 2).sum())  # noqa: E731
    scores = tu.gp_search(objective, 2, 10, seed=1, length_scale=0.2)
    assert len(scores) == 10 and np.isfinite(scores).all()
