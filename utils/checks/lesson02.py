"""Checks for lab 02 (data quality): cross_split_duplicates, standardize_train_test, label_issues, smote."""

from __future__ import annotations

import numpy as np

from utils import quality
from utils.checks.core import Case, Mistake, Spec, register

# --- 02.cross_split_duplicates ---


def duplicates_valuewise(X_train, X_test):
    return np.isin(np.asarray(X_test), np.asarray(X_train)).all(axis=1)


def duplicates_nan_never_equal(X_train, X_test):
    train, test = np.asarray(X_train, float), np.asarray(X_test, float)
    return np.array([(train == row).all(axis=1).any() for row in test], dtype=bool)


def duplicates_first_column(X_train, X_test):
    return np.isin(np.asarray(X_test, float)[:, 0], np.asarray(X_train, float)[:, 0])


def _duplicate_cases() -> list[Case]:
    hand = [
        (np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[3.0, 4.0], [4.0, 3.0], [1.0, 2.0]]), "swapped values"),
        (np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[1.0, 4.0], [3.0, 2.0]]), "values from different rows"),
        (np.array([[1.0, np.nan], [0.0, -1.5]]), np.array([[1.0, np.nan], [-0.0, -1.5], [1.0, 2.0]]), "NaN and -0.0"),
        (np.array([[5.0, 5.0, 5.0]]), np.array([[5.0, 5.0, 5.0], [5.0, 5.0, 5.0]]), "a row repeated in test"),
    ]
    rng = np.random.default_rng(201)
    cases = [Case((a, b), f"X_train={a.tolist()}, X_test={b.tolist()} ({why})", size=i) for i, (a, b, why) in enumerate(hand)]
    for n, columns in ((60, 3), (400, 5)):
        train = rng.integers(-2, 3, (n, columns)).astype(float)
        test = np.vstack([train[rng.choice(n, n // 4)], rng.integers(-2, 3, (n // 2, columns)).astype(float)])
        test[::7, 0] = np.nan
        train[::5, 0] = np.nan
        cases.append(Case((train, test), f"{n} training rows and {len(test)} test rows of small integers with NaN",
                          size=n * columns))
    return cases


register(Spec(
    "02.cross_split_duplicates", quality.cross_split_duplicates, _duplicate_cases,
    hint="A test row is a duplicate when some training row has exactly the same values in every column (NaN equal "
         "to NaN, -0.0 to 0.0): compare whole rows, for example as bytes or tuples in a set.",
    mistakes=(
        Mistake(duplicates_valuewise, "np.isin checks each value on its own: a row whose values all appear somewhere "
                                      "in training is not a copy of a training row. Compare whole rows."),
        Mistake(duplicates_nan_never_equal, "NaN == NaN is False, so rows with a missing value never match: treat "
                                            "missing values as equal (drop_duplicates does)."),
        Mistake(duplicates_first_column, "Compare every column, not only the first."),
    )))


# --- 02.standardize_train_test ---


def scale_on_all_rows(X_train, X_test):
    both = np.vstack([X_train, X_test]).astype(float)
    mean, std = both.mean(axis=0), both.std(axis=0)
    std = np.where(std == 0, 1.0, std)
    return (np.asarray(X_train, float) - mean) / std, (np.asarray(X_test, float) - mean) / std


def scale_each_split_by_itself(X_train, X_test):
    return quality.standardize_train_test(X_train, X_train)[0], quality.standardize_train_test(X_test, X_test)[0]


def scale_with_sample_std(X_train, X_test):
    train, test = np.asarray(X_train, float), np.asarray(X_test, float)
    mean, std = train.mean(axis=0), train.std(axis=0, ddof=1)
    std = np.where(std == 0, 1.0, std)
    return (train - mean) / std, (test - mean) / std


def scale_divides_by_zero(X_train, X_test):
    train, test = np.asarray(X_train, float), np.asarray(X_test, float)
    mean, std = train.mean(axis=0), train.std(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (train - mean) / std, (test - mean) / std


def _scaling_cases() -> list[Case]:
    hand = [(np.array([[1.0], [3.0]]), np.array([[5.0]])),
            (np.array([[0.0, 10.0], [2.0, 10.0], [4.0, 10.0]]), np.array([[1.0, 11.0], [-3.0, 9.0]])),
            (np.array([[-5.0, 2.0], [5.0, -2.0]]), np.array([[0.0, 0.0], [100.0, -100.0], [1.0, 1.0]]))]
    cases = [Case((a, b), f"X_train={a.tolist()}, X_test={b.tolist()}", atol=1e-9, size=i) for i, (a, b) in enumerate(hand)]
    rng = np.random.default_rng(202)
    for n, columns in ((30, 3), (500, 6)):
        train, test = rng.normal(3, 2, (n, columns)), rng.normal(6, 4, (n // 2, columns))
        train[:, -1] = -1.0
        cases.append(Case((train, test), f"{n} training rows, the last column constant, test rows shifted",
                          atol=1e-9, size=n * columns))
    return cases


register(Spec(
    "02.standardize_train_test", quality.standardize_train_test, _scaling_cases,
    hint="Compute the mean and the population standard deviation (ddof=0) of each column on X_train only; scale "
         "both splits with them; use 1 instead of a zero standard deviation.",
    mistakes=(
        Mistake(scale_on_all_rows, "The test rows must not influence the transform: compute the mean and standard "
                                   "deviation on X_train only (this is the leak the lesson measures)."),
        Mistake(scale_each_split_by_itself, "Scale the test rows with the *training* statistics: a model sees test "
                                            "inputs on the scale it was trained on."),
        Mistake(scale_with_sample_std, "Use the population standard deviation (ddof=0), as StandardScaler does."),
        Mistake(scale_divides_by_zero, "A column constant in training has standard deviation 0: divide by 1 "
                                       "instead (centre it only), as StandardScaler does."),
    )))


# --- 02.label_issues ---


def issues_where_argmax_differs(labels, pred_proba):
    return np.asarray(pred_proba).argmax(axis=1) != np.asarray(labels)


def issues_global_thresholds(labels, pred_proba):
    labels, proba = np.asarray(labels), np.asarray(pred_proba, float)
    thresholds = proba.mean(axis=0)
    confident = proba >= thresholds - 1e-6
    guess = np.where(confident.sum(axis=1) > 1, proba.argmax(axis=1), confident.argmax(axis=1))
    nudged = proba.copy()
    nudged[np.arange(len(labels)), labels] += 1e-6
    return (confident.sum(axis=1) > 0) & (guess != labels) & (nudged.argmax(axis=1) != labels)


def issues_without_final_filter(labels, pred_proba):
    labels, proba = np.asarray(labels), np.asarray(pred_proba, float)
    thresholds = np.array([proba[labels == k, k].mean() if np.any(labels == k) else 2.0 for k in range(proba.shape[1])])
    confident = proba >= np.maximum(thresholds, 2e-6) - 1e-6
    guess = np.where(confident.sum(axis=1) > 1, proba.argmax(axis=1), confident.argmax(axis=1))
    return (confident.sum(axis=1) > 0) & (guess != labels)


def _issue_cases() -> list[Case]:
    hand_proba = np.array([[0.7, 0.2, 0.1], [0.45, 0.35, 0.2], [0.1, 0.8, 0.1], [0.5, 0.4, 0.1], [0.2, 0.3, 0.5],
                           [0.6, 0.3, 0.1]])
    hand_labels = np.array([0, 1, 1, 1, 0, 2])
    cases = [Case((hand_labels, hand_proba), f"labels={hand_labels.tolist()}, pred_proba={hand_proba.tolist()}", size=1)]
    # a case on which every listed mistake gives a different answer (found by search; rows sum to 1)
    labels = np.array([0, 1, 1, 2, 0, 2, 0])
    proba = np.array([[0.31, 0.63, 0.06], [0.121, 0.121, 0.758], [0.323, 0.182, 0.495], [0.07, 0.04, 0.89],
                      [0.29, 0.21, 0.5], [0.05, 0.26, 0.69], [0.74, 0.05, 0.21]])
    cases.append(Case((labels, proba), f"labels={labels.tolist()}, pred_proba={proba.tolist()}", size=0))
    # exact ties: between two classes, and between the given label and the top class
    labels = np.array([1, 0, 2, 1, 0])
    proba = np.array([[0.5, 0.5, 0.0], [0.4, 0.4, 0.2], [0.2, 0.4, 0.4], [0.6, 0.2, 0.2], [0.9, 0.05, 0.05]])
    cases.append(Case((labels, proba), f"labels={labels.tolist()}, pred_proba={proba.tolist()} (tied probabilities)", size=2))
    rng = np.random.default_rng(203)
    for n, classes in ((40, 2), (120, 3), (600, 5)):
        labels = rng.integers(0, classes, n)
        logits = rng.normal(size=(n, classes)) + 2.0 * np.eye(classes)[labels] * rng.random((n, 1))
        proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        flipped = rng.random(n) < 0.15
        labels[flipped] = rng.integers(0, classes, flipped.sum())
        cases.append(Case((labels, proba), f"{n} rows, {classes} classes, 15% of labels resampled", size=n * classes))
    return cases


register(Spec(
    "02.label_issues", quality.label_issues, _issue_cases,
    hint="Thresholds t_k = mean of pred_proba[:, k] over rows labelled k; a row is confidently class j when "
         "p_j >= t_j (several: the most probable); flag it when that class is not its label, unless its label is "
         "also its most probable class.",
    mistakes=(
        Mistake(issues_where_argmax_differs, "Flagging every row the model disagrees with ignores how confident it "
                                             "is per class: use the per-class thresholds t_k."),
        Mistake(issues_global_thresholds, "t_k is the mean of p_k over the rows *labelled k*, not over all rows."),
        Mistake(issues_without_final_filter, "Last step: keep a row unflagged when its given label is the model's "
                                             "most probable class."),
    )))


# --- 02.smote ---


def smote_neighbours_from_all_rows(X, y, k=5, ratio=1.0, seed=0):
    from sklearn.neighbors import NearestNeighbors

    X, y = np.asarray(X, float), np.asarray(y)
    classes, counts = np.unique(y, return_counts=True)
    minority = classes[np.argmin(counts)]
    rows = X[y == minority]
    wanted = int(ratio * counts.max()) - len(rows)
    neighbours = NearestNeighbors(n_neighbors=k + 1).fit(X).kneighbors(rows, return_distance=False)[:, 1:]
    rng = np.random.RandomState(seed)
    picks = rng.randint(0, len(rows) * k, size=wanted)
    steps = rng.uniform(size=wanted)[:, None]
    base, partner = rows[picks // k], X[neighbours[picks // k, picks % k]]
    return np.vstack([X, base + steps * (partner - base)]), np.concatenate([y, np.full(wanted, minority, dtype=y.dtype)])


def _smote_variant(X, y, k, ratio, seed, *, self_neighbour=False, extrapolate=False, count_from_zero=False):
    from sklearn.neighbors import NearestNeighbors

    X, y = np.asarray(X, float), np.asarray(y)
    classes, counts = np.unique(y, return_counts=True)
    minority = classes[np.argmin(counts)]
    rows = X[y == minority]
    wanted = int(ratio * counts.max()) - (0 if count_from_zero else len(rows))
    found = NearestNeighbors(n_neighbors=k if self_neighbour else k + 1).fit(rows).kneighbors(rows, return_distance=False)
    neighbours = found if self_neighbour else found[:, 1:]
    rng = np.random.RandomState(seed)
    picks = rng.randint(0, len(rows) * k, size=wanted)
    steps = rng.uniform(size=wanted)[:, None]
    base, partner = rows[picks // k], rows[neighbours[picks // k, picks % k]]
    new = base + steps * (base - partner) if extrapolate else base + steps * (partner - base)
    return np.vstack([X, new]), np.concatenate([y, np.full(wanted, minority, dtype=y.dtype)])


def smote_counts_itself(X, y, k=5, ratio=1.0, seed=0):
    return _smote_variant(X, y, k, ratio, seed, self_neighbour=True)


def smote_steps_away(X, y, k=5, ratio=1.0, seed=0):
    return _smote_variant(X, y, k, ratio, seed, extrapolate=True)


def smote_adds_ratio_times_majority(X, y, k=5, ratio=1.0, seed=0):
    return _smote_variant(X, y, k, ratio, seed, count_from_zero=True)


def _smote_cases() -> list[Case]:
    X = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [5.0, 5.0], [6.0, 5.0], [5.0, 6.0], [7.0, 7.0], [6.0, 7.0]])
    y = np.array([0, 0, 0, 1, 1, 1, 1, 1])
    cases = [Case((X, y, 2, 1.0, 3), "8 rows (3 of class 0), k=2, ratio=1.0, seed=3", size=0)]
    rng = np.random.default_rng(204)
    for n_major, n_minor, k, ratio in ((40, 8, 3, 0.5), (300, 30, 5, 1.0), (200, 60, 4, 0.8)):
        X = np.vstack([rng.normal(0, 1, (n_major, 3)), rng.normal(-2, 0.7, (n_minor, 3))])
        y = np.array([1] * n_major + [0] * n_minor)
        order = rng.permutation(len(y))
        cases.append(Case((X[order], y[order], k, ratio, 7), f"{n_major} majority and {n_minor} minority rows "
                          f"(shuffled, negative values), k={k}, ratio={ratio}, seed=7", atol=1e-9, size=len(y)))
    return cases


def _resampled_pair(got, expected):
    """(X_new, y_new) like the reference's, except that the number of rows may differ (a wrong count is a
    mistake with its own hint, found by comparing values)."""
    X_expected, _ = expected
    if not (isinstance(got, tuple) and len(got) == 2 and all(isinstance(part, np.ndarray) for part in got)):
        return ("your result should be a tuple (X_new, y_new) of two NumPy arrays.",
                "Return np.vstack([X, new_rows]), np.concatenate([y, new_labels]).")
    X_new, y_new = got
    if X_new.ndim != 2 or X_new.shape[1] != X_expected.shape[1] or X_new.dtype.kind != "f":
        return (f"X_new should be a 2-D float array with {X_expected.shape[1]} columns, got shape {X_new.shape} "
                f"and dtype {X_new.dtype}.", "Stack the original rows and the new rows: np.vstack([X, new_rows]).")
    if y_new.shape != (len(X_new),):
        return (f"y_new should hold one label per row of X_new ({len(X_new)}), got shape {y_new.shape}.",
                "Append one minority label per new row: np.concatenate([y, np.full(wanted, minority)]).")
    return None


register(Spec(
    "02.smote", quality.smote, _smote_cases, seed=(4, lambda number: number), contract=_resampled_pair,
    hint="Follow the recipe: neighbours among the minority rows only (k + 1, dropping each row itself), "
         "rng = np.random.RandomState(seed), picks = rng.randint(0, n_min * k, wanted), steps = rng.uniform(size=wanted), "
         "new = x + step · (neighbour − x); return the original rows, then the new ones.",
    mistakes=(
        Mistake(smote_neighbours_from_all_rows, "Look for neighbours among the minority rows only: a majority-class "
                                                "neighbour puts synthetic minority rows inside the other class."),
        Mistake(smote_counts_itself, "The nearest neighbour of a row is the row itself: ask for k + 1 neighbours "
                                     "and drop the first, or some new rows are plain copies."),
        Mistake(smote_steps_away, "Interpolate towards the neighbour, x + u · (neighbour − x): stepping away from it "
                                  "leaves the segment between the two rows."),
        Mistake(smote_adds_ratio_times_majority, "Add only what is missing: ratio × majority count minus the "
                                                 "minority rows already there."),
    )))
