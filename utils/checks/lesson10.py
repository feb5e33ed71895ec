"""Checks for lab 10 (fairness): selection rates, DP and EO differences, reweighing, group thresholds."""

from __future__ import annotations

import numpy as np

from utils import fairness
from utils.checks.core import Checker, format_value as fmt, register

GROUPS = np.array(["a"] * 12 + ["b"] * 8 + ["c"] * 5)
Y_TRUE = np.array([1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 1, 1, 1, 0, 0])
Y_PRED = np.array([1, 1, 1, 0, 1, 1, 0, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 1, 1, 1, 0])


def _rates(y_pred, groups):
    return {g: float(y_pred[groups == g].mean()) for g in np.unique(groups)}


@register("10.selection_rates")
def _selection_rates(c: Checker) -> None:
    got = c.call(Y_PRED, GROUPS)
    if not isinstance(got, dict) or sorted(map(str, got)) != ["a", "b", "c"]:
        c.fail(f"expected a dict with one entry per group ('a', 'b', 'c'), got {fmt(got)}.",
               "Return {group: selection rate} for every distinct value in groups.")
    expected = _rates(Y_PRED, GROUPS)
    keys = sorted(expected)
    c.expect_close([got[k] for k in keys], [expected[k] for k in keys],
                   case=f"y_pred={fmt(Y_PRED)}, groups a/b/c of sizes 12/8/5 (values in order a, b, c)",
                   hint="Selection rate = share of the group's rows predicted positive (mean of y_pred in the group).",
                   diagnose=(([float(Y_PRED[GROUPS == k].sum() / len(Y_PRED)) for k in keys],
                              "Divide by the group's size, not by the number of all rows."),))


@register("10.dp_difference")
def _dp_difference(c: Checker) -> None:
    for groups in (GROUPS, np.where(GROUPS == "c", "b", GROUPS)):
        expected = fairness.demographic_parity_difference(Y_TRUE, Y_PRED, sensitive_features=groups)
        c.expect_close(c.call(Y_PRED, groups), expected,
                       case=f"y_pred={fmt(Y_PRED)} with {len(np.unique(groups))} groups",
                       hint="Largest selection rate minus smallest, over all groups.",
                       diagnose=((fairness.demographic_parity_ratio(Y_TRUE, Y_PRED, sensitive_features=groups),
                                  "That is the ratio (smallest / largest); the difference was asked."),
                                 (abs(_rates(Y_PRED, groups)["a"] - _rates(Y_PRED, groups)["b"]),
                                  "Compare every group, not only the first two."),))


@register("10.eo_difference")
def _eo_difference(c: Checker) -> None:
    rates = fairness.group_rates(Y_TRUE, Y_PRED, sensitive_features=GROUPS)
    tpr_gap, fpr_gap = np.ptp(rates["TPR"]), np.ptp(rates["FPR"])
    c.expect_close(c.call(Y_TRUE, Y_PRED, GROUPS), max(tpr_gap, fpr_gap),
                   case=f"y_true={fmt(Y_TRUE)}, y_pred={fmt(Y_PRED)}, three groups",
                   hint="Compute the TPR gap (max - min over groups) and the FPR gap; return the larger.",
                   diagnose=((tpr_gap, "That is the TPR gap alone (equal opportunity); include the FPR gap."),
                             (fpr_gap, "That is the FPR gap alone; take the larger of the TPR and FPR gaps."),
                             ((tpr_gap + fpr_gap) / 2, "Take the larger of the two gaps, not their mean."),))


@register("10.reweighing")
def _reweighing(c: Checker) -> None:
    expected = fairness.reweighing_weights(Y_TRUE, GROUPS)
    got = c.call(Y_TRUE, GROUPS)
    p_label = np.array([np.mean(Y_TRUE == y) for y in Y_TRUE])
    p_group = np.array([np.mean(GROUPS == g) for g in GROUPS])
    c.expect_close(got, expected, case=f"y={fmt(Y_TRUE)}, groups a/b/c",
                   hint="w = P(group) * P(label) / P(group, label), computed on these rows.",
                   diagnose=((1 / expected, "Upside down: P(group) P(label) goes on top, P(group, label) below."),
                             (1 / p_label, "Those weights balance the labels, not group and label."),
                             (1 / p_group, "Those weights balance the groups, not group and label."),))


@register("10.group_thresholds")
def _group_thresholds(c: Checker) -> None:
    scores = np.random.default_rng(10).permutation(np.linspace(0.01, 0.99, len(GROUPS)))
    shifted = np.clip(scores + np.where(GROUPS == "a", 0.3, 0.0), 0, 1)  # group a scores higher
    for rate in (0.4, 0.25):
        thresholds = c.call(shifted, GROUPS, rate)
        if not isinstance(thresholds, dict) or sorted(map(str, thresholds)) != ["a", "b", "c"]:
            c.fail(f"expected a dict {{group: threshold}} for groups a, b, c, got {fmt(thresholds)}.",
                   "Return one threshold per group.")
        selected = {g: int(np.sum(shifted[GROUPS == g] >= thresholds[g])) for g in ("a", "b", "c")}
        sizes = {g: int(np.sum(GROUPS == g)) for g in ("a", "b", "c")}
        wanted = {g: round(rate * n, 1) for g, n in sizes.items()}
        if any(abs(selected[g] - wanted[g]) > 1 for g in selected):
            inverted = all(abs(selected[g] - (1 - rate) * sizes[g]) <= 1 for g in selected)
            c.fail(f"for target rate {rate}: selecting scores >= your thresholds picks {selected} rows per group "
                   f"of sizes {sizes}; expected about {wanted} (within one row).",
                   "You selected the share 1 - rate: the threshold is np.quantile(group_scores, 1 - rate)."
                   if inverted else
                   "Within each group, take the score above which the top `rate` share of that group lies; "
                   "a single threshold for everyone cannot equalise the rates.")
