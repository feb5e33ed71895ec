"""Data quality (lesson 02): duplicates across splits, leakage-free scaling, label issues, SMOTE, batch validation.

Each function is small enough to read, and tested against the library a practitioner would use:
``label_issues`` against cleanlab, ``smote`` against imbalanced-learn, ``standardize_train_test`` against
scikit-learn's ``StandardScaler``, ``cross_split_duplicates`` against a pandas merge.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# --- duplicates ---


def _canonical_rows(X) -> np.ndarray:
    """Rows as bytes, with -0.0 read as 0.0 and every NaN alike, so equal rows give equal bytes."""
    values = np.array(X, dtype=float, copy=True)
    if values.ndim != 2:
        raise ValueError(f"expected a 2-D array of rows, got shape {values.shape}")
    values[values == 0] = 0.0          # -0.0 -> 0.0
    values[np.isnan(values)] = np.nan  # one NaN bit pattern
    values = np.ascontiguousarray(values)
    return values.view(np.dtype((np.void, values.dtype.itemsize * values.shape[1]))).ravel()


def cross_split_duplicates(X_train, X_test) -> np.ndarray:
    """A boolean mask over the rows of ``X_test``: True where the row equals some row of ``X_train``
    (every value equal; missing values count as equal, as in ``DataFrame.drop_duplicates``).

    Numeric 2-D arrays or DataFrames (compared column by column in the training frame's column order).

    >>> cross_split_duplicates(np.array([[1.0, 2.0], [3.0, np.nan]]), np.array([[3.0, np.nan], [2.0, 1.0]])).tolist()
    [True, False]
    """
    if isinstance(X_train, pd.DataFrame) or isinstance(X_test, pd.DataFrame):
        if not (isinstance(X_train, pd.DataFrame) and isinstance(X_test, pd.DataFrame)):
            raise TypeError("pass two DataFrames or two arrays, not one of each")
        if set(X_train.columns) != set(X_test.columns):
            raise ValueError("the two frames must have the same columns")
        columns = list(X_train.columns)
        train_hash = pd.util.hash_pandas_object(X_train[columns], index=False).to_numpy()
        test_hash = pd.util.hash_pandas_object(X_test[columns], index=False).to_numpy()
        return np.isin(test_hash, train_hash)
    train, test = _canonical_rows(X_train), _canonical_rows(X_test)
    if np.shape(X_train)[1] != np.shape(X_test)[1]:
        raise ValueError(f"the splits have {np.shape(X_train)[1]} and {np.shape(X_test)[1]} columns")
    return np.isin(test, train)


def near_duplicates(X_train, X_test, radius: float) -> np.ndarray:
    """A boolean mask over the rows of ``X_test``: True where some training row lies within Euclidean
    distance ``radius`` (copies that were rescaled, re-encoded or slightly perturbed, which hashing misses)."""
    from sklearn.neighbors import NearestNeighbors

    if radius < 0:
        raise ValueError(f"radius must be >= 0, got {radius}")
    distances, _ = NearestNeighbors(n_neighbors=1).fit(np.asarray(X_train, float)).kneighbors(np.asarray(X_test, float))
    return distances[:, 0] <= radius


# --- leakage-free scaling ---


def standardize_train_test(X_train, X_test) -> tuple[np.ndarray, np.ndarray]:
    """Scale both splits with the *training* mean and standard deviation (population, ddof=0); a column
    constant in training is centred, not divided (what ``StandardScaler`` does). Nothing from the test
    rows enters the transform: that is the whole point.

    >>> standardize_train_test(np.array([[1.0], [3.0]]), np.array([[5.0]]))[1].tolist()
    [[3.0]]
    """
    train, test = np.asarray(X_train, dtype=float), np.asarray(X_test, dtype=float)
    if train.ndim != 2 or test.ndim != 2 or train.shape[1] != test.shape[1]:
        raise ValueError(f"expected two 2-D arrays with the same columns, got shapes {train.shape} and {test.shape}")
    mean, std = train.mean(axis=0), train.std(axis=0)
    std = np.where(std == 0, 1.0, std)
    return (train - mean) / std, (test - mean) / std


# --- label issues (confident learning) ---


def label_issues(labels, pred_proba) -> np.ndarray:
    """Rows whose given label is probably wrong, by confident learning (Northcutt, Jiang & Chuang, 2021).

    ``pred_proba`` must be *out-of-fold* probabilities (each row scored by a model that did not train on
    it): in-sample probabilities agree with the noisy labels the model memorised. Per class k, the
    threshold t_k is the mean probability of k among rows labelled k. A row is confidently of class j
    when p_j >= t_j; with several such classes, the most probable one. A row is an issue when it is
    confidently of a class other than its label, unless its label is also the model's top class.
    Equal to ``cleanlab.filter.find_label_issues(labels, pred_probs, filter_by="confident_learning")``.
    """
    labels = np.asarray(labels)
    proba = np.asarray(pred_proba, dtype=float)
    if proba.ndim != 2 or len(proba) != len(labels):
        raise ValueError(f"pred_proba must have one row per label: got shape {proba.shape} for {len(labels)} labels")
    if not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0 or labels.max() >= proba.shape[1]:
        raise ValueError(f"labels must be integers 0..{proba.shape[1] - 1} (one column of pred_proba per class)")
    classes = np.arange(proba.shape[1])
    thresholds = np.array([proba[labels == k, k].mean() if np.any(labels == k) else 2.0 for k in classes])
    thresholds = np.maximum(thresholds, 2e-6)
    confident = proba >= thresholds - 1e-6
    n_confident = confident.sum(axis=1)
    guess = np.where(n_confident > 1, proba.argmax(axis=1), confident.argmax(axis=1))
    issues = (n_confident > 0) & (guess != labels)
    nudged = proba.copy()
    nudged[np.arange(len(labels)), labels] += 1e-6   # a tie with the top class goes to the given label
    return issues & (nudged.argmax(axis=1) != labels)


# --- SMOTE ---


def smote(X, y, k: int = 5, ratio: float = 1.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic minority over-sampling (Chawla et al., 2002) for the least frequent class: add synthetic
    rows until it has ``ratio`` × the majority class's count. Each new row lies on the segment between a
    random minority row and one of its ``k`` nearest minority neighbours: x + u · (neighbour − x), u ~ U(0, 1).

    Returns the original rows followed by the new ones. With the same seed, equal to
    ``imblearn.over_sampling.SMOTE(sampling_strategy=ratio, k_neighbors=k, random_state=seed)`` on binary labels.
    """
    from sklearn.neighbors import NearestNeighbors

    X, y = np.asarray(X, dtype=float), np.asarray(y)
    if X.ndim != 2 or len(X) != len(y):
        raise ValueError(f"X must be 2-D with one row per label, got shapes {X.shape} and {y.shape}")
    classes, counts = np.unique(y, return_counts=True)
    if len(classes) < 2:
        raise ValueError("y has a single class: there is no minority to over-sample")
    minority = classes[np.argmin(counts)]
    rows = X[y == minority]
    wanted = int(ratio * counts.max()) - len(rows)
    if wanted < 0:
        raise ValueError(f"ratio={ratio} asks for fewer minority rows ({int(ratio * counts.max())}) than there are "
                         f"({len(rows)}): SMOTE only adds rows")
    if not 1 <= k < len(rows):
        raise ValueError(f"k must be between 1 and the number of minority rows - 1 ({len(rows) - 1}), got {k}")
    neighbours = NearestNeighbors(n_neighbors=k + 1).fit(rows).kneighbors(rows, return_distance=False)[:, 1:]
    rng = np.random.RandomState(seed)  # imbalanced-learn's generator and draw order, so the two agree exactly
    picks = rng.randint(0, len(rows) * k, size=wanted)
    steps = rng.uniform(size=wanted)[:, None]
    base, partner = picks // k, neighbours[picks // k, picks % k]
    new_rows = rows[base] + steps * (rows[partner] - rows[base])
    return np.vstack([X, new_rows]), np.concatenate([y, np.full(wanted, minority, dtype=y.dtype)])


# --- data validation ---


def schema_from(frame: pd.DataFrame, *, missing_margin: float = 0.02) -> dict:
    """A schema learned from trusted data: per column its kind, range or allowed values, and missing share."""
    schema = {}
    for column in frame.columns:
        values = frame[column]
        rule = {"missing": float(values.isna().mean()) + missing_margin}
        if pd.api.types.is_numeric_dtype(values):
            rule.update(kind="number", min=float(values.min()), max=float(values.max()))
        else:
            rule.update(kind="category", allowed=sorted(map(str, values.dropna().unique())))
        schema[column] = rule
    return schema


def validate_batch(frame: pd.DataFrame, schema: dict) -> list[str]:
    """Every way a new batch breaks the schema, one line each (an empty list: the batch passes)."""
    problems = []
    for column, rule in schema.items():
        if column not in frame.columns:
            problems.append(f"{column}: missing column")
            continue
        values = frame[column]
        share = float(values.isna().mean())
        if share > rule["missing"]:
            problems.append(f"{column}: {share:.1%} missing, schema allows {rule['missing']:.1%}")
        present = values.dropna()
        if rule["kind"] == "number":
            numbers = pd.to_numeric(present, errors="coerce")
            if numbers.isna().any():
                problems.append(f"{column}: {int(numbers.isna().sum())} values are not numbers")
            outside = ((numbers < rule["min"]) | (numbers > rule["max"])).sum()
            if outside:
                problems.append(f"{column}: {int(outside)} values outside [{rule['min']:g}, {rule['max']:g}]")
        else:
            unknown = sorted(set(map(str, present.unique())) - set(rule["allowed"]))
            if unknown:
                problems.append(f"{column}: unknown categories {unknown[:5]}")
    problems += [f"{column}: column not in the schema" for column in frame.columns if column not in schema]
    return problems
