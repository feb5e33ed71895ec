"""Offline loaders: sizes, stratification, Adult parsing, and clear errors for missing or damaged files."""

import gzip
import shutil

import numpy as np
import pytest

from utils import data


def test_digits_split_is_fixed_stratified_and_scaled():
    first, second = data.load_digits_split(seed=0), data.load_digits_split(seed=0)
    assert first.sizes() == {"train": 1077, "val": 360, "test": 360}
    np.testing.assert_array_equal(first.X_test, second.X_test)
    assert first.X_train.dtype == np.float32 and 0 <= first.X_train.min() and first.X_train.max() <= 1
    shares = [np.bincount(part, minlength=10) / len(part) for part in (first.y_train, first.y_val, first.y_test)]
    assert np.abs(shares[0] - shares[2]).max() < 0.01


def test_other_seed_gives_other_split():
    assert not np.array_equal(data.load_digits_split(seed=0).y_test, data.load_digits_split(seed=1).y_test)


def test_breast_cancer_positive_class_is_malignant():
    split = data.load_breast_cancer_split()
    assert split.target_names == ["benign", "malignant"]
    assert abs(np.mean(np.r_[split.y_train, split.y_val, split.y_test]) - 212 / 569) < 1e-12


def test_adult_parses_unknowns_dots_and_sensitive_columns():
    split = data.load_adult()
    assert split.sizes() == {"train": 26048, "val": 6513, "test": 16281}
    assert "income" not in split.X_train and "fnlwgt" not in split.X_train
    assert set(np.unique(split.y_test)) == {0, 1}
    assert abs(split.y_test.mean() - 3846 / 16281) < 1e-12  # dots stripped: every '>50K.' counted
    assert split.X_train["workclass"].isna().sum() > 0 and not (split.X_train == "?").any().any()
    assert list(split.sensitive_test.columns) == ["sex", "race"]
    assert set(split.sensitive_train["sex"]) == {"Male", "Female"}


@pytest.mark.parametrize("bad", [dict(val_size=0), dict(val_size=1.5)])
def test_bad_split_sizes_are_rejected(bad):
    with pytest.raises(ValueError, match="val_size"):
        data.load_adult(**bad)
    with pytest.raises(ValueError, match="val_size"):
        data.load_digits_split(**bad)


def test_fractions_must_leave_training_rows():
    with pytest.raises(ValueError, match="leave rows to train"):
        data.load_digits_split(val_size=0.5, test_size=0.5)


def _copy_adult(tmp_path):
    folder = tmp_path / "adult"
    shutil.copytree(data.data_dir() / "adult", folder)
    return folder


def test_missing_file_names_it_and_how_to_restore(tmp_path):
    folder = _copy_adult(tmp_path)
    (folder / "adult.test.gz").unlink()
    with pytest.raises(data.DataFileError, match=r"adult\.test\.gz is missing.*git checkout"):
        data.load_adult(directory=folder)


def test_corrupt_file_is_reported(tmp_path):
    folder = _copy_adult(tmp_path)
    (folder / "adult.data.gz").write_bytes(b"not gzip at all")
    with pytest.raises(data.DataFileError, match=r"adult\.data\.gz cannot be read"):
        data.load_adult(directory=folder)


def test_truncated_file_is_reported(tmp_path):
    folder = _copy_adult(tmp_path)
    with gzip.open(folder / "adult.data.gz", "rt") as handle:
        head = "".join(handle.readlines()[:100])
    with gzip.open(folder / "adult.data.gz", "wt") as handle:
        handle.write(head)
    with pytest.raises(data.DataFileError, match="looks damaged: 100 rows, expected 32561"):
        data.load_adult(directory=folder)


def test_tabular_preprocessor_one_hot_encodes_and_scales():
    split = data.load_adult()
    transformed = data.tabular_preprocessor().fit_transform(split.X_train)
    assert transformed.shape[0] == len(split.X_train) and not np.isnan(transformed).any()
    assert abs(transformed[:, 0].mean()) < 1e-9  # first numeric column standardised


def test_flip_labels_changes_exactly_the_asked_share_to_other_classes():
    y = np.repeat(np.arange(10), 30)
    noisy = data.flip_labels(y, 0.2, n_classes=10, seed=0)
    assert np.sum(noisy != y) == 60 and noisy.min() >= 0 and noisy.max() <= 9
    assert np.array_equal(noisy, data.flip_labels(y, 0.2, n_classes=10, seed=0))
    with pytest.raises(ValueError, match="rate"):
        data.flip_labels(y, 1.5, n_classes=10)


@pytest.mark.parametrize("k", [2, 3, 5])
def test_stratified_kfold_partitions_and_balances_like_sklearn(k):
    from sklearn.model_selection import StratifiedKFold

    y = np.array([0] * 37 + [1] * 11 + [2] * 6)
    folds = data.stratified_kfold_indices(y, k, seed=1)
    validation = np.concatenate([val for _, val in folds])
    assert np.array_equal(np.sort(validation), np.arange(len(y)))
    for train, val in folds:
        assert np.array_equal(np.sort(np.r_[train, val]), np.arange(len(y)))
    ours = np.array([np.bincount(y[val], minlength=3) for _, val in folds])
    theirs = np.array([np.bincount(y[val], minlength=3)
                       for _, val in StratifiedKFold(k, shuffle=True, random_state=1).split(np.zeros(len(y)), y)])
    assert np.array_equal(np.sort(ours, axis=0), np.sort(theirs, axis=0))  # same class counts per fold
    sizes = [len(val) for _, val in folds]
    assert max(sizes) - min(sizes) <= 1


def test_stratified_kfold_rejects_bad_k():
    with pytest.raises(ValueError, match="k must be"):
        data.stratified_kfold_indices([0, 1, 0, 1], k=1)
    with pytest.raises(ValueError, match="at least k rows"):
        data.stratified_kfold_indices([0, 1, 0], k=4)
