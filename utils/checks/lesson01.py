"""Checks for lab 01 (evaluation): macro precision/recall/F1, ROC AUC, expected value, the best threshold, ECE, bits per byte.

Each check runs hand-written cases chosen so that a plausible mistake gives a different number, plus
generated ones (sizes, label sets, ties, AUC below 0.5, values on bin edges) from a fixed seed.
"""

from __future__ import annotations

import numpy as np

from utils import lmeval, metrics
from utils.checks.core import Case, Mistake, Spec, format_value as fmt, register


def _label(**arrays) -> str:
    """A case's name: small arrays in full, large ones by size."""
    parts = []
    for name, value in arrays.items():
        if isinstance(value, np.ndarray) and value.size > 12:
            parts.append(f"{name} of {value.size} values")
        else:
            parts.append(f"{name}={fmt(value)}")
    return ", ".join(parts)


# --- 01.precision_recall_f1 (macro) ---

def _macro(y_true, y_pred):
    return metrics.precision_recall_f1(y_true, y_pred, average="macro")


def micro_prf(y_true, y_pred):
    return metrics.precision_recall_f1(y_true, y_pred, average="micro")


def weighted_prf(y_true, y_pred):
    return metrics.precision_recall_f1(y_true, y_pred, average="weighted")


def f1_of_macro_means(y_true, y_pred):
    p, r, _ = _macro(y_true, y_pred)
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def labels_from_y_true_only(y_true, y_pred):
    per_class = [metrics.precision_recall_f1(y_true == k, y_pred == k) for k in np.unique(y_true)]
    return tuple(float(v) for v in np.mean(per_class, axis=0))


def _prf_cases() -> list[Case]:
    cases = [Case((y_true, y_pred), _label(y_true=y_true, y_pred=y_pred) + f" ({note})") for y_true, y_pred, note in (
        (np.array([0, 0, 0, 0, 0, 0, 0, 1, 1, 2, 2, 2]), np.array([0, 0, 0, 0, 0, 0, 1, 0, 0, 2, 2, 1]),
         "class 1 never predicted right"),
        (np.array([0, 0, 1, 1, 1, 0, 1, 0]), np.array([0, 1, 1, 1, 0, 0, 1, 0]), "two classes"),
        (np.array([0, 1, 2, 2]), np.array([0, 0, 2, 2]), "class 1 never predicted: precision 0/0 counts 0"),
        (np.array([0, 0, 1, 1, 1]), np.array([0, 2, 1, 1, 0]), "class 2 only ever predicted"))]
    rng = np.random.default_rng(101)
    for n, labels in ((20, [-1, 1]), (60, [3, 7, 11, 20]), (300, [0, 1, 2, 3, 4])):
        y_true = rng.choice(labels, n, p=np.linspace(1, 3, len(labels)) / np.linspace(1, 3, len(labels)).sum())
        y_pred = np.where(rng.random(n) < 0.6, y_true, rng.choice(labels, n))
        cases.append(Case((y_true, y_pred), _label(y_true=y_true, y_pred=y_pred) + f" (labels {labels})"))
    return cases


register(Spec(
    "01.precision_recall_f1", _macro, _prf_cases,
    hint="Compute precision, recall and F1 for each class in y_true or y_pred, then take the plain mean of each list.",
    mistakes=(
        Mistake(micro_prf, "That is micro averaging (pooled counts, which equals accuracy). "
                           "Macro gives every class the same weight."),
        Mistake(weighted_prf, "That is weighted by class support. Macro gives every class the same weight."),
        Mistake(f1_of_macro_means, "Your F1 is the harmonic mean of the averaged precision and recall; "
                                   "macro F1 is the mean of the per-class F1 scores."),
        Mistake(labels_from_y_true_only, "Take the classes from y_true and y_pred together (np.union1d): "
                                         "a class that is only ever predicted has precision 0 and counts too."),
    )))


# --- 01.roc_auc ---

def auc_ignoring_ties(y_true, scores):
    pos, neg = scores[y_true == 1], scores[y_true == 0]
    return float(np.mean(pos[:, None] > neg[None, :]))


def auc_from_hard_labels(y_true, scores):
    return metrics.roc_auc(y_true, (scores >= 0.5).astype(float))


def auc_inverted(y_true, scores):
    return 1 - metrics.roc_auc(y_true, scores)


def auc_folded_above_half(y_true, scores):
    auc = metrics.roc_auc(y_true, scores)
    return max(auc, 1 - auc)


