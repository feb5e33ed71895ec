"""Privacy from scratch: the Laplace mechanism, DP-SGD (per-sample clipping and noise) with its RDP
accountant, membership inference, k-anonymity and keyed pseudonyms; a language model's memorisation of
planted canaries (exposure, Carlini et al. 2019).

``tests/test_privacy.py`` checks the accountant against Opacus and DP-SGD's pieces against their definitions.
"""

from __future__ import annotations

import hashlib
import hmac
import math

import numpy as np
import pandas as pd
import torch
from scipy import special

# The orders Opacus's RDP accountant uses by default: 1.1, 1.2, ..., 10.9, then 12, 13, ..., 63.
DEFAULT_ORDERS = [1 + x / 10 for x in range(1, 100)] + list(range(12, 64))


def laplace_mechanism(value: float, sensitivity: float, epsilon: float, rng: np.random.Generator) -> float:
    """``value`` plus Laplace noise of scale sensitivity / epsilon: epsilon-DP for a query of that sensitivity.

    >>> round(laplace_mechanism(100.0, 1.0, 1e9, np.random.default_rng(0)), 6)
    100.0
    """
    if not sensitivity > 0:
        raise ValueError(f"sensitivity must be positive, got {sensitivity}")
    if not epsilon > 0:
        raise ValueError(f"epsilon must be positive, got {epsilon}")
    return float(value + rng.laplace(0.0, sensitivity / epsilon))


# --- RDP accountant for the Poisson-subsampled Gaussian mechanism (Mironov, Talwar & Zhang, 2019) ---

def _log_add(a: float, b: float) -> float:
    """log(exp(a) + exp(b)) without overflow."""
    low, high = min(a, b), max(a, b)
    return high if low == -math.inf else high + math.log1p(math.exp(low - high))


def _log_sub(a: float, b: float) -> float:
    """log(exp(a) - exp(b)) for a >= b."""
    if b == -math.inf:
        return a
    if a <= b:
        return -math.inf
    return b + math.log(math.expm1(a - b))


def _log_moment_integer(q: float, sigma: float, alpha: int) -> float:
    """log A_alpha for integer alpha: a binomial expansion over how many of alpha draws hit the sampled record."""
    total = -math.inf
    for k in range(alpha + 1):
        term = (math.log(special.binom(alpha, k)) + k * math.log(q) + (alpha - k) * math.log(1 - q)
                + (k * k - k) / (2 * sigma ** 2))
        total = _log_add(total, term)
    return total


def _log_erfc(x: float) -> float:
    return math.log(2) + special.log_ndtr(-x * math.sqrt(2))


def _log_moment_fractional(q: float, sigma: float, alpha: float) -> float:
    """log A_alpha for fractional alpha: the series of Section 3.3, split at z0 where the two densities cross."""
    log_a0 = log_a1 = -math.inf
    z0 = sigma ** 2 * math.log(1 / q - 1) + 0.5
    k = 0
    while True:
        coef = special.binom(alpha, k)
        log_coef, j = math.log(abs(coef)), alpha - k
        log_s0 = (log_coef + k * math.log(q) + j * math.log(1 - q) + (k * k - k) / (2 * sigma ** 2)
                  + math.log(0.5) + _log_erfc((k - z0) / (math.sqrt(2) * sigma)))
        log_s1 = (log_coef + j * math.log(q) + k * math.log(1 - q) + (j * j - j) / (2 * sigma ** 2)
                  + math.log(0.5) + _log_erfc((z0 - j) / (math.sqrt(2) * sigma)))
        combine = _log_add if coef > 0 else _log_sub
        log_a0, log_a1 = combine(log_a0, log_s0), combine(log_a1, log_s1)
        k += 1
        if max(log_s0, log_s1) < -30:
            return _log_add(log_a0, log_a1)


def rdp_of_subsampled_gaussian(noise_multiplier: float, sample_rate: float, order: float) -> float:
    """Rényi DP at ``order`` of one step of the Poisson-subsampled Gaussian mechanism."""
    q, sigma = sample_rate, noise_multiplier
    if q == 1.0:
        return order / (2 * sigma ** 2)
    moment = _log_moment_integer(q, sigma, int(order)) if float(order).is_integer() \
        else _log_moment_fractional(q, sigma, order)
    return moment / (order - 1)


