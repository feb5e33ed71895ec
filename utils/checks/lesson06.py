"""Checks for lab 06 (tuning and ensembles): expected_improvement, successive_halving, out_of_fold_proba,
expected_max_of_normals."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier

from utils import tuning
from utils.checks.core import Case, Mistake, Spec, register

# --- 06.expected_improvement ---


def ei_for_minimisation(mu, sigma, best, xi=0.0):
    mu, sigma = np.asarray(mu, float), np.asarray(sigma, float)
    gain = best - mu - xi
    z = np.where(sigma > 0, gain / np.where(sigma > 0, sigma, 1.0), 0.0)
    return np.where(sigma > 0, gain * stats.norm.cdf(z) + sigma * stats.norm.pdf(z), 0.0)


def ei_without_exploration(mu, sigma, best, xi=0.0):
    mu, sigma = np.asarray(mu, float), np.asarray(sigma, float)
    gain = mu - best - xi
    z = np.where(sigma > 0, gain / np.where(sigma > 0, sigma, 1.0), 0.0)
    return np.where(sigma > 0, gain * stats.norm.cdf(z), 0.0)


def ei_divides_by_zero(mu, sigma, best, xi=0.0):
    mu, sigma = np.asarray(mu, float), np.asarray(sigma, float)
    gain = mu - best - xi
    with np.errstate(divide="ignore", invalid="ignore"):
        z = gain / sigma
        return gain * stats.norm.cdf(z) + sigma * stats.norm.pdf(z)


def ei_ignores_xi(mu, sigma, best, xi=0.0):
    return tuning.expected_improvement(mu, sigma, best, 0.0)


def _ei_cases() -> list[Case]:
    cases = [Case((np.array([1.0]), np.array([1.0]), 1.0, 0.0), "mu=[1], sigma=[1], best=1 (at the incumbent)", size=0),
             Case((np.array([2.0, 0.0]), np.array([0.5, 0.5]), 1.0, 0.0), "mu=[2, 0], sigma=[0.5, 0.5], best=1", size=1),
             Case((np.array([3.0, 0.5]), np.array([0.0, 1.0]), 1.0, 0.0), "mu=[3, 0.5], sigma=[0, 1], best=1 (sigma 0: a known point)",
                  size=2),
             Case((np.array([0.2, -0.4]), np.array([0.3, 2.0]), -0.1, 0.05), "mu=[0.2, -0.4], sigma=[0.3, 2], best=-0.1, xi=0.05",
                  size=3)]
    rng = np.random.default_rng(60)
    for n in (10, 200):
        cases.append(Case((rng.normal(0, 1, n), np.abs(rng.normal(0, 1, n)), float(rng.normal()), 0.01),
                          f"{n} random means and standard deviations, xi=0.01", atol=1e-9, size=10 + n))
    return cases


register(Spec(
    "06.expected_improvement", tuning.expected_improvement, _ei_cases,
    hint="For maximisation: gain = mu - best - xi, z = gain / sigma, EI = gain * norm.cdf(z) + sigma * norm.pdf(z); "
         "where sigma is 0 return 0 (use np.where so nothing divides by zero).",
    mistakes=(
        Mistake(ei_for_minimisation, "The search maximises a score: the gain is mu - best - xi (for a loss you would "
                                     "use best - mu)."),
        Mistake(ei_without_exploration, "Add the exploration term sigma * norm.pdf(z): without it EI is zero at the "
                                        "incumbent and the search never explores uncertain points."),
        Mistake(ei_divides_by_zero, "Where sigma is 0 return 0 instead of dividing by zero (np.where(sigma > 0, ..., "
                                    "0.0), with a safe denominator inside)."),
        Mistake(ei_ignores_xi, "Subtract xi from the gain (mu - best - xi): xi demands a minimum improvement and "
                               "pushes the search to explore."),
    )))


# --- 06.successive_halving ---


def _halving(function, args):
    configs, scores, min_budget, max_budget, eta = args
    table = dict(zip(configs, scores))
    return function(list(configs), lambda config, budget: table[config] * (1 - 1 / (1 + budget)), min_budget,
                    max_budget, eta)


def _halving_summary(result, args):
    return (result["best_index"], [float(r[0]) for r in result["rungs"]], [len(r[1]) for r in result["rungs"]],
            [sorted(int(i) for i, _ in r[1]) for r in result["rungs"]], float(result["budget_spent"]))


def _halving_like(got, expected):
    if not isinstance(got, dict) or not {"best", "best_index", "rungs", "budget_spent"} <= set(got):
        return ("your result should be a dict with keys 'best', 'best_index', 'rungs' and 'budget_spent'.",
                "Return {'best': configs[i], 'best_index': i, 'rungs': [(budget, [(index, score), ...]), ...], "
                "'budget_spent': total}.")
    return None


def _sh(configs, evaluate, min_budget, max_budget, eta, *, keep=None, grow=True, cost=True, worst=False):
    alive, budget, rungs, spent = list(range(len(configs))), min_budget, [], 0.0
    while True:
        scores = [(i, float(evaluate(configs[i], budget))) for i in alive]
        spent += budget * len(alive) if cost else budget
        rungs.append((budget, scores))
        if len(alive) == 1 or budget * eta > max_budget:
            break
        n_keep = keep(len(alive), eta) if keep else max(1, len(alive) // eta)
        ranked = sorted(scores, key=lambda pair: pair[1] if worst else -pair[1])
        alive = [i for i, _ in ranked[:n_keep]]
        budget = budget * eta if grow else budget
        if not grow and len(rungs) > 20:
            break
    winner = max(rungs[-1][1], key=lambda pair: pair[1])[0]
    return {"best": configs[winner], "best_index": winner, "rungs": rungs, "budget_spent": spent}


def halving_keeps_the_worst(configs, evaluate, min_budget, max_budget, eta=3):
    return _sh(configs, evaluate, min_budget, max_budget, eta, worst=True)


def halving_rounds_up(configs, evaluate, min_budget, max_budget, eta=3):
    return _sh(configs, evaluate, min_budget, max_budget, eta, keep=lambda n, e: math.ceil(n / e))


def halving_counts_one_budget_per_rung(configs, evaluate, min_budget, max_budget, eta=3):
    return _sh(configs, evaluate, min_budget, max_budget, eta, cost=False)


def _halving_cases() -> list[Case]:
    cases = [Case((tuple("abcdefghi"), (0.1, 0.9, 0.3, 0.8, 0.2, 0.7, 0.4, 0.6, 0.5), 1, 9, 3),
                  "9 configs 'a'..'i' scoring 0.1, 0.9, 0.3, 0.8, 0.2, 0.7, 0.4, 0.6, 0.5; budgets 1 to 9; eta=3", size=0),
             Case((tuple(range(10)), tuple(np.linspace(0, 1, 10)), 1, 27, 3),
                  "10 configs whose scores rise with their index; budgets 1 to 27; eta=3 (10 // 3 = 3 survive)", size=1),
             Case((tuple(range(5)), (0.5, 0.5, 0.2, 0.9, 0.1), 2, 8, 2),
                  "5 configs scoring 0.5, 0.5, 0.2, 0.9, 0.1; budgets 2 to 8; eta=2", size=2)]
    rng = np.random.default_rng(61)
    for n, eta in ((27, 3), (64, 4)):
        cases.append(Case((tuple(range(n)), tuple(rng.random(n)), 1, eta ** 3, eta), f"{n} configs with random scores, eta={eta}",
                          size=n))
    return cases


register(Spec(
    "06.successive_halving", tuning.successive_halving, _halving_cases, invoke=_halving, measure=_halving_summary,
    contract=_halving_like,
    hint="Evaluate every surviving config at the current budget, add budget x (number evaluated) to the total, keep "
         "the best max(1, n // eta) (highest scores, stable order), multiply the budget by eta; stop when one is left "
         "or budget * eta > max_budget.",
    mistakes=(
        Mistake(halving_keeps_the_worst, "Keep the highest scores: sort by score in decreasing order (the search "
                                         "maximises)."),
        Mistake(halving_rounds_up, "Keep max(1, n // eta) configurations (rounding down), as Hyperband does: "
                                   "math.ceil keeps one too many when eta does not divide n."),
        Mistake(halving_counts_one_budget_per_rung, "The budget spent in a rung is the budget times the number of "
                                                    "configurations evaluated in it."),
    )))


# --- 06.out_of_fold_proba ---


def _oof(function, args):
    kind, X, y, folds = args
    make = (lambda: LogisticRegression(max_iter=2000)) if kind == "logistic" else (lambda: KNeighborsClassifier(1))
    return function(make, X, y, folds)


def oof_in_sample(make_model, X, y, folds):
    return make_model().fit(X, y).predict_proba(X)


def oof_one_model(make_model, X, y, folds):
    train, _ = folds[0]
    return make_model().fit(np.asarray(X)[train], np.asarray(y)[train]).predict_proba(X)


def oof_predicts_training_rows(make_model, X, y, folds):
    X, y = np.asarray(X), np.asarray(y)
    out = np.zeros((len(y), len(np.unique(y))))
    counts = np.zeros(len(y))
    for train, _ in folds:
        out[train] += make_model().fit(X[train], y[train]).predict_proba(X[train])
        counts[train] += 1
    return out / counts[:, None]


def _folds(y, k, seed):
    from utils.data import stratified_kfold_indices
    return stratified_kfold_indices(y, k=k, seed=seed)


def _oof_cases() -> list[Case]:
    X = np.array([[0.0], [0.1], [0.2], [1.0], [1.1], [1.2]])
    y = np.array([0, 0, 1, 1, 1, 0])
    cases = [Case(("nearest", X, y, [(np.array([2, 3, 4, 5]), np.array([0, 1])), (np.array([0, 1, 4, 5]), np.array([2, 3])),
                                     (np.array([0, 1, 2, 3]), np.array([4, 5]))]),
                  "1-nearest-neighbour, 6 rows in 3 hand-made folds", size=0)]
    rng = np.random.default_rng(62)
    for n, classes, k in ((60, 3, 3), (150, 4, 5)):
        Xr, yr = rng.normal(size=(n, 4)), rng.integers(0, classes, n)
        Xr[:, 0] += yr
        cases.append(Case(("logistic", Xr, yr, _folds(yr, k, 0)), f"logistic regression, {n} rows of {classes} classes, "
                          f"{k} stratified folds", atol=1e-6, size=n))
        cases.append(Case(("nearest", Xr, yr, _folds(yr, k, 1)), f"1-nearest-neighbour, {n} rows, {k} folds", size=n + 1))
    return cases


register(Spec(
    "06.out_of_fold_proba", tuning.out_of_fold_proba, _oof_cases, invoke=_oof,
    hint="For each (train, held_out) fold: fit make_model() on the train rows only and write its predict_proba of the "
         "held-out rows into those rows of the output (one column per class, in np.unique(y) order).",
    mistakes=(
        Mistake(oof_in_sample, "Predict each row with a model that did not see it: fitting once on all rows gives "
                               "in-sample probabilities (1-nearest-neighbour is then always right), which leak."),
        Mistake(oof_one_model, "Fit one model per fold, on that fold's training rows, and predict only its held-out "
                               "rows: a single model predicts the rows it was trained on."),
        Mistake(oof_predicts_training_rows, "Predict the held-out rows of each fold (the second index array), not "
                                            "the rows the model was fitted on."),
    )))


# --- 06.expected_max_of_normals ---


def max_asymptotic(n):
    return math.sqrt(2 * math.log(n)) if n > 1 else 0.0


def max_without_n(n):
    x = np.linspace(-10, 10, 20001)
    return float(np.trapezoid(x * stats.norm.pdf(x) * stats.norm.cdf(x) ** (n - 1), x))


def _max_cases() -> list[Case]:
    return [Case((n,), f"n={n}", atol=1e-4, size=i) for i, n in enumerate((1, 2, 3, 10, 27, 100, 1000))]


register(Spec(
    "06.expected_max_of_normals", tuning.expected_max_of_normals, _max_cases,
    hint="Integrate x times the density of the maximum, n * norm.pdf(x) * norm.cdf(x) ** (n - 1), over a fine grid "
         "from -10 to 10 (np.trapezoid).",
    mistakes=(
        Mistake(max_asymptotic, "sqrt(2 ln n) is the large-n limit and overstates small n (1.48 instead of 0.85 at "
                                "n = 3, 2.15 instead of 1.54 at n = 10): integrate the exact density."),
        Mistake(max_without_n, "The density of the maximum of n draws is n * pdf(x) * cdf(x) ** (n - 1): keep the "
                               "factor n."),
    )))
