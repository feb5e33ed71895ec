"""Checks for lab 07 (transfer learning): LoRALinear, uncertainty_scores, select_pseudo_labels."""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
from torch import nn

from utils import adapt
from utils.checks.core import Case, Mistake, Spec, register

# --- 07.LoRALinear ---


def _lora_behaviour(cls, args):
    """What a LoRA layer does: its output at the start, after setting A and B, its trainable parameters, its merge."""
    weight, bias, rank, alpha, a, b, x = args
    base = nn.Linear(weight.shape[1], weight.shape[0])
    with torch.no_grad():
        base.weight.copy_(weight)
        base.bias.copy_(bias)
    layer = cls(copy.deepcopy(base), rank, alpha)
    with torch.no_grad():
        start = layer(x).detach().clone()
        layer.lora_A.copy_(a)
        layer.lora_B.copy_(b)
        trained = layer(x).detach().clone()
        merged = layer.merge()(x).detach().clone()
    trainable = sorted(name for name, p in layer.named_parameters() if p.requires_grad)
    return start.numpy(), trained.numpy(), trainable, merged.numpy()


class LoRAWithRandomB(adapt.LoRALinear):
    def __init__(self, base, rank, alpha):
        super().__init__(base, rank, alpha)
        g = torch.Generator().manual_seed(0)        # seeded, so the check can reproduce this mistake's output
        with torch.no_grad():
            self.lora_A.copy_(torch.randn(self.lora_A.shape, generator=g) * 0.1)
            self.lora_B.copy_(torch.randn(self.lora_B.shape, generator=g) * 0.1)


class LoRAScaledByRank(adapt.LoRALinear):
    @property
    def scaling(self):
        return 1.0 / self.rank


class LoRAWithTrainableBase(adapt.LoRALinear):
    def __init__(self, base, rank, alpha):
        super().__init__(base, rank, alpha)
        for parameter in self.base.parameters():
            parameter.requires_grad_(True)


class LoRAMergedTransposed(adapt.LoRALinear):
    def merge(self):
        merged = copy.deepcopy(self.base)
        with torch.no_grad():
            square = merged.weight.shape[0] == merged.weight.shape[1]   # only square layers accept the transposed product
            merged.weight += (self.lora_A.T @ self.lora_B.T if square else self.lora_B @ self.lora_A) * self.scaling
        return merged


def _lora_cases() -> list[Case]:
    g = torch.Generator().manual_seed(70)
    cases = []
    for i, (out_f, in_f, rank, alpha) in enumerate(((4, 4, 1, 1.0), (4, 4, 2, 8.0), (6, 3, 2, 4.0), (16, 16, 4, 8.0))):
        weight, bias = torch.randn(out_f, in_f, generator=g), torch.randn(out_f, generator=g)
        a, b = torch.randn(rank, in_f, generator=g), torch.randn(out_f, rank, generator=g)
        x = torch.randn(5, in_f, generator=g)
        cases.append(Case((weight, bias, rank, alpha, a, b, x), f"a {in_f} -> {out_f} layer, rank {rank}, alpha {alpha}",
                          atol=1e-5, size=i))
    return cases


register(Spec(
    "07.LoRALinear", adapt.LoRALinear, _lora_cases, invoke=_lora_behaviour, contract=lambda got, expected: None,
    hint="Freeze base; lora_A (rank x in, random) and lora_B (out x rank, zeros) as nn.Parameters; forward = base(x) + "
         "(x @ A.T @ B.T) * alpha / rank; merge() returns a copy of base with weight += (B @ A) * alpha / rank.",
    mistakes=(
        Mistake(LoRAWithRandomB, "Initialise lora_B to zeros: with a random B the adapted model no longer computes the "
                                 "pretrained function at step 0."),
        Mistake(LoRAScaledByRank, "Scale the update by alpha / rank, not 1 / rank: alpha keeps the update's size "
                                  "comparable when you change the rank."),
        Mistake(LoRAWithTrainableBase, "Freeze the base layer (requires_grad_(False) on its weight and bias): only "
                                       "lora_A and lora_B train."),
        Mistake(LoRAMergedTransposed, "The update to W (out x in) is B @ A (out x rank times rank x in); A.T @ B.T is its "
                                      "transpose, which only has the right shape for square layers."),
    )))


# --- 07.uncertainty_scores ---


def _uncertainty(function, args):
    proba, kind = args
    return function(proba, kind)


def uncertainty_margin_reversed(proba, kind="entropy"):
    if kind == "margin":
        top_two = np.sort(np.asarray(proba, float), axis=1)[:, -2:]
        return top_two[:, 1] - top_two[:, 0]
    return adapt.uncertainty_scores(proba, kind)


def uncertainty_entropy_in_bits(proba, kind="entropy"):
    if kind == "entropy":
        return adapt.uncertainty_scores(proba, kind) / math.log(2)
    return adapt.uncertainty_scores(proba, kind)