def _auc_cases() -> list[Case]:
    cases = [Case((y_true, scores), _label(y_true=y_true, scores=scores) + note) for y_true, scores, note in (
        (np.array([0, 0, 1, 1, 0, 1]), np.array([0.1, 0.6, 0.35, 0.8, 0.2, 0.7]), ""),
        (np.array([0, 1, 0, 1, 1, 0, 0]), np.array([0.3, 0.3, 0.5, 0.9, 0.5, 0.1, 0.3]), " (ties across classes)"))]
    rng = np.random.default_rng(102)
    for n, signal, digits, shift in ((12, -0.4, 1, 0.0), (40, 0.3, 1, -0.5), (200, -0.2, 2, -3.0), (500, 0.5, 3, 0.0)):
        y_true = rng.permutation(np.r_[0, 1, rng.integers(0, 2, n - 2)])
        scores = np.round(y_true * signal + rng.random(n) + shift, digits)  # signal < 0: AUC below 0.5
        cases.append(Case((y_true, scores), _label(y_true=y_true, scores=scores)
                          + f" ({'below' if signal < 0 else 'above'} 0.5{', negative scores' if shift < 0 else ''})"))
    return cases


register(Spec(
    "01.roc_auc", metrics.roc_auc, _auc_cases,
    hint="AUC is the share of (positive, negative) pairs where the positive scores higher; a tie counts one half.",
    mistakes=(
        Mistake(auc_ignoring_ties, "Tied pairs must count one half, not zero."),
        Mistake(auc_inverted, "You counted pairs where the negative scores higher: flip the comparison."),
        Mistake(auc_from_hard_labels, "You ranked hard labels (score >= 0.5); AUC uses the scores themselves."),
        Mistake(auc_folded_above_half, "Do not fold the AUC above 0.5: a model that ranks negatives first has "
                                       "an AUC below 0.5, and that is information (flip its scores)."),
    )))


# --- 01.expected_value ---

VALUE = {"tp": 50.0, "fp": -10.0, "fn": 0.0, "tn": 0.0}
FRAUD_VALUE = {"tp": 0.0, "fp": -5.0, "fn": -100.0, "tn": 0.0}
REVIEW_VALUE = {"tp": 3.0, "fp": -1.0, "fn": -2.0, "tn": 0.5}


def _gains(y_true, predicted, value):
    return np.where(predicted, np.where(y_true == 1, value["tp"], value["fp"]),
                    np.where(y_true == 1, value["fn"], value["tn"]))


def value_strict_threshold(y_true, proba, threshold, value):
    return float(_gains(y_true, proba > threshold, value).mean())


def value_total(y_true, proba, threshold, value):
    return float(_gains(y_true, proba >= threshold, value).sum())


def value_fp_fn_swapped(y_true, proba, threshold, value):
    return float(_gains(y_true, proba >= threshold, {**value, "fp": value["fn"], "fn": value["fp"]}).mean())


def _value_cases() -> list[Case]:
    y_true = np.array([1, 0, 1, 0, 0, 1, 0, 0])
    proba = np.array([0.9, 0.3, 0.3, 0.2, 0.6, 0.1, 0.05, 0.3])
    cases = [Case((y_true, proba, threshold, value), f"y_true={fmt(y_true)}, proba={fmt(proba)}, "
                  f"threshold={threshold}, value={value}")
             for threshold, value in ((0.3, VALUE), (0.5, VALUE), (0.3, FRAUD_VALUE))]
    rng = np.random.default_rng(103)
    for n, value in ((30, REVIEW_VALUE), (400, FRAUD_VALUE)):
        proba = np.round(rng.random(n), 2)
        y_true = (rng.random(n) < proba).astype(int)
        threshold = float(proba[0])  # some probabilities equal the threshold
        cases.append(Case((y_true, proba, threshold, value), f"{n} examples, threshold={threshold} (equal to "
                          f"some probabilities), value={value}"))
    return cases


register(Spec(
    "01.expected_value", metrics.expected_value, _value_cases,
    hint="Predict positive when proba >= threshold, give each example the value of its cell (tp, fp, fn, tn), "
         "then average over examples.",
    mistakes=(
        Mistake(value_strict_threshold, "A probability equal to the threshold counts as positive: use >=, not >."),
        Mistake(value_total, "Return the value per example (the mean), not the total."),
        Mistake(value_fp_fn_swapped, "A false positive is predicted positive but truly 0 (value['fp']); "
                                     "a false negative is predicted 0 but truly 1 (value['fn'])."),
    )))


# --- 01.best_threshold: any threshold is right if it earns the best value, so the value is compared ---

def threshold_always_half(y_true, proba, value):
    return 0.5


