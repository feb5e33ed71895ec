"""Hyper-parameter search from scratch (lesson 06): random and grid search, a Gaussian-process surrogate with
expected improvement, successive halving, and the optimism of the best of many noisy scores.

Every search *maximises* an objective over the unit cube ``[0, 1]^d``; the lesson maps the cube to real
hyper-parameters (a log scale for a learning rate, say). Each search returns the scores in trial order, so
best-so-far curves of different methods compare trial for trial.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np
from scipy import stats


def expected_improvement(mu, sigma, best: float, xi: float = 0.0) -> np.ndarray:
    """Expected improvement over ``best`` of a Gaussian belief N(mu, sigma²), for *maximisation*.

    EI = (mu - best - xi) Φ(z) + sigma φ(z) with z = (mu - best - xi) / sigma: the mean gain above the incumbent,
    counting a loss as zero. Large where the mean is high (exploitation) or the uncertainty is (exploration).
    Where ``sigma`` is 0 the point is already known (a noiseless observation) and EI is 0 by convention.

    >>> float(expected_improvement(1.0, 1.0, 1.0))   # at the incumbent: sigma * phi(0)
    0.3989422804014327
    >>> expected_improvement([0.0, 2.0], [0.0, 0.0], 1.0).tolist()
    [0.0, 0.0]
    """
    mu, sigma = np.asarray(mu, dtype=float), np.asarray(sigma, dtype=float)
    if np.any(sigma < 0):
        raise ValueError("sigma is a standard deviation: it must be >= 0")
    gain = mu - best - xi
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(sigma > 0, gain / np.where(sigma > 0, sigma, 1.0), 0.0)
    value = gain * stats.norm.cdf(z) + sigma * stats.norm.pdf(z)
    return np.where(sigma > 0, value, 0.0)


def rbf_kernel(a: np.ndarray, b: np.ndarray, length_scale: float) -> np.ndarray:
    """exp(-|a - b|² / (2 l²)) between every row of ``a`` and every row of ``b``."""
    squared = ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)
    return np.exp(-0.5 * squared / length_scale ** 2)


def gp_posterior(x_train, y_train, x_query, *, length_scale: float = 0.2, signal: float = 1.0,
                 noise: float = 1e-6) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of a zero-mean GP (RBF kernel, ``signal`` variance) at ``x_query``.

    The same numbers as scikit-learn's ``GaussianProcessRegressor(ConstantKernel(signal) * RBF(length_scale),
    alpha=noise, optimizer=None)``: K = signal·k(X, X) + noise·I, mean = K*ᵀ K⁻¹ y, var = signal - K*ᵀ K⁻¹ K*.
    Centre ``y_train`` first (the lesson passes scores minus their mean).
    """
    x_train, x_query = np.atleast_2d(np.asarray(x_train, float)), np.atleast_2d(np.asarray(x_query, float))
    y_train = np.asarray(y_train, float)
    k = signal * rbf_kernel(x_train, x_train, length_scale) + noise * np.eye(len(x_train))
    k_star = signal * rbf_kernel(x_train, x_query, length_scale)
    factor = np.linalg.cholesky(k)
    alpha = np.linalg.solve(factor.T, np.linalg.solve(factor, y_train))
    v = np.linalg.solve(factor, k_star)
    variance = np.clip(signal - (v ** 2).sum(0), 0.0, None)
    return k_star.T @ alpha, np.sqrt(variance)


def random_search(objective: Callable[[np.ndarray], float], dims: int, n_trials: int, seed: int = 0) -> np.ndarray:
    """Scores of ``n_trials`` points drawn uniformly from the unit cube, in trial order."""
    rng = np.random.default_rng(seed)
    return np.array([objective(rng.random(dims)) for _ in range(n_trials)])


def grid_points(dims: int, per_axis: int) -> np.ndarray:
    """Every point of a grid with ``per_axis`` evenly spaced values (ends included) on each of ``dims`` axes."""
    axis = np.linspace(0.0, 1.0, per_axis)
    return np.stack(np.meshgrid(*[axis] * dims, indexing="ij"), -1).reshape(-1, dims)


