"""Plausible wrong answers to lab 09 (explainability)."""

import numpy as np
import torch

from utils import explain
from utils.checks.lesson09 import _uniform_weights


def shapley_without_coalition_weights(predict, x, background):
    return _uniform_weights(predict, x, background)


def shapley_at_the_mean_background_row(predict, x, background):
    return explain.exact_shapley(predict, x, background.mean(axis=0, keepdims=True))


def shapley_alone_versus_empty(predict, x, background):
    empty = predict(background).mean()
    phi = []
    for i in range(len(x)):
        Z = background.copy()
        Z[:, i] = x[i]
        phi.append(predict(Z).mean() - empty)
    return np.array(phi)


def importance_sign_flipped(score, X, y, n_repeats, seed):
    return -explain.permutation_importance(score, X, y, n_repeats=n_repeats, seed=seed)


def importance_never_restores(score, X, y, n_repeats, seed):
    rng, baseline, shuffled = np.random.default_rng(seed), score(X, y), X.copy()
    drops = []
    for column in range(X.shape[1]):
        shuffled[:, column] = rng.permutation(shuffled[:, column])  # earlier columns stay shuffled
        drops.append(baseline - score(shuffled, y))
    return np.array(drops)


def importance_shuffles_in_place(score, X, y, n_repeats, seed):
    rng, baseline = np.random.default_rng(seed), score(X, y)
    drops = []
    for column in range(X.shape[1]):
        original = X[:, column].copy()
        X[:, column] = rng.permutation(X[:, column])
        drops.append(baseline - score(X, y))
        X[:, column] = original[::-1]  # "restored", but in the wrong order
    return np.array(drops)


def ig_baseline_of_ones(model, x, baseline, steps, target):
    return explain.integrated_gradients(model, x, torch.ones_like(x), steps=steps, target=target)


def ig_without_difference(model, x, baseline, steps, target):
    return explain.integrated_gradients(model, x, baseline, steps=steps, target=target) / (x - baseline)


def ig_gradient_at_x_only(model, x, baseline, steps, target):
    return explain.gradient_times_input(model, x, target=target)


def r2_unweighted(y, y_hat, weights):
    return explain.weighted_r2(y, y_hat, np.ones_like(y))


def r2_plain_mean(y, y_hat, weights):
    return 1 - np.sum(weights * (y - y_hat) ** 2) / np.sum(weights * (y - y.mean()) ** 2)


WRONG = {
    "09.exact_shapley": [shapley_without_coalition_weights, shapley_at_the_mean_background_row,
                         shapley_alone_versus_empty],
    "09.permutation_importance": [importance_sign_flipped, importance_never_restores, importance_shuffles_in_place],
    "09.integrated_gradients": [ig_baseline_of_ones, ig_without_difference, ig_gradient_at_x_only],
    "09.weighted_r2": [r2_unweighted, r2_plain_mean],
}
