"""Checks for lab 09 (explainability): exact_shapley, permutation_importance, integrated_gradients, weighted_r2."""

from __future__ import annotations

import itertools

import numpy as np
import torch
from torch import nn

from utils import explain
from utils.checks.core import MODE_HINT, Case, Mistake, Spec, format_value as fmt, mutation_hint, global_seed, register, with_model_mode

# --- 09.exact_shapley ---


def _game(X):
    """A small nonlinear model with a three-way interaction: only then do coalition weights matter
    (for pairwise interactions a plain average over coalitions happens to equal the Shapley value)."""
    return X[:, 0] * X[:, 1] * X[:, 2] + np.maximum(X[:, 2], 0) + 0.5 * X[:, 3] ** 2


def _game5(X):
    return X[:, 0] * X[:, 1] * X[:, 2] - X[:, 3] * X[:, 4] + np.abs(X[:, 1])


def _linear(X):
    return X[:, 0] + 2 * X[:, 1] - 3 * X[:, 2]


def shapley_without_coalition_weights(predict, x, background):
    d, phi = len(x), np.zeros(len(x))
    subsets = [s for k in range(d) for s in itertools.combinations(range(d), k)]

    def value(s):
        Z = background.copy()
        Z[:, list(s)] = x[list(s)]
        return predict(Z).mean()
    for i in range(d):
        phi[i] = np.mean([value(tuple(sorted(s + (i,)))) - value(s) for s in subsets if i not in s])
    return phi


def shapley_at_the_mean_background_row(predict, x, background):
    return explain.exact_shapley(predict, x, background.mean(axis=0, keepdims=True))


def shapley_alone_versus_empty(predict, x, background):
    empty, phi = predict(background).mean(), []
    for i in range(len(x)):
        Z = background.copy()
        Z[:, i] = x[i]
        phi.append(predict(Z).mean() - empty)
    return np.array(phi)


def _shapley_cases() -> list[Case]:
    rng = np.random.default_rng(9)
    background = rng.normal(size=(6, 4))
    cases = [Case((_game, x, background), f"x={fmt(x)} against 6 background rows, f = x0*x1*x2 + max(x2, 0) + "
                  "0.5*x3^2") for x in (np.array([1.0, 2.0, -1.0, 0.5]), np.array([-0.5, 1.5, 2.0, -1.0]))]
    cases.append(Case((_linear, np.array([1.0, -2.0, 0.5]), rng.normal(size=(4, 3))),
                      "a linear f = x0 + 2 x1 - 3 x2 against 4 background rows"))
    cases.append(Case((_game5, rng.normal(size=5) * 2, rng.normal(size=(10, 5))),
                      "5 features, f = x0*x1*x2 - x3*x4 + |x1|, 10 background rows"))
    return cases


register(Spec(
    "09.exact_shapley", explain.exact_shapley, _shapley_cases,
    hint="Average each feature's marginal contribution over all coalitions S without it, weighted "
         "|S|! (d-|S|-1)! / d!; v(S) = mean of f over background rows with S set to x.",
    mistakes=(
        Mistake(shapley_without_coalition_weights, "Weight each coalition by |S|!(d-|S|-1)!/d!; a plain average "
                                                   "over coalitions over-counts the small and large ones."),
        Mistake(shapley_at_the_mean_background_row, "Average the predictions over the background rows; do not predict "
                                                    "at the average background row (the model is not linear)."),
        Mistake(shapley_alone_versus_empty, "That is each feature alone against the empty coalition; average its "
                                            "contribution over every coalition of the other features."),
    )))


# --- 09.permutation_importance: random, so compared within the spread of the estimate over seeds ---

def _permutation_reference(score, X, y, n_repeats, seed):
    return explain.permutation_importance(score, X, y, n_repeats=n_repeats, seed=seed)


def _rule_score(data, labels):
    return float(np.mean((data[:, 0] + 0.5 * data[:, 2] > 0) == labels))  # columns 1 and 3 are ignored


def importance_sign_flipped(score, X, y, n_repeats, seed):
    return -explain.permutation_importance(score, X, y, n_repeats=n_repeats, seed=seed)


