"""utils.quality against the libraries: cleanlab (label issues), imbalanced-learn (SMOTE), scikit-learn
(StandardScaler), pandas (duplicates); and the batch validator on a corrupted batch."""

import numpy as np
import pandas as pd
import pytest
from cleanlab.filter import find_label_issues
from imblearn.over_sampling import SMOTE
from sklearn.preprocessing import StandardScaler

from utils import quality


@pytest.mark.parametrize("seed", range(6))
def test_label_issues_equal_cleanlab_confident_learning(seed):
    rng = np.random.default_rng(seed)
    n, classes = 300 + 50 * seed, 2 + seed % 4
    labels = rng.integers(0, classes, n)
    logits = rng.normal(size=(n, classes)) + 2.5 * np.eye(classes)[labels] * rng.random((n, 1))
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    flipped = rng.random(n) < 0.15
    labels[flipped] = rng.integers(0, classes, flipped.sum())
    expected = find_label_issues(labels, proba, filter_by="confident_learning")
    np.testing.assert_array_equal(quality.label_issues(labels, proba), expected)


def test_label_issues_with_an_absent_class_and_bad_input():
    proba = np.array([[0.9, 0.05, 0.05], [0.2, 0.7, 0.1], [0.8, 0.1, 0.1], [0.6, 0.3, 0.1]])
    labels = np.array([0, 0, 1, 0])                       # class 2 never given
    np.testing.assert_array_equal(quality.label_issues(labels, proba),
                                  find_label_issues(labels, proba, filter_by="confident_learning"))
    with pytest.raises(ValueError, match="one row per label"):
        quality.label_issues(labels[:3], proba)
    with pytest.raises(ValueError, match="integers 0..2"):
        quality.label_issues(np.array([0, 1, 3, 0]), proba)


@pytest.mark.parametrize("k, ratio, seed", [(5, 1.0, 0), (3, 0.5, 7), (1, 0.3, 11)])
def test_smote_equals_imbalanced_learn(k, ratio, seed):
    rng = np.random.default_rng(seed)
    X = np.vstack([rng.normal(0, 1, (200, 4)), rng.normal(2, 0.5, (30, 4))])
    y = np.array([0] * 200 + [1] * 30)
    ours = quality.smote(X, y, k=k, ratio=ratio, seed=seed)
    theirs = SMOTE(sampling_strategy=ratio, k_neighbors=k, random_state=seed).fit_resample(X, y)
    np.testing.assert_allclose(ours[0], theirs[0], atol=1e-12)
    np.testing.assert_array_equal(ours[1], theirs[1])


def test_smote_rows_lie_between_minority_neighbours_and_errors_are_clear():
    X = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [5.0, 5.0], [6.0, 5.0], [5.0, 6.0], [7.0, 7.0]])
    y = np.array([0, 0, 0, 1, 1, 1, 1])                   # class 0 is the minority
    X_new, y_new = quality.smote(X, y, k=2, ratio=2.0, seed=0)
    added = X_new[len(X):]
    assert len(added) == 5 and (y_new[len(X):] == 0).all()
    assert (added >= 0).all() and (added.sum(axis=1) <= 1 + 1e-12).all()   # inside the minority triangle
    with pytest.raises(ValueError, match="only adds rows"):
        quality.smote(X, y, ratio=0.5)
    with pytest.raises(ValueError, match="k must be"):
        quality.smote(X, y, k=3)
    with pytest.raises(ValueError, match="single class"):
        quality.smote(X, np.zeros(7))


def test_cross_split_duplicates_equal_a_pandas_merge_with_nan_and_negative_zero():
    rng = np.random.default_rng(0)
    train = rng.integers(-2, 3, (400, 3)).astype(float)
    test = rng.integers(-2, 3, (300, 3)).astype(float)
    train[::17, 1], test[::13, 1] = np.nan, np.nan
    test[test == 0] = -0.0
    frame_train, frame_test = pd.DataFrame(train).fillna(99), pd.DataFrame(test).fillna(99) + 0.0
    merged = frame_test.reset_index().merge(frame_train.drop_duplicates(), how="inner")
    expected = np.zeros(len(test), bool)
    expected[merged["index"]] = True
    np.testing.assert_array_equal(quality.cross_split_duplicates(train, test), expected)
    np.testing.assert_array_equal(quality.cross_split_duplicates(pd.DataFrame(train), pd.DataFrame(test)[[2, 0, 1]]),
                                  expected)


def test_near_duplicates_find_perturbed_copies_that_hashing_misses():
    rng = np.random.default_rng(1)
    train = rng.normal(size=(100, 5))
    copies = train[:20] + rng.normal(0, 1e-3, (20, 5))
    test = np.vstack([copies, rng.normal(size=(30, 5))])
    assert not quality.cross_split_duplicates(train, test).any()
    found = quality.near_duplicates(train, test, radius=0.01)
    assert found[:20].all() and not found[20:].any()


def test_standardize_train_test_equals_standard_scaler_fitted_on_train():
    rng = np.random.default_rng(2)
    train, test = rng.normal(3, 2, (50, 4)), rng.normal(5, 1, (20, 4))
    train[:, 2] = 7.0                                      # constant in training
    scaler = StandardScaler().fit(train)
    ours = quality.standardize_train_test(train, test)
    np.testing.assert_allclose(ours[0], scaler.transform(train), atol=1e-12)
    np.testing.assert_allclose(ours[1], scaler.transform(test), atol=1e-12)
    with pytest.raises(ValueError, match="same columns"):
        quality.standardize_train_test(train, test[:, :3])


def test_validate_batch_catches_each_kind_of_problem():
    trusted = pd.DataFrame({"age": [25, 40, 61, 33], "job": ["a", "b", "a", None]})
    schema = quality.schema_from(trusted)
    assert quality.validate_batch(trusted, schema) == []
    bad = pd.DataFrame({"age": [25, -3, None, None], "job": ["a", "zzz", "b", "b"], "extra": [1, 2, 3, 4]})
    problems = quality.validate_batch(bad, schema)
    assert any("age: 50.0% missing" in p for p in problems)
    assert any("age: 1 values outside [25, 61]" in p for p in problems)
    assert any("unknown categories ['zzz']" in p for p in problems)
    assert any("extra: column not in the schema" in p for p in problems)
    assert quality.validate_batch(bad.drop(columns="age"), schema)[0] == "age: missing column"


def test_label_issues_with_exact_ties_equal_cleanlab():
    labels = np.array([1, 0, 2, 1, 0])
    proba = np.array([[0.5, 0.5, 0.0], [0.4, 0.4, 0.2], [0.2, 0.4, 0.4], [0.6, 0.2, 0.2], [0.9, 0.05, 0.05]])
    np.testing.assert_array_equal(quality.label_issues(labels, proba),
                                  find_label_issues(labels, proba, filter_by="confident_learning"))