def rdp_epsilon(noise_multiplier: float, sample_rate: float, steps: int, delta: float,
                orders=DEFAULT_ORDERS) -> float:
    """Epsilon of ``steps`` DP-SGD steps at ``delta``: RDP adds up over steps, then the best order converts it.

    The conversion is Balle et al. (2020), Theorem 21, as in Opacus.

    >>> round(rdp_epsilon(1.0, 0.01, 1000, 1e-5), 2)
    2.1
    """
    if not noise_multiplier > 0:
        raise ValueError(f"noise_multiplier must be positive, got {noise_multiplier}")
    if not 0 < sample_rate <= 1:
        raise ValueError(f"sample_rate must be in (0, 1], got {sample_rate}")
    if not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    if not 0 < delta < 1:
        raise ValueError(f"delta must be in (0, 1), got {delta}")
    orders = np.asarray(orders, dtype=float)
    rdp = steps * np.array([rdp_of_subsampled_gaussian(noise_multiplier, sample_rate, a) for a in orders])
    eps = rdp - (math.log(delta) + np.log(orders)) / (orders - 1) + np.log((orders - 1) / orders)
    return float(np.nanmin(eps))


def noise_for_epsilon(target_epsilon: float, sample_rate: float, steps: int, delta: float) -> float:
    """The smallest noise multiplier (to 1e-3) whose DP-SGD run stays within ``target_epsilon``."""
    low, high = 0.3, 50.0
    if rdp_epsilon(high, sample_rate, steps, delta) > target_epsilon:
        raise ValueError(f"epsilon {target_epsilon} is out of reach even with noise multiplier {high}")
    while high - low > 1e-3:
        middle = (low + high) / 2
        low, high = (middle, high) if rdp_epsilon(middle, sample_rate, steps, delta) > target_epsilon else (low, middle)
    return high


# --- DP-SGD ---

