"""Classification metrics built from scratch, each equal to scikit-learn's counterpart.

Written for reading: every function is a few lines of NumPy over counts you can print.
``tests/test_metrics.py`` checks each one against scikit-learn to 1e-9.
"""

from __future__ import annotations

import numpy as np

AVERAGES = ("binary", "macro", "micro", "weighted")


def _as_1d(name: str, values) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{name} is empty; metrics need at least one example")
    return array


def _pair(y_true, other, other_name: str) -> tuple[np.ndarray, np.ndarray]:
    y_true, other = _as_1d("y_true", y_true), _as_1d(other_name, other)
    if len(y_true) != len(other):
        raise ValueError(f"y_true has {len(y_true)} entries but {other_name} has {len(other)}; they must match")
    return y_true, other


def _binary_scores(y_true, scores, name: str = "y_score") -> tuple[np.ndarray, np.ndarray]:
    """Validate binary labels (0/1 or False/True) and finite scores."""
    y_true, scores = _pair(y_true, scores, name)
    labels = set(np.unique(y_true).tolist())
    if not labels <= {0, 1}:
        raise ValueError(f"y_true must hold 0/1 labels, got {sorted(labels)[:5]}")
    scores = scores.astype(float)
    if not np.all(np.isfinite(scores)):
        raise ValueError(f"{name} contains NaN or infinity")
    return y_true.astype(int), scores


def _probabilities(y_true, y_prob) -> tuple[np.ndarray, np.ndarray]:
    y_true, y_prob = _binary_scores(y_true, y_prob, "y_prob")
    if y_prob.min() < 0 or y_prob.max() > 1:
        raise ValueError(f"y_prob must lie in [0, 1], got values in [{y_prob.min():.3g}, {y_prob.max():.3g}]")
    return y_true, y_prob


def confusion_matrix(y_true, y_pred, labels=None) -> np.ndarray:
    """Counts ``C[i, j]`` of examples whose true label is ``labels[i]`` and predicted label ``labels[j]``.

    >>> confusion_matrix([0, 1, 1, 0], [0, 1, 0, 0])
    array([[2, 0],
           [1, 1]])
    """
    y_true, y_pred = _pair(y_true, y_pred, "y_pred")
    labels = np.union1d(y_true, y_pred) if labels is None else _as_1d("labels", labels)
    index = {label: i for i, label in enumerate(labels.tolist())}
    matrix = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for truth, guess in zip(y_true.tolist(), y_pred.tolist()):
        if truth in index and guess in index:
            matrix[index[truth], index[guess]] += 1
    return matrix


def _safe_divide(numerator: np.ndarray, denominator: np.ndarray, zero_division: float) -> np.ndarray:
    numerator, denominator = np.asarray(numerator, float), np.asarray(denominator, float)
    out = np.full_like(numerator, zero_division)
    np.divide(numerator, denominator, out=out, where=denominator != 0)
    return out


def precision_recall_f1(y_true, y_pred, average: str = "binary", pos_label=1,
                        zero_division: float = 0.0) -> tuple[float, float, float]:
    """Precision, recall and F1, averaged as asked.

    ``binary``: the scores of ``pos_label`` alone. ``macro``: the unweighted mean of the
    per-class scores (every class counts the same). ``weighted``: their mean weighted by
    each class's support. ``micro``: pool the counts of every class first (equals accuracy
    for single-label problems). A ratio with a zero denominator is ``zero_division``.

    >>> precision_recall_f1([0, 1, 1, 1], [0, 1, 0, 0])
    (1.0, 0.3333333333333333, 0.5)
    """
    if average not in AVERAGES:
        raise ValueError(f"average must be one of {AVERAGES}, got {average!r}")
    y_true, y_pred = _pair(y_true, y_pred, "y_pred")
    labels = np.union1d(y_true, y_pred)
    matrix = confusion_matrix(y_true, y_pred, labels=labels)
    tp, predicted, actual = np.diag(matrix), matrix.sum(axis=0), matrix.sum(axis=1)
    if average == "binary":
        if len(labels) > 2:
            raise ValueError(f"average='binary' needs at most two labels, got {len(labels)}; "
                             "use 'macro', 'micro' or 'weighted' for multiclass")
        if len(labels) == 2 and pos_label not in labels.tolist():
            raise ValueError(f"pos_label={pos_label!r} is not among the labels {labels.tolist()}")
        keep = labels == pos_label  # all False when pos_label never occurs: every count is zero
        tp, predicted, actual = (np.array([counts[keep].sum()]) for counts in (tp, predicted, actual))
    if average == "micro":
        tp, predicted, actual = tp.sum(keepdims=True), predicted.sum(keepdims=True), actual.sum(keepdims=True)
    precision = _safe_divide(tp, predicted, zero_division)
    recall = _safe_divide(tp, actual, zero_division)
    f1 = _safe_divide(2 * tp, predicted + actual, zero_division)
    weights = actual if average == "weighted" else None
    return tuple(float(np.average(score, weights=weights)) for score in (precision, recall, f1))


