"""utils.explain against shap and scikit-learn, and the properties each method promises."""

import numpy as np
import pytest
import shap
import torch
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.inspection import partial_dependence as sk_partial_dependence
from sklearn.inspection import permutation_importance as sk_permutation_importance
from torch import nn

from utils import explain


@pytest.fixture(scope="module")
def tabular():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 5))
    y = (X[:, 0] + 0.5 * X[:, 1] * X[:, 2] + 0.3 * rng.normal(size=300) > 0).astype(int)
    model = GradientBoostingClassifier(n_estimators=30, max_depth=3, random_state=0).fit(X, y)
    return X, y, model


def test_exact_shapley_matches_shap_exact_explainer(tabular):
    X, _, model = tabular
    background = X[:20]
    explainer = shap.explainers.Exact(model.decision_function, shap.maskers.Independent(background, max_samples=20))
    for row in X[50:53]:
        ours = explain.exact_shapley(model.decision_function, row, background)
        theirs = explainer(row[None]).values[0]
        assert np.abs(ours - theirs).max() <= 1e-6


def test_exact_shapley_matches_interventional_tree_shap_and_is_additive(tabular):
    X, _, model = tabular
    background = X[:20]
    tree = shap.TreeExplainer(model, data=background, feature_perturbation="interventional")
    ours = explain.exact_shapley(model.decision_function, X[60], background)
    assert np.abs(ours - tree.shap_values(X[60:61])[0]).max() <= 1e-6
    assert ours.sum() == pytest.approx(model.decision_function(X[60:61])[0] - model.decision_function(background).mean())


def test_exact_shapley_of_a_linear_function_is_weight_times_offset():
    weights = np.array([1.0, -2.0, 0.5])
    background = np.random.default_rng(1).normal(size=(10, 3))
    x = np.array([1.0, 2.0, 3.0])
    phi = explain.exact_shapley(lambda Z: Z @ weights, x, background)
    np.testing.assert_allclose(phi, weights * (x - background.mean(axis=0)), atol=1e-12)


@pytest.mark.parametrize("x, background, message", [
    (np.zeros(13), np.zeros((2, 13)), "more than 12"),
    (np.zeros(3), np.zeros((2, 4)), "shapes"),
])
def test_exact_shapley_refuses_bad_input(x, background, message):
    with pytest.raises(ValueError, match=message):
        explain.exact_shapley(lambda Z: Z.sum(axis=1), x, background)


def test_permutation_importance_agrees_with_sklearn(tabular):
    X, y, model = tabular
    ours = explain.permutation_importance(lambda A, b: model.score(A, b), X[200:], y[200:], n_repeats=30, seed=0)
    theirs = sk_permutation_importance(model, X[200:], y[200:], n_repeats=30, random_state=0).importances_mean
    np.testing.assert_allclose(ours, theirs, atol=0.03)
    assert ours[0] == ours.max() and abs(ours[4]) < 0.02  # the label depends on column 0, not on column 4


def test_partial_dependence_matches_sklearn_brute(tabular):
    X, _, model = tabular
    result = sk_partial_dependence(model, X, [0], method="brute", grid_resolution=15)
    grid = result["grid_values"][0]
    average, ice = explain.partial_dependence(lambda A: model.predict_proba(A)[:, 1], X, 0, grid)
    np.testing.assert_allclose(average, result["average"][0], atol=1e-12)
    assert ice.shape == (len(X), len(grid))


def test_surrogate_is_faithful_for_a_linear_function():
    weights = np.array([2.0, -1.0, 0.0])
    coef, _, fidelity = explain.local_surrogate(lambda Z: Z @ weights, np.ones(3), scale=np.array([1.0, 2.0, 1.0]))
    np.testing.assert_allclose(coef, weights * [1.0, 2.0, 1.0], atol=1e-2)  # per unit of scale
    assert fidelity > 0.999


def test_weighted_r2_reduces_to_r2_with_equal_weights():
    from sklearn.metrics import r2_score

    y, y_hat = np.array([1.0, 2.0, 4.0, 3.0]), np.array([1.5, 2.0, 3.0, 3.5])
    assert explain.weighted_r2(y, y_hat, np.ones(4)) == pytest.approx(r2_score(y, y_hat))


def linear_net():
    torch.manual_seed(0)
    return nn.Linear(4, 3)


def test_integrated_gradients_is_exact_for_a_linear_model():
    model, x, baseline = linear_net(), torch.tensor([1.0, -2.0, 0.5, 3.0]), torch.zeros(4)
    attributions = explain.integrated_gradients(model, x, baseline, steps=4, target=1)
    torch.testing.assert_close(attributions, model.weight[1].detach() * x)
    torch.testing.assert_close(explain.gradient_times_input(model, x, target=1), attributions)


def test_integrated_gradients_completeness_improves_with_steps():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 3))
    x, baseline = torch.randn(8), torch.zeros(8)
    with torch.no_grad():
        gap = (model(x[None]) - model(baseline[None]))[0, 2].item()
    errors = [abs(explain.integrated_gradients(model, x, baseline, steps=s, target=2).sum().item() - gap)
              for s in (2, 256)]
    assert errors[1] < errors[0] and errors[1] < 1e-3 * max(1.0, abs(gap))


def test_integrated_gradients_refuses_bad_input():
    with pytest.raises(ValueError, match="same shape"):
        explain.integrated_gradients(linear_net(), torch.zeros(4), torch.zeros(3))
    with pytest.raises(ValueError, match="steps"):
        explain.integrated_gradients(linear_net(), torch.zeros(4), torch.zeros(4), steps=0)


def test_occlusion_equals_one_forward_per_replaced_position():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    x, baseline = torch.randn(4), torch.zeros(4)
    saved = x.clone()
    drops = explain.occlusion(model, x, baseline, target=2)
    for i in range(4):
        replaced = x.clone()
        replaced[i] = baseline[i]
        expected = (model(x[None])[0, 2] - model(replaced[None])[0, 2]).item()
        assert drops[i].item() == pytest.approx(expected, abs=1e-6)
    linear = torch.nn.Linear(4, 2)
    assert torch.allclose(explain.occlusion(linear, x, baseline, 1), linear.weight[1].detach() * x, atol=1e-6)
    assert torch.equal(x, saved) and model.training               # the input is untouched, the mode restored
    with pytest.raises(ValueError, match="same shape"):
        explain.occlusion(model, x, torch.zeros(3), 0)


def test_next_byte_logits_from_embeddings_equal_the_language_model():
    from utils import lm

    torch.manual_seed(0)
    language_model = lm.GPT(lm.GPTConfig(context=16, d_model=16, n_heads=2, n_layers=1)).eval()
    ids = torch.randint(0, 256, (2, 10))
    logits = explain.NextByteLogits(language_model)(language_model.tok_emb(ids))
    assert torch.allclose(logits, language_model(ids)[:, -1], atol=1e-6)
    embeddings = language_model.tok_emb(ids[0]).detach()
    sequence_drops = explain.occlusion(explain.NextByteLogits(language_model), embeddings, torch.zeros_like(embeddings), 65)
    assert sequence_drops.shape == (10,)
