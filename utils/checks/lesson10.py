"""Checks for lab 10 (fairness): selection_rates, demographic_parity_difference, equalized_odds_difference,
reweighing_weights, group_thresholds."""

from __future__ import annotations

import numpy as np

from utils import fairness
from utils.checks.core import Case, Mistake, Spec, format_value as fmt, register

GROUPS = np.array(["a"] * 12 + ["b"] * 8 + ["c"] * 5)
Y_TRUE = np.array([1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 1, 1, 1, 0, 0])
Y_PRED = np.array([1, 1, 1, 0, 1, 1, 0, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 1, 1, 1, 0])


def _random_groups(seed: int, n: int, labels, never_selected=None):
    """Groups, true labels and predictions with every group holding both labels; one group may never be selected."""
    rng = np.random.default_rng(seed)
    groups = rng.permutation(np.r_[np.repeat(labels, 2), rng.choice(labels, n - 2 * len(labels))])
    y_true = rng.integers(0, 2, n)
    for label in labels:  # both classes in every group
        rows = np.flatnonzero(groups == label)
        y_true[rows[:2]] = [0, 1]
    bias = np.array([0.15 * i for i in range(len(labels))])[np.searchsorted(np.sort(labels), groups)]
    y_pred = (rng.random(n) < 0.2 + 0.4 * y_true + bias).astype(int)
    if never_selected is not None:
        y_pred[groups == never_selected] = 0
    return groups, y_true, y_pred


def _cases(make) -> list[Case]:
    cases = [make(GROUPS, Y_TRUE, Y_PRED, "25 rows, groups a/b/c of sizes 12/8/5")]
    for seed, n, labels, never in ((1001, 40, np.array([0, 1]), None), (1002, 120, np.array(["x", "y", "z", "w"]), "w"),
                                   (1003, 600, np.array(["f", "m", "nb"]), None)):
        groups, y_true, y_pred = _random_groups(seed, n, labels, never)
        note = f", group {never!r} never selected" if never is not None else ""
        cases.append(make(groups, y_true, y_pred, f"{n} rows, groups {fmt(list(labels))}{note}"))
    return cases


# --- 10.selection_rates ---

def rates_over_all_rows(y_pred, groups):
    return {g: float(y_pred[groups == g].sum() / len(y_pred)) for g in np.unique(groups)}


def counts_not_rates(y_pred, groups):
    return {g: float(y_pred[groups == g].sum()) for g in np.unique(groups)}


def rates_of_y_pred_zero(y_pred, groups):
    return {g: float(np.mean(y_pred[groups == g] == 0)) for g in np.unique(groups)}


register(Spec(
    "10.selection_rates", fairness.selection_rates,
    lambda: _cases(lambda groups, y_true, y_pred, label: Case((y_pred, groups), label)),
    hint="Selection rate = share of the group's rows predicted positive (mean of y_pred within the group).",
    mistakes=(
        Mistake(rates_over_all_rows, "Divide by the group's size, not by the number of all rows."),
        Mistake(counts_not_rates, "Return rates (shares between 0 and 1), not counts."),
        Mistake(rates_of_y_pred_zero, "Count the rows predicted positive (y_pred == 1), not negative."),
    )))


# --- 10.demographic_parity_difference ---

def _dp_difference(y_pred, groups):
    return fairness.demographic_parity_difference(y_pred, y_pred, sensitive_features=groups)


def dp_ratio_not_difference(y_pred, groups):
    return fairness.demographic_parity_ratio(y_pred, y_pred, sensitive_features=groups)


def dp_first_two_groups(y_pred, groups):
    first, second = np.unique(groups)[:2]
    return float(abs(y_pred[groups == first].mean() - y_pred[groups == second].mean()))


register(Spec(
    "10.demographic_parity_difference", _dp_difference,
    lambda: _cases(lambda groups, y_true, y_pred, label: Case((y_pred, groups), label)),
    hint="Largest selection rate minus smallest, over all groups.",
    mistakes=(
        Mistake(dp_ratio_not_difference, "That is the ratio (smallest / largest); the difference was asked."),
        Mistake(dp_first_two_groups, "Compare every group, not only the first two."),
    )))


# --- 10.equalized_odds_difference ---

def _eo_difference(y_true, y_pred, groups):
    return fairness.equalized_odds_difference(y_true, y_pred, sensitive_features=groups)


def eo_tpr_only(y_true, y_pred, groups):
    return fairness.equal_opportunity_difference(y_true, y_pred, sensitive_features=groups)


