"""Attacks on a trained model and the measurements that judge defences (lesson 13).

- :func:`input_gradient`: the loss's gradient with respect to the input, the step both attacks take.
- :func:`fgsm` and :func:`pgd`: adversarial examples within an L∞ ball (Goodfellow et al. 2015; Madry et al. 2018),
  inputs kept in [0, 1], the model left in the mode it was in. Equal to the Adversarial Robustness Toolbox's.
- :func:`add_trigger`, :func:`poison` and :func:`attack_success_rate`: a BadNets-style backdoor (Gu et al. 2017)
  and the share of non-target images the trigger sends to the target class.
- :func:`spectral_signature_scores`: Tran et al.'s (2018) outlier score for finding poisoned training rows.
- :func:`trigger_scan`: stamp a small patch at every position and report how many images one class captures.
- :func:`extract_softmax_regression`: steal a softmax-regression model from d + 1 probability answers
  (equation solving, Tramèr et al. 2016); :func:`softmax_regression_proba` runs the copy.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F


def _check_attack_inputs(model, x, y, eps):
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module that returns logits, got {type(model).__name__}")
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise TypeError(f"x must be a floating-point torch.Tensor of inputs in [0, 1], got {type(x).__name__}"
                        + (f" of {x.dtype}" if isinstance(x, torch.Tensor) else ""))
    if x.numel() and (x.min() < 0 or x.max() > 1):
        raise ValueError(f"x must lie in [0, 1] (got values from {x.min().item():.3g} to {x.max().item():.3g}); "
                         "scale the inputs first, as utils.data.load_digits_split does")
    if not isinstance(y, torch.Tensor) or y.dtype != torch.long or y.shape != x.shape[:1]:
        raise TypeError("y must be a torch.long tensor with one class label per row of x "
                        f"(x has {x.shape[0]} rows; got {getattr(y, 'dtype', type(y).__name__)} "
                        f"of shape {tuple(getattr(y, 'shape', ()))})")
    if not (isinstance(eps, (int, float)) and not isinstance(eps, bool)) or eps < 0:
        raise ValueError(f"eps must be a number >= 0 (the L∞ budget in the input's units), got {eps!r}")


def input_gradient(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The gradient of the summed cross-entropy with respect to the input, computed in eval mode (the model's
    mode is restored), so each row gets its own loss's gradient."""
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():                      # works inside a caller's torch.no_grad() too
            x = x.detach().clone().requires_grad_(True)
            loss = F.cross_entropy(model(x), y, reduction="sum")
            (gradient,) = torch.autograd.grad(loss, x)
    finally:
        model.train(was_training)
    return gradient


def fgsm(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float) -> torch.Tensor:
    """One step of size ``eps`` along the sign of the loss gradient: ``clamp(x + eps · sign(∇x loss), 0, 1)``.

    The gradient is taken in eval mode (no dropout, BatchNorm's running statistics) and the model is returned to
    the mode it was in. The result is detached and lies within ``eps`` of ``x`` in L∞.

    >>> model = nn.Linear(2, 2)
    >>> with torch.no_grad():
    ...     _ = model.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]])); _ = model.bias.zero_()
    >>> fgsm(model, torch.tensor([[0.5, 0.5]]), torch.tensor([0]), eps=0.1)   # away from class 0, towards class 1
    tensor([[0.4000, 0.6000]])
    """
    _check_attack_inputs(model, x, y, eps)
    gradient = input_gradient(model, x, y)
    return (x.detach() + eps * gradient.sign()).clamp(0.0, 1.0)


