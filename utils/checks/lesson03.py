"""Checks for lab 03 (overfitting): early stopping, an L2 penalty, a shift augmentation, stratified k-fold."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from utils.augment import shift_images
from utils.checks.core import Checker, format_value as fmt, register
from utils.regularize import l2_penalty
from utils.train import History

# Validation losses per epoch; the best is epoch 2 (0-based). Ties (epoch 4) do not count as improvement.
LOSSES = [1.0, 0.8, 0.5, 0.7, 0.5, 0.9, 0.6, 0.4]


def _simulate(c: Checker, stopper, losses):
    """Feed ``losses`` to ``stopper`` as fit would, changing the weights in place each epoch like an optimiser."""
    model, history = nn.Linear(1, 1), History()
    stopped_at = len(losses) - 1
    for epoch, loss in enumerate(losses):
        with torch.no_grad():
            model.weight.fill_(float(epoch))
        history.val_loss.append(loss)
        history.train_loss.append(loss)
        if c.run(stopper.on_epoch_end, epoch, history, model):
            stopped_at = epoch
            break
    c.run(stopper.on_train_end, history, model)
    return stopped_at, model.weight.item()


@register("03.early_stopping")
def _early_stopping(c: Checker) -> None:
    for patience in (2, 3):
        stopper = c.call(patience=patience)
        best = int(np.argmin(LOSSES[:5]))
        stopped_at, weight = _simulate(c, stopper, LOSSES)
        case = f"validation losses {LOSSES} with patience={patience}"
        c.expect_close(stopped_at, best + patience, case=f"{case}: the epoch (0-based) where training stops",
                       hint=f"Count epochs without a strictly lower validation loss; stop when the count "
                            f"reaches patience ({patience}).")
        c.expect_close(weight, best, case=f"{case}: the weight after on_train_end (the epoch it came from)",
                       hint="Save a copy of the weights at the best epoch (clone every tensor of "
                            "model.state_dict(): the dict holds live references) and load it in on_train_end.",
                       diagnose=((stopped_at, "The model ended with the last epoch's weights. Restore the best "
                                              "epoch's, saved as clones (state_dict() holds live tensors)."),))


def _model() -> nn.Module:
    model = nn.Sequential(nn.Linear(3, 2), nn.ReLU(), nn.Linear(2, 1))
    with torch.no_grad():
        for i, parameter in enumerate(model.parameters()):
            parameter.copy_(torch.linspace(-1, 1, parameter.numel()).reshape(parameter.shape) * (i + 1))
    return model


@register("03.l2_penalty")
def _l2_penalty(c: Checker) -> None:
    model = _model()
    expected = l2_penalty(model)
    got = c.call(model, copy_args=False)  # the same model, so the gradient check below can read its .grad
    with_bias = l2_penalty(model, include_bias=True)
    c.expect_close(got.detach().item() if isinstance(got, torch.Tensor) and got.numel() == 1 else got, expected.item(),
                   case="a 3-2-1 network with known weights", atol=1e-6,
                   hint="Sum the squares of every weight matrix, skipping parameters whose name ends in 'bias'.",
                   diagnose=((with_bias.item(), "Leave the biases out: penalising them does not limit capacity."),
                             (expected.sqrt().item(), "Square the weights and sum them; do not take the root."),
                             (torch.sqrt(sum((p ** 2).sum() for n, p in model.named_parameters()
                                             if not n.endswith("bias"))).item(), "No square root."),))
    if not isinstance(got, torch.Tensor) or not got.requires_grad:
        c.fail(f"expected a tensor that gradients can flow through, got {fmt(got)} ({type(got).__name__}).",
               "Keep it a torch tensor: .item(), float() or NumPy cut it off from backward().")
    c.run(got.backward)
    first_weight = model[0].weight
    c.expect_close(first_weight.grad.numpy(), (2 * first_weight).detach().numpy(), atol=1e-6,
                   case="the gradient of your penalty with respect to the first weight matrix",
                   hint="The gradient of sum(w ** 2) is 2w.")


@register("03.shift")
def _shift(c: Checker) -> None:
    images = torch.arange(2 * 64, dtype=torch.float32).reshape(2, 64) / 128
    for dx, dy in ((1, 0), (0, -1), (-2, 1), (3, 3)):
        expected = shift_images(images, dx, dy)
        got = c.call(images, dx, dy)
        if not isinstance(got, torch.Tensor):
            c.fail(f"expected a tensor of shape (2, 64), got {type(got).__name__}.", "Return a torch tensor.")
        c.expect_close(got.detach().numpy(), expected.numpy(), atol=1e-7,
                       case=f"two 8x8 images, dx={dx}, dy={dy}",
                       hint="dx moves right, dy moves down; fill the uncovered border with 0 and drop what leaves.",
                       diagnose=(
                           (torch.roll(images.reshape(2, 8, 8), (dy, dx), (1, 2)).reshape(2, 64).numpy(),
                            "Pixels wrapped around to the other side (torch.roll); fill the border with 0 instead."),
                           (shift_images(images, dy, dx).numpy(), "dx and dy are swapped: dx is horizontal."),
                           (shift_images(images, -dx, -dy).numpy(), "The image moved the wrong way."),
                       ))


@register("03.kfold")
def _kfold(c: Checker) -> None:
    y = np.array([0] * 23 + [1] * 9 + [2] * 4)
    for k in (3, 4):
        folds = c.call(y, k, 0)
        case = f"y with class counts {np.bincount(y).tolist()} and k={k}"
        try:
            folds = [(np.asarray(train, dtype=int), np.asarray(val, dtype=int)) for train, val in folds]
        except (TypeError, ValueError):
            c.fail(f"for {case} expected a list of (train_indices, val_indices) pairs, got {fmt(folds)}.",
                   "Return [(train_idx, val_idx), ...] with one pair per fold.")
        if len(folds) != k:
            c.fail(f"for {case} expected {k} folds, got {len(folds)}.", "One (train, val) pair per fold.")
        everything = np.sort(np.concatenate([val for _, val in folds]))
        if not np.array_equal(everything, np.arange(len(y))):
            c.fail(f"for {case} the validation parts should cover every row exactly once; together they hold "
                   f"{len(everything)} indices, {len(np.unique(everything))} distinct, of {len(y)} rows.",
                   "Deal each row into exactly one fold: the folds must not overlap.")
        for train, val in folds:
            if not np.array_equal(np.sort(train), np.setdiff1d(np.arange(len(y)), val)):
                c.fail(f"for {case} a training part is not exactly the rows outside its validation part.",
                       "train_idx = every index not in val_idx.")
        counts = np.array([np.bincount(y[val], minlength=3) for _, val in folds])
        if np.any(counts.max(axis=0) - counts.min(axis=0) > 1):
            c.fail(f"for {case} expected each class spread evenly over the folds (counts within 1), "
                   f"got per-fold class counts {counts.tolist()}.",
                   "Stratify: shuffle each class's rows, then deal them out to the folds in turn.")
