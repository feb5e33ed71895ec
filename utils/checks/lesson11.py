"""Checks for lab 11 (privacy): Laplace noise, per-example clipping and noise, k-anonymity, HMAC pseudonyms."""

from __future__ import annotations

import hashlib
import hmac

import numpy as np
import pandas as pd
import torch

from utils.checks.core import Checker, format_value as fmt, register
from utils.privacy import k_anonymity


@register("11.laplace")
def _laplace(c: Checker) -> None:
    for sensitivity, epsilon in ((2.0, 0.5), (1.0, 4.0)):
        rng = np.random.default_rng(11)
        draws = np.array([c.run(c.candidate, 100.0, sensitivity, epsilon, rng) for _ in range(4000)], dtype=float)
        c.cases += 1
        scale = sensitivity / epsilon
        noise = draws - 100.0
        mad, ratio = np.mean(np.abs(noise)), np.std(noise) / np.mean(np.abs(noise))
        case = f"4,000 draws with value=100, sensitivity={sensitivity}, epsilon={epsilon}"
        c.expect_close(np.median(draws), 100.0, atol=0.1 * scale, case=f"{case}: the median",
                       hint="The noise must be centred on 0: return value + noise.")
        c.expect_close(mad / scale, 1.0, atol=0.07, case=f"{case}: mean |noise| / (sensitivity / epsilon)",
                       hint="Laplace noise of scale sensitivity / epsilon has mean |noise| equal to that scale.",
                       diagnose=((epsilon / sensitivity / scale, "The scale is sensitivity / epsilon, not epsilon / sensitivity."),))
        c.expect_close(ratio, np.sqrt(2), atol=0.1, case=f"{case}: std / mean |noise| (√2 for Laplace, 1.25 for Gaussian)",
                       hint="Draw from the Laplace distribution: rng.laplace(0, scale).")


def _clipped_sum(per_example: torch.Tensor, max_norm: float) -> torch.Tensor:
    norms = per_example.norm(dim=1, keepdim=True)
    return (per_example * (max_norm / norms).clamp(max=1.0)).sum(dim=0)


@register("11.privatize")
def _privatize(c: Checker) -> None:
    per_example = torch.tensor([[3.0, 4.0, 0.0], [0.3, 0.0, 0.4], [0.0, -6.0, 8.0], [1.0, 1.0, 1.0]])
    for max_norm in (1.0, 2.0):
        got = c.call(per_example, max_norm, 0.0, torch.Generator().manual_seed(0))
        summed = per_example.sum(dim=0)
        c.expect_close(np.asarray(got, dtype=float), _clipped_sum(per_example, max_norm).numpy(), atol=1e-6,
                       case=f"4 per-example gradients {fmt(per_example.numpy())}, max_norm={max_norm}, no noise",
                       hint="Scale each example's gradient (each row) by min(1, max_norm / its L2 norm), then sum the rows.",
                       diagnose=((summed * min(1.0, max_norm / summed.norm().item()),
                                  "You clipped the summed batch gradient; clip each example's row before summing."),
                                 (per_example.clamp(-max_norm, max_norm).sum(dim=0),
                                  "Clip the L2 norm of each row, not each coordinate separately.")))
    wide = torch.ones(3, 20000) * 0.01
    sigma, max_norm = 1.5, 0.5
    got = c.call(wide, max_norm, sigma, torch.Generator().manual_seed(1))
    noise = np.asarray(got, dtype=float) - _clipped_sum(wide, max_norm).numpy()
    c.expect_close(noise.std(), sigma * max_norm, atol=0.05 * sigma * max_norm,
                   case=f"20,000 coordinates, noise_multiplier={sigma}, max_norm={max_norm}: the std of the added noise",
                   hint="Add Gaussian noise with std noise_multiplier * max_norm to every coordinate of the clipped sum.",
                   diagnose=((sigma, "The noise std is noise_multiplier * max_norm: clipping sets the sensitivity."),))


TABLE = pd.DataFrame({
    "age": ["30s", "30s", "30s", "40s", "40s", "40s", "40s", "50s", "50s"],
    "zip": ["021", "021", "021", "021", "021", "022", "022", "022", "022"],
    "sex": ["F", "F", "M", "M", "M", "F", "F", "M", "M"],
    "diagnosis": ["flu", "cold", "flu", "flu", "asthma", "cold", "flu", "flu", "cold"],
})


@register("11.k_anonymity")
def _k_anonymity(c: Checker) -> None:
    for quasi in (["age", "zip"], ["age", "zip", "sex"], ["zip"]):
        expected = k_anonymity(TABLE, quasi)
        per_column = min(TABLE[col].value_counts().min() for col in quasi)
        c.expect_close(c.call(TABLE, quasi), expected,
                       case=f"a 9-row table with quasi-identifiers {quasi}",
                       hint="Group the rows by all the quasi-identifier columns together; k is the smallest group's size.",
                       diagnose=((per_column, "Count combinations of the quasi-identifiers, not each column alone."),
                                 (k_anonymity(TABLE, list(TABLE.columns)),
                                  "Group by the quasi-identifiers only, not every column.")))


@register("11.pseudonym")
def _pseudonym(c: Checker) -> None:
    key = bytes(range(32))
    for identifier in ("204817", "alice@example.com"):
        expected = hmac.new(key, identifier.encode(), hashlib.sha256).hexdigest()
        got = c.call(identifier, key)
        if got != expected:
            plain = hashlib.sha256(identifier.encode()).hexdigest()
            prefixed = hashlib.sha256(key + identifier.encode()).hexdigest()
            hint = ("That is a plain SHA-256: anyone can recompute it from a guessed identifier. Use the key with HMAC."
                    if got == plain else
                    "sha256(key + identifier) is not HMAC (it is open to length extension); use hmac.new(key, ..., sha256)."
                    if got == prefixed else "Return hmac.new(key, identifier.encode(), hashlib.sha256).hexdigest().")
            c.fail(f"for identifier {identifier!r} expected {expected[:16]}..., got {str(got)[:16]}...", hint)
