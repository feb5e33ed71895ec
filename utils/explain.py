"""Explanations built from scratch: exact Shapley values, permutation importance, partial dependence,
a local linear surrogate (the LIME idea), gradient x input and integrated gradients.

``tests/test_explain.py`` checks them against shap and scikit-learn.
"""

from __future__ import annotations

import itertools
import math
from typing import Callable

import numpy as np
import torch

MAX_EXACT_FEATURES = 12


def exact_shapley(predict: Callable[[np.ndarray], np.ndarray], x, background) -> np.ndarray:
    """Interventional Shapley values of row ``x``: one value per feature, summing to f(x) - mean f(background).

    The value of a coalition S is the mean prediction over the background rows with the features
    in S set to x's values. Each feature's Shapley value averages its marginal contribution over
    all coalitions, weighted |S|! (d - |S| - 1)! / d!. Cost: 2^d coalitions x len(background) rows.

    >>> exact_shapley(lambda X: X[:, 0] + 2 * X[:, 1], np.array([1.0, 1.0]), np.zeros((3, 2)))
    array([1., 2.])
    """
    x, background = np.asarray(x, dtype=float), np.asarray(background, dtype=float)
    if x.ndim != 1 or background.ndim != 2 or background.shape[1] != len(x):
        raise ValueError(f"x must be one row of d features and background an (n, d) array; "
                         f"got shapes {x.shape} and {background.shape}")
    d = len(x)
    if d > MAX_EXACT_FEATURES:
        raise ValueError(f"exact Shapley values enumerate 2^d coalitions; d={d} is more than {MAX_EXACT_FEATURES}. "
                         "Use shap's KernelExplainer or TreeExplainer, or group features")
    coalitions = [s for k in range(d + 1) for s in itertools.combinations(range(d), k)]
    stacked = np.repeat(background[None], len(coalitions), axis=0)  # one copy of the background per coalition
    for row, coalition in enumerate(coalitions):
        stacked[row][:, list(coalition)] = x[list(coalition)]
    values = np.asarray(predict(stacked.reshape(-1, d)), dtype=float).reshape(len(coalitions), len(background))
    value_of = dict(zip(coalitions, values.mean(axis=1)))
    phi = np.zeros(d)
    for coalition, value in value_of.items():
        weight = math.factorial(len(coalition)) * math.factorial(d - len(coalition) - 1) / math.factorial(d) \
            if len(coalition) < d else 0.0
        for feature in set(range(d)) - set(coalition):
            phi[feature] += weight * (value_of[tuple(sorted(coalition + (feature,)))] - value)
    return phi


def permutation_importance(score: Callable[[np.ndarray, np.ndarray], float], X, y, *, n_repeats: int = 5,
                           seed: int = 0) -> np.ndarray:
    """Mean drop of ``score(X, y)`` when one column is shuffled (the others intact), per column.

    Measure it on held-out data: on training data it rewards what the model memorised.
    """
    X = np.asarray(X, dtype=float)
    rng = np.random.default_rng(seed)
    baseline = score(X, y)
    drops = np.zeros((X.shape[1], n_repeats))
    for column in range(X.shape[1]):
        for repeat in range(n_repeats):
            shuffled = X.copy()  # a fresh copy each time: the previous shuffle must not leak into the next
            shuffled[:, column] = rng.permutation(shuffled[:, column])
            drops[column, repeat] = baseline - score(shuffled, y)
    return drops.mean(axis=1)


def partial_dependence(predict: Callable[[np.ndarray], np.ndarray], X, feature: int, grid) -> tuple[np.ndarray, np.ndarray]:
    """Partial dependence (the mean) and ICE curves (one per row) of ``feature`` over ``grid``."""
    X = np.asarray(X, dtype=float)
    ice = np.empty((len(X), len(grid)))
    for j, value in enumerate(grid):
        modified = X.copy()
        modified[:, feature] = value
        ice[:, j] = predict(modified)
    return ice.mean(axis=0), ice


def weighted_r2(y, y_hat, weights) -> float:
    """R² with every squared error weighted, around the weighted mean: the fidelity of a weighted surrogate."""
    y, y_hat, weights = (np.asarray(a, dtype=float) for a in (y, y_hat, weights))
    mean = np.average(y, weights=weights)
    return float(1 - np.sum(weights * (y - y_hat) ** 2) / np.sum(weights * (y - mean) ** 2))