def grid_search(objective: Callable[[np.ndarray], float], dims: int, n_trials: int, seed: int = 0) -> np.ndarray:
    """Scores of the largest full grid with at most ``n_trials`` points, visited in a seeded random order."""
    per_axis = max(1, int(math.floor(n_trials ** (1 / dims) + 1e-9)))
    points = grid_points(dims, per_axis)
    order = np.random.default_rng(seed).permutation(len(points))
    return np.array([objective(points[i]) for i in order])


def gp_log_marginal_likelihood(x_train, y_train, *, length_scale: float, signal: float = 1.0,
                                noise: float = 1e-6) -> float:
    """log p(y | X) of the zero-mean GP of :func:`gp_posterior`: -½ yᵀK⁻¹y - ½ log|K| - (n/2) log 2π.

    How well a kernel width explains the scores seen so far; equal to scikit-learn's
    ``GaussianProcessRegressor(...).log_marginal_likelihood_value_`` for the same fixed kernel.
    """
    if length_scale <= 0:
        raise ValueError(f"length_scale must be > 0, got {length_scale}")
    x_train = np.atleast_2d(np.asarray(x_train, float))
    y_train = np.asarray(y_train, float)
    factor = np.linalg.cholesky(signal * rbf_kernel(x_train, x_train, length_scale) + noise * np.eye(len(x_train)))
    alpha = np.linalg.solve(factor.T, np.linalg.solve(factor, y_train))
    return float(-0.5 * y_train @ alpha - np.log(np.diag(factor)).sum() - 0.5 * len(y_train) * np.log(2 * np.pi))


LENGTH_SCALE_GRID = tuple(np.geomspace(0.05, 2.0, 17).round(4))


def fit_length_scale(x_train, y_train, *, grid: Sequence[float] = LENGTH_SCALE_GRID, signal: float = 1.0,
                     noise: float = 1e-6) -> float:
    """The kernel width in ``grid`` with the largest log marginal likelihood (type-II maximum likelihood).

    What real Bayesian optimisation does after every trial instead of fixing the width by hand (scikit-learn's
    ``GaussianProcessRegressor`` maximises the same quantity with L-BFGS; a grid is enough in the unit cube).

    >>> x = np.linspace(0, 1, 12)[:, None]
    >>> fit_length_scale(x, np.sin(2 * x[:, 0])) > fit_length_scale(x, np.sin(20 * x[:, 0]))   # smoother: wider
    True
    """
    if len(grid) == 0:
        raise ValueError("grid must hold at least one length scale")
    scores = [gp_log_marginal_likelihood(x_train, y_train, length_scale=ls, signal=signal, noise=noise) for ls in grid]
    return float(grid[int(np.argmax(scores))])


def gp_search(objective: Callable[[np.ndarray], float], dims: int, n_trials: int, seed: int = 0, *,
              n_initial: int = 5, length_scale: float | str = "fit", noise: float = 1e-4, n_candidates: int = 2000,
              xi: float = 0.01) -> np.ndarray:
    """Bayesian optimisation: ``n_initial`` random points, then each next point maximises expected improvement.

    The surrogate is :func:`gp_posterior` on the scores standardised so far; EI is maximised over random candidates.
    ``length_scale="fit"`` (the default) re-chooses the kernel width before every trial by maximising the marginal
    likelihood of the scores so far (:func:`fit_length_scale`); a number fixes it by hand.
    """
    if isinstance(length_scale, str) and length_scale != "fit":
        raise ValueError(f"length_scale must be a positive number or 'fit', got {length_scale!r}")
    rng = np.random.default_rng(seed)
    xs = [rng.random(dims) for _ in range(min(n_initial, n_trials))]
    ys = [objective(x) for x in xs]
    while len(ys) < n_trials:
        y = np.array(ys)
        scale = y.std() if y.std() > 0 else 1.0
        standardised = (y - y.mean()) / scale
        width = fit_length_scale(np.array(xs), standardised, noise=noise) if length_scale == "fit" else length_scale
        candidates = rng.random((n_candidates, dims))
        mean, std = gp_posterior(np.array(xs), standardised, candidates, length_scale=width, noise=noise)
        best = standardised.max()
        x = candidates[int(np.argmax(expected_improvement(mean, std, best, xi)))]
        xs.append(x)
        ys.append(objective(x))
    return np.array(ys)