def importance_never_restores(score, X, y, n_repeats, seed):
    rng, baseline, shuffled = np.random.default_rng(seed), score(X, y), X.copy()
    drops = []
    for column in range(X.shape[1]):
        shuffled[:, column] = rng.permutation(shuffled[:, column])  # earlier columns stay shuffled
        drops.append(baseline - score(shuffled, y))
    return np.array(drops)


def importance_shuffles_in_place(score, X, y, n_repeats, seed):
    rng, baseline = np.random.default_rng(seed), score(X, y)
    drops = []
    for column in range(X.shape[1]):
        original = X[:, column].copy()
        X[:, column] = rng.permutation(X[:, column])
        drops.append(baseline - score(X, y))
        X[:, column] = original[::-1]  # "restored", but in the wrong order
    return np.array(drops)


def _importance_cases() -> list[Case]:
    rng = np.random.default_rng(90)
    cases = []
    # Tolerances: 5 x sqrt(2) x the standard deviation of the reference over 200 seeds (0.0049 and 0.0115 for the
    # most variable column): two correct answers with different shuffles differ by less.
    for n, repeats, atol in ((400, 20, 0.035), (150, 10, 0.08)):
        X = rng.normal(size=(n, 4))
        y = (X[:, 0] + 0.5 * X[:, 2] > 0).astype(int)
        cases.append(Case((_rule_score, X, y, repeats, 0), f"{n} rows, {repeats} repeats, a score that uses columns "
                          "0 and 2 only (accuracy of x0 + 0.5 x2 > 0)", atol=atol))
    return cases


register(Spec(
    "09.permutation_importance", _permutation_reference, _importance_cases, seed=(4, int),
    hint="For each column: shuffle that column alone in a fresh copy of X, record score(intact) - score(shuffled); "
         "average over the repeats.",
    mistakes=(
        Mistake(importance_sign_flipped, "Importance is the drop: score before minus score after shuffling."),
        Mistake(importance_never_restores, "Shuffle one column at a time, starting again from the intact data each "
                                           "time."),
        Mistake(importance_shuffles_in_place, mutation_hint("X")),
    )))


# --- 09.integrated_gradients: the tolerance is the gap between the two integration rules the lab allows ---

def _midpoint(model, x, baseline, steps, target):
    alphas = ((torch.arange(steps, dtype=torch.float32) + 0.5) / steps)[:, None]
    path = (baseline + alphas * (x - baseline)).detach().requires_grad_(True)
    (gradients,) = torch.autograd.grad(model(path)[:, target].sum(), path)
    return ((x - baseline) * gradients.mean(dim=0)).detach()


def _ig_reference(model, x, baseline, steps, target):
    return explain.integrated_gradients(model, x, baseline, steps=steps, target=target)


def ig_ignores_baseline(model, x, baseline, steps, target):
    return explain.integrated_gradients(model, x, torch.zeros_like(x), steps=steps, target=target)


def ig_times_x(model, x, baseline, steps, target):
    return explain.integrated_gradients(model, x, baseline, steps=steps, target=target) / (x - baseline) * x


def ig_without_difference(model, x, baseline, steps, target):
    return explain.integrated_gradients(model, x, baseline, steps=steps, target=target) / (x - baseline)


def ig_one_interval(model, x, baseline, steps, target):
    return explain.integrated_gradients(model, x, baseline, steps=1, target=target)


def ig_gradient_at_x_only(model, x, baseline, steps, target):
    return explain.gradient_times_input(model, x, target=target)


def _network(sizes, seed, gain):
    with global_seed(seed):  # nn.Linear draws from torch's global generator; the caller's state is kept
        model = nn.Sequential(nn.Linear(sizes[0], sizes[1]), nn.Tanh(), nn.Linear(sizes[1], sizes[2]))
    with torch.no_grad():
        model[0].weight.mul_(gain)  # a larger gain: a more curved network, where the path matters
    return model


