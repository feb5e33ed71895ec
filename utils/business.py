"""The business value of a model: counterfactual (incremental) value, cost per request, NPV and payback, test sizing.

Every function is a few lines of arithmetic a finance or product colleague can check by hand;
``tests/test_business.py`` checks them against closed forms and simulation.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats


def incremental_conversions(y, treated, score, fraction: float) -> float:
    """Conversions caused by acting on the top ``fraction`` of customers ranked by ``score``.

    Estimated from a randomised test: among the top-ranked rows, the conversion rate of those who were
    treated minus that of those who were not (the control), times the number of rows targeted.

    >>> incremental_conversions([1, 0, 1, 0], [1, 0, 1, 0], [0.9, 0.8, 0.7, 0.1], 1.0)
    4.0
    """
    y, treated, score = np.asarray(y, dtype=float), np.asarray(treated).astype(bool), np.asarray(score, dtype=float)
    if not (y.shape == treated.shape == score.shape) or y.ndim != 1:
        raise ValueError(f"y, treated and score must be 1-D of one length, got {y.shape}, {treated.shape}, {score.shape}")
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    targeted = int(round(fraction * len(y)))
    top = np.zeros(len(y), dtype=bool)
    top[np.argsort(-score, kind="stable")[:targeted]] = True
    if not (top & treated).any() or not (top & ~treated).any():
        raise ValueError("the top fraction needs both treated and control rows to estimate the uplift")
    return float((y[top & treated].mean() - y[top & ~treated].mean()) * targeted)


def cost_per_1k_requests(price_per_hour: float, requests_per_second: float, utilisation: float) -> float:
    """Cost of 1,000 requests on a machine rented at ``price_per_hour`` that serves ``requests_per_second`` at full
    load and is busy a share ``utilisation`` of the time (idle time is paid for too).

    >>> cost_per_1k_requests(3.6, 10.0, 0.5)   # $3.60/h, 10 req/s flat out, half busy
    0.2
    """
    if price_per_hour < 0 or requests_per_second <= 0 or not 0 < utilisation <= 1:
        raise ValueError("need price_per_hour >= 0, requests_per_second > 0 and utilisation in (0, 1]")
    return 1000 * price_per_hour / (3600 * requests_per_second * utilisation)


def npv(cash_flows, rate: float) -> float:
    """Net present value: the cash flow of period t (t = 0, 1, ...) divided by (1 + rate)^t, summed.

    >>> round(npv([-100, 60, 60], 0.10), 2)
    4.13
    """
    flows = np.asarray(cash_flows, dtype=float)
    if flows.ndim != 1 or flows.size == 0 or rate <= -1:
        raise ValueError("cash_flows must be a non-empty 1-D sequence and rate > -1")
    return float(np.sum(flows / (1 + rate) ** np.arange(len(flows))))


def payback_period(cash_flows) -> int | None:
    """The first period at which the cumulative (undiscounted) cash flow is no longer negative; None if never."""
    cumulative = np.cumsum(np.asarray(cash_flows, dtype=float))
    reached = np.flatnonzero(cumulative >= 0)
    return int(reached[0]) if reached.size else None


def ab_sample_size(base_rate: float, lift: float, alpha: float = 0.05, power: float = 0.8) -> int:
    """Users per arm for a two-sided two-proportion z-test to detect ``base_rate`` → ``base_rate * (1 + lift)``."""
    p1, p2 = base_rate, base_rate * (1 + lift)
    if not (0 < p1 < 1 and 0 < p2 < 1) or lift == 0:
        raise ValueError(f"need rates in (0, 1) and a non-zero lift, got {p1} -> {p2}")
    z_alpha, z_power = stats.norm.ppf(1 - alpha / 2), stats.norm.ppf(power)
    pooled = (p1 + p2) / 2
    n = (z_alpha * math.sqrt(2 * pooled * (1 - pooled)) + z_power * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))) ** 2
    return math.ceil(n / (p2 - p1) ** 2)


def ab_test_days(base_rate: float, lift: float, daily_users: float, alpha: float = 0.05, power: float = 0.8) -> int:
    """Whole days of traffic a 50/50 test needs: both arms together need 2 × the per-arm sample size.

    >>> ab_test_days(0.05, 0.10, 10_000)
    7
    """
    if daily_users <= 0:
        raise ValueError(f"daily_users must be positive, got {daily_users}")
    return math.ceil(2 * ab_sample_size(base_rate, lift, alpha, power) / daily_users)


SEGMENTS = {  # share of customers, P(buy | not contacted), P(buy | contacted): a synthetic population
    "sure thing": (0.25, 0.70, 0.70),
    "persuadable": (0.25, 0.10, 0.60),
    "lost cause": (0.35, 0.03, 0.03),
    "sleeping dog": (0.15, 0.50, 0.15),
}


def campaign_population(n: int, seed: int = 0):
    """A synthetic randomised campaign: features X (n, 4), purchases y, a 50/50 random ``treated`` flag, segments.

    Four kinds of customer (``SEGMENTS``): contacting a persuadable causes a purchase, a sure thing buys anyway,
    a lost cause never does, and a sleeping dog is put off. Feature 0 (past purchases) is high for sure things
    and sleeping dogs, feature 1 (engagement) for persuadables and sure things; features 2 and 3 are noise.
    Synthetic by construction: it shows the mechanism, not a market.
    """
    rng = np.random.default_rng(seed)
    names = list(SEGMENTS)
    segment = rng.choice(len(names), n, p=[SEGMENTS[s][0] for s in names])
    past = np.array([1.0, 0.0, 0.0, 1.0])[segment]
    engaged = np.array([1.0, 1.0, 0.0, 0.0])[segment]
    X = np.column_stack([past + rng.normal(0, 0.45, n), engaged + rng.normal(0, 0.45, n), rng.normal(size=(n, 2))])
    treated = rng.random(n) < 0.5
    p_control, p_treated = (np.array([SEGMENTS[s][i] for s in names])[segment] for i in (1, 2))
    y = (rng.random(n) < np.where(treated, p_treated, p_control)).astype(int)
    return X, y, treated, np.array(names)[segment]
