"""Checks for lab 09 (explainability): exact Shapley values, permutation importance, integrated gradients, weighted R²."""

from __future__ import annotations

import itertools

import numpy as np
import torch
from torch import nn

from utils import explain
from utils.checks.core import Checker, format_value as fmt, register


def _game(X):
    """A small nonlinear model with a three-way interaction: only then do coalition weights matter
    (for pairwise interactions a plain average over coalitions happens to equal the Shapley value)."""
    return X[:, 0] * X[:, 1] * X[:, 2] + np.maximum(X[:, 2], 0) + 0.5 * X[:, 3] ** 2


def _uniform_weights(predict, x, background):
    d, phi = len(x), np.zeros(len(x))
    subsets = [s for k in range(d) for s in itertools.combinations(range(d), k)]
    def value(s):
        Z = background.copy()
        Z[:, list(s)] = x[list(s)]
        return predict(Z).mean()
    for i in range(d):
        gains = [value(tuple(sorted(s + (i,)))) - value(s) for s in subsets if i not in s]
        phi[i] = np.mean(gains)
    return phi


@register("09.exact_shapley")
def _exact_shapley(c: Checker) -> None:
    rng = np.random.default_rng(9)
    background = rng.normal(size=(6, 4))
    for x in (np.array([1.0, 2.0, -1.0, 0.5]), np.array([-0.5, 1.5, 2.0, -1.0])):
        expected = explain.exact_shapley(_game, x, background)
        c.expect_close(c.call(_game, x, background), expected, atol=1e-9,
                       case=f"x={fmt(x)} against 6 background rows, f = x0*x1*x2 + max(x2, 0) + 0.5*x3^2",
                       hint="Average each feature's marginal contribution over all coalitions S without it, "
                            "weighted |S|! (d-|S|-1)! / d!; v(S) = mean of f over background rows with S set to x.",
                       diagnose=((_uniform_weights(_game, x, background),
                                  "Weight each coalition by |S|!(d-|S|-1)!/d!; a plain average over coalitions "
                                  "over-counts the small and large ones."),
                                 (explain.exact_shapley(_game, x, background.mean(axis=0, keepdims=True)),
                                  "Average the predictions over the background rows; do not predict at the "
                                  "average background row (the model is not linear).")))


@register("09.permutation_importance")
def _permutation_importance(c: Checker) -> None:
    rng = np.random.default_rng(90)
    X = rng.normal(size=(400, 3))
    y = (X[:, 0] > 0).astype(int)

    def score(data, labels):
        return float(np.mean((data[:, 0] > 0) == labels))  # uses column 0 only

    got = c.call(score, X, y, 20, 0, copy_args=False)
    if not np.array_equal(X[:, 0] > 0, y.astype(bool)):
        c.fail("your function changed X in place; shuffle a copy.", "Use X.copy() before shuffling a column.")
    c.expect_close(got, [0.5, 0.0, 0.0], atol=0.06,
                   case="a score that uses only column 0 (accuracy 1.0 intact, about 0.5 with column 0 shuffled)",
                   hint="For each column: shuffle a fresh copy of X in that column alone, and record "
                        "score(intact) - score(shuffled); average over the repeats.",
                   diagnose=(([-0.5, 0.0, 0.0], "Importance is the drop: score before minus score after."),
                             ([0.5, 0.5, 0.5], "Shuffle one column at a time, starting again from the intact data "
                                               "each time.")))


def _network():
    torch.manual_seed(9)
    return nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 3))


@register("09.integrated_gradients")
def _integrated_gradients(c: Checker) -> None:
    model = _network()
    x = torch.tensor([1.0, -0.5, 2.0, 0.3, -1.2, 0.8])
    baseline = torch.zeros(6)
    reference = explain.integrated_gradients(model, x, baseline, steps=1024, target=2)
    got = c.call(model, x, baseline, 64, 2)
    if not isinstance(got, torch.Tensor):
        c.fail(f"expected a tensor of 6 attributions, got {type(got).__name__}.", "Return a torch tensor.")
    tolerance = 0.02 * reference.abs().max().item()
    c.expect_close(got.detach().numpy(), reference.numpy(), atol=tolerance,
                   case=f"a 6-16-3 tanh network, x={fmt(x.numpy())}, baseline zeros, steps=64, target 2",
                   hint="Average the gradient of output[target] at baseline + a (x - baseline) for a from 0 to 1, "
                        "then multiply by (x - baseline).",
                   diagnose=((explain.integrated_gradients(model, x, torch.ones(6), steps=1024, target=2).numpy(),
                              "Use the baseline you were given (zeros), not ones."),
                             ((reference / (x - baseline)).numpy(), "Multiply the average gradient by (x - baseline)."),
                             (explain.gradient_times_input(model, x, target=2).numpy(),
                              "That is the gradient at x alone; integrate along the path from the baseline.")))


@register("09.weighted_r2")
def _weighted_r2(c: Checker) -> None:
    y = np.array([1.0, 3.0, 2.0, 5.0, 4.0, 0.5])
    y_hat = np.array([1.5, 2.5, 2.0, 3.5, 4.5, 1.0])
    weights = np.array([1.0, 0.1, 2.0, 0.5, 3.0, 0.2])
    sse = np.sum(weights * (y - y_hat) ** 2)
    c.expect_close(c.call(y, y_hat, weights), explain.weighted_r2(y, y_hat, weights),
                   case=f"y={fmt(y)}, y_hat={fmt(y_hat)}, weights={fmt(weights)}",
                   hint="1 - sum(w (y - y_hat)^2) / sum(w (y - weighted mean of y)^2).",
                   diagnose=((explain.weighted_r2(y, y_hat, np.ones(6)), "Use the weights: this is the plain R²."),
                             (1 - sse / np.sum(weights * (y - y.mean()) ** 2),
                              "Centre y on its weighted mean, np.average(y, weights=w)."),
                             (1 - sse / np.sum((y - y.mean()) ** 2), "Weight the total sum of squares too.")))