def _ranked_counts(y_true, y_score) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cumulative false and true positives at each distinct score, highest score first."""
    order = np.argsort(-y_score, kind="mergesort")
    y_true, y_score = y_true[order], y_score[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(y_score)), len(y_score) - 1]
    tps = np.cumsum(y_true)[last_of_tie]
    fps = 1 + last_of_tie - tps
    return fps, tps, y_score[last_of_tie]


def _require_both_classes(y_true: np.ndarray, what: str) -> None:
    if y_true.min() == y_true.max():
        raise ValueError(f"{what} is undefined when y_true holds a single class (all {y_true[0]}); "
                         "evaluate on a sample that contains both classes")


def roc_curve(y_true, y_score, drop_intermediate: bool = True):
    """False and true positive rates at every threshold, as in ``sklearn.metrics.roc_curve``.

    Returns ``(fpr, tpr, thresholds)``; the first threshold is ``inf`` (nobody predicted positive).
    ``drop_intermediate`` drops points that lie on a straight segment; they do not change the curve.
    """
    y_true, y_score = _binary_scores(y_true, y_score)
    _require_both_classes(y_true, "the ROC curve")
    fps, tps, thresholds = _ranked_counts(y_true, y_score)
    if drop_intermediate and len(fps) > 2:
        corners = np.flatnonzero(np.r_[True, np.logical_or(np.diff(fps, 2), np.diff(tps, 2)), True])
        fps, tps, thresholds = fps[corners], tps[corners], thresholds[corners]
    fps, tps, thresholds = np.r_[0, fps], np.r_[0, tps], np.r_[np.inf, thresholds]
    return fps / fps[-1], tps / tps[-1], thresholds


def roc_auc(y_true, y_score) -> float:
    """Area under the ROC curve, computed as a ranking statistic.

    It is the probability that a random positive scores above a random negative, ties counting
    one half (the Mann-Whitney U statistic divided by the number of pairs).

    >>> roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.75
    """
    y_true, y_score = _binary_scores(y_true, y_score)
    _require_both_classes(y_true, "ROC AUC")
    ranks = _average_ranks(y_score)
    n_pos = int(y_true.sum())
    n_neg = len(y_true) - n_pos
    u_statistic = ranks[y_true == 1].sum() - n_pos * (n_pos + 1) / 2
    return float(u_statistic / (n_pos * n_neg))


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n, tied values sharing the mean of their ranks."""
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_values)) + 1]
    ends = np.r_[starts[1:], len(values)]
    mean_rank = (starts + ends + 1) / 2  # mean of the 1-based ranks start+1 .. end
    ranks = np.empty(len(values))
    ranks[order] = np.repeat(mean_rank, ends - starts)
    return ranks


def precision_recall_curve(y_true, y_score):
    """Precision and recall at every distinct threshold, lowest threshold first, as in scikit-learn.

    Returns ``(precision, recall, thresholds)``; the last point is (precision 1, recall 0) by convention.
    """
    precision, recall, thresholds = _precision_recall_by_threshold(y_true, y_score)
    return np.r_[precision[::-1], 1.0], np.r_[recall[::-1], 0.0], thresholds[::-1]


def _precision_recall_by_threshold(y_true, y_score):
    """Precision and recall at every distinct threshold, highest threshold first."""
    y_true, y_score = _binary_scores(y_true, y_score)
    if y_true.sum() == 0:
        raise ValueError("precision-recall is undefined when y_true holds no positive example")
    fps, tps, thresholds = _ranked_counts(y_true, y_score)
    return tps / (tps + fps), tps / tps[-1], thresholds


def average_precision(y_true, y_score) -> float:
    """Average precision: the precision at each threshold weighted by the recall it adds.

    No interpolation, as in ``sklearn.metrics.average_precision_score``.
    """
    precision, recall, _ = _precision_recall_by_threshold(y_true, y_score)
    recall_gain = np.diff(np.r_[0.0, recall])
    return float(np.sum(recall_gain * precision))


def brier_score(y_true, y_prob) -> float:
    """Mean squared distance between the predicted probability and the 0/1 outcome (lower is better)."""
    y_true, y_prob = _probabilities(y_true, y_prob)
    return float(np.mean((y_prob - y_true) ** 2))