def _ig_cases() -> list[Case]:
    generator = torch.Generator().manual_seed(91)
    cases = []
    for (sizes, gain, steps, target, baseline_kind), seed in zip(
            ((((6, 16, 3), 1.0, 64, 2, "zeros")), (((6, 16, 3), 3.0, 32, 0, "random")),
             (((4, 8, 2), 4.0, 16, 1, "ones")), (((10, 32, 5), 2.0, 64, 4, "random"))), range(92, 96)):
        model = _network(sizes, seed, gain)
        x = torch.randn(sizes[0], generator=generator) * 1.5
        baseline = {"zeros": torch.zeros(sizes[0]), "ones": torch.ones(sizes[0]),
                    "random": torch.randn(sizes[0], generator=generator)}[baseline_kind]
        x[0] = baseline[0]  # one feature equal to the baseline: its attribution is exactly 0
        trapezoid, midpoint = _ig_reference(model, x, baseline, steps, target), _midpoint(model, x, baseline, steps, target)
        atol = 2 * float((trapezoid - midpoint).abs().max()) + 1e-6  # allowed rules differ by this; float32 1e-6
        cases.append(Case((model, x, baseline, steps, target), f"a {'-'.join(map(str, sizes))} tanh network (gain "
                          f"{gain}), baseline {baseline_kind}, steps={steps}, target {target}", atol=atol,
                          size=sum(sizes)))
    return cases


register(Spec(
    "09.integrated_gradients", _ig_reference, _ig_cases,
    hint="Average the gradient of output[target] at baseline + a (x - baseline) for a from 0 to 1 (steps + 1 "
         "points, trapezoid or midpoint rule), then multiply by (x - baseline).",
    mistakes=(
        Mistake(ig_ignores_baseline, "Use the baseline you were given; it is not always zeros."),
        Mistake(ig_times_x, "Multiply by (x - baseline), not by x: the path starts at the baseline."),
        Mistake(ig_without_difference, "Multiply the average gradient by (x - baseline)."),
        Mistake(ig_gradient_at_x_only, "That is the gradient at x alone; integrate along the path from the baseline."),
        Mistake(ig_one_interval, "Use `steps` intervals along the path (steps + 1 points); one interval only "
                                 "averages the gradients at the two ends."),
    )))


# --- 09.weighted_r2 ---

def r2_unweighted(y, y_hat, w):
    return explain.weighted_r2(y, y_hat, np.ones_like(y))


def r2_plain_mean(y, y_hat, w):
    return float(1 - np.sum(w * (y - y_hat) ** 2) / np.sum(w * (y - y.mean()) ** 2))


def r2_total_unweighted(y, y_hat, w):
    return float(1 - np.sum(w * (y - y_hat) ** 2) / np.sum((y - y.mean()) ** 2))


def _r2_cases() -> list[Case]:
    y, y_hat = np.array([1.0, 3.0, 2.0, 5.0, 4.0, 0.5]), np.array([1.5, 2.5, 2.0, 3.5, 4.5, 1.0])
    weights = np.array([1.0, 0.1, 2.0, 0.5, 3.0, 0.2])
    cases = [Case((y, y_hat, weights), f"y={fmt(y)}, y_hat={fmt(y_hat)}, w={fmt(weights)}")]
    rng = np.random.default_rng(97)
    for n, noise in ((10, 0.3), (50, 3.0), (200, 0.8)):
        y = rng.normal(-2, 2, n)  # negative targets
        y_hat = y + rng.normal(0, noise, n)  # noise 3: a fit worse than the mean, R² below 0
        w = rng.exponential(1.0, n) * (rng.random(n) > 0.2)  # some weights exactly 0
        cases.append(Case((y, y_hat, w), f"{n} negative-centred targets, noise {noise}, some zero weights"))
    return cases


register(Spec(
    "09.weighted_r2", explain.weighted_r2, _r2_cases,
    hint="1 - sum(w (y - y_hat)^2) / sum(w (y - weighted mean of y)^2).",
    mistakes=(
        Mistake(r2_unweighted, "Use the weights: this is the plain R²."),
        Mistake(r2_plain_mean, "Centre y on its weighted mean, np.average(y, weights=w)."),
        Mistake(r2_total_unweighted, "Weight the total sum of squares too."),
    )))


# --- 09.occlusion: features (F,) and sequences of embeddings (T, d); the model's mode must come back ---

def _forward_drops(model, x, replaced_rows, target):
    with torch.no_grad():
        return model(x[None])[0, target] - model(replaced_rows)[:, target]


def occlusion_cumulative(model, x, baseline, target):
    model.eval()
    current, rows = x.clone(), []
    for i in range(len(x)):
        current[i] = baseline[i]                 # never put position i back
        rows.append(current.clone())
    drops = _forward_drops(model, x, torch.stack(rows), target)
    model.train()
    return drops


