"""A small, readable training loop for torch classifiers, with a history and callback hooks.

A callback is any object with optional methods
``on_epoch_end(epoch, history, model) -> bool | None`` (return True to stop) and
``on_train_end(history, model)``. ``EarlyStopping`` (lesson 03) is one such object.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from utils.device import get_device


@dataclass
class History:
    """Per-epoch loss and accuracy on the training and validation data."""

    train_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)

    @property
    def epochs(self) -> int:
        return len(self.train_loss)


def as_tensor(X, dtype=torch.float32) -> torch.Tensor:
    """NumPy array or tensor to a tensor of ``dtype`` (no copy when it already is one)."""
    return X.to(dtype) if isinstance(X, torch.Tensor) else torch.as_tensor(np.asarray(X), dtype=dtype)


def _batches(n: int, batch_size: int, generator: torch.Generator | None):
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    return order.split(batch_size)


@torch.no_grad()
def evaluate(model: nn.Module, X, y, *, loss_fn=None, batch_size: int = 1024,
             device=None) -> tuple[float, float]:
    """Mean loss and accuracy of ``model`` on ``X, y``, in eval mode (dropout off)."""
    device = device or next(model.parameters()).device
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    X, y = as_tensor(X), as_tensor(y, torch.long)
    was_training = model.training
    model.eval()
    total_loss, correct = 0.0, 0
    for idx in _batches(len(y), batch_size, None):
        logits = model(X[idx].to(device))
        target = y[idx].to(device)
        total_loss += loss_fn(logits, target).item() * len(idx)
        correct += (logits.argmax(dim=1) == target).sum().item()
    model.train(was_training)
    return total_loss / len(y), correct / len(y)


@torch.no_grad()
def predict_proba(model: nn.Module, X, *, batch_size: int = 1024) -> np.ndarray:
    """Class probabilities (softmax of the logits) as a NumPy array, in eval mode."""
    device = next(model.parameters()).device
    X = as_tensor(X)
    was_training = model.training
    model.eval()
    parts = [torch.softmax(model(X[idx].to(device)), dim=1).cpu() for idx in _batches(len(X), batch_size, None)]
    model.train(was_training)
    return torch.cat(parts).numpy()


def _check_fit_arguments(X_train, y_train, epochs, batch_size, lr):
    if len(X_train) != len(y_train):
        raise ValueError(f"X_train has {len(X_train)} rows but y_train has {len(y_train)}")
    if len(X_train) == 0:
        raise ValueError("X_train is empty")
    for name, value in (("epochs", epochs), ("batch_size", batch_size)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if not lr > 0:
        raise ValueError(f"lr must be positive, got {lr!r}")


def fit(model: nn.Module, X_train, y_train, X_val=None, y_val=None, *, epochs: int = 20,
        batch_size: int = 64, lr: float = 1e-3, optimizer: torch.optim.Optimizer | None = None,
        loss_fn=None, augment=None, seed: int = 0, callbacks=(), device=None,
        progress: bool = True) -> History:
    """Train ``model`` with mini-batches; record loss and accuracy per epoch; return the History.

    ``optimizer`` defaults to Adam with learning rate ``lr``. ``loss_fn`` defaults to cross-entropy
    on logits; it receives ``(logits, targets)`` and may add penalties (lesson 03 adds L2 by hand).
    ``augment(X_batch, generator)`` transforms each training batch (lesson 03's shifts and noise).
    The history always records plain cross-entropy on unaugmented data, so runs compare.

    >>> from utils.data import load_digits_split
    >>> split, model = load_digits_split(), nn.Linear(64, 10)
    >>> history = fit(model, split.X_train, split.y_train, split.X_val, split.y_val, epochs=2, progress=False)
    >>> history.epochs
    2
    """
    _check_fit_arguments(X_train, y_train, epochs, batch_size, lr)
    device = device or get_device()
    model.to(device)
    optimizer = optimizer or torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    X, y = as_tensor(X_train), as_tensor(y_train, torch.long)
    generator = torch.Generator().manual_seed(seed)
    history = History()
    for epoch in tqdm(range(epochs), desc="epochs", disable=not progress, leave=False):
        model.train()
        for idx in _batches(len(y), batch_size, generator):
            batch = augment(X[idx], generator) if augment is not None else X[idx]
            optimizer.zero_grad()
            loss = loss_fn(model(batch.to(device)), y[idx].to(device))
            loss.backward()
            optimizer.step()
        for name, value in zip(("train_loss", "train_acc"), evaluate(model, X, y, device=device)):
            getattr(history, name).append(value)
        if X_val is not None:
            val_loss, val_acc = evaluate(model, X_val, y_val, device=device)
            history.val_loss.append(val_loss)
            history.val_acc.append(val_acc)
        stop = [getattr(cb, "on_epoch_end", lambda *a: None)(epoch, history, model) for cb in callbacks]
        if any(stop):
            break
    for cb in callbacks:
        getattr(cb, "on_train_end", lambda *a: None)(history, model)
    return history


class EarlyStopping:
    """Stop when the validation loss has not improved for ``patience`` epochs, then restore the best weights.

    Keeping the last weights instead would keep ``patience`` epochs of overfitting.

    >>> stopper = EarlyStopping(patience=5)
    >>> # fit(model, X, y, X_val, y_val, callbacks=[stopper]); stopper.best_epoch
    """

    def __init__(self, patience: int = 10, min_delta: float = 0.0, restore_best: bool = True):
        if not isinstance(patience, int) or patience < 1:
            raise ValueError(f"patience must be a positive integer, got {patience!r}")
        if min_delta < 0:
            raise ValueError(f"min_delta must be non-negative, got {min_delta}")
        self.patience, self.min_delta, self.restore_best = patience, min_delta, restore_best
        self.best_loss, self.best_epoch, self.best_state, self.wait = float("inf"), -1, None, 0

    def on_epoch_end(self, epoch: int, history: History, model: nn.Module) -> bool:
        if not history.val_loss:
            raise ValueError("EarlyStopping needs validation data: pass X_val and y_val to fit")
        if history.val_loss[-1] < self.best_loss - self.min_delta:
            self.best_loss, self.best_epoch, self.wait = history.val_loss[-1], epoch, 0
            self.best_state = {name: value.detach().clone() for name, value in model.state_dict().items()}
        else:
            self.wait += 1
        return self.wait >= self.patience

    def on_train_end(self, history: History, model: nn.Module) -> None:
        if self.restore_best and self.best_state is not None:
            model.load_state_dict(self.best_state)


def warmup_cosine(step: int, warmup: int, total: int, peak_lr: float, min_lr: float = 0.0) -> float:
    """Learning rate at ``step`` (0-based): linear warm-up to ``peak_lr`` over ``warmup`` steps, then cosine decay
    to ``min_lr`` at step ``total``.

    Warm-up: ``peak_lr * (step + 1) / warmup``, so step ``warmup - 1`` reaches the peak; decay: at step
    ``warmup + j`` the rate is ``min_lr + (peak_lr - min_lr) * (1 + cos(pi * j / (total - warmup))) / 2``.
    Equal to ``SequentialLR([LinearLR(start_factor=1 / warmup, total_iters=warmup - 1),
    CosineAnnealingLR(T_max=total - warmup, eta_min=min_lr)], milestones=[warmup])``.

    >>> [round(warmup_cosine(s, warmup=2, total=6, peak_lr=1.0), 3) for s in range(7)]
    [0.5, 1.0, 1.0, 0.854, 0.5, 0.146, 0.0]
    """
    if not 0 < warmup < total:
        raise ValueError(f"need 0 < warmup < total, got warmup={warmup}, total={total}")
    if step < warmup:
        return peak_lr * (step + 1) / warmup
    progress = min(step - warmup, total - warmup) / (total - warmup)
    return min_lr + (peak_lr - min_lr) * 0.5 * (1 + math.cos(math.pi * progress))


def warmup_cosine_scheduler(optimizer: torch.optim.Optimizer, warmup: int, total: int, min_lr: float = 0.0):
    """PyTorch's schedulers composing :func:`warmup_cosine` (what a practitioner writes): LinearLR, then
    CosineAnnealingLR, in a SequentialLR. Call ``scheduler.step()`` after each ``optimizer.step()``."""
    from torch.optim import lr_scheduler

    if not 0 < warmup < total:
        raise ValueError(f"need 0 < warmup < total, got warmup={warmup}, total={total}")
    return lr_scheduler.SequentialLR(optimizer, [
        lr_scheduler.LinearLR(optimizer, start_factor=1 / warmup, end_factor=1.0, total_iters=max(warmup - 1, 1)),
        lr_scheduler.CosineAnnealingLR(optimizer, T_max=total - warmup, eta_min=min_lr)], milestones=[warmup])


def accumulated_gradients(model: nn.Module, loss_fn, X: torch.Tensor, y: torch.Tensor,
                          micro_batches: int) -> dict[str, torch.Tensor]:
    """Gradients of the mean loss over (X, y), computed in ``micro_batches`` equal slices (gradient accumulation).

    Each slice's mean loss is divided by the number of slices before ``backward`` so that the summed
    gradients equal one full batch's; ``zero_grad`` happens once, before the first slice.
    """
    if micro_batches < 1 or len(X) % micro_batches:
        raise ValueError(f"{len(X)} rows cannot be cut into {micro_batches} equal micro-batches")
    model.zero_grad(set_to_none=True)
    for X_part, y_part in zip(X.chunk(micro_batches), y.chunk(micro_batches)):
        (loss_fn(model(X_part), y_part) / micro_batches).backward()
    return {name: p.grad.detach().clone() for name, p in model.named_parameters() if p.grad is not None}
