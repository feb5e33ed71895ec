"""Plausible wrong answers to lab 03 (overfitting)."""

import numpy as np
import torch

from utils.augment import shift_images


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


def l2_with_biases(model):
    return sum((p ** 2).sum() for p in model.parameters())


def l2_norm_not_squared(model):
    return torch.sqrt(sum((p ** 2).sum() for n, p in model.named_parameters() if not n.endswith("bias")))


def l2_as_python_float(model):
    return sum((p ** 2).sum() for n, p in model.named_parameters() if not n.endswith("bias")).detach().item()


def l2_mean_not_sum(model):
    return sum((p ** 2).mean() for n, p in model.named_parameters() if not n.endswith("bias"))


def shift_wraps_around(images, dx, dy):
    return torch.roll(images.reshape(-1, 8, 8), (dy, dx), (1, 2)).reshape(images.shape)


def shift_axes_swapped(images, dx, dy):
    return shift_images(images, dy, dx)


def shift_wrong_direction(images, dx, dy):
    return shift_images(images, -dx, -dy)


def kfold_contiguous_chunks(y, k, seed):
    chunks = np.array_split(np.arange(len(y)), k)
    return [(np.setdiff1d(np.arange(len(y)), chunk), chunk) for chunk in chunks]


def kfold_sampled_with_replacement(y, k, seed):
    rng = np.random.default_rng(seed)
    parts = [rng.choice(len(y), len(y) // k) for _ in range(k)]
    return [(np.setdiff1d(np.arange(len(y)), part), part) for part in parts]


def kfold_train_includes_validation(y, k, seed):
    from utils.data import stratified_kfold_indices
    return [(np.arange(len(y)), val) for _, val in stratified_kfold_indices(y, k, seed)]


WRONG = {
    "03.early_stopping": [StopperKeepsLast, StopperShallowCopy, StopperOffByOne, StopperTieIsImprovement],
    "03.l2_penalty": [l2_with_biases, l2_norm_not_squared, l2_as_python_float, l2_mean_not_sum],
    "03.shift": [shift_wraps_around, shift_axes_swapped, shift_wrong_direction],
    "03.kfold": [kfold_contiguous_chunks, kfold_sampled_with_replacement, kfold_train_includes_validation],
}
