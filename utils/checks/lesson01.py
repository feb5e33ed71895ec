"""Checks for lab 01 (evaluation). Each case is chosen so that a plausible wrong answer gives a different number."""

from __future__ import annotations

import numpy as np

from utils import metrics
from utils.checks.core import Checker, format_value as fmt, register

# Three imbalanced classes; class 1 is never predicted right and class 2 is rare.
MULTICLASS = (np.array([0, 0, 0, 0, 0, 0, 0, 1, 1, 2, 2, 2]),
              np.array([0, 0, 0, 0, 0, 0, 1, 0, 0, 2, 2, 1]))
BINARY = (np.array([0, 0, 1, 1, 1, 0, 1, 0]), np.array([0, 1, 1, 1, 0, 0, 1, 0]))
NEVER_PREDICTED = (np.array([0, 1, 2, 2]), np.array([0, 0, 2, 2]))  # class 1 gets precision 0/0 -> 0
NEVER_TRUE = (np.array([0, 0, 1, 1, 1]), np.array([0, 2, 1, 1, 0]))  # class 2 is only ever predicted


@register("01.macro_prf")
def _macro_prf(c: Checker) -> None:
    for y_true, y_pred in (MULTICLASS, BINARY, NEVER_PREDICTED, NEVER_TRUE):
        expected = metrics.precision_recall_f1(y_true, y_pred, average="macro")
        p, r, _ = expected
        c.expect_close(c.call(y_true, y_pred), expected,
                       case=f"y_true={fmt(y_true)}, y_pred={fmt(y_pred)}",
                       hint="Compute precision, recall and F1 for each class, then take the plain mean of each list.",
                       diagnose=(
                           (metrics.precision_recall_f1(y_true, y_pred, average="micro"),
                            "That is micro averaging (pooled counts, which equals accuracy). "
                            "Macro gives every class the same weight."),
                           (metrics.precision_recall_f1(y_true, y_pred, average="weighted"),
                            "That is weighted by class support. Macro gives every class the same weight."),
                           ((p, r, 2 * p * r / (p + r)),
                            "Your F1 is the harmonic mean of the averaged precision and recall; "
                            "macro F1 is the mean of the per-class F1 scores."),
                       ))


def _strict_auc(y_true, scores) -> float:
    pos, neg = scores[y_true == 1], scores[y_true == 0]
    return float(np.mean(pos[:, None] > neg[None, :]))


@register("01.roc_auc")
def _roc_auc(c: Checker) -> None:
    rng = np.random.default_rng(1)
    y_random = rng.integers(0, 2, 40)
    cases = [
        (np.array([0, 0, 1, 1, 0, 1]), np.array([0.1, 0.6, 0.35, 0.8, 0.2, 0.7])),
        (np.array([0, 1, 0, 1, 1, 0, 0]), np.array([0.3, 0.3, 0.5, 0.9, 0.5, 0.1, 0.3])),  # ties across classes
        (y_random, np.round(y_random * 0.3 + rng.random(40), 1)),
    ]
    for y_true, scores in cases:
        c.expect_close(c.call(y_true, scores), metrics.roc_auc(y_true, scores),
                       case=f"y_true={fmt(y_true)}, scores={fmt(scores)}",
                       hint="AUC is the share of (positive, negative) pairs where the positive scores higher; "
                            "a tie counts one half.",
                       diagnose=(
                           (_strict_auc(y_true, scores), "Tied pairs must count one half, not zero."),
                           (1 - metrics.roc_auc(y_true, scores),
                            "You counted pairs where the negative scores higher: flip the comparison."),
                           (metrics.roc_auc(y_true, (scores >= 0.5).astype(float)),
                            "You ranked hard labels (score >= 0.5); AUC uses the scores themselves."),
                       ))


VALUE = {"tp": 50.0, "fp": -10.0, "fn": 0.0, "tn": 0.0}
FRAUD_VALUE = {"tp": 0.0, "fp": -5.0, "fn": -100.0, "tn": 0.0}


def _expected_value(y_true, proba, threshold, value, strict: bool = False) -> float:
    """utils.metrics.expected_value, or the plausible `>` mistake when ``strict``."""
    if not strict:
        return metrics.expected_value(y_true, proba, threshold, value)
    gains = np.where(proba > threshold, np.where(y_true == 1, value["tp"], value["fp"]),
                     np.where(y_true == 1, value["fn"], value["tn"]))
    return float(gains.mean())


