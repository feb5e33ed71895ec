"""Checks for lab 17 (versioning and testing): dataset_fingerprint, two_proportion_ztest, sample_size_per_arm,
previous_champion, directional_failure_rate."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pandas as pd
from scipy import stats

from utils import abtest, versioning
from utils.checks.core import Case, Mistake, Spec, like_reference, mutation_hint, register, reject

# --- 17.dataset_fingerprint: judged by its properties, since any sound serialisation gives its own hash ---


def _fingerprint_properties(function, args):
    """Call a fingerprint on the frame and on variants of it; report which properties hold."""
    frame = args[0]
    copy = frame.copy()
    base = function(frame)
    if not frame.equals(copy):                                 # before the variants, which would hide it
        reject("your function changed its input `frame` in place.", mutation_hint("frame"))
    rows = copy.iloc[np.random.default_rng(17).permutation(len(copy))]
    columns = copy[copy.columns[::-1]]
    changed = copy.copy()
    changed.iloc[len(changed) // 2, -1] = _other(changed.iloc[len(changed) // 2, -1])
    moved = copy.copy()
    values = moved[moved.columns[0]].to_numpy()
    partner = int(np.flatnonzero(values != values[0])[0])           # a row whose value differs from the first's
    order = np.arange(len(values))
    order[[0, partner]] = order[[partner, 0]]
    moved[moved.columns[0]] = values[order]                          # two different values trade rows
    return {"SHA-256 hex string": isinstance(base, str) and len(base) == 64 and all(c in "0123456789abcdef" for c in base),
            "same when called again": function(copy) == base,
            "same for shuffled rows": function(rows) == base,
            "same for reordered columns": function(columns) == base,
            "changes when one value changes": function(changed) != base,
            "changes when values move between rows": function(moved) != base,
            "changes when a row is dropped": function(copy.iloc[1:]) != base}


def _other(value):
    return value + 1 if isinstance(value, (int, float, np.integer, np.floating)) else f"{value}-other"


def _fingerprint_cases() -> list[Case]:
    hand = pd.DataFrame({"job": ["Private", "Self-emp", "Private", None], "age": [25, 38, 28, 44],
                         "gain": [0.0, -3.5, 1e-9, 2.25]})
    cases = [Case((hand,), "4 rows: job (one missing), age, gain (negative and tiny values)", size=0)]
    for n, seed in ((30, 1701), (400, 1702)):
        rng = np.random.default_rng(seed)
        frame = pd.DataFrame({"city": rng.choice(["Beijing", "上海", "Lyon"], n), "x": rng.integers(-5, 5, n),
                              "y": rng.normal(0, 1, n).round(3)})      # ties: repeated values
        cases.append(Case((frame,), f"{n} generated rows with repeated values", size=n))
    return cases


def fingerprint_of_rows_in_order(frame):
    return hashlib.sha256(frame.to_csv(index=False).encode()).hexdigest()


def fingerprint_of_columns_in_order(frame):
    return hashlib.sha256("\n".join(sorted(frame.to_csv(index=False, header=False).splitlines())).encode()
                          + ",".join(frame.columns).encode()).hexdigest()


def fingerprint_of_shape_only(frame):
    return hashlib.sha256(f"{sorted(frame.columns)} {frame.shape}".encode()).hexdigest()


def fingerprint_sorting_each_column(frame):
    parts = [f"{c}:{sorted(map(str, frame[c].tolist()))}" for c in sorted(frame.columns)]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


def fingerprint_with_md5(frame):
    return hashlib.md5(versioning.dataset_fingerprint(frame).encode()).hexdigest()


register(Spec(
    "17.dataset_fingerprint", versioning.dataset_fingerprint, _fingerprint_cases, invoke=_fingerprint_properties,
    contract=lambda got, expected: None,
    hint="Sort the columns by name, write each row as one line, sort the lines, and hash all of it with "
         "hashlib.sha256(...).hexdigest().",
    mistakes=(
        Mistake(fingerprint_of_rows_in_order, "Sort the rows' lines before hashing: the same data read in another "
                                              "order must give the same fingerprint."),
        Mistake(fingerprint_of_columns_in_order, "Sort the columns by name first: a column order is not content."),
        Mistake(fingerprint_of_shape_only, "Hash the values, not only the shape and the column names: one changed "
                                           "value is different data."),
        Mistake(fingerprint_sorting_each_column, "Sort whole rows, not each column on its own: values that trade rows "
                                                 "are different data, and sorting columns separately cannot see it."),
        Mistake(fingerprint_with_md5, "Return hashlib.sha256(...).hexdigest(), 64 hex characters: not MD5 (32, with "
                                      "known collisions), not Python's hash() (salted per process)."),
    )))


# --- 17.two_proportion_ztest ---


def ztest_unpooled(successes_a, n_a, successes_b, n_b):
    pa, pb = successes_a / n_a, successes_b / n_b
    se = math.sqrt(pa * (1 - pa) / n_a + pb * (1 - pb) / n_b)
    z = (pb - pa) / se if se > 0 else 0.0
    return float(z), float(2 * stats.norm.sf(abs(z)))


def ztest_one_sided(successes_a, n_a, successes_b, n_b):
    z, _ = abtest.two_proportion_ztest(successes_a, n_a, successes_b, n_b)
    return z, float(stats.norm.sf(abs(z)))


def ztest_a_minus_b(successes_a, n_a, successes_b, n_b):
    z, p = abtest.two_proportion_ztest(successes_a, n_a, successes_b, n_b)
    return -z, p


def ztest_p_without_abs(successes_a, n_a, successes_b, n_b):
    z, _ = abtest.two_proportion_ztest(successes_a, n_a, successes_b, n_b)
    return z, float(2 * stats.norm.sf(z))


def ztest_without_the_degenerate_case(successes_a, n_a, successes_b, n_b):
    pooled = (successes_a + successes_b) / (n_a + n_b)
    se = np.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.float64(successes_b / n_b - successes_a / n_a) / se       # 0 / 0: nan
    return float(z), float(2 * stats.norm.sf(abs(z)))


DEGENERATE_HINT = ("When the pooled rate is 0 or 1 (nobody or everybody converted) the standard error is 0: return "
                   "(0.0, 1.0), as the question says, instead of dividing by it.")


def _ztest_cases() -> list[Case]:
    hand = [(100, 1000, 130, 1000), (1030, 10_000, 1100, 10_000), (450, 500, 430, 520), (7, 40, 2, 35),
            (50, 1000, 50, 1000)]
    rng = np.random.default_rng(1703)
    for _ in range(4):
        n_a, n_b = (int(v) for v in rng.integers(50, 5000, 2))
        hand.append((int(rng.binomial(n_a, 0.3)), n_a, int(rng.binomial(n_b, 0.33)), n_b))
    cases = [Case(args, f"successes_a={args[0]}, n_a={args[1]}, successes_b={args[2]}, n_b={args[3]}", atol=1e-9,
                  size=i) for i, args in enumerate(hand)]
    for i, args in enumerate(((0, 120, 0, 95), (60, 60, 41, 41))):      # the question's promise: pooled rate 0 or 1
        cases.append(Case(args, f"successes_a={args[0]}, n_a={args[1]}, successes_b={args[2]}, n_b={args[3]} (pooled "
                          f"rate {'0' if args[0] == 0 else '1'})", atol=1e-9, size=len(hand) + i, hint=DEGENERATE_HINT))
    return cases


register(Spec(
    "17.two_proportion_ztest", abtest.two_proportion_ztest, _ztest_cases,
    hint="Pool the rates for the standard error: p = (successes_a + successes_b) / (n_a + n_b), "
         "se = sqrt(p (1 − p) (1/n_a + 1/n_b)), z = (rate_b − rate_a) / se, p-value = 2 · P(Z > |z|).",
    mistakes=(
        Mistake(ztest_unpooled, "Under H0 the two rates are equal: pool them for the standard error, "
                                "sqrt(p (1 − p) (1/n_a + 1/n_b)) with p the combined rate."),
        Mistake(ztest_one_sided, "The question is whether B differs from A in either direction: double the tail, "
                                 "2 · P(Z > |z|)."),
        Mistake(ztest_a_minus_b, "z is positive when B converts more: rate_b − rate_a."),
        Mistake(ztest_without_the_degenerate_case, DEGENERATE_HINT),
        Mistake(ztest_p_without_abs, "Take |z| in the tail: with a negative z, 2 · P(Z > z) is above 1."),
    )))


# --- 17.sample_size_per_arm ---


def _size(p1, p2, alpha, power, *, z_alpha=None, z_power=None, factor=2.0, rounding=math.ceil):
    z_alpha = stats.norm.ppf(1 - alpha / 2) if z_alpha is None else z_alpha
    z_power = stats.norm.ppf(power) if z_power is None else z_power
    return int(rounding(factor * ((z_alpha + z_power) / abtest.cohens_h(p1, p2)) ** 2))


def size_one_sided_alpha(p1, p2, alpha=0.05, power=0.8):
    return _size(p1, p2, alpha, power, z_alpha=stats.norm.ppf(1 - alpha))


def size_without_factor_two(p1, p2, alpha=0.05, power=0.8):
    return _size(p1, p2, alpha, power, factor=1.0)


def size_rounded_down(p1, p2, alpha=0.05, power=0.8):
    return _size(p1, p2, alpha, power, rounding=math.floor)


def size_with_power_sign_flipped(p1, p2, alpha=0.05, power=0.8):
    return _size(p1, p2, alpha, power, z_power=stats.norm.ppf(1 - power))


register(Spec(
    "17.sample_size_per_arm", abtest.sample_size_per_arm,
    lambda: [Case(args, f"p1={args[0]}, p2={args[1]}, alpha={args[2]}, power={args[3]}", atol=0, size=i)
             for i, args in enumerate(((0.10, 0.11, 0.05, 0.8), (0.20, 0.25, 0.05, 0.9), (0.05, 0.04, 0.01, 0.8),
                                       (0.5, 0.6, 0.10, 0.8), (0.012, 0.015, 0.05, 0.95)))],
    hint="h = 2·asin(sqrt(p2)) − 2·asin(sqrt(p1)); n = 2 · ((z_{1−α/2} + z_{power}) / h)², rounded up.",
    mistakes=(
        Mistake(size_one_sided_alpha, "The test is two-sided: use z for 1 − alpha/2, not 1 − alpha."),
        Mistake(size_without_factor_two, "The difference of two arms has twice the variance of one: "
                                         "n = 2 · ((z_{1−α/2} + z_power) / h)²."),
        Mistake(size_rounded_down, "Round up (math.ceil): a test one user short has less power than planned."),
        Mistake(size_with_power_sign_flipped, "Power adds z_{power} = norm.ppf(power) (0.84 for 80%), not "
                                              "norm.ppf(1 − power), which is negative."),
    )))


# --- 17.previous_champion ---


def _previous_or_error(function, args):
    try:
        return function(*args)
    except ValueError:
        return "ValueError"


def _guard(history):
    if len(set(history)) < 2:
        raise ValueError("nothing to roll back to")


def previous_is_latest_minus_one(history):
    _guard(history)
    return max(history) - 1


def previous_is_second_to_last(history):
    _guard(history)
    return history[-2]


def previous_is_first(history):
    _guard(history)
    return history[0]


def previous_by_version_number(history):
    _guard(history)
    earlier = [v for v in history if v < history[-1]]
    return max(earlier) if earlier else history[0]


def _history_cases() -> list[Case]:
    hand = [[1, 2, 4], [1, 3, 3], [1, 2, 1], [5, 7], [2, 3, 5, 5, 5], [4, 9, 6, 11]]
    rng = np.random.default_rng(1704)
    for length in (6, 12):
        hand.append(sorted(set(rng.choice(40, length, replace=False).tolist()))[:length] + [int(rng.integers(1, 40))])
    cases = [Case((history,), f"history={history}", atol=0, size=i) for i, history in enumerate(hand)]
    cases += [Case(([],), "history=[] (never set)", atol=0, size=100),
              Case(([5, 5],), "history=[5, 5] (only ever one version)", atol=0, size=101)]
    return cases


register(Spec(
    "17.previous_champion", versioning.previous_champion, _history_cases, invoke=_previous_or_error,
    contract=lambda got, expected: like_reference(got, expected) if not isinstance(expected, str) else (
        None if got == expected else (f"there is nothing to roll back to, so a ValueError was expected; got {got!r}.",
                                      "Raise ValueError when the history is empty or holds only one version.")),
    hint="Walk back from the end of the history and return the first version different from the current one "
         "(history[-1]); raise ValueError if there is none.",
    mistakes=(
        Mistake(previous_is_latest_minus_one, "Version numbers are not the promotion history: a version that was "
                                              "rejected was never champion. Read the alias's history."),
        Mistake(previous_is_second_to_last, "The alias may have been set to the current version more than once: "
                                            "skip entries equal to the current one."),
        Mistake(previous_is_first, "Roll back one step, to the version just before the current one, not to the "
                                   "first ever."),
        Mistake(previous_by_version_number, "A rollback can go to a newer version number (after an "
                                                     "earlier rollback); follow the history's order, not the numbers."),
    )))


# --- 17.directional_failure_rate ---


class _Bumpy:
    """A model whose probability rises and falls with x: sin(x) squashed, so some steps lower it."""

    def predict_proba(self, X):
        p = 1 / (1 + np.exp(-2 * np.sin(np.asarray(X["x"], dtype=float))))
        return np.column_stack([1 - p, p])

    def predict(self, X):
        return (self.predict_proba(X)[:, 1] > 0.5).astype(int)


class _Falling:
    """A logistic curve that falls as x grows."""

    def predict_proba(self, X):
        p = 1 / (1 + np.exp(2 * (np.asarray(X["x"], dtype=float) - 0.3)))
        return np.column_stack([1 - p, p])

    def predict(self, X):
        return (self.predict_proba(X)[:, 1] > 0.5).astype(int)


class _Flat:
    """Ignores x: every step is a tie."""

    def predict_proba(self, X):
        p = np.full(len(X), 0.3)
        return np.column_stack([1 - p, p])

    def predict(self, X):
        return np.zeros(len(X), dtype=int)


def _directional_cases() -> list[Case]:
    rng = np.random.default_rng(1705)
    X = pd.DataFrame({"id": [f"row{i}" for i in range(25)], "x": np.linspace(-3, 3, 25), "z": rng.normal(0, 1, 25)})
    falling = _Falling()
    big = pd.DataFrame({"id": [f"row{i}" for i in range(400)], "x": rng.normal(0, 2, 400), "z": rng.normal(0, 1, 400)})
    return [Case((_Bumpy(), X, "x", 0.5, 1), "a model whose probability rises and falls with x, +0.5 on x", size=1),
            Case((_Bumpy(), X, "x", 0.5, -1), "the same model, direction -1 (should not rise)", size=2),
            Case((falling, X, "x", 1.0, 1), "a logistic curve that falls as x grows, +1.0 on x", size=3),
            Case((_Flat(), X, "x", 2.0, 1), "a model that ignores x (every change is a tie)", size=4),
            Case((_Bumpy(), big, "x", -1.5, 1), "400 generated rows, a negative delta (-1.5)", size=400)]


def directional_on_labels(model, X, column, delta, direction=1):
    before, after = model.predict(X), model.predict(X.assign(**{column: X[column] + delta}))
    return float(np.mean(direction * (after - before) < 0))


def directional_counts_increases(model, X, column, delta, direction=1):
    return versioning.directional_failure_rate(model, X, column, delta, -direction)


def directional_counts_ties(model, X, column, delta, direction=1):
    before = model.predict_proba(X)[:, 1]
    after = model.predict_proba(X.assign(**{column: X[column] + delta}))[:, 1]
    return float(np.mean(direction * (after - before) <= 0))


def directional_ignores_direction(model, X, column, delta, direction=1):
    return versioning.directional_failure_rate(model, X, column, delta, 1)


register(Spec(
    "17.directional_failure_rate", versioning.directional_failure_rate, _directional_cases,
    hint="p0 = model.predict_proba(X)[:, 1]; p1 the same on a copy with delta added to the column; return the "
         "share of rows where direction · (p1 − p0) < 0.",
    mistakes=(
        Mistake(directional_on_labels, "Compare probabilities, not labels: a label only changes when the "
                                       "probability crosses 0.5, which hides most decreases."),
        Mistake(directional_counts_increases, "Count the moves against the expected direction: with direction +1, "
                                              "the rows whose probability fell."),
        Mistake(directional_counts_ties, "A row whose probability did not move did not fail: count strict moves "
                                         "against the direction (< 0, not <= 0)."),
        Mistake(directional_ignores_direction, "Use direction: with -1 the probability should not rise, so count "
                                               "the rows where it rose."),
    )))
