"""Group fairness metrics from scratch (fairlearn's semantics), reweighing, and a model card.

Groups are the distinct values of ``sensitive_features``: a 1-D array or Series, or a
DataFrame whose columns combine into intersectional groups (as fairlearn does).
``tests/test_fairness.py`` checks every metric against fairlearn to 1e-12.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def _groups(sensitive_features, n: int) -> np.ndarray:
    """One hashable group label per row; several columns combine into one label per combination."""
    if isinstance(sensitive_features, pd.DataFrame):
        labels = sensitive_features.astype(str).agg(", ".join, axis=1).to_numpy()
    else:
        labels = np.asarray(sensitive_features)
        if labels.ndim == 2:
            labels = np.array([", ".join(map(str, row)) for row in labels])
    if labels.ndim != 1 or len(labels) != n:
        raise ValueError(f"sensitive_features has {len(labels)} rows but y has {n}; they must match")
    if len(np.unique(labels)) < 2:
        raise ValueError("sensitive_features holds a single group; group fairness needs at least two groups")
    return labels


def _binary(name: str, values) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array, got shape {array.shape}")
    if not set(np.unique(array).tolist()) <= {0, 1}:
        raise ValueError(f"{name} must hold 0/1 labels")
    return array.astype(int)


def group_rates(y_true, y_pred, *, sensitive_features) -> pd.DataFrame:
    """Per group: count, base rate, selection rate P(ŷ=1), true positive rate and false positive rate."""
    y_true, y_pred = _binary("y_true", y_true), _binary("y_pred", y_pred)
    if len(y_true) != len(y_pred):
        raise ValueError(f"y_true has {len(y_true)} entries but y_pred has {len(y_pred)}; they must match")
    groups = _groups(sensitive_features, len(y_true))
    rows = {}
    for group in np.unique(groups):
        t, p = y_true[groups == group], y_pred[groups == group]
        rows[group] = {
            "count": len(t),
            "base rate": t.mean(),
            "selection rate": p.mean(),
            "TPR": p[t == 1].mean() if (t == 1).any() else np.nan,
            "FPR": p[t == 0].mean() if (t == 0).any() else np.nan,
        }
    return pd.DataFrame(rows).T.rename_axis("group")


def selection_rates(y_pred, sensitive_features) -> dict:
    """{group: share of the group's rows predicted positive}.

    >>> selection_rates([1, 0, 1, 1], ["a", "a", "b", "b"])
    {'a': 0.5, 'b': 1.0}
    """
    y_pred = _binary("y_pred", y_pred)
    groups = _groups(sensitive_features, len(y_pred))
    return {group.item() if hasattr(group, "item") else group: float(y_pred[groups == group].mean())
            for group in np.unique(groups)}


def group_thresholds(scores, sensitive_features, rate: float) -> dict:
    """{group: threshold} so that ``scores >= threshold`` selects the top ``rate`` share of each group.

    Equal selection rates by construction (demographic parity), at the price of different cut-offs.
    """
    scores = np.asarray(scores, dtype=float)
    if not 0 < rate < 1:
        raise ValueError(f"rate must be strictly between 0 and 1, got {rate}")
    groups = _groups(sensitive_features, len(scores))
    return {group.item() if hasattr(group, "item") else group: float(np.quantile(scores[groups == group], 1 - rate))
            for group in np.unique(groups)}


def demographic_parity_difference(y_true, y_pred, *, sensitive_features) -> float:
    """Largest minus smallest selection rate across groups (0 means equal selection rates).

    >>> demographic_parity_difference([0, 1, 0, 1], [1, 1, 0, 1], sensitive_features=["a", "a", "b", "b"])
    0.5
    """
    rates = group_rates(y_true, y_pred, sensitive_features=sensitive_features)["selection rate"]
    return float(rates.max() - rates.min())


def demographic_parity_ratio(y_true, y_pred, *, sensitive_features) -> float:
    """Smallest over largest selection rate across groups (1 means equal; the "four-fifths rule" asks >= 0.8)."""
    rates = group_rates(y_true, y_pred, sensitive_features=sensitive_features)["selection rate"]
    return float(rates.min() / rates.max()) if rates.max() > 0 else 1.0


def equal_opportunity_difference(y_true, y_pred, *, sensitive_features) -> float:
    """Largest minus smallest true positive rate across groups."""
    tpr = group_rates(y_true, y_pred, sensitive_features=sensitive_features)["TPR"]
    return float(tpr.max() - tpr.min())


def equalized_odds_difference(y_true, y_pred, *, sensitive_features) -> float:
    """The larger of the TPR gap and the FPR gap across groups (0 means equal error rates)."""
    rates = group_rates(y_true, y_pred, sensitive_features=sensitive_features)
    return float(max(rates["TPR"].max() - rates["TPR"].min(), rates["FPR"].max() - rates["FPR"].min()))


def reweighing_weights(y, sensitive_features) -> np.ndarray:
    """Kamiran & Calders (2012) weights P(group) P(label) / P(group, label), one per row.

    Under these weights group and label are independent, so a model trained with them sees
    the same positive rate in every group. Weights average to 1.
    """
    y = np.asarray(y)
    if y.ndim != 1 or y.size == 0:
        raise ValueError(f"y must be a non-empty 1-D array, got shape {y.shape}")
    groups = _groups(sensitive_features, len(y))
    frame = pd.DataFrame({"group": groups, "label": y})
    p_group = frame["group"].map(frame["group"].value_counts(normalize=True))
    p_label = frame["label"].map(frame["label"].value_counts(normalize=True))
    p_joint = frame.groupby(["group", "label"])["label"].transform("size") / len(frame)
    return (p_group * p_label / p_joint).to_numpy()


def markdown_table(frame: pd.DataFrame, digits: int = 3) -> str:
    """A DataFrame as a Markdown table (index first), numbers rounded to ``digits``."""
    def cell(value):
        return f"{value:.{digits}f}" if isinstance(value, (float, np.floating)) else str(value)
    header = [str(frame.index.name or "")] + [str(c) for c in frame.columns]
    rows = [[str(index)] + [cell(v) for v in row] for index, row in zip(frame.index, frame.to_numpy())]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def model_card(*, name: str, intended_use: str, data: str, metrics: pd.DataFrame, by_group: pd.DataFrame,
               limitations: list[str]) -> str:
    """A short model card in Markdown (Mitchell et al., 2019) built from measured tables, never typed numbers."""
    lines = [f"### Model card: {name}", "", f"**Intended use.** {intended_use}", "", f"**Data.** {data}", "",
             "**Overall metrics (test set).**", "", markdown_table(metrics), "",
             "**Metrics by group (test set).**", "", markdown_table(by_group), "",
             "**Limitations.**", "", *[f"- {item}" for item in limitations]]
    return "\n".join(lines)


def bootstrap_interval(statistic, n_rows: int, *, n_boot: int = 300, level: float = 0.95,
                       seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic(rows)`` over ``n_boot`` resamples of ``range(n_rows)``.

    ``statistic`` takes an integer index array (rows drawn with replacement) and returns a number;
    resamples where it returns NaN (a group with no positives, say) are dropped.

    >>> low, high = bootstrap_interval(lambda rows: np.arange(100)[rows].mean(), 100, seed=0)
    >>> bool(low < 49.5 < high)
    True
    """
    if n_rows < 2:
        raise ValueError(f"n_rows must be at least 2, got {n_rows}")
    if n_boot < 10:
        raise ValueError(f"n_boot must be at least 10, got {n_boot}")
    if not 0 < level < 1:
        raise ValueError(f"level must be strictly between 0 and 1, got {level}")
    rng = np.random.default_rng(seed)
    values = np.array([statistic(rng.integers(0, n_rows, n_rows)) for _ in range(n_boot)], dtype=float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        raise ValueError("the statistic was NaN on every resample")
    tail = (1 - level) / 2
    return float(np.quantile(values, tail)), float(np.quantile(values, 1 - tail))