@register("01.expected_value")
def _expected_value_check(c: Checker) -> None:
    y_true = np.array([1, 0, 1, 0, 0, 1, 0, 0])
    proba = np.array([0.9, 0.3, 0.3, 0.2, 0.6, 0.1, 0.05, 0.3])
    for threshold, value in ((0.3, VALUE), (0.5, VALUE), (0.3, FRAUD_VALUE)):
        expected = _expected_value(y_true, proba, threshold, value)
        c.expect_close(c.call(y_true, proba, threshold, value), expected,
                       case=f"y_true={fmt(y_true)}, proba={fmt(proba)}, threshold={threshold}, value={value}",
                       hint="Predict positive when proba >= threshold, give each example the value of its "
                            "cell (tp, fp, fn, tn), then average over examples.",
                       diagnose=(
                           (_expected_value(y_true, proba, threshold, value, strict=True),
                            "A probability equal to the threshold counts as positive: use >=, not >."),
                           (expected * len(y_true), "Return the value per example (the mean), not the total."),
                       ))


def _best_value(y_true, proba, value) -> float:
    candidates = np.r_[np.unique(proba), np.inf]
    return max(_expected_value(y_true, proba, t, value) for t in candidates)


@register("01.best_threshold")
def _best_threshold(c: Checker) -> None:
    rng = np.random.default_rng(7)
    proba = np.round(rng.random(300), 3)
    y_true = (rng.random(300) < proba).astype(int)  # calibrated by construction
    for value in (VALUE, FRAUD_VALUE):
        threshold = c.call(y_true, proba, value)
        try:
            threshold = float(threshold)
        except (TypeError, ValueError):
            c.fail(f"expected a number (the threshold), got {fmt(threshold)}.", "Return one float.")
        best = _best_value(y_true, proba, value)
        got = _expected_value(y_true, proba, threshold, value)
        accuracy_value = {"tp": 1.0, "fp": 0.0, "fn": 0.0, "tn": 1.0}
        c.expect_close(got, best, atol=1e-12,
                       case=f"300 calibrated examples and value={value}: the value per example at your "
                            f"threshold {threshold:.3g}",
                       hint="Try every distinct probability as the threshold (and one above them all), "
                            "and keep the one with the highest expected value.",
                       diagnose=(
                           (_expected_value(y_true, proba, 0.5, value),
                            "0.5 is only right when both kinds of error cost the same."),
                           (_expected_value(y_true, proba, max(np.unique(proba), key=lambda t: _expected_value(
                               y_true, proba, t, accuracy_value)), value),
                            "That threshold maximises accuracy, not the expected value under `value`."),
                       ))


@register("01.ece")
def _ece(c: Checker) -> None:
    rng = np.random.default_rng(3)
    proba = rng.random(200) ** 2
    y_true = (rng.random(200) < np.sqrt(proba)).astype(int)  # under-confident model
    edge_p = np.array([0.0, 0.1, 0.12, 0.3, 0.35, 0.95, 0.97, 1.0, 1.0])  # bin edges, and 1.0 twice
    edge_y = np.array([0, 0, 1, 0, 1, 1, 1, 1, 0])
    for y, p, n_bins in ((y_true, proba, 10), (y_true, proba, 5), (edge_y, edge_p, 10)):
        mean_prob, frequency, counts = metrics.calibration_bins(y, p, n_bins)
        c.expect_close(c.call(y, p, n_bins), metrics.expected_calibration_error(y, p, n_bins),
                       case=f"{len(y)} examples with n_bins={n_bins}" + (
                           f" (proba={fmt(p)}, y_true={fmt(y)})" if len(y) <= 10 else ""),
                       hint=f"Use {n_bins} equal-width bins, the last one closed at 1.0; in each bin take "
                            "|mean(y_true) - mean(proba)|, then average the gaps weighted by bin size.",
                       diagnose=(
                           (np.mean(np.abs(frequency - mean_prob)),
                            "Weight each bin's gap by its number of examples; a plain mean over bins "
                            "lets a bin of one example count as much as a bin of a hundred."),
                           (np.mean(np.abs(y - p)),
                            "That is the mean absolute error per example; ECE compares averages within bins."),
                           (_ece_open_last_bin(y, p, n_bins),
                            "A probability of exactly 1.0 belongs to the last bin, not to a bin of its own."),
                       ))


def _ece_open_last_bin(y_true, proba, n_bins) -> float:
    bins = (proba * n_bins).astype(int)
    gaps = [np.sum(bins == b) * abs(y_true[bins == b].mean() - proba[bins == b].mean()) for b in np.unique(bins)]
    return float(np.sum(gaps) / len(proba))
