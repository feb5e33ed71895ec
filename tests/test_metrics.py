"""utils.metrics equals scikit-learn to 1e-9: random inputs, ties, single-class edge cases, bad input."""

import warnings

import numpy as np
import pytest
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve
from sklearn.exceptions import UndefinedMetricWarning

from utils import metrics

TOL = 1e-9
SEEDS = range(20)


def random_binary(seed, n=None, ties=False):
    rng = np.random.default_rng(seed)
    n = n or int(rng.integers(2, 300))
    y = rng.integers(0, 2, n)
    if y.min() == y.max():
        y[0] = 1 - y[0]
    scores = rng.random(n)
    if ties:  # few distinct values: many tied scores, across both classes
        scores = np.round(scores * 4) / 4
    return y, scores


def random_multiclass(seed):
    rng = np.random.default_rng(seed)
    n, k = int(rng.integers(1, 200)), int(rng.integers(2, 7))
    weights = rng.dirichlet(np.ones(k) * 0.5)  # imbalanced classes
    return rng.choice(k, n, p=weights), rng.choice(k, n, p=weights)


@pytest.mark.parametrize("seed", SEEDS)
def test_confusion_matrix_matches_sklearn(seed):
    y_true, y_pred = random_multiclass(seed)
    np.testing.assert_array_equal(metrics.confusion_matrix(y_true, y_pred), skm.confusion_matrix(y_true, y_pred))


def test_confusion_matrix_with_given_labels():
    labels = [2, 0, 1]
    y_true, y_pred = [0, 1, 2, 2, 3], [0, 2, 2, 1, 3]
    np.testing.assert_array_equal(metrics.confusion_matrix(y_true, y_pred, labels),
                                  skm.confusion_matrix(y_true, y_pred, labels=labels))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("average", ["macro", "micro", "weighted"])
def test_precision_recall_f1_multiclass(seed, average):
    y_true, y_pred = random_multiclass(seed)
    ours = metrics.precision_recall_f1(y_true, y_pred, average=average)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = skm.precision_recall_fscore_support(y_true, y_pred, average=average, zero_division=0.0)[:3]
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=TOL)


@pytest.mark.parametrize("y_true, y_pred", [
    ([1, 1, 1], [1, 1, 1]),          # a single class, all right
    ([0, 0, 0], [0, 0, 0]),          # the positive class never occurs
    ([0, 0, 0], [0, 1, 0]),          # predicted positive, never true
    ([1, 1, 0], [0, 0, 0]),          # never predicted positive
    ([0, 1, 1, 0, 1], [1, 1, 0, 0, 1]),
])
@pytest.mark.parametrize("average", ["binary", "macro", "micro", "weighted"])
def test_precision_recall_f1_edge_cases(y_true, y_pred, average):
    ours = metrics.precision_recall_f1(y_true, y_pred, average=average)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = skm.precision_recall_fscore_support(y_true, y_pred, average=average, zero_division=0.0)[:3]
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=TOL)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("ties", [False, True])
def test_roc_curve_auc_and_average_precision(seed, ties):
    y, scores = random_binary(seed, ties=ties)
    for drop in (True, False):
        ours, theirs = metrics.roc_curve(y, scores, drop), skm.roc_curve(y, scores, drop_intermediate=drop)
        for a, b in zip(ours, theirs):
            np.testing.assert_allclose(a, b, rtol=0, atol=TOL)
    assert abs(metrics.roc_auc(y, scores) - skm.roc_auc_score(y, scores)) <= TOL
    assert abs(metrics.average_precision(y, scores) - skm.average_precision_score(y, scores)) <= TOL
    for a, b in zip(metrics.precision_recall_curve(y, scores), skm.precision_recall_curve(y, scores)):
        np.testing.assert_allclose(a, b, rtol=0, atol=TOL)


def test_all_scores_tied_gives_half_auc():
    y = np.array([0, 1, 0, 1, 1])
    assert metrics.roc_auc(y, np.zeros(5)) == skm.roc_auc_score(y, np.zeros(5)) == 0.5


@pytest.mark.parametrize("seed", SEEDS)
def test_brier_and_calibration_bins(seed):
    y, prob = random_binary(seed)
    assert abs(metrics.brier_score(y, prob) - skm.brier_score_loss(y, prob)) <= TOL
    mean_prob, frequency, counts = metrics.calibration_bins(y, prob, n_bins=10)
    sk_frequency, sk_mean = calibration_curve(y, prob, n_bins=10, strategy="uniform")
    np.testing.assert_allclose(mean_prob, sk_mean, atol=TOL)
    np.testing.assert_allclose(frequency, sk_frequency, atol=TOL)
    assert counts.sum() == len(y)


