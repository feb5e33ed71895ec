"""Checks for lab 13 (robustness and security): fgsm, pgd, attack_success_rate, extract_softmax_regression."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from utils import robustness
from utils.checks.core import (DETACHED_HINT, GRAD_HINT, MODE_HINT, REQUIRES_GRAD_HINT, Case, Mistake, Spec, global_seed, register,
                               with_model_mode)


def _model(seed: int, n_in: int, dropout: bool = False, zero_column: bool = False) -> nn.Module:
    with global_seed(seed):  # nn.Linear draws from torch's global generator; the caller's state is kept
        layers = [nn.Linear(n_in, 5), nn.ReLU()] + ([nn.Dropout(0.5)] if dropout else []) + [nn.Linear(5, 3)]
    model = nn.Sequential(*layers)
    if zero_column:                       # input 0 has no effect: its gradient is exactly 0 (sign 0)
        with torch.no_grad():
            model[0].weight[:, 0] = 0.0
    return model


def _inputs(seed: int, n: int, n_in: int):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, n_in, generator=g)
    x[0, :2] = torch.tensor([0.0, 1.0])   # values on the edges of the valid range: the clamp matters
    return x, torch.randint(0, 3, (n,), generator=g)


# --- 13.fgsm ---


def fgsm_descends(model, x, y, eps):
    x = x.detach()
    g = robustness.input_gradient(model, x, y)
    return (x - eps * g.sign()).clamp(0, 1)


def fgsm_without_clamp(model, x, y, eps):
    x = x.detach()
    g = robustness.input_gradient(model, x, y)
    return x + eps * g.sign()


def fgsm_with_the_gradient(model, x, y, eps):
    x = x.detach()
    g = robustness.input_gradient(model, x, y)
    return (x + eps * g).clamp(0, 1)


def fgsm_sign_of_zero_is_one(model, x, y, eps):
    x = x.detach()
    g = robustness.input_gradient(model, x, y)
    return (x + eps * torch.where(g >= 0, 1.0, -1.0)).clamp(0, 1)


def fgsm_leaves_eval_mode(model, x, y, eps):
    x = x.detach()
    model.eval()
    return (x + eps * robustness.input_gradient(model, x, y).sign()).clamp(0, 1)


def fgsm_on_the_callers_x(model, x, y, eps):
    was_training = model.training
    model.eval()
    x.requires_grad_(True)                # switches on requires_grad of the caller's tensor
    (gradient,) = torch.autograd.grad(nn.functional.cross_entropy(model(x), y, reduction="sum"), x)
    model.train(was_training)
    return (x.detach() + eps * gradient.sign()).clamp(0, 1)


def fgsm_backward_into_x(model, x, y, eps):
    was_training = model.training
    model.eval()
    x = x if x.requires_grad else x.detach().clone().requires_grad_(True)
    nn.functional.cross_entropy(model(x), y, reduction="sum").backward()   # fills the caller's x.grad
    model.train(was_training)
    return (x.detach() + eps * x.grad.sign()).clamp(0, 1)


def fgsm_not_detached(model, x, y, eps):
    return (x + eps * robustness.input_gradient(model, x, y).sign()).clamp(0, 1)


def _fgsm_cases() -> list[Case]:
    cases = []
    for i, (n, n_in, eps, dropout, zero) in enumerate(((3, 4, 0.1, False, False), (4, 6, 0.3, True, False),
                                                        (5, 6, 0.05, False, True), (2, 4, 0.0, False, False),
                                                        (20, 8, 0.2, True, True))):
        model = _model(130 + i, n_in, dropout, zero)
        model.train(dropout)              # models with dropout arrive in training mode, the others in eval mode
        x, y = _inputs(130 + i, n, n_in)
        cases.append(Case((model, x, y, eps), f"{n} inputs of {n_in} features, eps {eps}"
                          + (", a model with dropout in training mode" if dropout else "")
                          + (", one input the model ignores (gradient 0)" if zero else ""), atol=1e-6, size=i))
    model = _model(136, 4)
    x, y = _inputs(136, 3, 4)
    cases.append(Case((model, x.requires_grad_(True), y, 0.1), "3 inputs of 4 features that require grad (the output "
                      "of a differentiable pipeline), eps 0.1", atol=1e-6, size=-1))
    return cases


register(Spec(
    "13.fgsm", robustness.fgsm, _fgsm_cases, measure=with_model_mode, detached=True,
    hint="Gradient of the summed cross-entropy with respect to x (in eval mode), then "
         "clamp(x + eps * sign(gradient), 0, 1); put the model back in the mode it was in.",
    mistakes=(
        Mistake(fgsm_descends, "Step up the loss, not down: x + eps * sign(gradient). Subtracting makes the "
                               "model more confident in the right answer."),
        Mistake(fgsm_without_clamp, "Clamp the result to [0, 1]: pixels outside the valid range are not images "
                                    "an attacker could submit."),
        Mistake(fgsm_with_the_gradient, "Use the sign of the gradient, scaled by eps: every pixel moves by exactly "
                                        "eps. The raw gradient is tiny and not bounded by eps."),
        Mistake(fgsm_sign_of_zero_is_one, "Use torch.sign: where the gradient is exactly 0 the input does not "
                                          "matter to the loss, and sign(0) = 0 leaves it unchanged."),
        Mistake(fgsm_leaves_eval_mode, MODE_HINT),  # caught by the side-effect contracts, each with its own hint
        Mistake(fgsm_on_the_callers_x, REQUIRES_GRAD_HINT),
        Mistake(fgsm_backward_into_x, GRAD_HINT),
        Mistake(fgsm_not_detached, DETACHED_HINT),
    )))


# --- 13.pgd ---


def _start(x, eps, seed, random_start):
    if not random_start:
        return x.clone()
    g = torch.Generator().manual_seed(seed)
    return (x + (torch.rand(x.shape, generator=g) * 2 - 1) * eps).clamp(0, 1)


def _pgd_like(step_rule):
    def attack(model, x, y, eps, alpha, steps, seed=0, random_start=True):
        was = model.training
        model.eval()
        adv = _start(x, eps, seed, random_start)
        for _ in range(steps):
            adv = step_rule(adv, x, robustness.input_gradient(model, adv, y), eps, alpha)
        model.train(was)
        return adv.detach()
    return attack


pgd_clips_the_step = _pgd_like(lambda adv, x, g, eps, alpha: (adv + (alpha * g.sign()).clamp(-eps, eps)).clamp(0, 1))
pgd_clips_the_step.__name__ = "pgd_clips_the_step"
pgd_steps_by_eps = _pgd_like(
    lambda adv, x, g, eps, alpha: torch.max(torch.min(adv + eps * g.sign(), x + eps), x - eps).clamp(0, 1))
pgd_steps_by_eps.__name__ = "pgd_steps_by_eps"
pgd_descends = _pgd_like(
    lambda adv, x, g, eps, alpha: torch.max(torch.min(adv - alpha * g.sign(), x + eps), x - eps).clamp(0, 1))
pgd_descends.__name__ = "pgd_descends"


def pgd_ignores_random_start(model, x, y, eps, alpha, steps, seed=0, random_start=True):
    return robustness.pgd(model, x, y, eps, alpha, steps, seed=seed, random_start=False)


def _pgd_cases() -> list[Case]:
    cases = []
    settings = ((3, 4, 0.1, 0.05, 1, True), (4, 6, 0.05, 0.03, 6, False), (5, 6, 0.1, 0.04, 5, True),
                (4, 4, 0.2, 0.05, 0, True), (16, 8, 0.15, 0.06, 8, True))
    for i, (n, n_in, eps, alpha, steps, random_start) in enumerate(settings):
        model = _model(140 + i, n_in, dropout=i == 4).train(i == 4)
        x, y = _inputs(140 + i, n, n_in)
        cases.append(Case((model, x, y, eps, alpha, steps, 3 + i, random_start),
                          f"{n} inputs, eps {eps}, alpha {alpha}, {steps} steps, seed {3 + i}, random_start="
                          f"{random_start}", atol=1e-6, size=i))
    return cases


register(Spec(
    "13.pgd", robustness.pgd, _pgd_cases, measure=with_model_mode, detached=True, seed=(6, lambda number: number),
    hint="Start at clamp(x + (torch.rand(x.shape, generator=torch.Generator().manual_seed(seed)) * 2 - 1) * eps, 0, 1) "
         "(or at x without random_start); each step: adv + alpha * sign(gradient at adv), then clip adv - x to "
         "[-eps, eps] and adv to [0, 1]. Gradients in eval mode; restore the model's mode.",
    mistakes=(
        Mistake(pgd_clips_the_step, "Project the total perturbation, not the step: after each step clip adv - x to "
                                    "[-eps, eps] (torch.max(torch.min(adv, x + eps), x - eps)). Clipping each "
                                    "step lets the steps add up past eps."),
        Mistake(pgd_steps_by_eps, "Each step has size alpha, not eps: small steps, projected, are what makes PGD "
                                  "stronger than FGSM."),
        Mistake(pgd_descends, "Step up the loss: adv + alpha * sign(gradient)."),
        Mistake(pgd_ignores_random_start, "With random_start=True, start from a uniform point in the eps-ball drawn "
                                          "from the seed (torch.rand with a seeded generator, times 2, minus 1, "
                                          "times eps), clamped to [0, 1]."),
    )))


# --- 13.attack_success_rate ---


def asr_counts_every_row(predictions, labels, target):
    return float(np.mean(np.asarray(predictions) == target))


def asr_counts_any_error(predictions, labels, target):
    predictions, labels = np.asarray(predictions), np.asarray(labels)
    others = labels != target
    return float(np.mean(predictions[others] != labels[others]))


def asr_as_a_count(predictions, labels, target):
    predictions, labels = np.asarray(predictions), np.asarray(labels)
    return int(np.sum(predictions[labels != target] == target))


def _asr_cases() -> list[Case]:
    rng = np.random.default_rng(13)
    cases = [Case(([0, 0, 1, 0], [0, 1, 1, 2], 0), "predictions [0, 0, 1, 0], labels [0, 1, 1, 2], target 0", size=0),
             Case((np.array([3, 3, 3]), np.array([3, 1, 2]), 3), "every image predicted as the target 3", size=1),
             Case((np.array([1, 2, 0, 2]), np.array([0, 2, 1, 2]), 2), "no image moved to the target 2", size=2)]
    for i, n in enumerate((30, 500)):
        labels = rng.integers(0, 10, n)
        predictions = np.where(rng.random(n) < 0.6, 7, rng.integers(0, 10, n))
        cases.append(Case((predictions, labels, 7), f"{n} random predictions, target 7", size=3 + i))
    return cases


register(Spec(
    "13.attack_success_rate", robustness.attack_success_rate, _asr_cases,
    hint="Keep only the images whose true label is not the target; return the fraction of them predicted as the target.",
    mistakes=(
        Mistake(asr_counts_every_row, "Leave out the images already of the target class: calling a real 0 a 0 is not "
                                      "the trigger's doing, and counting them inflates the rate."),
        Mistake(asr_counts_any_error, "Count predictions equal to the target, not every wrong prediction: a backdoor "
                                      "succeeds only when the trigger sends the image to the attacker's class."),
        Mistake(asr_as_a_count, "Return a rate (a float between 0 and 1): divide by the number of non-target images."),
    )))


# --- 13.extract_softmax_regression ---


class _Victim:
    """A softmax-regression prediction API that counts the rows it answers."""

    def __init__(self, weights, bias):
        self.weights, self.bias, self.rows = weights, bias, 0

    def __call__(self, queries):
        self.rows += len(queries)
        return robustness.softmax_regression_proba(queries, self.weights, self.bias)


def _extraction(output, args):
    """The stolen model's probabilities on probe inputs (either normalisation passes), and the rows queried."""
    victim = args[0]
    weights, bias = (np.asarray(part, dtype=float) for part in output)
    probe = np.random.default_rng(99).random((40, victim.weights.shape[1]))
    return robustness.softmax_regression_proba(probe, weights, bias), victim.rows