def eo_fpr_only(y_true, y_pred, groups):
    rates = fairness.group_rates(y_true, y_pred, sensitive_features=groups)
    return float(rates["FPR"].max() - rates["FPR"].min())


def eo_mean_of_gaps(y_true, y_pred, groups):
    rates = fairness.group_rates(y_true, y_pred, sensitive_features=groups)
    return float((np.ptp(rates["TPR"]) + np.ptp(rates["FPR"])) / 2)


register(Spec(
    "10.equalized_odds_difference", _eo_difference,
    lambda: _cases(lambda groups, y_true, y_pred, label: Case((y_true, y_pred, groups), label)),
    hint="Compute the TPR gap (max - min over groups) and the FPR gap; return the larger.",
    mistakes=(
        Mistake(eo_tpr_only, "That is the TPR gap alone (equal opportunity); include the FPR gap."),
        Mistake(eo_fpr_only, "That is the FPR gap alone; take the larger of the TPR and FPR gaps."),
        Mistake(eo_mean_of_gaps, "Take the larger of the two gaps, not their mean."),
    )))


# --- 10.reweighing_weights ---

def weights_upside_down(y, groups):
    return 1 / fairness.reweighing_weights(y, groups)


def weights_balance_labels(y, groups):
    return np.array([1 / np.mean(y == label) for label in y])


def weights_balance_groups(y, groups):
    return np.array([1 / np.mean(groups == g) for g in groups])


register(Spec(
    "10.reweighing_weights", fairness.reweighing_weights,
    lambda: _cases(lambda groups, y_true, y_pred, label: Case((y_true, groups), label)),
    hint="w = P(group) * P(label) / P(group, label), computed on these rows, one weight per row.",
    mistakes=(
        Mistake(weights_upside_down, "Upside down: P(group) P(label) goes on top, P(group, label) below."),
        Mistake(weights_balance_labels, "Those weights balance the labels, not group and label."),
        Mistake(weights_balance_groups, "Those weights balance the groups, not group and label."),
    )))


# --- 10.group_thresholds: any threshold selecting within one row of rate x group size is right ---

def _selected_per_group(thresholds, args) -> dict:
    """Rows selected per group; a count within one row of the target reads as the target itself."""
    scores, groups, rate = args
    counts = {}
    for group in np.unique(groups):
        target = rate * np.sum(groups == group)
        selected = int(np.sum(scores[groups == group] >= thresholds[str(group)]))
        counts[str(group)] = round(float(target), 1) if abs(selected - target) <= 1 else selected
    return counts


def _string_keys(thresholds) -> dict:
    return {str(k): v for k, v in thresholds.items()} if isinstance(thresholds, dict) else thresholds


def one_global_threshold(scores, groups, rate):
    threshold = float(np.quantile(scores, 1 - rate))
    return {g: threshold for g in np.unique(groups)}


def quantile_at_rate(scores, groups, rate):
    return {g: float(np.quantile(scores[groups == g], rate)) for g in np.unique(groups)}


def _threshold_cases() -> list[Case]:
    rng = np.random.default_rng(1004)
    cases = []
    for n, labels, rate in ((25, ["a", "b", "c"], 0.4), (25, ["a", "b", "c"], 0.25), (200, ["f", "m"], 0.1),
                            (90, ["x", "y", "z"], 0.7)):
        groups = rng.permutation(np.r_[np.array(labels * 5), rng.choice(labels, n - 5 * len(labels))])
        scores = rng.permutation(np.linspace(-0.5, 1.5, n))  # distinct scores, some negative
        scores = scores + np.where(groups == labels[0], 0.3, 0.0)  # the first group scores higher
        sizes = {g: int(np.sum(groups == g)) for g in labels}
        cases.append(Case((scores, groups, rate), f"{n} distinct scores, group sizes {sizes}, rate={rate}: rows "
                          "selected per group (within one row of rate x size)", atol=0))
    return cases


register(Spec(
    "10.group_thresholds", fairness.group_thresholds, _threshold_cases,
    measure=lambda thresholds, args: _selected_per_group(_string_keys(thresholds), args),
    hint="Within each group, take the score above which the top `rate` share of that group lies: "
         "np.quantile(group_scores, 1 - rate).",
    mistakes=(
        Mistake(one_global_threshold, "A single threshold for everyone cannot equalise the rates: compute one "
                                      "threshold per group, from that group's scores."),
        Mistake(quantile_at_rate, "You selected the share 1 - rate: the threshold is np.quantile(group_scores, "
                                  "1 - rate)."),
    )))