def pgd(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, alpha: float, steps: int,
        seed: int = 0, random_start: bool = True) -> torch.Tensor:
    """Projected gradient descent (on the loss, ascent): ``steps`` signed steps of size ``alpha``, each followed by
    projection onto the L∞ ball of radius ``eps`` around ``x`` and onto [0, 1].

    With ``random_start`` the search starts from a uniform point in the ball drawn from ``seed`` (Madry et al.);
    without it, from ``x`` itself (then one step with ``alpha = eps`` is FGSM).

    >>> model = nn.Linear(2, 2)
    >>> x, y = torch.tensor([[0.5, 0.5]]), torch.tensor([0])
    >>> torch.equal(pgd(model, x, y, eps=0.1, alpha=0.1, steps=1, random_start=False), fgsm(model, x, y, eps=0.1))
    True
    """
    _check_attack_inputs(model, x, y, eps)
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 0:
        raise ValueError(f"steps must be an integer >= 0, got {steps!r}")
    if not isinstance(alpha, (int, float)) or alpha <= 0:
        raise ValueError(f"alpha (the step size) must be a positive number, got {alpha!r}")
    x0 = x.detach()
    if random_start:
        generator = torch.Generator().manual_seed(seed)
        noise = (torch.rand(x0.shape, generator=generator, dtype=x0.dtype) * 2 - 1) * eps
        adv = (x0 + noise.to(x0.device)).clamp(0.0, 1.0)
    else:
        adv = x0.clone()
    for _ in range(steps):
        adv = adv + alpha * input_gradient(model, adv, y).sign()
        adv = torch.max(torch.min(adv, x0 + eps), x0 - eps).clamp(0.0, 1.0)   # project the total perturbation
    return adv.detach()


def add_trigger(x, size: int = 2, value: float = 1.0, side: int = 8, row: int | None = None,
                col: int | None = None):
    """A copy of the flattened ``side × side`` images ``x`` with a ``size × size`` patch set to ``value``.

    The patch sits at (``row``, ``col``), the bottom-right corner by default. Works on numpy arrays and tensors.

    >>> add_trigger(np.zeros((1, 16)), size=1, side=4).reshape(4, 4).tolist()[3]
    [0.0, 0.0, 0.0, 1.0]
    """
    if x.shape[-1] != side * side:
        raise ValueError(f"x must hold flattened {side}x{side} images ({side * side} columns), got {x.shape[-1]}")
    row = side - size if row is None else row
    col = side - size if col is None else col
    if not (0 <= row <= side - size and 0 <= col <= side - size):
        raise ValueError(f"a {size}x{size} patch at ({row}, {col}) does not fit in a {side}x{side} image")
    out = x.clone() if isinstance(x, torch.Tensor) else np.array(x, copy=True)
    images = out.reshape(-1, side, side)
    images[:, row:row + size, col:col + size] = value
    return out


def poison(x: np.ndarray, y: np.ndarray, rate: float, target: int, seed: int = 0, size: int = 2):
    """BadNets: stamp the trigger on ``round(rate · n)`` training rows not of class ``target``, relabel them ``target``.

    Returns the poisoned copies ``(x, y)`` and the indices of the poisoned rows.
    """
    if not 0 <= rate < 1:
        raise ValueError(f"rate must be a fraction in [0, 1), got {rate!r}")
    x, y = np.array(x, copy=True), np.array(y, copy=True)
    candidates = np.flatnonzero(y != target)
    n_poison = int(round(rate * len(y)))
    if n_poison > len(candidates):
        raise ValueError(f"cannot poison {n_poison} rows: only {len(candidates)} are not of class {target}")
    chosen = np.sort(np.random.default_rng(seed).choice(candidates, size=n_poison, replace=False))
    x[chosen] = add_trigger(x[chosen], size=size)
    y[chosen] = target
    return x, y, chosen


def attack_success_rate(predictions, labels, target: int) -> float:
    """The share of images **not** of class ``target`` that the model assigns to ``target``.

    Images already of the target class are left out: predicting them as the target is not the attack's doing.

    >>> attack_success_rate([0, 0, 1, 0], [0, 1, 1, 2], target=0)   # rows 2-4 count; rows 2 and 4 were sent to 0
    0.6666666666666666
    """
    predictions, labels = np.asarray(predictions), np.asarray(labels)
    if predictions.shape != labels.shape or predictions.ndim != 1:
        raise ValueError(f"predictions and labels must be 1-D and of equal length, got shapes {predictions.shape} "
                         f"and {labels.shape}")
    others = labels != target
    if not others.any():
        raise ValueError(f"every label is the target class {target}: the success rate is undefined")
    return float(np.mean(predictions[others] == target))