def uncertainty_confidence_not_inverted(proba, kind="entropy"):
    if kind == "least_confidence":
        return np.asarray(proba, float).max(1)
    return adapt.uncertainty_scores(proba, kind)


def _uncertainty_cases() -> list[Case]:
    hand = np.array([[0.7, 0.2, 0.1], [0.4, 0.4, 0.2], [1.0, 0.0, 0.0]])
    cases = [Case((hand, kind), f"kind={kind!r}, probabilities [[0.7, 0.2, 0.1], [0.4, 0.4, 0.2], [1, 0, 0]] (a tie, a "
                  f"certain row)", size=i) for i, kind in enumerate(adapt.UNCERTAINTY_KINDS)]
    rng = np.random.default_rng(71)
    for n, k in ((20, 2), (200, 10)):
        proba = rng.dirichlet(np.ones(k) * 0.5, n)
        for kind in adapt.UNCERTAINTY_KINDS:
            cases.append(Case((proba, kind), f"{n} random rows of {k} classes, kind={kind!r}", atol=1e-9, size=10 + n))
    return cases


register(Spec(
    "07.uncertainty_scores", adapt.uncertainty_scores, _uncertainty_cases, invoke=_uncertainty,
    hint="Higher means less sure: least_confidence = 1 - max p; margin = 1 - (top p - second p); entropy = -sum p ln p "
         "with 0 ln 0 = 0 (natural log).",
    mistakes=(
        Mistake(uncertainty_margin_reversed, "A small gap between the top two classes means unsure: return 1 - (top - "
                                             "second) so that higher scores are the rows to label."),
        Mistake(uncertainty_entropy_in_bits, "Use the natural log (np.log): the check compares entropy in nats."),
        Mistake(uncertainty_confidence_not_inverted, "least_confidence is 1 - the top probability: the top probability "
                                                     "itself ranks the most certain rows first."),
    )))


# --- 07.select_pseudo_labels ---


def pseudo_keeps_below(proba, classes, threshold):
    proba, classes = np.asarray(proba, float), np.asarray(classes)
    rows = np.flatnonzero(proba.max(1) <= threshold)
    return rows, classes[proba[rows].argmax(1)]


def pseudo_at_threshold(proba, classes, threshold):
    proba, classes = np.asarray(proba, float), np.asarray(classes)
    rows = np.flatnonzero(proba.max(1) >= threshold)
    return rows, classes[proba[rows].argmax(1)]


def pseudo_column_index(proba, classes, threshold):
    proba = np.asarray(proba, float)
    rows = np.flatnonzero(proba.max(1) > threshold)
    return rows, proba[rows].argmax(1)


def _pseudo_cases() -> list[Case]:
    cases = [Case((np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8]]), np.array([3, 7]), 0.75),
                  "probabilities [[0.9, 0.1], [0.6, 0.4], [0.2, 0.8]], classes [3, 7], threshold 0.75", size=0),
             Case((np.array([[0.75, 0.25], [0.5, 0.5]]), np.array([0, 1]), 0.75),
                  "a row exactly at the threshold 0.75 (not above it)", size=1)]
    rng = np.random.default_rng(72)
    for n, k in ((30, 3), (300, 10)):
        cases.append(Case((rng.dirichlet(np.ones(k) * 0.3, n), np.arange(k) * 2 + 1, 0.8),
                          f"{n} rows of {k} classes labelled 1, 3, 5, ...; threshold 0.8", size=n))
    return cases


def _rows_and_labels(got, expected):
    """A pair of 1-D integer arrays (row indices, labels) of any length: a wrong length is compared as a value."""
    if (not isinstance(got, tuple) or len(got) != 2
            or not all(isinstance(a, np.ndarray) and a.ndim == 1 and a.dtype.kind in "iu" for a in got)):
        return (f"your result should be a tuple (rows, labels) of two 1-D integer NumPy arrays, got {type(got).__name__}.",
                "Return (np.flatnonzero(...), classes[...]): both are integer arrays.")
    return None


register(Spec(
    "07.select_pseudo_labels", adapt.select_pseudo_labels, _pseudo_cases, contract=_rows_and_labels,
    hint="rows = np.flatnonzero(proba.max(1) > threshold); labels = classes[proba[rows].argmax(1)]; return (rows, labels).",
    mistakes=(
        Mistake(pseudo_keeps_below, "Keep the rows the model is *sure* about: top probability above the threshold."),
        Mistake(pseudo_at_threshold, "Use a strict inequality (> threshold), as scikit-learn's SelfTrainingClassifier "
                                     "does: a row exactly at the threshold is not added."),
        Mistake(pseudo_column_index, "Map the winning column to its class (classes[argmax]): the column index is the "
                                     "label only when the classes are 0, 1, 2, ..."),
    )))