def threshold_max_accuracy(y_true, proba, value):
    candidates = np.unique(proba)
    return float(candidates[np.argmax([np.mean((proba >= t) == y_true) for t in candidates])])


def threshold_never_flags_nobody(y_true, proba, value):
    candidates = np.unique(proba)
    return float(candidates[np.argmax([metrics.expected_value(y_true, proba, t, value) for t in candidates])])


def _value_at_threshold(threshold, args) -> float:
    y_true, proba, value = args
    return metrics.expected_value(y_true, proba, threshold, value)


def _threshold_cases() -> list[Case]:
    costly_alarms = {"tp": 1.0, "fp": -20.0, "fn": 0.0, "tn": 0.0}
    y_true, proba = np.array([1, 0, 0, 1, 0]), np.array([0.4, 0.9, 0.7, 0.2, 0.95])
    cases = [Case((y_true, proba, costly_alarms), f"y_true={fmt(y_true)}, proba={fmt(proba)}, value={costly_alarms} "
                  "(flagging nobody is best): the value per example at your threshold", atol=1e-12)]
    rng = np.random.default_rng(104)
    for n, value in ((40, VALUE), (300, VALUE), (300, FRAUD_VALUE)):
        proba = np.round(rng.random(n), 3)
        y_true = (rng.random(n) < proba).astype(int)  # calibrated by construction
        cases.append(Case((y_true, proba, value), f"{n} calibrated examples and value={value}: the value "
                          "per example at your threshold", atol=1e-12))
    return cases


register(Spec(
    "01.best_threshold", metrics.best_threshold, _threshold_cases, measure=_value_at_threshold,
    hint="Try every distinct probability as the threshold (and one above them all), "
         "and keep the one with the highest expected value.",
    mistakes=(
        Mistake(threshold_always_half, "0.5 is only right when both kinds of error cost the same."),
        Mistake(threshold_max_accuracy, "That threshold maximises accuracy, not the expected value under `value`."),
        Mistake(threshold_never_flags_nobody, "Also try a threshold above every probability (np.inf): when false "
                                              "alarms cost more than hits earn, flagging nobody is best."),
    )))


# --- 01.expected_calibration_error ---

def ece_unweighted(y_true, proba, n_bins=10):
    mean_prob, frequency, _ = metrics.calibration_bins(y_true, proba, n_bins)
    return float(np.mean(np.abs(frequency - mean_prob)))


def ece_per_example(y_true, proba, n_bins=10):
    return float(np.mean(np.abs(y_true - proba)))


def ece_one_in_its_own_bin(y_true, proba, n_bins=10):
    bins = (proba * n_bins).astype(int)  # forgets to close the last bin: 1.0 lands in bin n_bins
    gaps = [np.sum(bins == b) * abs(y_true[bins == b].mean() - proba[bins == b].mean()) for b in np.unique(bins)]
    return float(np.sum(gaps) / len(proba))


def ece_right_closed_bins(y_true, proba, n_bins=10):
    bins = np.clip(np.ceil(proba * n_bins).astype(int) - 1, 0, n_bins - 1)  # (a, b] bins: edges go down a bin
    gaps = [np.sum(bins == b) * abs(y_true[bins == b].mean() - proba[bins == b].mean()) for b in np.unique(bins)]
    return float(np.sum(gaps) / len(proba))


def ece_signed_gap(y_true, proba, n_bins=10):
    y_true, proba = np.asarray(y_true, float), np.asarray(proba, float)
    bins = np.clip(np.floor(proba * n_bins).astype(int), 0, n_bins - 1)
    gaps = [(bins == b).sum() * (y_true[bins == b].mean() - proba[bins == b].mean()) for b in np.unique(bins)]
    return float(sum(gaps) / len(proba))        # no absolute value: over- and under-confident bins cancel


def _ece_cases() -> list[Case]:
    edge_p = np.array([0.0, 0.1, 0.12, 0.25, 0.35, 0.5, 0.75, 0.97, 1.0, 1.0])  # bin edges, and 1.0 twice
    edge_y = np.array([0, 0, 1, 0, 1, 1, 1, 1, 1, 0])
    cases = [Case((edge_y, edge_p, 4), f"y_true={fmt(edge_y)}, proba={fmt(edge_p)}, n_bins=4 (values on bin edges)"),
             Case((edge_y, edge_p, 10), f"y_true={fmt(edge_y)}, proba={fmt(edge_p)}, n_bins=10")]
    rng = np.random.default_rng(105)
    for n, n_bins in ((50, 5), (200, 10), (1000, 15)):
        proba = np.round(rng.random(n) ** 2, 2)
        y_true = (rng.random(n) < np.sqrt(proba)).astype(int)  # under-confident model
        cases.append(Case((y_true, proba, n_bins), f"{n} examples (rounded to 0.01, some on edges), n_bins={n_bins}"))
    proba = np.round(rng.random(400), 3)
    y_true = (rng.random(400) < 0.25 + 0.5 * proba).astype(int)  # under-confident below 0.5, over-confident above
    cases.append(Case((y_true, proba, 8), "400 examples of a model over-confident above 0.5 and under-confident below "
                      "(gaps of both signs), n_bins=8"))
    return cases