def spectral_signature_scores(features) -> np.ndarray:
    """Tran et al. (2018): each row's squared projection on the top singular vector of the centred features.

    Run it on one class's hidden activations: poisoned rows share a direction the clean rows lack, so they score
    highest. Remove the top-scoring rows (about 1.5x the poison rate one expects) and retrain.
    """
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or len(features) < 2:
        raise ValueError(f"features must be a 2-D array with at least two rows, got shape {features.shape}")
    centred = features - features.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    return (centred @ vt[0]) ** 2


@torch.no_grad()
def trigger_scan(model: nn.Module, x, size: int = 2, value: float = 1.0, side: int = 8):
    """Stamp a ``size × size`` patch at every position on clean images; for each, the class that captures most images.

    Returns a list of dicts (row, col, class, share): ``share`` is the fraction of images not already of that
    class (by the model's clean prediction) that the patch moves to it. A backdoor shows as one position with a
    share far above the rest.
    """
    was_training = model.training
    model.eval()
    try:
        x = torch.as_tensor(np.asarray(x), dtype=torch.float32)
        logits = model(x)
        clean, n_classes = logits.argmax(1), logits.shape[1]
        results = []
        for r in range(side - size + 1):
            for c in range(side - size + 1):
                moved = model(add_trigger(x, size=size, value=value, side=side, row=r, col=c)).argmax(1)
                counts = torch.bincount(moved[moved != clean], minlength=n_classes)
                cls = int(counts.argmax())
                others = int((clean != cls).sum())
                share = float(((moved == cls) & (clean != cls)).sum()) / max(others, 1)
                results.append({"row": r, "col": c, "class": cls, "share": share})
    finally:
        model.train(was_training)
    return results


def softmax_regression_proba(x, weights, bias) -> np.ndarray:
    """Probabilities of a softmax-regression model: ``softmax(x Wᵀ + b)`` row by row."""
    logits = np.asarray(x, float) @ np.asarray(weights, float).T + np.asarray(bias, float)
    logits -= logits.max(axis=1, keepdims=True)
    expo = np.exp(logits)
    return expo / expo.sum(axis=1, keepdims=True)


def extract_softmax_regression(query: Callable[[np.ndarray], np.ndarray], n_features: int, seed: int = 0):
    """Steal a softmax-regression model from ``n_features + 1`` calls' probabilities (Tramèr et al. 2016).

    ``log p_k(x) = w_k·x + b_k − log Σ exp(...)``: the normaliser is the same for every class, so subtracting each
    row's mean log-probability leaves the centred logits, which are linear in ``x``. ``n_features + 1`` random
    queries (from ``seed``) give as many equations as unknowns per class. Returns ``(weights, bias)`` with each
    column's mean over classes zero: the same probabilities as the victim everywhere (softmax ignores a shared
    shift).

    >>> rng = np.random.default_rng(1)
    >>> w, b = rng.normal(size=(3, 4)), rng.normal(size=3)
    >>> w2, b2 = extract_softmax_regression(lambda q: softmax_regression_proba(q, w, b), n_features=4)
    >>> probe = rng.random((5, 4))
    >>> bool(np.allclose(softmax_regression_proba(probe, w2, b2), softmax_regression_proba(probe, w, b)))
    True
    """
    if not isinstance(n_features, int) or n_features < 1:
        raise ValueError(f"n_features must be a positive integer, got {n_features!r}")
    queries = np.random.default_rng(seed).random((n_features + 1, n_features))
    proba = np.asarray(query(queries), dtype=np.float64)
    if proba.ndim != 2 or len(proba) != len(queries):
        raise ValueError(f"query must return one row of class probabilities per input, got shape {proba.shape}")
    if (proba <= 0).any():
        raise ValueError("a returned probability is 0 (rounded?): its logarithm is undefined, so equation solving "
                         "needs the unrounded probabilities; train a copy on the labels instead")
    logp = np.log(proba)
    centred = logp - logp.mean(axis=1, keepdims=True)
    design = np.hstack([queries, np.ones((len(queries), 1))])
    solution = np.linalg.solve(design, centred)            # (n_features + 1) x classes
    return solution[:-1].T, solution[-1]
