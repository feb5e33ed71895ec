"""Checks for lab 11 (privacy): laplace_mechanism, clip_and_noise, k_anonymity, hmac_pseudonym, exposure."""

from __future__ import annotations

import hashlib
import hmac

import numpy as np
import pandas as pd
import torch

from utils.checks.core import Case, Mistake, Spec, reject, register
from utils.privacy import clip_and_noise, exposure, hmac_pseudonym, k_anonymity, laplace_mechanism

# --- 11.laplace_mechanism: random, so 4,000 draws are compared with the reference's by their statistics ---

DRAWS = 4000


def _draws(function, args):
    value, sensitivity, epsilon, rng = args
    draws = []
    for _ in range(DRAWS):
        draw = function(value, sensitivity, epsilon, rng)
        if isinstance(draw, (bool, np.bool_)) or not isinstance(draw, (int, float, np.integer, np.floating)):
            reject(f"each release should be a single number, got a {type(draw).__name__}.",
                   "Return value + noise as a float (one draw per call).")
        draws.append(float(draw))
    return np.array(draws)


def _laplace_statistics(draws, args) -> dict:
    value, sensitivity, epsilon, _ = args
    noise, scale = draws - value, sensitivity / epsilon
    spread = np.mean(np.abs(noise))
    return {"median noise / scale": float(np.median(noise) / scale), "mean |noise| / scale": float(spread / scale),
            "std / mean |noise|": float(np.std(noise) / spread) if spread > 0 else 0.0}


def laplace_scale_inverted(value, sensitivity, epsilon, rng):
    return value + rng.laplace(0, epsilon / sensitivity)


def laplace_without_sensitivity(value, sensitivity, epsilon, rng):
    return value + rng.laplace(0, 1 / epsilon)


def gaussian_instead_of_laplace(value, sensitivity, epsilon, rng):
    return value + rng.normal(0, sensitivity / epsilon)


def noise_without_value(value, sensitivity, epsilon, rng):
    return rng.laplace(0, sensitivity / epsilon)


def _laplace_cases() -> list[Case]:
    # Tolerance 0.11 = 5 x sqrt(2) x 0.016, the largest standard deviation of these statistics over 300 seeds of
    # 4,000 draws: two correct answers with different draws differ by less; a Gaussian's std / mean|noise| is 1.25,
    # not 1.41, and its mean|noise| / scale 0.80.
    return [Case((value, sensitivity, epsilon, np.random.default_rng(seed)),
                 f"{DRAWS:,} releases of value={value}, sensitivity={sensitivity}, epsilon={epsilon}", atol=0.11,
                 size=DRAWS)
            for value, sensitivity, epsilon, seed in ((100.0, 2.0, 0.5, 11), (-3.0, 1.0, 4.0, 12), (0.0, 5.0, 1.0, 13))]


register(Spec(
    "11.laplace_mechanism", laplace_mechanism, _laplace_cases, invoke=_draws, measure=_laplace_statistics,
    contract=lambda got, expected: None, seed=(3, np.random.default_rng),
    hint="Return value + Laplace noise centred on 0 with scale sensitivity / epsilon: rng.laplace(0, scale).",
    mistakes=(
        Mistake(laplace_scale_inverted, "The scale is sensitivity / epsilon, not epsilon / sensitivity: a smaller "
                                        "epsilon (more privacy) needs more noise."),
        Mistake(laplace_without_sensitivity, "Scale the noise by the sensitivity too: sensitivity / epsilon."),
        Mistake(gaussian_instead_of_laplace, "Draw from the Laplace distribution (rng.laplace), not the Gaussian: "
                                             "pure epsilon-DP needs Laplace noise."),
        Mistake(noise_without_value, "Return value + noise, not the noise alone."),
    )))


# --- 11.clip_and_noise: exact without noise; with noise, the noise's mean and spread are compared ---