def per_sample_gradients(model: torch.nn.Module, loss_fn, X: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    """The gradient of the loss of every example separately: one tensor per parameter, with a leading batch axis."""
    from torch.func import functional_call, grad, vmap

    parameters = {name: p.detach() for name, p in model.named_parameters()}

    def loss_of_one(params, x, target):
        return loss_fn(functional_call(model, params, (x[None],)), target[None])

    return vmap(grad(loss_of_one), in_dims=(None, 0, 0))(parameters, X, y)


def clip_and_noise(per_sample: dict[str, torch.Tensor] | torch.Tensor, max_norm: float, noise_multiplier: float,
                   generator: torch.Generator | None = None) -> dict[str, torch.Tensor] | torch.Tensor:
    """DP-SGD's private gradient sum: clip each example's whole gradient to L2 norm ``max_norm``, sum, add noise.

    The noise is N(0, (noise_multiplier * max_norm)^2) on every coordinate: clipping bounds each
    example's influence (the sensitivity) to ``max_norm``. Divide by the expected batch size to average.
    ``per_sample`` is a dict of per-example gradients (one leading row per example, as from
    :func:`per_sample_gradients`), or one ``(n, d)`` tensor of flattened gradients, which gives a ``(d,)`` tensor.

    >>> clip_and_noise(torch.tensor([[3.0, 4.0], [0.3, 0.4]]), 1.0, 0.0)
    tensor([0.9000, 1.2000])
    """
    if not max_norm > 0:
        raise ValueError(f"max_norm must be positive, got {max_norm}")
    if isinstance(per_sample, torch.Tensor):
        if per_sample.dim() != 2:
            raise ValueError(f"expected one flattened gradient per row, shape (n, d); got {tuple(per_sample.shape)}")
        return clip_and_noise({"rows": per_sample}, max_norm, noise_multiplier, generator)["rows"]
    norms = torch.sqrt(sum(g.flatten(1).pow(2).sum(dim=1) for g in per_sample.values()))
    factors = (max_norm / (norms + 1e-12)).clamp(max=1.0)
    noisy = {}
    for name, g in per_sample.items():
        clipped_sum = (g * factors.view(-1, *([1] * (g.dim() - 1)))).sum(dim=0)
        noise = torch.randn(clipped_sum.shape, generator=generator) * noise_multiplier * max_norm
        noisy[name] = clipped_sum + noise
    return noisy


def train_dp_sgd(model: torch.nn.Module, X, y, *, epochs: int, sample_rate: float, max_norm: float,
                 noise_multiplier: float, lr: float, seed: int = 0) -> int:
    """DP-SGD with Poisson sampling: each step takes each example with probability ``sample_rate``.

    Returns the number of steps taken, which the accountant needs.
    """
    X, y = torch.as_tensor(np.asarray(X), dtype=torch.float32), torch.as_tensor(np.asarray(y), dtype=torch.long)
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    loss_fn = torch.nn.CrossEntropyLoss()
    expected_batch = sample_rate * len(X)
    steps_per_epoch = int(round(1 / sample_rate))
    for _ in range(epochs * steps_per_epoch):
        chosen = torch.rand(len(X), generator=generator) < sample_rate
        grads = per_sample_gradients(model, loss_fn, X[chosen], y[chosen]) if chosen.any() else \
            {name: torch.zeros((0, *p.shape)) for name, p in model.named_parameters()}
        private = clip_and_noise(grads, max_norm, noise_multiplier, generator)
        for name, parameter in model.named_parameters():
            parameter.grad = private[name] / expected_batch
        optimizer.step()
    return epochs * steps_per_epoch


# --- Attacks and anonymisation ---

def membership_advantage(member_losses, nonmember_losses) -> tuple[float, float]:
    """A loss-threshold membership attack: (best TPR - FPR over thresholds, ROC AUC). Lower loss = "member"."""
    from utils.metrics import roc_auc, roc_curve

    truth = np.r_[np.ones(len(member_losses)), np.zeros(len(nonmember_losses))]
    scores = -np.r_[member_losses, nonmember_losses]
    fpr, tpr, _ = roc_curve(truth, scores)
    return float(np.max(tpr - fpr)), roc_auc(truth, scores)


def membership_p_value(member_losses, nonmember_losses) -> float:
    """How often chance alone gives the loss-threshold attack at least this advantage: the one-sided two-sample
    Kolmogorov-Smirnov p-value. The advantage (best TPR - FPR) *is* the one-sided KS statistic, max(F_members -
    F_non-members) of the two loss distributions, so under "members and non-members have the same loss
    distribution" its null distribution is known exactly. A small p-value: the model leaks membership on average.

    >>> round(membership_p_value(np.arange(100) / 100, np.arange(100) / 100), 2)   # identical losses: no evidence
    1.0
    """
    from scipy import stats

    members, nonmembers = np.asarray(member_losses, dtype=float), np.asarray(nonmember_losses, dtype=float)
    if members.ndim != 1 or nonmembers.ndim != 1 or len(members) < 2 or len(nonmembers) < 2:
        raise ValueError("give two 1-D sequences of per-example losses, at least 2 each")
    if not (np.all(np.isfinite(members)) and np.all(np.isfinite(nonmembers))):
        raise ValueError("losses must be finite")
    # "greater": the members' loss CDF lies above the non-members' somewhere (members have lower losses)
    return float(stats.ks_2samp(members, nonmembers, alternative="greater").pvalue)


def tpr_at_fpr(member_losses, nonmember_losses, fpr: float) -> float:
    """True positive rate of the loss-threshold attack when at most ``fpr`` of non-members are flagged: the
    threshold is the largest loss below which no more than ``fpr`` of the non-members fall. Carlini et al. (2022,
    "Membership Inference Attacks From First Principles") report this low-FPR number: an attack that names a few
    members with confidence is a worse leak than one that is slightly better than chance on everybody.

    >>> tpr_at_fpr([0.1, 0.2, 5.0, 6.0], [1.0, 2.0, 3.0, 4.0], 0.25)   # half the members below every non-member
    0.5
    """
    members, nonmembers = np.asarray(member_losses, dtype=float), np.asarray(nonmember_losses, dtype=float)
    if members.ndim != 1 or nonmembers.ndim != 1 or not len(members) or not len(nonmembers):
        raise ValueError("give two non-empty 1-D sequences of per-example losses")
    if not 0 <= fpr <= 1:
        raise ValueError(f"fpr must be in [0, 1], got {fpr}")
    ordered = np.sort(nonmembers)
    allowed = int(np.floor(fpr * len(ordered)))           # non-members that may be flagged
    threshold = ordered[allowed] if allowed < len(ordered) else np.inf
    return float(np.mean(members < threshold))            # flagged: a loss strictly below the threshold


def k_anonymity(table: pd.DataFrame, quasi_identifiers: list[str]) -> int:
    """The size of the smallest group of rows sharing the same quasi-identifier values (k of k-anonymity)."""
    missing = [c for c in quasi_identifiers if c not in table.columns]
    if missing:
        raise ValueError(f"quasi-identifiers {missing} are not columns of the table")
    return int(table.groupby(quasi_identifiers, dropna=False).size().min())


def unique_share(table: pd.DataFrame, quasi_identifiers: list[str]) -> float:
    """Share of rows whose quasi-identifier combination appears only once (re-identifiable by linkage)."""
    sizes = table.groupby(quasi_identifiers, dropna=False)[quasi_identifiers[0]].transform("size")
    return float((sizes == 1).mean())


def hmac_pseudonym(identifier: str, key: bytes) -> str:
    """Keyed pseudonym HMAC-SHA256(key, identifier): stable for joins, not reversible without the key."""
    if len(key) < 16:
        raise ValueError("use a key of at least 16 random bytes (for example secrets.token_bytes(32))")
    return hmac.new(key, identifier.encode(), hashlib.sha256).hexdigest()


# --- memorisation in a language model: canaries and exposure (Carlini et al., 2019, "The Secret Sharer") ---

def exposure(log_probs, secret: int) -> float:
    """Exposure of a planted secret: log2(number of candidates) - log2(its rank) among all candidates.

    ``log_probs[i]`` is the model's log-probability of candidate ``i``; ``secret`` is the planted one's index.
    Rank 1 is the most likely candidate, and only strictly more likely candidates count against the secret
    (rank = 1 + the number of candidates with a higher log-probability; ties go to the secret). Exposure runs from 0
    (the secret is the least likely) to log2(len(log_probs)) (the most likely: the model gives it away).

    >>> exposure([-3.0, -1.0, -2.0, -5.0], 1)   # the most likely of 4: log2(4) - log2(1)
    2.0
    >>> round(exposure([-3.0, -1.0, -2.0, -5.0], 0), 3)   # third of 4: 2 - log2(3)
    0.415
    """
    values = np.asarray(log_probs.detach().cpu() if isinstance(log_probs, torch.Tensor) else log_probs, dtype=float)
    if values.ndim != 1 or len(values) < 2:
        raise ValueError(f"log_probs must be one score per candidate (1-D, at least 2), got shape {values.shape}")
    if not np.all(np.isfinite(values)):
        raise ValueError("log_probs contains NaN or infinite values; score every candidate with a finite log-probability")
    if isinstance(secret, (bool, np.bool_)) or not isinstance(secret, (int, np.integer)) or not 0 <= secret < len(values):
        raise ValueError(f"secret must be an index into log_probs (0 to {len(values) - 1}), got {secret!r}")
    rank = 1 + int(np.sum(values > values[secret]))
    return float(math.log2(len(values)) - math.log2(rank))


@torch.no_grad()
def secret_log_probs(model: torch.nn.Module, prefixes: list[str], digits: int) -> torch.Tensor:
    """log p(secret | prefix) of every ``digits``-digit secret after each prefix: shape (len(prefixes), 10**digits).

    Column ``i`` is the secret ``f"{i:0{digits}d}"``. Built as a tree: one forward pass per digit position over
    every partial secret (1 + 10 + ... + 10**(digits - 1) sequences per prefix instead of 10**digits), which
    gives the same numbers as scoring each secret on its own. The prefixes must have the same length in bytes.
    """
    encoded = [list(prefix.encode("utf-8")) for prefix in prefixes]
    if not encoded or len({len(e) for e in encoded}) != 1 or not encoded[0]:
        raise ValueError("give one or more non-empty prefixes with the same length in bytes (pad them to one format)")
    if not isinstance(digits, int) or not 1 <= digits <= 6:
        raise ValueError(f"digits must be an integer from 1 to 6, got {digits!r}")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    digit_ids = torch.tensor(list(b"0123456789"), device=device)
    sequences = torch.tensor(encoded, device=device)
    scores = torch.zeros(len(prefixes), 1, device=device)
    for _ in range(digits):
        next_digit = torch.log_softmax(model(sequences)[:, -1].float(), dim=-1)[:, digit_ids]   # (partial secrets, 10)
        scores = (scores.reshape(-1, 1) + next_digit).reshape(len(prefixes), -1)
        sequences = torch.cat([sequences.repeat_interleave(10, dim=0), digit_ids.repeat(len(sequences))[:, None]], dim=1)
    model.train(was_training)
    return scores.cpu()