def local_surrogate(predict: Callable[[np.ndarray], np.ndarray], x, scale, *, radius: float = 0.5,
                    n_samples: int = 2000, seed: int = 0) -> tuple[np.ndarray, float, float]:
    """Fit a weighted linear model to ``predict`` around ``x`` (the LIME idea); return (coef, intercept, fidelity).

    Neighbours are x + N(0, (radius * scale)^2) per feature, weighted by a Gaussian kernel of the
    same width. Coefficients are per unit of ``scale`` (standardised), so they compare across
    features. Fidelity is the weighted R² of the surrogate on fresh neighbours.
    """
    from sklearn.linear_model import Ridge

    x, scale = np.asarray(x, dtype=float), np.asarray(scale, dtype=float)
    if radius <= 0:
        raise ValueError(f"radius must be positive, got {radius}")
    rng = np.random.default_rng(seed)

    def neighbours():
        steps = rng.normal(size=(n_samples, len(x))) * radius
        distance = np.linalg.norm(steps, axis=1) / np.sqrt(len(x))
        return steps, x + steps * scale, np.exp(-(distance ** 2) / radius ** 2)

    steps, points, weights = neighbours()
    surrogate = Ridge(alpha=1e-3).fit(steps, predict(points), sample_weight=weights)
    steps, points, weights = neighbours()
    fidelity = weighted_r2(predict(points), surrogate.predict(steps), weights)
    return surrogate.coef_, float(surrogate.intercept_), fidelity


def _target_output(model: torch.nn.Module, inputs: torch.Tensor, target: int) -> torch.Tensor:
    return model(inputs)[:, target]


def gradient_times_input(model: torch.nn.Module, x: torch.Tensor, target: int) -> torch.Tensor:
    """d output[target] / d x, times x: a first-order attribution (exact only for linear models)."""
    x = x.detach().clone().requires_grad_(True)
    (gradient,) = torch.autograd.grad(_target_output(model, x[None], target).sum(), x)
    return (gradient * x).detach()


def integrated_gradients(model: torch.nn.Module, x: torch.Tensor, baseline: torch.Tensor, steps: int = 50,
                         target: int | None = None) -> torch.Tensor:
    """Integrated gradients (Sundararajan et al., 2017): (x - baseline) times the mean gradient on the straight path.

    Uses the trapezoid rule over ``steps`` intervals. Completeness: the attributions sum to
    output(x) - output(baseline), up to the integration error. ``target`` defaults to the predicted class.
    """
    if x.shape != baseline.shape:
        raise ValueError(f"x and baseline must have the same shape, got {tuple(x.shape)} and {tuple(baseline.shape)}")
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    was_training = model.training
    model.eval()
    if target is None:
        with torch.no_grad():
            target = int(model(x[None]).argmax(dim=1))
    alphas = torch.linspace(0, 1, steps + 1).reshape(-1, *([1] * x.ndim))
    path = (baseline + alphas * (x - baseline)).detach().requires_grad_(True)
    (gradients,) = torch.autograd.grad(_target_output(model, path, target).sum(), path)
    average = (gradients[:-1] + gradients[1:]).mean(dim=0) / 2  # trapezoid rule
    model.train(was_training)
    return ((x - baseline) * average).detach()


def occlusion(model: torch.nn.Module, x: torch.Tensor, baseline: torch.Tensor, target: int) -> torch.Tensor:
    """Drop in ``model(x)[target]`` when each position along x's first axis alone is replaced by the baseline's.

    ``x`` is one input without its batch axis: features (F,), or a sequence of embeddings (T, d) where
    position ``i`` is ``x[i]``. Returns a tensor with one value per position (positive: the position supported
    the target). Occlusion (Zeiler and Fergus, 2014) asks the model directly, one counterfactual per position;
    integrated gradients share its baseline but not its question.
    """
    if x.shape != baseline.shape:
        raise ValueError(f"x and baseline must have the same shape, got {tuple(x.shape)} and {tuple(baseline.shape)}")
    if x.ndim == 0:
        raise ValueError("x needs at least one axis: the positions to occlude")
    was_training = model.training
    model.eval()
    x = x.detach()
    occluded = x.unsqueeze(0).repeat(len(x) + 1, *([1] * x.ndim))   # row 0: x itself; row i + 1: position i replaced
    positions = torch.arange(len(x), device=x.device)
    occluded[positions + 1, positions] = baseline.detach().to(x.dtype)
    with torch.no_grad():
        outputs = _target_output(model, occluded, target)
    model.train(was_training)
    return (outputs[0] - outputs[1:]).detach()


class NextByteLogits(torch.nn.Module):
    """A language model of ``utils.lm`` as a function of its input token embeddings, for attribution:
    (batch, time, d_model) -> the logits of the byte after the last position, (batch, vocab)."""

    def __init__(self, language_model: torch.nn.Module):
        super().__init__()
        self.language_model = language_model

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        return self.language_model.from_embeddings(embeddings)[:, -1]