register(Spec(
    "01.expected_calibration_error", metrics.expected_calibration_error, _ece_cases,
    hint="Use n_bins equal-width bins [k/n, (k+1)/n), the last one closed at 1.0; in each bin take "
         "|mean(y_true) - mean(proba)|, then average the gaps weighted by bin size.",
    mistakes=(
        Mistake(ece_signed_gap, "Take the absolute gap |mean(y_true) - mean(proba)| in each bin: an over-confident "
                                "bin and an under-confident one must not cancel."),
        Mistake(ece_unweighted, "Weight each bin's gap by its number of examples; a plain mean over bins "
                                "lets a bin of one example count as much as a bin of a hundred."),
        Mistake(ece_per_example, "That is the mean absolute error per example; ECE compares averages within bins."),
        Mistake(ece_one_in_its_own_bin, "A probability of exactly 1.0 belongs to the last bin, not to a bin of its own."),
        Mistake(ece_right_closed_bins, "Bins include their left edge: 0.5 with 4 bins goes into [0.5, 0.75), "
                                       "so bin = floor(p * n_bins), capped at n_bins - 1."),
    )))


# --- 01.bits_per_byte_from_tokens ---

def _as_floats(values):
    return np.asarray(values.detach().cpu() if hasattr(values, "detach") else values, dtype=float)


def bpb_in_nats(token_nats, token_bytes):
    return float(_as_floats(token_nats).sum() / _as_floats(token_bytes).sum())


def bpb_per_token(token_nats, token_bytes):
    return float(_as_floats(token_nats).mean() / np.log(2))


def bpb_mean_of_ratios(token_nats, token_bytes):
    return float(np.mean(_as_floats(token_nats) / _as_floats(token_bytes)) / np.log(2))


def bpb_log10(token_nats, token_bytes):
    return float(_as_floats(token_nats).sum() / np.log(10) / _as_floats(token_bytes).sum())


def bpb_perplexity(token_nats, token_bytes):
    return float(2 ** (_as_floats(token_nats).sum() / np.log(2) / _as_floats(token_bytes).sum()))


def _bpb_cases() -> list[Case]:
    import torch

    ln2 = np.log(2)
    cases = [Case(([ln2, 2 * ln2], [1, 1]), "two one-byte tokens of 1 and 2 bits"),
             Case(([3 * ln2], [2]), "one token of 2 bytes costing 3 bits"),
             Case(([0.5, 4.0, 0.0], [1, 5, 2]), "three tokens of 1, 5 and 2 bytes, one certain (0 nats)"),
             Case((np.array([2.0, 2.0]), np.array([3, 1])), "numpy arrays, equal losses on unequal tokens"),
             Case((torch.tensor([1.0, 0.25, 3.0]), torch.tensor([4, 1, 2])), "torch tensors")]
    rng = np.random.default_rng(1)
    for n in (1, 10, 500):
        nats, sizes = rng.exponential(2.0, n), rng.integers(1, 9, n)
        cases.append(Case((nats, sizes), f"{n} random tokens of 1 to 8 bytes", atol=1e-9))
    return cases


register(Spec(
    "01.bits_per_byte_from_tokens", lmeval.bits_per_byte_from_tokens, _bpb_cases,
    hint="Add up all the token losses (nats), convert to bits by dividing by ln 2, then divide by the total number "
         "of bytes.",
    mistakes=(
        Mistake(bpb_in_nats, "The losses are in nats (natural log): divide by ln 2 to get bits."),
        Mistake(bpb_per_token, "That is bits per token: divide the total by the number of bytes the tokens cover, "
                               "not by the number of tokens."),
        Mistake(bpb_mean_of_ratios, "Average over bytes, not tokens: sum(nats) / sum(bytes), not the mean of each "
                                    "token's nats / bytes (a long token must weigh more)."),
        Mistake(bpb_log10, "Bits are log base 2: divide the nats by ln 2, not ln 10."),
        Mistake(bpb_perplexity, "Return the bits per byte itself, not 2 ** bits (that is the perplexity per byte)."),
    )))