def calibration_bins(y_true, y_prob, n_bins: int = 10) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per non-empty equal-width bin: mean predicted probability, observed frequency of positives, count.

    Bins are ``[0, 1/n), [1/n, 2/n), ..., [(n-1)/n, 1]``.
    """
    y_true, y_prob = _probabilities(y_true, y_prob)
    if not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer, got {n_bins!r}")
    bin_ids = np.minimum((y_prob * n_bins).astype(int), n_bins - 1)
    counts = np.bincount(bin_ids, minlength=n_bins)
    filled = counts > 0
    mean_prob = np.bincount(bin_ids, weights=y_prob, minlength=n_bins)[filled] / counts[filled]
    frequency = np.bincount(bin_ids, weights=y_true, minlength=n_bins)[filled] / counts[filled]
    return mean_prob, frequency, counts[filled]


def expected_calibration_error(y_true, y_prob, n_bins: int = 10) -> float:
    """ECE: the gap between predicted probability and observed frequency, averaged over bins weighted by their size.

    >>> expected_calibration_error([0, 1, 1, 1], [0.25, 0.75, 0.75, 0.75])
    0.25
    """
    mean_prob, frequency, counts = calibration_bins(y_true, y_prob, n_bins)
    return float(np.sum(counts * np.abs(frequency - mean_prob)) / counts.sum())


def expected_value(y_true, y_prob, threshold: float, value: dict) -> float:
    """Mean business value per case of predicting positive when ``y_prob >= threshold``.

    ``value`` gives the worth of each outcome: keys ``"tp"``, ``"fp"``, ``"fn"``, ``"tn"``.

    >>> expected_value([1, 0], [0.9, 0.6], 0.5, {"tp": 50, "fp": -10, "fn": 0, "tn": 0})
    20.0
    """
    y_true, y_prob = _probabilities(y_true, y_prob)
    missing = {"tp", "fp", "fn", "tn"} - set(value)
    if missing:
        raise ValueError(f"value needs the keys tp, fp, fn and tn; missing {sorted(missing)}")
    predicted = y_prob >= threshold
    gains = np.where(predicted, np.where(y_true == 1, value["tp"], value["fp"]),
                     np.where(y_true == 1, value["fn"], value["tn"]))
    return float(gains.mean())


def best_threshold(y_true, y_prob, value: dict) -> float:
    """A threshold with the highest :func:`expected_value` on these examples (choose it on validation data).

    Only the distinct probabilities can change a decision, plus one above them all ("flag nobody").

    >>> best_threshold([1, 0, 1], [0.2, 0.3, 0.9], {"tp": 50, "fp": -10, "fn": 0, "tn": 0})
    0.2
    """
    _, y_prob = _probabilities(y_true, y_prob)
    candidates = np.r_[np.unique(y_prob), np.inf]
    values = [expected_value(y_true, y_prob, t, value) for t in candidates]
    return float(candidates[int(np.argmax(values))])


def bootstrap_ci(y_true, y_score, metric, *, n_boot: int = 1000, level: float = 0.95, seed: int = 0) -> dict:
    """Percentile bootstrap of ``metric(y_true, y_score)`` on one test set: how much the score would move
    if the test rows had been drawn again from the same population.

    Resamples the rows with replacement ``n_boot`` times (the pairs stay together), recomputes the
    metric, and returns the estimate on the original rows, the ``level`` percentile interval and the
    standard deviation of the resampled scores. Resamples on which the metric is undefined (for
    example ROC AUC with one class) are skipped.

    >>> y = np.r_[np.ones(80), np.zeros(20)].astype(int)
    >>> ci = bootstrap_ci(y, y, lambda t, p: np.mean(t == p), n_boot=200)
    >>> ci["estimate"], ci["low"], ci["high"]
    (1.0, 1.0, 1.0)
    """
    y_true, y_score = _pair(y_true, y_score, "y_score")
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1 (for example 0.95), got {level}")
    if n_boot < 100:
        raise ValueError(f"n_boot must be at least 100 for a percentile interval, got {n_boot}")
    rng = np.random.default_rng(seed)
    n = len(y_true)
    scores = []
    for _ in range(n_boot):
        rows = rng.integers(0, n, n)
        try:
            scores.append(float(metric(y_true[rows], y_score[rows])))
        except ValueError:
            continue
    if len(scores) < n_boot // 2:
        raise ValueError("the metric was undefined on most resamples: is one class very rare in this test set?")
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(scores, [tail, 100 - tail])
    return {"estimate": float(metric(y_true, y_score)), "low": float(low), "high": float(high),
            "std": float(np.std(scores))}