def _noise_statistics(output, args):
    per_example, max_norm, noise_multiplier, _ = args
    if noise_multiplier == 0:
        return output
    noise = (output - clip_and_noise(per_example, max_norm, 0.0)) / (noise_multiplier * max_norm)
    return {"noise mean / (sigma C)": float(noise.mean()), "noise std / (sigma C)": float(noise.std())}


def clip_the_batch_gradient(per_example, max_norm, noise_multiplier, generator):
    total = per_example.sum(dim=0)
    clipped = total * min(1.0, max_norm / max(total.norm().item(), 1e-12))
    return clipped + torch.randn(clipped.shape, generator=generator) * noise_multiplier * max_norm


def clip_each_coordinate(per_example, max_norm, noise_multiplier, generator):
    clipped = per_example.clamp(-max_norm, max_norm).sum(dim=0)
    return clipped + torch.randn(clipped.shape, generator=generator) * noise_multiplier * max_norm


def noise_not_scaled_by_norm(per_example, max_norm, noise_multiplier, generator):
    return clip_and_noise(per_example, max_norm, 0.0, torch.Generator()) + torch.randn(
        per_example.shape[1], generator=generator) * noise_multiplier


def noise_on_every_example(per_example, max_norm, noise_multiplier, generator):
    norms = per_example.norm(dim=1, keepdim=True)
    clipped = per_example * (max_norm / norms.clamp(min=1e-12)).clamp(max=1.0)
    noise = torch.randn(per_example.shape, generator=generator) * noise_multiplier * max_norm
    return (clipped + noise).sum(dim=0)


def _clip_cases() -> list[Case]:
    rows = torch.tensor([[3.0, 4.0, 0.0], [0.3, 0.0, 0.4], [0.0, -6.0, 8.0], [1.0, 1.0, 1.0]])
    cases = [Case((rows, max_norm, 0.0, torch.Generator().manual_seed(0)), f"4 per-example gradients "
                  f"[[3, 4, 0], [0.3, 0, 0.4], [0, -6, 8], [1, 1, 1]], max_norm={max_norm}, no noise", atol=1e-6)
             for max_norm in (1.0, 2.0)]  # float32: 1e-6
    generator = torch.Generator().manual_seed(110)
    random_rows = torch.randn(12, 7, generator=generator) * torch.logspace(-1, 1, 12)[:, None]
    random_rows[3] = 0.0  # a zero gradient: scaled by min(1, C / 0) = 1, it stays zero
    cases.append(Case((random_rows, 0.8, 0.0, torch.Generator().manual_seed(1)),
                      "12 random gradients of norms 0 to 30 (one all zero), max_norm=0.8, no noise", atol=1e-5))
    wide = torch.randn(3, 20000, generator=generator) * 0.01
    # 20,000 noise values: their mean and std (in units of sigma C) vary by 0.007 between seeds; tolerance 0.05.
    cases.append(Case((wide, 0.5, 1.5, torch.Generator().manual_seed(2)), "3 examples of 20,000 coordinates, "
                      "max_norm=0.5, noise_multiplier=1.5: the added noise in units of noise_multiplier * max_norm",
                      atol=0.05))
    return cases


register(Spec(
    "11.clip_and_noise", clip_and_noise, _clip_cases, measure=_noise_statistics,
    seed=(3, lambda s: torch.Generator().manual_seed(s)),
    hint="Scale each row by min(1, max_norm / its L2 norm), sum the rows, then add N(0, (noise_multiplier * "
         "max_norm)^2) to every coordinate with torch.randn(..., generator=generator).",
    mistakes=(
        Mistake(clip_the_batch_gradient, "You clipped the summed batch gradient; clip each example's row before "
                                         "summing, so no single example can move the sum by more than max_norm."),
        Mistake(clip_each_coordinate, "Clip the L2 norm of each row, not each coordinate separately."),
        Mistake(noise_not_scaled_by_norm, "The noise std is noise_multiplier * max_norm: clipping sets the "
                                          "sensitivity."),
        Mistake(noise_on_every_example, "Add the noise once, to the clipped sum, not to every example (that is "
                                        "sqrt(n) times too much)."),
    )))


