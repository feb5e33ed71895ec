"""Checks for lab 19 (business value): incremental_conversions, cost_per_1k_requests, npv, ab_test_days."""

from __future__ import annotations

import math

import numpy as np

from utils import business
from utils.checks.core import Case, Mistake, Spec, register

# --- 19.incremental_conversions ---


def _top(score, fraction):
    targeted = int(round(fraction * len(score)))
    top = np.zeros(len(score), dtype=bool)
    top[np.argsort(-np.asarray(score), kind="stable")[:targeted]] = True
    return top, targeted


def conversions_of_treated_only(y, treated, score, fraction):
    top, targeted = _top(score, fraction)
    return float(y[top & treated.astype(bool)].mean() * targeted)


def uplift_over_everyone(y, treated, score, fraction):
    treated = treated.astype(bool)
    return float((y[treated].mean() - y[~treated].mean()) * int(round(fraction * len(y))))


def uplift_of_the_bottom(y, treated, score, fraction):
    return business.incremental_conversions(y, treated, -np.asarray(score), fraction)


def uplift_times_treated_count(y, treated, score, fraction):
    top, _ = _top(score, fraction)
    treated = treated.astype(bool)
    return float((y[top & treated].mean() - y[top & ~treated].mean()) * (top & treated).sum())


def _targeting(count):
    def answer(y, treated, score, fraction):
        targeted = count(fraction * len(y))
        top = np.zeros(len(y), dtype=bool)
        top[np.argsort(-np.asarray(score), kind="stable")[:targeted]] = True
        treated = np.asarray(treated).astype(bool)
        return float((y[top & treated].mean() - y[top & ~treated].mean()) * targeted)
    return answer


top_truncated = _targeting(int)
top_truncated.__name__ = "top_truncated"
top_rounded_up = _targeting(math.ceil)
top_rounded_up.__name__ = "top_rounded_up"
ROUND_HINT = "Target round(fraction * n) customers, as the question says: not int() (it truncates) nor math.ceil()."


def _campaign_cases() -> list[Case]:
    y = np.array([1, 1, 0, 1, 0, 0, 1, 0, 1, 0])
    treated = np.array([1, 0, 1, 1, 0, 1, 0, 0, 1, 0])
    score = np.array([0.9, 0.8, 0.75, 0.6, 0.55, 0.4, 0.3, 0.2, 0.15, 0.1])
    cases = [Case((y, treated, score, fraction), f"y={y.tolist()}, treated={treated.tolist()}, scores falling from "
                  f"0.9 to 0.1, fraction={fraction}", atol=1e-9, size=i) for i, fraction in enumerate((0.6, 1.0))]
    for n, fraction, seed in ((200, 0.2, 1901), (2000, 0.3, 1902)):
        X, y, treated, _ = business.campaign_population(n, seed)
        score = X[:, 1] - X[:, 0] + np.random.default_rng(seed).normal(0, 0.1, n)  # negative scores too
        cases.append(Case((y, treated, score, fraction), f"{n} customers of a randomised campaign, fraction={fraction}",
                          atol=1e-9, size=n))
    X, y, treated, _ = business.campaign_population(37, 1903)
    score = X[:, 1] - X[:, 0] + np.random.default_rng(1903).normal(0, 0.1, 37)
    for fraction in (0.45, 0.31):                 # 16.65 and 11.47 customers: round, int and ceil disagree
        cases.append(Case((y, treated, score, fraction), f"37 customers, fraction={fraction} (fraction × n = "
                          f"{fraction * 37:.2f}, not a whole number)", atol=1e-9, size=37, hint=ROUND_HINT))
    return cases


register(Spec(
    "19.incremental_conversions", business.incremental_conversions, _campaign_cases,
    hint="Take the top round(fraction × n) rows by score; (purchase rate of the treated among them − that of the "
         "untreated among them) × the number of rows targeted.",
    mistakes=(
        Mistake(conversions_of_treated_only, "Subtract the control: the untreated customers in the same top group "
                                             "show what would have happened anyway."),
        Mistake(uplift_over_everyone, "Measure the uplift among the top-scored customers only, not over everyone."),
        Mistake(uplift_of_the_bottom, "Rank from the highest score down: the top fraction is the one targeted."),
        Mistake(top_truncated, ROUND_HINT),
        Mistake(top_rounded_up, ROUND_HINT),
        Mistake(uplift_times_treated_count, "Multiply by everyone targeted (round(fraction × n)): the uplift is a "
                                            "rate per targeted customer."),
    )))


# --- 19.cost_per_1k_requests ---

def cost_ignores_utilisation(price_per_hour, requests_per_second, utilisation):
    return 1000 * price_per_hour / (3600 * requests_per_second)


def cost_per_minute_slip(price_per_hour, requests_per_second, utilisation):
    return 1000 * price_per_hour / (60 * requests_per_second * utilisation)


def cost_times_utilisation(price_per_hour, requests_per_second, utilisation):
    return 1000 * price_per_hour * utilisation / (3600 * requests_per_second)


