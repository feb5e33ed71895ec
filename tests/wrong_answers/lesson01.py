"""Plausible wrong answers to lab 01, the mistakes a learner (or a question bank) actually makes."""

import numpy as np

from utils import metrics


def micro_prf(y_true, y_pred):
    return metrics.precision_recall_f1(y_true, y_pred, average="micro")


def weighted_prf(y_true, y_pred):
    return metrics.precision_recall_f1(y_true, y_pred, average="weighted")


def f1_of_macro_means(y_true, y_pred):
    p, r, _ = metrics.precision_recall_f1(y_true, y_pred, average="macro")
    return p, r, 2 * p * r / (p + r)


def labels_from_y_true_only(y_true, y_pred):
    per_class = [metrics.precision_recall_f1(y_true == k, y_pred == k) for k in np.unique(y_true)]
    return tuple(np.mean(per_class, axis=0))


def auc_ignoring_ties(y_true, scores):
    pos, neg = scores[y_true == 1], scores[y_true == 0]
    return float(np.mean(pos[:, None] > neg[None, :]))


def auc_from_hard_labels(y_true, scores):
    return metrics.roc_auc(y_true, (scores >= 0.5).astype(float))


def auc_inverted(y_true, scores):
    return 1 - metrics.roc_auc(y_true, scores)


def _gains(y_true, predicted, value):
    return np.where(predicted, np.where(y_true == 1, value["tp"], value["fp"]),
                    np.where(y_true == 1, value["fn"], value["tn"]))


def value_strict_threshold(y_true, proba, threshold, value):
    return float(_gains(y_true, proba > threshold, value).mean())


def value_total(y_true, proba, threshold, value):
    return float(_gains(y_true, proba >= threshold, value).sum())


def value_fp_fn_swapped(y_true, proba, threshold, value):
    return float(_gains(y_true, proba >= threshold, {**value, "fp": value["fn"], "fn": value["fp"]}).mean())


def threshold_always_half(y_true, proba, value):
    return 0.5


def threshold_max_accuracy(y_true, proba, value):
    candidates = np.unique(proba)
    return float(candidates[np.argmax([np.mean((proba >= t) == y_true) for t in candidates])])


def threshold_returns_probabilities(y_true, proba, value):
    return proba


def ece_unweighted(y_true, proba, n_bins=10):
    mean_prob, frequency, _ = metrics.calibration_bins(y_true, proba, n_bins)
    return float(np.mean(np.abs(frequency - mean_prob)))


def ece_per_example(y_true, proba, n_bins=10):
    return float(np.mean(np.abs(y_true - proba)))


def ece_one_in_its_own_bin(y_true, proba, n_bins=10):
    bins = (proba * n_bins).astype(int)  # forgets to close the last bin: 1.0 lands in bin n_bins
    gaps = [np.sum(bins == b) * abs(y_true[bins == b].mean() - proba[bins == b].mean()) for b in np.unique(bins)]
    return float(np.sum(gaps) / len(proba))


WRONG = {
    "01.macro_prf": [micro_prf, weighted_prf, f1_of_macro_means, labels_from_y_true_only],
    "01.roc_auc": [auc_ignoring_ties, auc_from_hard_labels, auc_inverted],
    "01.expected_value": [value_strict_threshold, value_total, value_fp_fn_swapped],
    "01.best_threshold": [threshold_always_half, threshold_max_accuracy, threshold_returns_probabilities],
    "01.ece": [ece_unweighted, ece_per_example, ece_one_in_its_own_bin],
}
