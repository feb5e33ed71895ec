"""Plausible wrong answers to lab 10 (fairness)."""

import numpy as np

from utils import fairness


def rates_over_all_rows(y_pred, groups):
    return {g: float(y_pred[groups == g].sum() / len(y_pred)) for g in np.unique(groups)}


def rates_as_list(y_pred, groups):
    return [float(y_pred[groups == g].mean()) for g in np.unique(groups)]


def dp_ratio_not_difference(y_pred, groups):
    return fairness.demographic_parity_ratio(y_pred, y_pred, sensitive_features=groups)


def dp_first_two_groups(y_pred, groups):
    first, second = np.unique(groups)[:2]
    return abs(y_pred[groups == first].mean() - y_pred[groups == second].mean())


def eo_tpr_only(y_true, y_pred, groups):
    return fairness.equal_opportunity_difference(y_true, y_pred, sensitive_features=groups)


def eo_mean_of_gaps(y_true, y_pred, groups):
    rates = fairness.group_rates(y_true, y_pred, sensitive_features=groups)
    return (np.ptp(rates["TPR"]) + np.ptp(rates["FPR"])) / 2


def weights_upside_down(y, groups):
    return 1 / fairness.reweighing_weights(y, groups)


def weights_balance_labels(y, groups):
    return np.array([1 / np.mean(y == label) for label in y])


def weights_balance_groups(y, groups):
    return np.array([1 / np.mean(groups == g) for g in groups])


def one_global_threshold(scores, groups, rate):
    threshold = np.quantile(scores, 1 - rate)
    return {g: threshold for g in np.unique(groups)}


def quantile_at_rate(scores, groups, rate):
    return {g: np.quantile(scores[groups == g], rate) for g in np.unique(groups)}


WRONG = {
    "10.selection_rates": [rates_over_all_rows, rates_as_list],
    "10.dp_difference": [dp_ratio_not_difference, dp_first_two_groups],
    "10.eo_difference": [eo_tpr_only, eo_mean_of_gaps],
    "10.reweighing": [weights_upside_down, weights_balance_labels, weights_balance_groups],
    "10.group_thresholds": [one_global_threshold, quantile_at_rate],
}