def cost_per_request(price_per_hour, requests_per_second, utilisation):
    return price_per_hour / (3600 * requests_per_second * utilisation)


register(Spec(
    "19.cost_per_1k_requests", business.cost_per_1k_requests,
    lambda: [Case(args, f"price_per_hour={args[0]}, requests_per_second={args[1]}, utilisation={args[2]}",
                  atol=1e-12, size=i)
             for i, args in enumerate(((3.6, 10.0, 0.5), (0.1, 250.0, 0.3), (32.77, 4.5, 0.85), (1.0, 1.0, 1.0)))],
    hint="A machine busy a share `utilisation` of the time serves 3,600 × requests_per_second × utilisation requests "
         "an hour; cost per 1,000 = 1,000 × price_per_hour / that.",
    mistakes=(
        Mistake(cost_ignores_utilisation, "Idle time is paid for too: divide by the utilisation."),
        Mistake(cost_per_minute_slip, "An hour has 3,600 seconds, not 60."),
        Mistake(cost_times_utilisation, "Divide by the utilisation: a machine busy half the time makes each request "
                                        "twice as expensive."),
        Mistake(cost_per_request, "That is the cost of one request; multiply by 1,000."),
    )))


# --- 19.npv ---

def npv_undiscounted(cash_flows, rate):
    return float(np.sum(cash_flows))


def npv_discounts_period_zero(cash_flows, rate):
    flows = np.asarray(cash_flows, dtype=float)
    return float(np.sum(flows / (1 + rate) ** np.arange(1, len(flows) + 1)))


def npv_ignores_upfront(cash_flows, rate):
    flows = np.asarray(cash_flows, dtype=float)
    return float(np.sum(flows[1:] / (1 + rate) ** np.arange(1, len(flows))))


def npv_rate_as_percent(cash_flows, rate):
    return business.npv(cash_flows, rate * 100)


def npv_multiplies(cash_flows, rate):
    flows = np.asarray(cash_flows, dtype=float)
    return float(np.sum(flows * (1 - rate) ** np.arange(len(flows))))


register(Spec(
    "19.npv", business.npv,
    lambda: [Case((np.array(flows), rate), f"cash_flows={flows}, rate={rate}", atol=1e-9, size=i)
             for i, (flows, rate) in enumerate((([-100.0, 60.0, 60.0], 0.1), ([-1000.0, 0.0, 300.0, 400.0, 500.0], 0.08),
                                                ([50.0], 0.05), ([-60000.0] + [2000.0] * 24, 0.008),
                                                ([10.0, -20.0, 30.0], 0.25)))],
    hint="Sum cash_flows[t] / (1 + rate) ** t for t = 0, 1, 2, ...: today's flow is not discounted.",
    mistakes=(
        Mistake(npv_undiscounted, "Discount each period's flow by (1 + rate) ** t: money later is worth less now."),
        Mistake(npv_discounts_period_zero, "The first flow (t = 0, today) is not discounted; start the exponent at 0."),
        Mistake(npv_ignores_upfront, "Include the flow of period 0, the upfront cost: it is not discounted, but "
                                     "it counts."),
        Mistake(npv_rate_as_percent, "The rate is a fraction (0.1 for 10%), not a percentage."),
        Mistake(npv_multiplies, "Divide by (1 + rate) ** t; multiplying by (1 - rate) ** t is only close for small "
                                "rates."),
    )))


# --- 19.ab_test_days ---

def _days_reference(base_rate, lift, daily_users):
    return business.ab_test_days(base_rate, lift, daily_users)


def days_for_one_arm(base_rate, lift, daily_users):
    return math.ceil(business.ab_sample_size(base_rate, lift) / daily_users)


def days_rounded_down(base_rate, lift, daily_users):
    return math.floor(2 * business.ab_sample_size(base_rate, lift) / daily_users)


def days_with_absolute_lift(base_rate, lift, daily_users):
    return math.ceil(2 * business.ab_sample_size(base_rate, lift / base_rate) / daily_users)


register(Spec(
    "19.ab_test_days", _days_reference,
    lambda: [Case(args, f"base_rate={args[0]}, lift={args[1]}, daily_users={args[2]}", atol=0, size=i)
             for i, args in enumerate(((0.05, 0.10, 10_000), (0.20, 0.10, 2_000), (0.02, 0.25, 50_000),
                                       (0.5, -0.05, 3_000), (0.10, 0.05, 1_000_000)))],
    hint="Both arms need ab_sample_size(base_rate, lift) users each: days = ceil(2 × that / daily_users).",
    mistakes=(
        Mistake(days_for_one_arm, "Traffic is split between two arms: the test needs 2 × the per-arm size."),
        Mistake(days_rounded_down, "Round up: a test stopped a day early has less power than planned."),
        Mistake(days_with_absolute_lift, "lift is relative (0.10 means 10% more than base_rate), as "
                                         "ab_sample_size expects."),
    )))
