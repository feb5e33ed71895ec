"""utils.fairness equals fairlearn to 1e-12; reweighing makes group and label independent; bad input is refused."""

import numpy as np
import pandas as pd
import pytest
from fairlearn import metrics as flm

from utils import fairness

TOL = 1e-12


def random_case(seed, n_groups=None, frame=False):
    rng = np.random.default_rng(seed)
    n, k = int(rng.integers(40, 400)), n_groups or int(rng.integers(2, 5))
    groups = rng.choice([f"g{i}" for i in range(k)], n)
    groups[:k] = [f"g{i}" for i in range(k)]  # every group present
    y_true = rng.integers(0, 2, n)
    y_true[: 2 * k] = np.tile([0, 1], k)[: 2 * k]
    y_pred = (rng.random(n) < 0.3 + 0.4 * y_true).astype(int)
    if frame:
        return y_true, y_pred, pd.DataFrame({"a": groups, "b": rng.choice(["x", "y"], n)})
    return y_true, y_pred, groups


@pytest.mark.parametrize("seed", range(15))
@pytest.mark.parametrize("frame", [False, True])
@pytest.mark.parametrize("name", ["demographic_parity_difference", "demographic_parity_ratio",
                                  "equalized_odds_difference"])
def test_matches_fairlearn(seed, frame, name):
    y_true, y_pred, groups = random_case(seed, frame=frame)
    ours = getattr(fairness, name)(y_true, y_pred, sensitive_features=groups)
    theirs = getattr(flm, name)(y_true, y_pred, sensitive_features=groups)
    assert abs(ours - theirs) <= TOL


@pytest.mark.parametrize("seed", range(10))
def test_group_rates_match_metricframe(seed):
    y_true, y_pred, groups = random_case(seed)
    frame = flm.MetricFrame(metrics={"selection rate": flm.selection_rate, "TPR": flm.true_positive_rate,
                                     "FPR": flm.false_positive_rate},
                            y_true=y_true, y_pred=y_pred, sensitive_features=groups)
    ours = fairness.group_rates(y_true, y_pred, sensitive_features=groups)
    for column in ("selection rate", "TPR", "FPR"):
        np.testing.assert_allclose(ours[column].to_numpy(float), frame.by_group[column].to_numpy(float), atol=TOL)
    tpr = frame.by_group["TPR"]
    assert abs(fairness.equal_opportunity_difference(y_true, y_pred, sensitive_features=groups)
               - (tpr.max() - tpr.min())) <= TOL


@pytest.mark.parametrize("seed", range(5))
def test_selection_rates_match_fairlearn(seed):
    y_true, y_pred, groups = random_case(seed)
    frame = flm.MetricFrame(metrics=flm.selection_rate, y_true=y_true, y_pred=y_pred, sensitive_features=groups)
    ours = fairness.selection_rates(y_pred, groups)
    assert ours.keys() == set(frame.by_group.index)
    assert all(abs(ours[g] - frame.by_group[g]) <= TOL for g in ours)


@pytest.mark.parametrize("rate", [0.1, 0.35, 0.8])
def test_group_thresholds_equalise_selection_rates(rate):
    rng = np.random.default_rng(3)
    groups = rng.choice(["a", "b", "c"], 500)
    scores = rng.random(500) + 0.3 * (groups == "a")
    cutoffs = fairness.group_thresholds(scores, groups, rate)
    for group, cutoff in cutoffs.items():
        selected = np.sum(scores[groups == group] >= cutoff)
        assert abs(selected - rate * np.sum(groups == group)) <= 1


@pytest.mark.parametrize("seed", range(5))
def test_reweighing_makes_group_and_label_independent(seed):
    y_true, _, groups = random_case(seed)
    weights = fairness.reweighing_weights(y_true, groups)
    assert weights.mean() == pytest.approx(1.0)
    for group in np.unique(groups):
        in_group = groups == group
        weighted_positive_rate = np.sum(weights[in_group] * y_true[in_group]) / np.sum(weights[in_group])
        assert weighted_positive_rate == pytest.approx(y_true.mean())


@pytest.mark.parametrize("call, message", [
    (lambda: fairness.demographic_parity_difference([0, 1], [0, 1], sensitive_features=["a", "a"]), "single group"),
    (lambda: fairness.equalized_odds_difference([0, 1, 1], [0, 1, 1], sensitive_features=["a", "b"]), "must match"),
    (lambda: fairness.demographic_parity_difference([0, 1], [0, 1, 1], sensitive_features=["a", "b"]), "must match"),
    (lambda: fairness.demographic_parity_difference([0, 1], [0, 0.7], sensitive_features=["a", "b"]), "0/1"),
    (lambda: fairness.reweighing_weights([0, 1], ["a", "a"]), "single group"),
])
def test_bad_input_is_refused_clearly(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_model_card_carries_the_measured_tables():
    metrics = pd.DataFrame({"accuracy": [0.8512]}, index=pd.Index(["model"], name="model"))
    by_group = pd.DataFrame({"selection rate": [0.3, 0.1]}, index=pd.Index(["Male", "Female"], name="sex"))
    card = fairness.model_card(name="demo", intended_use="Teaching.", data="Adult.", metrics=metrics,
                               by_group=by_group, limitations=["Small."])
    assert "| model | 0.851 |" in card and "| Female | 0.100 |" in card and "- Small." in card


def test_bootstrap_interval_covers_the_mean_and_refuses_bad_input():
    rng = np.random.default_rng(0)
    x = rng.normal(size=400)
    low, high = fairness.bootstrap_interval(lambda rows: x[rows].mean(), len(x), n_boot=400, seed=1)
    se = x.std() / np.sqrt(len(x))
    assert low < x.mean() < high and abs((high - low) - 2 * 1.96 * se) < 0.5 * 2 * 1.96 * se
    with pytest.raises(ValueError, match="n_boot"):
        fairness.bootstrap_interval(lambda rows: 0.0, 10, n_boot=1)
    with pytest.raises(ValueError, match="NaN"):
        fairness.bootstrap_interval(lambda rows: np.nan, 10, n_boot=20)
