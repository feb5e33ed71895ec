"""Monitoring a model in production: drift scores (PSI, Kolmogorov-Smirnov, MMD), accuracy estimated
without labels, and the pieces of continual learning (a diagonal Fisher, the EWC penalty, a reservoir
memory for replay).

    psi(reference_ages, this_weeks_ages)          # > 0.1: look; > 0.25: act (a convention, see lesson 16)
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

PSI_EPSILON = 1e-4   # floor for an empty bin's share, so that log(0) never appears


def _sample(name: str, values) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array of numbers, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or infinity: drop or impute them before measuring drift")
    return array


def psi(reference, current, bins: int = 10) -> float:
    """Population stability index of ``current`` against ``reference``.

    Bin edges are the reference's quantiles (so each bin holds about 1/bins of the reference); values
    outside the reference's range fall in the first or last bin. With shares r_i and c_i per bin,
    PSI = sum (c_i - r_i) * ln(c_i / r_i), a symmetrised KL divergence; empty bins get a share of
    ``PSI_EPSILON``. Repeated values in the reference merge their quantile edges, so there may be fewer bins.

    >>> round(psi(np.arange(1000), np.arange(1000)), 6)
    0.0
    """
    reference, current = _sample("reference", reference), _sample("current", current)
    if bins < 2:
        raise ValueError(f"bins must be at least 2, got {bins}")
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)[1:-1]))
    ref_share = np.bincount(np.searchsorted(edges, reference, side="right"), minlength=len(edges) + 1) / len(reference)
    cur_share = np.bincount(np.searchsorted(edges, current, side="right"), minlength=len(edges) + 1) / len(current)
    ref_share, cur_share = np.maximum(ref_share, PSI_EPSILON), np.maximum(cur_share, PSI_EPSILON)
    return float(np.sum((cur_share - ref_share) * np.log(cur_share / ref_share)))


def ks_statistic(a, b) -> float:
    """Two-sample Kolmogorov-Smirnov statistic: the largest gap between the two empirical CDFs
    (equal to ``scipy.stats.ks_2samp(a, b).statistic``). Ties are handled by evaluating both CDFs at
    every distinct value, after all copies of it."""
    a, b = np.sort(_sample("a", a)), np.sort(_sample("b", b))
    points = np.concatenate([a, b])
    cdf_a = np.searchsorted(a, points, side="right") / len(a)
    cdf_b = np.searchsorted(b, points, side="right") / len(b)
    return float(np.max(np.abs(cdf_a - cdf_b)))


def _rbf(X: np.ndarray, Y: np.ndarray, gamma: float) -> np.ndarray:
    squared = (X ** 2).sum(1)[:, None] + (Y ** 2).sum(1)[None, :] - 2 * X @ Y.T
    return np.exp(-gamma * np.maximum(squared, 0.0))


def mmd2_unbiased(X, Y, gamma: float) -> float:
    """Unbiased estimate of the squared maximum mean discrepancy between samples X (n x d) and Y (m x d)
    with the RBF kernel exp(-gamma ||x - y||^2): the mean within-X and within-Y similarities (diagonals
    left out) minus twice the mean cross similarity. Its expectation is 0 when X and Y share a
    distribution; a single estimate can be slightly negative."""
    X, Y = np.atleast_2d(np.asarray(X, dtype=float)), np.atleast_2d(np.asarray(Y, dtype=float))
    if X.shape[1] != Y.shape[1] or len(X) < 2 or len(Y) < 2:
        raise ValueError(f"need two samples with at least 2 rows and the same number of columns, got {X.shape} and {Y.shape}")
    if gamma <= 0:
        raise ValueError(f"gamma must be positive, got {gamma}")
    n, m = len(X), len(Y)
    kxx, kyy, kxy = _rbf(X, X, gamma), _rbf(Y, Y, gamma), _rbf(X, Y, gamma)
    return float((kxx.sum() - np.trace(kxx)) / (n * (n - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
                 - 2 * kxy.mean())


def mmd_permutation_test(X, Y, gamma: float, *, n_permutations: int = 200, seed: int = 0) -> tuple[float, float]:
    """MMD² and its permutation p-value: the share of random relabellings of the pooled rows whose MMD² is
    at least the observed one (with the usual +1 correction, so it is never 0)."""
    X, Y = np.asarray(X, dtype=float), np.asarray(Y, dtype=float)
    observed = mmd2_unbiased(X, Y, gamma)
    pooled, n = np.vstack([X, Y]), len(X)
    rng = np.random.default_rng(seed)
    exceed = 0
    for _ in range(n_permutations):
        order = rng.permutation(len(pooled))
        exceed += mmd2_unbiased(pooled[order[:n]], pooled[order[n:]], gamma) >= observed
    return observed, (exceed + 1) / (n_permutations + 1)


def confidence_accuracy(probabilities) -> float:
    """Accuracy estimated without labels: the mean of the largest class probability per row. Right in
    expectation for a calibrated model whose inputs moved (covariate shift); blind when the relation
    between inputs and labels changes (concept drift)."""
    p = np.asarray(probabilities, dtype=float)
    if p.ndim == 1:
        p = np.stack([1 - p, p], axis=1)
    if p.ndim != 2 or len(p) == 0:
        raise ValueError(f"probabilities must be (n,) for a binary model or (n, classes), got shape {p.shape}")
    return float(p.max(axis=1).mean())


def fisher_diagonal(model: nn.Module, X, y, *, batch_size: int = 64) -> dict[str, torch.Tensor]:
    """Diagonal of the empirical Fisher information of ``model`` on (X, y): the mean squared gradient of the
    log-likelihood per parameter, from per-example gradients computed a batch at a time (``torch.func``)."""
    from torch.func import functional_call, grad, vmap

    X, y = torch.as_tensor(X, dtype=torch.float32), torch.as_tensor(y, dtype=torch.long)
    params = {name: p.detach() for name, p in model.named_parameters()}

    def loss(p, xi, yi):
        return nn.functional.cross_entropy(functional_call(model, p, (xi[None],)), yi[None])

    per_example = vmap(grad(loss), in_dims=(None, 0, 0))
    totals = {name: torch.zeros_like(p) for name, p in params.items()}
    was_training = model.training
    model.eval()
    for start in range(0, len(y), batch_size):
        grads = per_example(params, X[start:start + batch_size], y[start:start + batch_size])
        for name, g in grads.items():
            totals[name] += g.pow(2).sum(0)
    model.train(was_training)
    return {name: total / len(y) for name, total in totals.items()}


def ewc_penalty(model: nn.Module, fisher: dict[str, torch.Tensor], anchor: dict[str, torch.Tensor],
                lam: float) -> torch.Tensor:
    """Elastic weight consolidation (Kirkpatrick et al., 2017): (lam / 2) * sum F_i (theta_i - theta*_i)^2,
    with F the old task's Fisher diagonal and theta* the weights after the old task. Differentiable in
    the model's parameters; add it to the new task's loss."""
    if lam < 0:
        raise ValueError(f"lam must be non-negative, got {lam}")
    missing = [name for name, _ in model.named_parameters() if name not in fisher or name not in anchor]
    if missing:
        raise ValueError(f"fisher and anchor need an entry for every parameter; missing {missing}")
    total = sum((fisher[name] * (p - anchor[name]).pow(2)).sum() for name, p in model.named_parameters())
    return lam / 2 * total


def reservoir_sample(stream, k: int, seed: int = 0) -> list:
    """A uniform random sample of ``k`` items from a stream of unknown length, in one pass and O(k) memory
    (Vitter's algorithm R): item t (from 0) replaces a random slot with probability k / (t + 1).

    >>> reservoir_sample(range(3), 5)
    [0, 1, 2]
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    rng = np.random.default_rng(seed)
    memory: list = []
    for t, item in enumerate(stream):
        if t < k:
            memory.append(item)
        else:
            slot = int(rng.integers(0, t + 1))
            if slot < k:
                memory[slot] = item
    return memory


def adwin_changes(values, delta: float = 0.002, min_size: int = 10, clock: int = 32) -> list[int]:
    """Positions where ADWIN (Bifet and Gavaldà, 2007; the basic ADWIN0 form) detects a change in the mean of
    a stream of values in [0, 1], such as a model's 0/1 errors once labels arrive.

    The detector keeps a window of recent values. After each new value it tries every split of the window
    into an older part W0 and a newer part W1 (each at least ``min_size`` long) and cuts when
    |mean(W0) - mean(W1)| > sqrt(ln(4 n / delta) / (2 m)), with n the window length and m = 1 / (1/n0 + 1/n1)
    for the two parts' lengths n0 and n1 (the paper calls m their harmonic mean; it is half of it); the older
    part is dropped and the position recorded. ``delta`` bounds the false-alarm probability. The splits are
    tested every ``clock`` values (as river's ADWIN does), so a change is reported up to ``clock`` values late;
    O(window / clock) work per value.
    """
    values = np.asarray(values, dtype=float)
    if values.ndim != 1 or ((values < 0) | (values > 1)).any():
        raise ValueError("values must be a 1-D stream of numbers in [0, 1] (for example 0/1 errors)")
    if not 0 < delta < 1 or min_size < 1 or clock < 1:
        raise ValueError(f"need 0 < delta < 1, min_size >= 1 and clock >= 1, got {delta}, {min_size} and {clock}")
    changes, start = [], 0
    for t in range(len(values)):
        window = values[start:t + 1]
        n = len(window)
        if n < 2 * min_size or (t + 1) % clock:
            continue
        sums = np.cumsum(window)
        n0 = np.arange(min_size, n - min_size + 1)
        n1 = n - n0
        mean0, mean1 = sums[n0 - 1] / n0, (sums[-1] - sums[n0 - 1]) / n1
        m = 1.0 / (1.0 / n0 + 1.0 / n1)          # as in the paper (half the harmonic mean of n0 and n1)
        bound = np.sqrt(np.log(4 * n / delta) / (2 * m))
        cuts = np.flatnonzero(np.abs(mean0 - mean1) > bound)
        if cuts.size:
            changes.append(t)
            start += int(n0[cuts[-1]])           # drop the older part, up to the latest split that cuts
    return changes