def _solve(query, n_features, seed, transform, intercept=True):
    queries = np.random.default_rng(seed).random((n_features + 1, n_features))
    target = transform(query(queries))
    design = np.hstack([queries, np.ones((len(queries), 1))]) if intercept else queries
    solution = np.linalg.lstsq(design, target, rcond=None)[0]
    return (solution[:-1].T, solution[-1]) if intercept else (solution.T, np.zeros(target.shape[1]))


def extract_from_probabilities(query, n_features, seed=0):
    return _solve(query, n_features, seed, lambda p: p - p.mean(1, keepdims=True))


def extract_with_d_queries(query, n_features, seed=0):
    queries = np.random.default_rng(seed).random((n_features, n_features))
    logp = np.log(query(queries))
    centred = logp - logp.mean(1, keepdims=True)
    solution = np.linalg.lstsq(np.hstack([queries, np.ones((n_features, 1))]), centred, rcond=None)[0]
    return solution[:-1].T, solution[-1]


def extract_without_intercept(query, n_features, seed=0):
    return _solve(query, n_features, seed, lambda p: np.log(p) - np.log(p).mean(1, keepdims=True), intercept=False)


def _extraction_cases() -> list[Case]:
    rng = np.random.default_rng(131)
    cases = []
    for i, (classes, features, scale) in enumerate(((2, 1, 1.0), (3, 2, 1.0), (4, 5, 2.0), (10, 16, 3.0))):
        weights, bias = rng.normal(scale=scale, size=(classes, features)), rng.normal(size=classes)
        cases.append(Case((_Victim(weights, bias), features, 7 + i),
                          f"a {classes}-class model on {features} features (bias {np.round(bias, 2).tolist()[:3]}...)",
                          atol=1e-6, size=i))
    return cases


register(Spec(
    "13.extract_softmax_regression", robustness.extract_softmax_regression, _extraction_cases, measure=_extraction,
    hint="Query n_features + 1 points from np.random.default_rng(seed).random; take log-probabilities, subtract each "
         "row's mean (the normaliser cancels), and solve [X, 1] @ [W.T; b] = centred log p with np.linalg.solve.",
    mistakes=(
        Mistake(extract_from_probabilities, "Work with log-probabilities: the probabilities themselves are not linear "
                                            "in x, the log-probabilities are, up to one normaliser per row."),
        Mistake(extract_with_d_queries, "Query n_features + 1 points: each class has n_features weights and a bias, "
                                        "so d queries leave the system one equation short (lstsq then guesses)."),
        Mistake(extract_without_intercept, "Add a column of ones to the queries so the solve also recovers the bias "
                                           "b: that is why d + 1 queries are needed, not d."),
    )))