def _single_replacements(x, baseline):
    rows = x.unsqueeze(0).repeat(len(x), *([1] * x.ndim))
    rows[torch.arange(len(x)), torch.arange(len(x))] = baseline
    return rows


def occlusion_output_not_drop(model, x, baseline, target):
    was = model.training
    model.eval()
    with torch.no_grad():
        out = model(_single_replacements(x, baseline))[:, target]
    model.train(was)
    return out


def occlusion_sign_reversed(model, x, baseline, target):
    return -explain.occlusion(model, x, baseline, target)


def occlusion_with_zeros(model, x, baseline, target):
    return explain.occlusion(model, x, torch.zeros_like(x), target)


def occlusion_keeps_only_one(model, x, baseline, target):
    was = model.training
    model.eval()
    rows = baseline.unsqueeze(0).repeat(len(x), *([1] * x.ndim))
    rows[torch.arange(len(x)), torch.arange(len(x))] = x
    with torch.no_grad():
        drops = model(rows)[:, target] - model(baseline[None])[0, target]
    model.train(was)
    return drops


def occlusion_leaves_eval_mode(model, x, baseline, target):
    model.eval()
    return _forward_drops(model, x, _single_replacements(x, baseline), target)


class _TinySequenceModel(nn.Module):
    """(batch, time, d) -> (batch, classes): a position-aware mix, so every position and order matter."""

    def __init__(self, time, d, classes, seed, dropout=0.0):
        super().__init__()
        with global_seed(seed):
            self.mix = nn.Linear(time * d, 16)
            self.drop = nn.Dropout(dropout)
            self.out = nn.Linear(16, classes)

    def forward(self, x):
        return self.out(self.drop(torch.tanh(self.mix(x.flatten(1)))))


def _occlusion_cases() -> list[Case]:
    generator = torch.Generator().manual_seed(97)
    cases = []
    for sizes, gain, target, kind, seed in (((5, 12, 3), 2.0, 1, "random", 98), ((3, 8, 2), 1.0, 0, "zeros", 99),
                                            ((8, 16, 4), 3.0, 3, "ones", 100)):
        model = _network(sizes, seed, gain)
        x = torch.randn(sizes[0], generator=generator) * 1.5
        baseline = {"zeros": torch.zeros(sizes[0]), "ones": torch.ones(sizes[0]),
                    "random": torch.randn(sizes[0], generator=generator)}[kind]
        x[-1] = baseline[-1]            # a feature already at its baseline: its drop is exactly 0
        cases.append(Case((model, x, baseline, target), f"a {'-'.join(map(str, sizes))} tanh network, {sizes[0]} "
                          f"features, baseline {kind}, target {target}", atol=1e-5, size=sum(sizes)))
    for time, d, dropout, seed in ((4, 3, 0.0, 101), (6, 2, 0.5, 102)):
        model = _TinySequenceModel(time, d, 3, seed, dropout)
        x, baseline = torch.randn(time, d, generator=generator), torch.randn(time, d, generator=generator)
        label = f"a sequence of {time} embeddings of size {d}" + (", model in training mode with dropout" if dropout else "")
        cases.append(Case((model, x, baseline, 2), label, atol=1e-5, size=time * d + 20))
    return cases


register(Spec(
    "09.occlusion", explain.occlusion, _occlusion_cases, measure=with_model_mode,
    hint="For each position i (x[i]: a feature, or one row of a sequence), copy x, set position i to baseline[i], "
         "and return model(x)[target] minus model(copy)[target], with the model in eval mode and its mode restored.",
    mistakes=(
        Mistake(occlusion_cumulative, "Replace one position at a time, starting from x again for each: earlier "
                                      "positions must be put back."),
        Mistake(occlusion_output_not_drop, "Return the drop, model(x)[target] - model(occluded)[target], not the "
                                           "occluded output itself."),
        Mistake(occlusion_sign_reversed, "The drop is model(x)[target] - model(occluded)[target]: positive when the "
                                         "position supported the target."),
        Mistake(occlusion_with_zeros, "Replace with the baseline you were given, not zeros."),
        Mistake(occlusion_keeps_only_one, "Occlusion removes one position from x; it does not add one position to "
                                          "the baseline."),
        Mistake(occlusion_leaves_eval_mode, MODE_HINT),  # caught by the side-effect contract
    )))
