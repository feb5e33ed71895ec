"""Adapting a trained model to a new task with few parameters or few labels (lesson 07).

- :class:`LoRALinear` wraps an ``nn.Linear`` with a low-rank update (Hu et al. 2021): ``W x + (alpha / r) B A x``,
  ``B`` zero at the start so training starts from the pretrained function; :meth:`LoRALinear.merge` folds it back.
- :func:`add_lora` puts LoRA on chosen linear layers of a model and freezes everything else.
- :func:`uncertainty_scores` ranks unlabelled rows for active learning (least confidence, margin, entropy).
- :func:`self_training` is pseudo-labelling with a confidence threshold, equal to scikit-learn's
  ``SelfTrainingClassifier``.
- :func:`fine_tune_lm` adapts the course's language model with early stopping on validation; :func:`tune_lr`
  chooses its learning rate on validation from a grid, so every arm of a comparison gets the same budget.
"""

from __future__ import annotations

import copy
import math
from typing import Callable, Iterable

import numpy as np
import torch
from torch import nn

UNCERTAINTY_KINDS = ("least_confidence", "margin", "entropy")


class LoRALinear(nn.Module):
    """``base(x) + (alpha / rank) · x Aᵀ Bᵀ``: a frozen linear layer plus a trainable rank-``rank`` update.

    ``A`` (rank × in) starts random (Kaiming-uniform, as in the paper's code and ``peft``), ``B`` (out × rank)
    starts at zero, so the wrapped layer computes exactly what ``base`` computed until training moves ``B``.
    Only ``A`` and ``B`` are trainable: ``rank · (in + out)`` parameters instead of ``in · out``.
    """

    def __init__(self, base: nn.Linear, rank: int, alpha: float):
        super().__init__()
        if not isinstance(base, nn.Linear):
            raise TypeError(f"LoRALinear wraps an nn.Linear, got {type(base).__name__}")
        if not isinstance(rank, int) or isinstance(rank, bool) or rank < 1:
            raise ValueError(f"rank must be a positive integer, got {rank!r}")
        if rank > min(base.in_features, base.out_features):
            raise ValueError(f"rank {rank} exceeds the layer's smaller side ({min(base.in_features, base.out_features)})")
        self.base, self.rank, self.alpha = base, rank, alpha
        for parameter in self.base.parameters():
            parameter.requires_grad_(False)
        self.lora_A = nn.Parameter(torch.empty(rank, base.in_features, dtype=base.weight.dtype))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, rank, dtype=base.weight.dtype))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))

    @property
    def scaling(self) -> float:
        return self.alpha / self.rank

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + (x @ self.lora_A.T @ self.lora_B.T) * self.scaling

    def merge(self) -> nn.Linear:
        """A plain ``nn.Linear`` with ``W + (alpha / rank) B A``: the same outputs, no extra cost at inference."""
        merged = copy.deepcopy(self.base)
        with torch.no_grad():
            merged.weight += (self.lora_B @ self.lora_A) * self.scaling
        for parameter in merged.parameters():
            parameter.requires_grad_(True)
        return merged


def add_lora(model: nn.Module, rank: int, alpha: float, targets: Iterable[str]) -> list[str]:
    """Replace every ``nn.Linear`` whose qualified name ends with one of ``targets`` by a :class:`LoRALinear`.

    Every other parameter of ``model`` is frozen. Returns the names replaced; the model is changed in place.
    """
    targets = tuple(targets)
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    replaced = []
    for name, module in list(model.named_modules()):
        if isinstance(module, nn.Linear) and name.endswith(targets):
            parent_name, _, child = name.rpartition(".")
            parent = model.get_submodule(parent_name) if parent_name else model
            setattr(parent, child, LoRALinear(module, rank, alpha))
            replaced.append(name)
    if not replaced:
        raise ValueError(f"no nn.Linear in the model ends with any of {targets}")
    return replaced


def merge_lora(model: nn.Module) -> nn.Module:
    """Replace every :class:`LoRALinear` in ``model`` by its merged ``nn.Linear`` (in place); returns the model."""
    for name, module in list(model.named_modules()):
        if isinstance(module, LoRALinear):
            parent_name, _, child = name.rpartition(".")
            parent = model.get_submodule(parent_name) if parent_name else model
            setattr(parent, child, module.merge())
    return model


