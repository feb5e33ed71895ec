"""Offline data loaders with fixed, stratified train/validation/test splits.

Nothing here downloads: digits and breast cancer ship inside scikit-learn, and the
UCI Adult census files ship in ``data/adult/`` (see ``data/README.md``).
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

DATA_ENV = "BML_DATA_DIR"
ADULT_COLUMNS = [
    "age", "workclass", "fnlwgt", "education", "education-num", "marital-status",
    "occupation", "relationship", "race", "sex", "capital-gain", "capital-loss",
    "hours-per-week", "native-country", "income",
]
ADULT_SENSITIVE = ["sex", "race"]
ADULT_ROWS = {"adult.data.gz": 32561, "adult.test.gz": 16281}


class DataFileError(RuntimeError):
    """A shipped data file is missing or damaged."""


@dataclass
class Split:
    """Train/validation/test arrays (or frames), plus what a lesson needs to describe them."""

    X_train: object
    y_train: np.ndarray
    X_val: object
    y_val: np.ndarray
    X_test: object
    y_test: np.ndarray
    feature_names: list[str] = field(default_factory=list)
    target_names: list[str] = field(default_factory=list)
    sensitive_train: pd.DataFrame | None = None
    sensitive_val: pd.DataFrame | None = None
    sensitive_test: pd.DataFrame | None = None

    def sizes(self) -> dict[str, int]:
        """Row counts per part, for a one-line summary."""
        return {"train": len(self.y_train), "val": len(self.y_val), "test": len(self.y_test)}


def data_dir() -> Path:
    """The folder holding the shipped data: ``$BML_DATA_DIR`` or the repository's ``data/``."""
    return Path(os.environ.get(DATA_ENV, Path(__file__).resolve().parent.parent / "data"))


def _check_fractions(val_size: float, test_size: float) -> None:
    for name, value in (("val_size", val_size), ("test_size", test_size)):
        if not 0 < value < 1:
            raise ValueError(f"{name} must be between 0 and 1 (exclusive), got {value}")
    if val_size + test_size >= 1:
        raise ValueError(f"val_size + test_size must leave rows to train on, got {val_size} + {test_size}")


def three_way_split(X, y, *, val_size: float = 0.2, test_size: float = 0.2, seed: int = 0):
    """Split ``X, y`` into stratified train/val/test parts whose sizes are fractions of the whole."""
    _check_fractions(val_size, test_size)
    X_rest, X_test, y_rest, y_test = train_test_split(
        X, y, test_size=test_size, stratify=y, random_state=seed)
    X_train, X_val, y_train, y_val = train_test_split(
        X_rest, y_rest, test_size=val_size / (1 - test_size), stratify=y_rest, random_state=seed)
    return X_train, y_train, X_val, y_val, X_test, y_test


def load_digits_split(*, val_size: float = 0.2, test_size: float = 0.2, seed: int = 0) -> Split:
    """8x8 handwritten digits (1,797 images, 10 classes), pixels scaled to [0, 1], as float32.

    >>> load_digits_split().X_train.shape
    (1077, 64)
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    X = (bunch.data / 16.0).astype(np.float32)
    parts = three_way_split(X, bunch.target.astype(np.int64), val_size=val_size, test_size=test_size, seed=seed)
    return Split(*parts, feature_names=list(bunch.feature_names),
                 target_names=[str(t) for t in bunch.target_names])


def load_breast_cancer_split(*, val_size: float = 0.2, test_size: float = 0.2, seed: int = 0) -> Split:
    """Wisconsin breast cancer (569 tumours, 30 features), target 1 = malignant. Features unscaled.

    scikit-learn codes benign as 1; we flip it so that the positive class is the one to catch.
    """
    from sklearn.datasets import load_breast_cancer

    bunch = load_breast_cancer()
    y = (bunch.target == 0).astype(np.int64)
    parts = three_way_split(bunch.data, y, val_size=val_size, test_size=test_size, seed=seed)
    return Split(*parts, feature_names=list(bunch.feature_names), target_names=["benign", "malignant"])


def _read_adult_file(path: Path) -> pd.DataFrame:
    restore = (f"Restore it from the repository with `git checkout -- data/adult/{path.name}`, "
               f"or copy it from the course's shared data folder.")
    if not path.is_file():
        raise DataFileError(f"Data file {path} is missing. {restore}")
    try:
        with gzip.open(path, "rt") as handle:
            frame = pd.read_csv(handle, header=None, names=ADULT_COLUMNS, skipinitialspace=True,
                                na_values="?", comment="|", skip_blank_lines=True)
    except (OSError, EOFError, pd.errors.ParserError, UnicodeDecodeError) as error:
        raise DataFileError(f"Data file {path} cannot be read ({error}). {restore}") from error
    expected = ADULT_ROWS[path.name]
    if len(frame) != expected or frame["income"].isna().any():
        raise DataFileError(f"Data file {path} looks damaged: {len(frame)} rows, expected {expected}. {restore}")
    return frame


def load_adult_frames(directory: Path | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The original Adult train and test files as frames: ``?`` read as missing, labels without the test file's dots."""
    folder = Path(directory) if directory is not None else data_dir() / "adult"
    frames = []
    for name in ADULT_ROWS:
        frame = _read_adult_file(folder / name)
        frame["income"] = frame["income"].str.rstrip(".")
        frames.append(frame)
    return frames[0], frames[1]