# --- 11.k_anonymity ---

TABLE = pd.DataFrame({
    "age": ["30s", "30s", "30s", "40s", "40s", "40s", "40s", "50s", "50s"],
    "zip": ["021", "021", "021", "021", "021", "022", "022", "022", "022"],
    "sex": ["F", "F", "M", "M", "M", "F", "F", "M", "M"],
    "diagnosis": ["flu", "cold", "flu", "flu", "asthma", "cold", "flu", "flu", "cold"],
})


def k_per_column(table, quasi_identifiers):
    return int(min(table[col].value_counts().min() for col in quasi_identifiers))


def k_over_all_columns(table, quasi_identifiers):
    return int(table.groupby(list(table.columns)).size().min())


def k_drops_missing_values(table, quasi_identifiers):
    return int(table.groupby(quasi_identifiers).size().min())


def k_is_the_number_of_groups(table, quasi_identifiers):
    return int(table.groupby(quasi_identifiers, dropna=False).ngroups)


def _k_cases() -> list[Case]:
    cases = [Case((TABLE, quasi), f"a 9-row table with quasi-identifiers {quasi}") for quasi in
             (["age", "zip"], ["age", "zip", "sex"], ["zip"])]
    rng = np.random.default_rng(111)
    n = 300
    big = pd.DataFrame({"age": rng.choice(["20s", "40s", "60s"], n),
                        "sex": rng.choice(["F", "M"], n), "zip": rng.choice(["021", "022"], n),
                        "income": rng.normal(50, 10, n).round(1)})
    big.loc[rng.choice(n, 3, replace=False), "zip"] = None  # three rows with a missing zip: still linkable
    cases += [Case((big, quasi), f"a 300-row table (3 missing zips) with quasi-identifiers {quasi}")
              for quasi in (["age", "sex"], ["age", "sex", "zip"])]
    return cases


register(Spec(
    "11.k_anonymity", k_anonymity, _k_cases,
    hint="Group the rows by all the quasi-identifier columns together; k is the smallest group's size.",
    mistakes=(
        Mistake(k_per_column, "Count combinations of the quasi-identifiers, not each column alone."),
        Mistake(k_over_all_columns, "Group by the quasi-identifiers only, not every column."),
        Mistake(k_drops_missing_values, "groupby drops rows with a missing key unless dropna=False; those rows "
                                        "still exist and can still be linked."),
        Mistake(k_is_the_number_of_groups, "k is the size of the smallest group, not the number of groups."),
    )))


# --- 11.hmac_pseudonym ---

def plain_sha256(identifier, key):
    return hashlib.sha256(identifier.encode()).hexdigest()


def key_prefixed_sha256(identifier, key):
    return hashlib.sha256(key + identifier.encode()).hexdigest()


def hmac_md5(identifier, key):
    return hmac.new(key, identifier.encode(), hashlib.md5).hexdigest()


def hmac_key_and_message_swapped(identifier, key):
    return hmac.new(identifier.encode(), key, hashlib.sha256).hexdigest()


def _pseudonym_cases() -> list[Case]:
    short, long = bytes(range(32)), bytes(range(100))  # a key longer than SHA-256's 64-byte block is hashed first
    return [Case((identifier, key), f"identifier {identifier!r} with a {len(key)}-byte key", size=len(identifier))
            for identifier, key in (("204817", short), ("alice@example.com", short), ("张伟", short), ("", short),
                                    ("204817", long))]