def best_so_far(scores) -> np.ndarray:
    """The best score after each trial (maximisation)."""
    return np.maximum.accumulate(np.asarray(scores, dtype=float))


def trials_to_reach(scores, target: float) -> float:
    """The number of trials until a score >= ``target`` (``inf`` if never)."""
    hits = np.flatnonzero(np.asarray(scores) >= target)
    return float(hits[0] + 1) if len(hits) else math.inf


def successive_halving(configs: Sequence[Any], evaluate: Callable[[Any, float], float], min_budget: float,
                       max_budget: float, eta: int = 3) -> dict[str, Any]:
    """Evaluate all ``configs`` on ``min_budget``, keep the best 1/eta, multiply the budget by eta, repeat.

    ``evaluate(config, budget)`` returns a score to *maximise*. Each rung keeps ``max(1, floor(n / eta))``
    configurations (ties broken by the order of ``configs``), until one is left or the budget would pass
    ``max_budget``. Returns the winner, each rung's (budget, [(index, score), ...]) and the total budget spent.
    """
    if eta < 2 or not float(eta).is_integer():
        raise ValueError(f"eta must be an integer >= 2, got {eta!r}")
    if not 0 < min_budget <= max_budget:
        raise ValueError(f"need 0 < min_budget <= max_budget, got {min_budget} and {max_budget}")
    if len(configs) == 0:
        raise ValueError("no configurations to evaluate")
    alive, budget, rungs, spent = list(range(len(configs))), min_budget, [], 0.0
    while True:
        scores = [(i, float(evaluate(configs[i], budget))) for i in alive]
        spent += budget * len(alive)
        rungs.append((budget, scores))
        if len(alive) == 1 or budget * eta > max_budget:
            break
        keep = max(1, len(alive) // eta)
        ranked = sorted(scores, key=lambda pair: -pair[1])          # stable: ties keep the configs' order
        alive = [i for i, _ in ranked[:keep]]
        budget *= eta
    winner = max(rungs[-1][1], key=lambda pair: pair[1])[0]
    return {"best": configs[winner], "best_index": winner, "rungs": rungs, "budget_spent": spent}


def expected_max_of_normals(n: int) -> float:
    """E[max of n independent standard normals]: how far the best of n equally good noisy scores sits above their mean.

    Computed as ∫ x · n φ(x) Φ(x)^(n-1) dx. Multiply by a score's standard error to get the optimism of choosing the
    best of n configurations on the same validation set when all are equally good.

    >>> round(expected_max_of_normals(2), 4), round(expected_max_of_normals(10), 4)
    (0.5642, 1.5388)
    """
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    x = np.linspace(-10, 10, 20001)
    density = n * stats.norm.pdf(x) * stats.norm.cdf(x) ** (n - 1)
    return float(np.trapezoid(x * density, x))


def out_of_fold_proba(make_model: Callable[[], Any], X, y, folds: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Each row's predicted probabilities from a model that did not see it: the inputs a stacking meta-model needs.

    ``folds`` are (train indices, held-out indices) pairs that cover every row once (``utils.data.
    stratified_kfold_indices``); ``make_model()`` returns a fresh scikit-learn classifier. Training the meta-model on
    in-sample probabilities instead teaches it to trust the members that memorise (a 1-nearest-neighbour model is
    always right on its own training rows).
    """
    X, y = np.asarray(X), np.asarray(y)
    classes = np.unique(y)
    out = np.full((len(y), len(classes)), np.nan)
    for train, held_out in folds:
        model = make_model().fit(X[train], y[train])
        columns = np.searchsorted(classes, model.classes_)
        out[np.ix_(held_out, columns)] = model.predict_proba(X[held_out])
        missing = np.setdiff1d(np.arange(len(classes)), columns)
        out[np.ix_(held_out, missing)] = 0.0          # a class absent from this fold's training rows
    if np.isnan(out).any():
        raise ValueError("the folds must hold out every row exactly once")
    return out