def load_adult(*, val_size: float = 0.2, seed: int = 0, drop_fnlwgt: bool = True,
               directory: Path | None = None) -> Split:
    """UCI Adult census: predict income >50K (1) from 13 features; sex and race returned as sensitive columns.

    The original test file is the test part; validation is a stratified slice of the original
    training file. Unknown values (``?``) are NaN in the categorical columns. The sensitive
    columns stay in ``X`` too: whether to drop them is a modelling decision (lesson 10).

    >>> split = load_adult()
    >>> split.sizes()
    {'train': 26048, 'val': 6513, 'test': 16281}
    """
    if not 0 < val_size < 1:
        raise ValueError(f"val_size must be between 0 and 1 (exclusive), got {val_size}")
    train_frame, test_frame = load_adult_frames(directory)

    def features_target(frame):
        y = (frame["income"] == ">50K").to_numpy(np.int64)
        X = frame.drop(columns=["income"] + (["fnlwgt"] if drop_fnlwgt else []))
        return X, y

    X_rest, y_rest = features_target(train_frame)
    X_test, y_test = features_target(test_frame)
    X_train, X_val, y_train, y_val = train_test_split(
        X_rest, y_rest, test_size=val_size, stratify=y_rest, random_state=seed)
    X_train, X_val = X_train.reset_index(drop=True), X_val.reset_index(drop=True)
    return Split(X_train, y_train, X_val, y_val, X_test, y_test,
                 feature_names=list(X_train.columns), target_names=["<=50K", ">50K"],
                 sensitive_train=X_train[ADULT_SENSITIVE].copy(),
                 sensitive_val=X_val[ADULT_SENSITIVE].copy(),
                 sensitive_test=X_test[ADULT_SENSITIVE].copy())


def tabular_preprocessor():
    """Scale numeric columns and one-hot encode the others (missing values as their own category).

    Fit it on training data only, usually inside a pipeline:
    ``make_pipeline(tabular_preprocessor(), LogisticRegression(max_iter=1000))``.
    """
    from sklearn.compose import ColumnTransformer, make_column_selector
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    categorical = make_pipeline(SimpleImputer(strategy="constant", fill_value="unknown"),
                                OneHotEncoder(handle_unknown="ignore", sparse_output=False))
    return ColumnTransformer([
        ("numeric", StandardScaler(), make_column_selector(dtype_include="number")),
        ("categorical", categorical, make_column_selector(dtype_exclude="number")),
    ])


def flip_labels(y, rate: float, n_classes: int, seed: int = 0) -> np.ndarray:
    """Copy of ``y`` with exactly ``round(rate * len(y))`` labels changed to a different, random class.

    Simulates annotation noise; the rows to flip are drawn without replacement.
    """
    if not 0 <= rate <= 1:
        raise ValueError(f"rate must be in [0, 1], got {rate}")
    if n_classes < 2:
        raise ValueError(f"n_classes must be at least 2, got {n_classes}")
    rng = np.random.default_rng(seed)
    y = np.array(y, copy=True)
    rows = rng.choice(len(y), int(round(rate * len(y))), replace=False)
    y[rows] = (y[rows] + rng.integers(1, n_classes, len(rows))) % n_classes  # never the same class
    return y


def stratified_kfold_indices(y, k: int = 5, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """``k`` (train, validation) index pairs; the validation parts are disjoint, cover every row, and keep class shares.

    Each class's rows are shuffled, then dealt round-robin to the folds.
    """
    y = np.asarray(y)
    if not isinstance(k, (int, np.integer)) or k < 2:
        raise ValueError(f"k must be an integer of at least 2, got {k!r}")
    if k > len(y):
        raise ValueError(f"k={k} folds need at least k rows, got {len(y)}")
    rng = np.random.default_rng(seed)
    fold_of = np.empty(len(y), dtype=int)
    offset = 0
    for label in np.unique(y):
        rows = rng.permutation(np.flatnonzero(y == label))
        fold_of[rows] = (offset + np.arange(len(rows))) % k
        offset += len(rows)  # continue the deal where the last class stopped: fold sizes differ by at most 1
    return [(np.flatnonzero(fold_of != f), np.flatnonzero(fold_of == f)) for f in range(k)]