register(Spec(
    "11.hmac_pseudonym", hmac_pseudonym, _pseudonym_cases,
    hint="Return hmac.new(key, identifier.encode(), hashlib.sha256).hexdigest().",
    mistakes=(
        Mistake(plain_sha256, "That is a plain SHA-256: anyone can recompute it from a guessed identifier. Use the "
                              "key with HMAC."),
        Mistake(key_prefixed_sha256, "sha256(key + identifier) is not HMAC (it is open to length extension); use "
                                     "hmac.new(key, ..., hashlib.sha256)."),
        Mistake(hmac_md5, "Use SHA-256 as HMAC's hash (hashlib.sha256), not MD5."),
        Mistake(hmac_key_and_message_swapped, "The key comes first: hmac.new(key, message, hashlib.sha256)."),
    )))


# --- 11.exposure ---

def _values(log_probs):
    return np.asarray(log_probs.detach().cpu() if isinstance(log_probs, torch.Tensor) else log_probs, dtype=float)


def rank_counted_from_zero(log_probs, secret):
    values = _values(log_probs)
    rank = list(np.argsort(-values, kind="stable")).index(secret)      # 0 for the most likely
    with np.errstate(divide="ignore"):
        return float(np.log2(len(values)) - np.log2(rank))


def exposure_in_nats(log_probs, secret):
    values = _values(log_probs)
    return float(np.log(len(values)) - np.log(1 + np.sum(values > values[secret])))


def rank_from_the_least_likely(log_probs, secret):
    values = _values(log_probs)
    return float(np.log2(len(values)) - np.log2(1 + np.sum(values < values[secret])))


def ties_count_against(log_probs, secret):
    values = _values(log_probs)
    return float(np.log2(len(values)) - np.log2(np.sum(values >= values[secret])))


def exposure_as_log_rank(log_probs, secret):
    values = _values(log_probs)
    return float(np.log2(1 + np.sum(values > values[secret])))


def _exposure_cases() -> list[Case]:
    four = [-3.0, -1.0, -2.0, -5.0]
    cases = [Case((list(four), secret), f"log_probs {four}, secret {secret}", atol=1e-9) for secret in (1, 0, 3)]
    cases += [Case(([-0.5, -0.5, -2.0], 1), "a tie for first place ([-0.5, -0.5, -2.0], secret 1)", atol=1e-9),
              Case(([1.5, -0.2], 0), "two candidates, positive scores, the secret first", atol=1e-9),
              Case((np.array([2.0, 2.0, 2.0, 2.0]), 3), "four equal scores (a numpy array)", atol=1e-9),
              Case((torch.tensor([-7.0, -1.0, -4.0, -9.0, -1.0]), 2), "a torch tensor with a tie elsewhere", atol=1e-9)]
    rng = np.random.default_rng(11)
    for n in (10, 1000):
        scores = rng.normal(-8, 3, n)
        for secret in rng.integers(0, n, 3):
            cases.append(Case((scores.copy(), int(secret)), f"{n} random log-probabilities, secret {int(secret)}",
                              atol=1e-9))
    return cases


register(Spec(
    "11.exposure", exposure, _exposure_cases,
    hint="rank = 1 + the number of candidates with a strictly higher log-probability than the secret's; "
         "return log2(len(log_probs)) - log2(rank) as a float.",
    mistakes=(
        Mistake(rank_counted_from_zero, "Rank 1 is the most likely candidate: count the candidates above the secret "
                                        "and add 1 (a rank of 0 gives log2(0))."),
        Mistake(exposure_in_nats, "Exposure is in bits: use log2, not the natural log."),
        Mistake(rank_from_the_least_likely, "Rank from the most likely candidate down: count the candidates with a "
                                            "higher log-probability, not a lower one."),
        Mistake(ties_count_against, "Only candidates strictly more likely than the secret count against it: a tie "
                                    "goes to the secret (use >, not >=)."),
        Mistake(exposure_as_log_rank, "Exposure is log2(number of candidates) - log2(rank): high when the secret is "
                                      "near the top, not log2 of the rank itself."),
    )))
