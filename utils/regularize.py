"""Explicit regularisation terms added to the loss, and what they do to the weights."""

from __future__ import annotations

import torch
from torch import nn


def _weights(model: nn.Module, include_bias: bool):
    return [p for name, p in model.named_parameters() if include_bias or not name.endswith("bias")]


def l2_penalty(model: nn.Module, include_bias: bool = False) -> torch.Tensor:
    """Sum of squared weights. Biases are left out by default: shrinking them does not limit capacity.

    >>> l2_penalty(nn.Linear(2, 1).requires_grad_(False).apply(lambda m: nn.init.ones_(m.weight)))
    tensor(2.)
    """
    return sum((p ** 2).sum() for p in _weights(model, include_bias))


def l1_penalty(model: nn.Module, include_bias: bool = False) -> torch.Tensor:
    """Sum of absolute weights; unlike L2 it pushes many weights to (almost) exactly zero."""
    return sum(p.abs().sum() for p in _weights(model, include_bias))


def penalized_loss(model: nn.Module, *, l2: float = 0.0, l1: float = 0.0, base=None):
    """A ``loss_fn(logits, targets)`` for ``utils.train.fit``: the base loss plus ``l2`` and ``l1`` penalties."""
    if l2 < 0 or l1 < 0:
        raise ValueError(f"penalty strengths must be non-negative, got l2={l2}, l1={l1}")
    base = base or nn.CrossEntropyLoss()

    def loss_fn(logits, targets):
        loss = base(logits, targets)
        if l2:
            loss = loss + l2 * l2_penalty(model)
        if l1:
            loss = loss + l1 * l1_penalty(model)
        return loss
    return loss_fn


@torch.no_grad()
def weight_sparsity(model: nn.Module, tol: float = 1e-3) -> float:
    """Share of weights (biases excluded) whose magnitude is below ``tol``."""
    weights = torch.cat([p.flatten() for p in _weights(model, include_bias=False)])
    return float((weights.abs() < tol).float().mean())