@pytest.mark.parametrize("seed", SEEDS)
def test_ece_is_weighted_gap_of_sklearn_calibration_curve(seed):
    y, prob = random_binary(seed)
    sk_frequency, sk_mean = calibration_curve(y, prob, n_bins=10, strategy="uniform")
    counts = np.histogram(prob, bins=np.linspace(0, 1, 11))[0]
    expected = np.sum(counts[counts > 0] * np.abs(sk_frequency - sk_mean)) / len(y)
    assert abs(metrics.expected_calibration_error(y, prob) - expected) <= TOL


def test_ece_is_zero_for_perfect_calibration_and_large_for_overconfidence():
    y = np.array([0, 1] * 50)
    assert metrics.expected_calibration_error(y, np.full(100, 0.5)) == 0.0
    assert metrics.expected_calibration_error(y, y * 0.98 + (1 - y) * 0.99) > 0.45


@pytest.mark.parametrize("func", [metrics.roc_curve, metrics.roc_auc])
def test_single_class_roc_is_undefined(func):
    with pytest.raises(ValueError, match="single class"):
        func([1, 1, 1], [0.2, 0.5, 0.9])
    with pytest.warns(UndefinedMetricWarning):
        assert np.isnan(skm.roc_auc_score([1, 1, 1], [0.2, 0.5, 0.9]))  # scikit-learn: undefined, nan


def test_average_precision_without_positives_is_undefined():
    with pytest.raises(ValueError, match="no positive"):
        metrics.average_precision([0, 0, 0], [0.2, 0.5, 0.9])


@pytest.mark.parametrize("call, message", [
    (lambda: metrics.confusion_matrix([0, 1], [0]), "must match"),
    (lambda: metrics.precision_recall_f1([], []), "empty"),
    (lambda: metrics.precision_recall_f1([0, 1, 2], [0, 1, 2]), "at most two labels"),
    (lambda: metrics.precision_recall_f1([0, 1], [0, 1], average="mean"), "average must be one of"),
    (lambda: metrics.precision_recall_f1(["a", "b"], ["a", "b"]), "pos_label"),
    (lambda: metrics.roc_auc([0, 1], [0.1, np.nan]), "NaN"),
    (lambda: metrics.roc_auc([0, 2], [0.1, 0.3]), "0/1"),
    (lambda: metrics.brier_score([0, 1], [0.1, 1.5]), r"\[0, 1\]"),
    (lambda: metrics.expected_calibration_error([0, 1], [0.1, 0.5], n_bins=0), "n_bins"),
    (lambda: metrics.roc_auc([[0, 1]], [[0.1, 0.2]]), "one-dimensional"),
])
def test_bad_input_raises_clear_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_expected_value_counts_each_outcome_and_ties_as_positive():
    value = {"tp": 50.0, "fp": -10.0, "fn": -1.0, "tn": 0.5}
    y, p = np.array([1, 0, 1, 0]), np.array([0.9, 0.5, 0.2, 0.1])
    assert metrics.expected_value(y, p, 0.5, value) == pytest.approx((50 - 10 - 1 + 0.5) / 4)
    with pytest.raises(ValueError, match="missing"):
        metrics.expected_value(y, p, 0.5, {"tp": 1})


def test_bootstrap_ci_matches_scipy_and_the_binomial_formula():
    from scipy import stats

    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 2, 2000)
    y_pred = np.where(rng.random(2000) < 0.85, y_true, 1 - y_true)          # about 85% accurate
    accuracy = lambda t, p: np.mean(t == p)
    ours = metrics.bootstrap_ci(y_true, y_pred, accuracy, n_boot=2000, seed=1)
    theirs = stats.bootstrap((y_true, y_pred), accuracy, paired=True, vectorized=False, n_resamples=2000,
                             method="percentile", confidence_level=0.95, random_state=2).confidence_interval
    assert abs(ours["low"] - theirs.low) < 0.006 and abs(ours["high"] - theirs.high) < 0.006
    p = ours["estimate"]
    assert ours["std"] == pytest.approx(np.sqrt(p * (1 - p) / 2000), rel=0.1)
    assert ours["low"] < p < ours["high"]


def test_bootstrap_ci_skips_undefined_resamples_and_refuses_bad_input():
    y = np.r_[np.ones(3), np.zeros(97)].astype(int)
    scores = np.linspace(0, 1, 100)
    ci = metrics.bootstrap_ci(y, scores, metrics.roc_auc, n_boot=300)      # some resamples lack a positive
    assert 0 <= ci["low"] <= ci["high"] <= 1
    with pytest.raises(ValueError, match="level"):
        metrics.bootstrap_ci(y, scores, metrics.roc_auc, level=95)
    with pytest.raises(ValueError, match="n_boot"):
        metrics.bootstrap_ci(y, scores, metrics.roc_auc, n_boot=10)
