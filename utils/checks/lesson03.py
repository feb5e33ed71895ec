"""Checks for lab 03 (overfitting): EarlyStopping, an L2 penalty, shift_images, stratified_kfold_indices."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from utils.augment import shift_images
from utils.checks.core import Case, Mistake, Spec, format_value as fmt, reject, global_seed, register
from utils.data import stratified_kfold_indices
from utils.regularize import l2_penalty
from utils.train import EarlyStopping, History

# --- 03.EarlyStopping: simulated epochs; what is compared is (the epoch it stops at, the epoch its weights are from) ---


def _simulate(stopper_class, args):
    """Feed the losses to a new stopper as fit would, changing the weights in place each epoch like an optimiser."""
    patience, losses = args
    stopper = stopper_class(patience)
    with global_seed(0):  # the layer's initial weights are overwritten; the caller's random state is kept
        model, history = nn.Linear(1, 1), History()
    stopped_at = len(losses) - 1
    for epoch, loss in enumerate(losses):
        with torch.no_grad():
            model.weight.fill_(float(epoch))
        history.val_loss.append(loss)
        history.train_loss.append(1.0 / (epoch + 1))  # the training loss keeps falling: only val_loss tells when to stop
        if stopper.on_epoch_end(epoch, history, model):
            stopped_at = epoch
            break
    stopper.on_train_end(history, model)
    return stopped_at, int(round(model.weight.item()))


class StopperKeepsLast:
    """Stops at the right time but never restores the best weights."""

    def __init__(self, patience):
        self.patience, self.best, self.wait = patience, float("inf"), 0

    def on_epoch_end(self, epoch, history, model):
        if history.val_loss[-1] < self.best:
            self.best, self.wait = history.val_loss[-1], 0
        else:
            self.wait += 1
        return self.wait >= self.patience

    def on_train_end(self, history, model):
        pass


class StopperShallowCopy(StopperKeepsLast):
    """Saves model.state_dict() without cloning: the 'saved' tensors keep changing with the model."""

    def on_epoch_end(self, epoch, history, model):
        if history.val_loss[-1] < self.best:
            self.state = model.state_dict()
        return super().on_epoch_end(epoch, history, model)

    def on_train_end(self, history, model):
        model.load_state_dict(self.state)


class StopperOffByOne(StopperKeepsLast):
    """Waits one epoch too many (> instead of >=)."""

    def on_epoch_end(self, epoch, history, model):
        if history.val_loss[-1] < self.best:
            self.best, self.wait = history.val_loss[-1], 0
            self.state = {k: v.clone() for k, v in model.state_dict().items()}
        else:
            self.wait += 1
        return self.wait > self.patience

    def on_train_end(self, history, model):
        model.load_state_dict(self.state)


class StopperTieIsImprovement(StopperOffByOne):
    """Counts an equal loss as an improvement (<= instead of <)."""

    def on_epoch_end(self, epoch, history, model):
        if history.val_loss[-1] <= self.best:
            self.best, self.wait = history.val_loss[-1], 0
            self.state = {k: v.clone() for k, v in model.state_dict().items()}
        else:
            self.wait += 1
        return self.wait >= self.patience


class StopperNeverResets(StopperOffByOne):
    """Counts every epoch without improvement since the start: the count is not reset by a new best."""

    def on_epoch_end(self, epoch, history, model):
        if history.val_loss[-1] < self.best:
            self.best = history.val_loss[-1]
            self.state = {k: v.clone() for k, v in model.state_dict().items()}
        else:
            self.wait += 1
        return self.wait >= self.patience


class StopperWatchesTrainLoss(StopperOffByOne):
    """Watches the training loss, which keeps falling while the model overfits."""

    def on_epoch_end(self, epoch, history, model):
        if history.train_loss[-1] < self.best:
            self.best, self.wait = history.train_loss[-1], 0
            self.state = {k: v.clone() for k, v in model.state_dict().items()}
        else:
            self.wait += 1
        return self.wait >= self.patience


LAST_WEIGHTS_HINT = ("The model ended with the last epoch's weights. In on_train_end load the best epoch's, saved "
                     "as clones ({name: value.clone() ...}): model.state_dict() holds live tensors that keep changing.")


def _stopping_cases() -> list[Case]:
    losses = [1.0, 0.8, 0.5, 0.7, 0.5, 0.9, 0.6, 0.4]  # best at epoch 2; epoch 4 ties it (not an improvement)
    cases = [Case((patience, losses), f"validation losses {losses} with patience={patience}") for patience in (2, 3)]
    recovering = [1.0, 0.9, 0.95, 0.8, 0.85, 0.7, 0.75, 0.78, 0.6, 0.65, 0.66, 0.67, 0.68]  # bad epochs, then a new best
    cases.append(Case((2, recovering), f"validation losses {recovering} with patience=2 (recovers after bad epochs)"))
    rng = np.random.default_rng(301)
    for n, patience in ((12, 1), (20, 3), (30, 4)):
        walk = [round(float(v), 1) for v in 2 + np.cumsum(rng.normal(-0.05, 0.2, n))]  # rounded: ties happen
        cases.append(Case((patience, walk), f"validation losses {fmt(walk)} with patience={patience}"))
    return cases


register(Spec(
    "03.EarlyStopping", EarlyStopping, _stopping_cases, invoke=_simulate,
    hint="Count epochs without a strictly lower validation loss (reset the count at each new best); stop when it "
         "reaches patience; in on_train_end load the weights saved (cloned) at the best epoch.",
    mistakes=(
        Mistake(StopperKeepsLast, LAST_WEIGHTS_HINT),
        Mistake(StopperShallowCopy, LAST_WEIGHTS_HINT),  # a saved state_dict() without clones ends the same way
        Mistake(StopperOffByOne, "Stop as soon as the count of epochs without improvement reaches patience (>=), "
                                 "not one epoch later."),
        Mistake(StopperTieIsImprovement, "An equal loss is not an improvement: use a strict <."),
        Mistake(StopperWatchesTrainLoss, "Watch history.val_loss, not train_loss: the training loss keeps falling "
                                         "while the model overfits, so it never says when to stop."),
        Mistake(StopperNeverResets, "Reset the count of epochs without improvement to 0 at every new best."),
    )))


# --- 03.l2_penalty: its value and its gradient with respect to every parameter ---

def _value_and_gradients(penalty, args):
    (model,) = args
    parameters = list(model.parameters())
    gradients = torch.autograd.grad(penalty, parameters, allow_unused=True)
    return (penalty.item(), tuple(np.zeros(tuple(p.shape)) if g is None else g.numpy() for p, g in
                                  zip(parameters, gradients)))


def l2_with_biases(model):
    return sum((p ** 2).sum() for p in model.parameters())


def l2_norm_not_squared(model):
    return torch.sqrt(sum((p ** 2).sum() for n, p in model.named_parameters() if not n.endswith("bias")))


def l2_mean_not_sum(model):
    return sum((p ** 2).mean() for n, p in model.named_parameters() if not n.endswith("bias"))


def l2_first_layer_only(model):
    weight = next(p for n, p in model.named_parameters() if not n.endswith("bias"))
    return (weight ** 2).sum()


def _model(sizes: tuple[int, ...], seed: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    with global_seed(seed):  # nn.Linear draws from torch's global generator; the caller's state is kept
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(fan_in, fan_out), nn.ReLU()]
    model = nn.Sequential(*layers[:-1])
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.mul_(3.0)  # biases on the scale of the weights: leaving them in changes the number
    return model


def _l2_cases() -> list[Case]:
    return [Case((_model(sizes, seed),), f"a {'-'.join(map(str, sizes))} network", atol=1e-5, size=sum(sizes))
            for sizes, seed in (((3, 2, 1), 30), ((5, 4), 31), ((8, 6, 4, 2), 32))]  # float32 sums: 1e-5


register(Spec(
    "03.l2_penalty", l2_penalty, _l2_cases, measure=_value_and_gradients,
    hint="Sum the squares of every parameter whose name does not end in 'bias', keeping it a tensor.",
    mistakes=(
        Mistake(l2_with_biases, "Leave the biases out: penalising them does not limit capacity."),
        Mistake(l2_norm_not_squared, "Square the weights and sum them; do not take the root."),
        Mistake(l2_mean_not_sum, "Sum the squares; a mean divides each layer by its size."),
        Mistake(l2_first_layer_only, "Add up every weight matrix, not only the first layer's."),
    )))


# --- 03.shift_images ---

def shift_wraps_around(images, dx, dy):
    return torch.roll(images.reshape(-1, 8, 8), (dy, dx), (1, 2)).reshape(images.shape)


def shift_axes_swapped(images, dx, dy):
    return shift_images(images, dy, dx)


def shift_wrong_direction(images, dx, dy):
    return shift_images(images, -dx, -dy)


def _shift_cases() -> list[Case]:
    ramp = torch.arange(2 * 64, dtype=torch.float32).reshape(2, 64) / 128
    cases = [Case((ramp, dx, dy), f"two 8x8 ramp images, dx={dx}, dy={dy}") for dx, dy in ((1, 0), (0, -1), (-2, 1))]
    generator = torch.Generator().manual_seed(302)
    for n, dx, dy in ((1, 3, 3), (5, -7, 0), (3, 0, 7), (16, 2, -5), (4, 0, 0)):
        images = torch.randn(n, 64, generator=generator)  # negative pixels too
        cases.append(Case((images, dx, dy), f"{n} random images with negative values, dx={dx}, dy={dy}"))
    return cases


register(Spec(
    "03.shift_images", shift_images, _shift_cases,
    hint="dx moves right, dy moves down; fill the uncovered border with 0 and drop what leaves.",
    mistakes=(
        Mistake(shift_wraps_around, "Pixels wrapped around to the other side (torch.roll); fill the border with 0."),
        Mistake(shift_axes_swapped, "dx and dy are swapped: dx is horizontal (columns), dy vertical (rows)."),
        Mistake(shift_wrong_direction, "The image moved the wrong way: positive dx moves right, positive dy down."),
    )))


# --- 03.stratified_kfold_indices: folds are random, so their properties are compared ---

def _fold_contract(folds, expected):
    k = len(expected)
    if not isinstance(folds, list):
        return (f"your result should be a list of {k} (train_idx, val_idx) pairs, got a {type(folds).__name__}.",
                "Return a list, not a generator or an array: [(train_idx, val_idx), ...].")
    for fold in folds:
        if not (isinstance(fold, tuple) and len(fold) == 2):
            return (f"each fold should be a pair (train_idx, val_idx), got {fmt(fold)}.", "Append (train, val) tuples.")
        for part in fold:
            if not (isinstance(part, np.ndarray) and part.ndim == 1 and part.dtype.kind in "iu"):
                return (f"each index part should be a 1-D integer ndarray, got {type(part).__name__} "
                        f"{getattr(part, 'dtype', '')}.", "Use np.flatnonzero or np.array(..., dtype=int).")
    return None


def _fold_properties(folds, args) -> dict:
    y, k, _ = args
    n, everything = len(y), np.arange(len(y))
    validation = np.sort(np.concatenate([val for _, val in folds])) if folds else np.array([], dtype=int)
    if validation.size and (validation.min() < 0 or validation.max() >= n):
        reject(f"your validation indices run from {validation.min()} to {validation.max()}, outside 0..{n - 1}.",
               "Return row positions (0 to len(y) - 1), not labels.")
    labels = np.unique(y)
    counts = np.array([[np.sum(y[val] == label) for label in labels] for _, val in folds]) if folds else np.zeros((1, 1))
    return {"folds": len(folds),
            "rows once": bool(np.array_equal(validation, everything)),
            "train = rest": all(np.array_equal(np.sort(train), np.setdiff1d(everything, val)) for train, val in folds),
            "stratified": bool(np.all(counts.max(axis=0) - counts.min(axis=0) <= 1))}


def kfold_contiguous_chunks(y, k, seed):
    chunks = np.array_split(np.arange(len(y)), k)
    return [(np.setdiff1d(np.arange(len(y)), chunk), chunk) for chunk in chunks]


def kfold_sampled_with_replacement(y, k, seed):
    rng = np.random.default_rng(seed)
    parts = [rng.choice(len(y), len(y) // k) for _ in range(k)]
    return [(np.setdiff1d(np.arange(len(y)), part), part) for part in parts]


def kfold_train_includes_validation(y, k, seed):
    return [(np.arange(len(y)), val) for _, val in stratified_kfold_indices(y, k, seed)]


def _kfold_cases() -> list[Case]:
    y = np.array([0] * 23 + [1] * 9 + [2] * 4)
    cases = [Case((y, k, 0), f"y with class counts {np.bincount(y).tolist()}, sorted by class, k={k}") for k in (3, 4)]
    rng = np.random.default_rng(303)
    words = rng.permutation(np.array(["cat"] * 11 + ["dog"] * 6 + ["eel"] * 2))  # string labels, a class smaller than k
    cases.append(Case((words, 5, 1), "19 string labels (cat 11, dog 6, eel 2), shuffled, k=5"))
    big = rng.choice([0, 1, 2, 3], 200, p=[0.6, 0.25, 0.1, 0.05])
    cases.append(Case((big, 10, 2), f"200 labels with class counts {np.bincount(big).tolist()}, k=10"))
    return cases


register(Spec(
    "03.stratified_kfold_indices", stratified_kfold_indices, _kfold_cases,
    contract=_fold_contract, measure=_fold_properties, seed=(2, int),
    hint="Shuffle each class's rows, deal them out to the folds in turn, and use every other row for training.",
    mistakes=(
        Mistake(kfold_contiguous_chunks, "Stratify: deal each class's rows out to the folds in turn, so every "
                                         "fold gets its share of every class."),
        Mistake(kfold_sampled_with_replacement, "Deal each row into exactly one fold: sampling with replacement "
                                                "repeats some rows and skips others."),
        Mistake(kfold_train_includes_validation, "train_idx must be every index NOT in val_idx; training on the "
                                                 "validation rows leaks them."),
    )))