def trainable_parameters(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    parameters = list(model.parameters())
    return sum(p.numel() for p in parameters if p.requires_grad), sum(p.numel() for p in parameters)


def uncertainty_scores(proba, kind: str = "entropy") -> np.ndarray:
    """How unsure a classifier is about each row (higher = more unsure), from its class probabilities.

    ``least_confidence``: 1 − the top probability; ``margin``: 1 − (top − second), so a near tie scores near 1;
    ``entropy``: −Σ p log p in nats (0 · log 0 counted as 0). Active learning labels the highest-scoring rows next.

    >>> uncertainty_scores([[0.9, 0.1], [0.5, 0.5]], "margin").round(3).tolist()
    [0.2, 1.0]
    """
    proba = np.asarray(proba, dtype=float)
    if proba.ndim != 2 or proba.shape[1] < 2:
        raise ValueError(f"proba must be a 2-D array of class probabilities (rows, classes >= 2), got shape {proba.shape}")
    if kind not in UNCERTAINTY_KINDS:
        raise ValueError(f"kind must be one of {UNCERTAINTY_KINDS}, got {kind!r}")
    if kind == "least_confidence":
        return 1.0 - proba.max(1)
    if kind == "margin":
        top_two = np.sort(proba, axis=1)[:, -2:]
        return 1.0 - (top_two[:, 1] - top_two[:, 0])
    with np.errstate(divide="ignore", invalid="ignore"):
        return -np.where(proba > 0, proba * np.log(proba), 0.0).sum(1)


def select_pseudo_labels(proba, classes, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """The rows whose top probability is *above* ``threshold``, and their predicted labels (``classes[argmax]``).

    >>> select_pseudo_labels([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8]], np.array([3, 7]), 0.75)
    (array([0, 2]), array([3, 7]))
    """
    proba, classes = np.asarray(proba, dtype=float), np.asarray(classes)
    if proba.ndim != 2 or proba.shape[1] != len(classes):
        raise ValueError(f"proba must have one column per class ({len(classes)}), got shape {proba.shape}")
    rows = np.flatnonzero(proba.max(1) > threshold)
    return rows, classes[proba[rows].argmax(1)]


def self_training(make_model: Callable[[], object], X, y, threshold: float = 0.75, max_iter: int = 10):
    """Pseudo-labelling: fit on the labelled rows (``y == -1`` marks unlabelled), add every unlabelled row whose
    top probability exceeds ``threshold`` with its predicted label, refit; stop when none is added.

    Returns the final fitted model and the labels used (−1 where a row was never pseudo-labelled). Equal to
    scikit-learn's ``SelfTrainingClassifier(make_model(), threshold=threshold, max_iter=max_iter)``.
    """
    X, labels = np.asarray(X), np.asarray(y).copy()
    model = None
    for _ in range(max_iter):
        known = labels != -1
        model = make_model().fit(X[known], labels[known])
        unknown = np.flatnonzero(~known)
        if len(unknown) == 0:
            break
        rows, pseudo = select_pseudo_labels(model.predict_proba(X[unknown]), model.classes_, threshold)
        if len(rows) == 0:
            break
        labels[unknown[rows]] = pseudo
    else:
        known = labels != -1
        model = make_model().fit(X[known], labels[known])
    return model, labels


def fine_tune_lm(model: nn.Module, train: torch.Tensor, val: torch.Tensor, *, steps: int, batch_size: int = 8,
                 lr: float = 1e-3, eval_every: int = 25, eval_batches: int = 8, seed: int = 0) -> list[dict]:
    """AdamW on the trainable parameters with random windows of ``train`` (the model's context long); validation
    bits per byte every ``eval_every`` steps.

    Keeps the weights of the evaluation with the lowest validation loss (early stopping: chosen on validation, so
    report on a test set) and returns the history: step, validation bits per byte, seconds so far.
    """
    import time

    from utils import lm

    generator, context = torch.Generator().manual_seed(seed), model.config.context
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=lr, weight_decay=0.0)
    history, best, best_state, started = [], math.inf, None, time.perf_counter()

    def evaluate(step):
        nonlocal best, best_state
        bpb = lm.evaluate_bpb(model, val, batches=eval_batches, batch_size=16, seed=seed) if len(val) > context + 1 else math.nan
        history.append({"step": step, "val_bpb": bpb, "seconds": time.perf_counter() - started})
        if bpb < best:
            best, best_state = bpb, copy.deepcopy(model.state_dict())

    evaluate(0)
    model.train()
    for step in range(1, steps + 1):
        x, y = lm.random_batch(train, batch_size, context, generator)
        _, loss = model(x, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step % eval_every == 0 or step == steps:
            evaluate(step)
            model.train()
    model.load_state_dict(best_state)
    model.eval()
    return history


def tune_lr(make_model: Callable[[], nn.Module], lrs: Iterable[float], train: torch.Tensor, val: torch.Tensor, *,
            steps: int, seed: int = 0, **kwargs) -> dict:
    """Fine-tune a fresh ``make_model()`` at each learning rate in ``lrs`` and keep the one with the lowest validation
    bits per byte (each run already keeps its best checkpoint, so the number of steps is chosen on validation too).

    Every learning rate gets the same budget (``steps``, same windows, same seed), so arms compared with one grid
    size each get the same tuning budget. Returns ``{"lr", "model", "history", "val_bpb": {lr: best validation}}``.
    Lesson 07 calls it as ``tune_lr(lambda: lm.pretrained(verbose=False), (3e-5, 1e-4, 3e-4), train, val, steps=60)``.
    """
    lrs = tuple(lrs)
    if not lrs or any(not isinstance(lr, (int, float)) or isinstance(lr, bool) or not lr > 0 for lr in lrs):
        raise ValueError(f"lrs must be a non-empty sequence of positive learning rates, got {lrs!r}")
    best, scores = None, {}
    for lr in lrs:
        torch.manual_seed(seed)
        model = make_model()
        history = fine_tune_lm(model, train, val, steps=steps, lr=lr, seed=seed, **kwargs)
        scores[lr] = min(h["val_bpb"] for h in history)
        if best is None or scores[lr] < scores[best["lr"]]:
            best = {"lr": lr, "model": model, "history": history}
    return {**best, "val_bpb": scores}
