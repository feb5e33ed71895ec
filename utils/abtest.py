"""A/B tests done right: the two-proportion z-test, the sample size it needs, and the sample-ratio check.

Each is built from its formula and checked equal to statsmodels or SciPy in ``tests/test_abtest.py``:

    z, p = two_proportion_ztest(1_030, 10_000, 1_100, 10_000)   # B against A, pooled, two-sided
    sample_size_per_arm(0.10, 0.11)                              # users per arm for 10% -> 11%
    sample_ratio_mismatch(50_000, 49_000)                        # p-value of a 50/50 split this uneven

Lesson 19 sizes a test by a relative lift (``utils.business.ab_sample_size``, the pooled-variance formula);
``sample_size_per_arm`` takes the two rates and uses Cohen's h, as statsmodels' power classes do. The two agree
within 1% on the rates the lessons use.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats


def _counts(name: str, successes, trials) -> tuple[np.ndarray, np.ndarray]:
    successes, trials = np.asarray(successes, dtype=float), np.asarray(trials, dtype=float)
    if np.any(trials <= 0) or np.any(successes < 0) or np.any(successes > trials):
        raise ValueError(f"{name}: need 0 <= successes <= trials and trials > 0, got {successes} of {trials}")
    return successes, trials


def two_proportion_ztest(successes_a, n_a, successes_b, n_b) -> tuple:
    """z and two-sided p-value of H0 "B's rate equals A's", with the pooled standard error.

    z = (p_b − p_a) / sqrt(p (1 − p) (1/n_a + 1/n_b)) with p = (successes_a + successes_b) / (n_a + n_b); positive
    when B converts more. Equal to statsmodels' ``proportions_ztest([successes_b, successes_a], [n_b, n_a])``.
    Arrays work elementwise (one test per element, for simulations); when the pooled rate is 0 or 1 there is no
    evidence either way and the result is z = 0, p = 1.

    >>> z, p = two_proportion_ztest(100, 1000, 130, 1000)
    >>> round(float(z), 3), round(float(p), 4)
    (2.103, 0.0355)
    """
    sa, na = _counts("A", successes_a, n_a)
    sb, nb = _counts("B", successes_b, n_b)
    pooled = (sa + sb) / (na + nb)
    se = np.sqrt(pooled * (1 - pooled) * (1 / na + 1 / nb))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(se > 0, (sb / nb - sa / na) / np.where(se > 0, se, 1), 0.0)
    p = 2 * stats.norm.sf(np.abs(z))
    if z.ndim == 0:
        return float(z), float(p)
    return z, p


def cohens_h(p1: float, p2: float) -> float:
    """Effect size of two proportions on the arcsine scale: 2 asin(sqrt(p2)) − 2 asin(sqrt(p1))."""
    return 2 * math.asin(math.sqrt(p2)) - 2 * math.asin(math.sqrt(p1))


def sample_size_per_arm(p1: float, p2: float, alpha: float = 0.05, power: float = 0.8) -> int:
    """Users per arm for a two-sided test at level ``alpha`` to detect rate ``p1`` → ``p2`` with ``power``.

    n = 2 ((z_{1−α/2} + z_{power}) / h)², h = Cohen's h, rounded up (2 asin(sqrt(p̂)) has variance about 1/n per arm, so
    the difference of two has 2/n): within 1% of statsmodels'
    ``NormalIndPower().solve_power(proportion_effectsize(p2, p1), alpha=alpha, power=power)``.

    >>> sample_size_per_arm(0.10, 0.11)
    14745
    """
    for name, rate in (("p1", p1), ("p2", p2)):
        if not 0 < rate < 1:
            raise ValueError(f"{name} must be a rate strictly between 0 and 1, got {rate}")
    if p1 == p2:
        raise ValueError("p1 equals p2: no sample size detects a zero difference; give the smallest difference "
                         "worth detecting")
    if not 0 < alpha < 1 or not 0 < power < 1:
        raise ValueError(f"alpha and power must be in (0, 1), got alpha={alpha}, power={power}")
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    return math.ceil(2 * (z / cohens_h(p1, p2)) ** 2)


def sample_ratio_mismatch(n_a: int, n_b: int, share_a: float = 0.5) -> float:
    """p-value of the chi-square test that ``n_a``:``n_b`` came from a split with A's share ``share_a``.

    A small p-value (below 0.001, say) means the assignment or the logging is broken, and the test's
    result cannot be trusted whatever it says. Equal to ``scipy.stats.chisquare``.

    >>> round(sample_ratio_mismatch(50_000, 49_000), 4)
    0.0015
    """
    if n_a < 0 or n_b < 0 or n_a + n_b == 0:
        raise ValueError(f"need non-negative counts that are not both zero, got {n_a} and {n_b}")
    if not 0 < share_a < 1:
        raise ValueError(f"share_a must be in (0, 1), got {share_a}")
    total = n_a + n_b
    expected = np.array([share_a, 1 - share_a]) * total
    statistic = float(np.sum((np.array([n_a, n_b]) - expected) ** 2 / expected))
    return float(stats.chi2.sf(statistic, df=1))


def paired_difference_bound(a_correct, b_correct, *, confidence: float = 0.95) -> dict:
    """How much worse B is than A on the same rows, with a one-sided upper confidence bound.

    ``a_correct[i]`` and ``b_correct[i]`` say whether each model got row i right. The per-row differences
    d = a − b pair the models on the same rows, so rows both get right or both get wrong add no noise: the
    standard error is sd(d) / sqrt(n), usually far below the unpaired one. Returns the mean cost (A's accuracy
    minus B's), its standard error and ``upper`` = cost + z_confidence · se: a regression gate that asks
    ``upper < margin`` passes a candidate only when the data show its cost is below the margin. ``cost / se``
    equals SciPy's paired t statistic (``ttest_rel``).

    >>> r = paired_difference_bound([1, 1, 1, 0, 1, 0], [1, 0, 1, 0, 1, 1])
    >>> round(r["cost"], 3), round(r["se"], 3)
    (0.0, 0.258)
    """
    a, b = np.asarray(a_correct), np.asarray(b_correct)
    if a.shape != b.shape or a.ndim != 1 or a.size < 2:
        raise ValueError(f"a_correct and b_correct must be 1-D, of equal length >= 2, got {a.shape} and {b.shape}")
    if not 0.5 < confidence < 1:
        raise ValueError(f"confidence must be in (0.5, 1), got {confidence}")
    d = a.astype(float) - b.astype(float)
    cost, se = float(d.mean()), float(d.std(ddof=1) / math.sqrt(d.size))
    return {"cost": cost, "se": se, "upper": cost + float(stats.norm.ppf(confidence)) * se, "n": int(d.size)}
