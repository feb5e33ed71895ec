"""Checks for lab 16 (monitoring): psi, ks_statistic, ewc_penalty, reservoir_sample."""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from utils import monitoring
from utils.checks.core import Case, Mistake, Spec, global_seed, register

# --- 16.psi ---


def _shares(edges, values):
    return np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1) / len(values)


def psi_edges_from_current(reference, current, bins=10):
    reference, current = np.asarray(reference, float), np.asarray(current, float)
    edges = np.unique(np.quantile(current, np.linspace(0, 1, bins + 1)[1:-1]))
    r, c = (np.maximum(_shares(edges, x), monitoring.PSI_EPSILON) for x in (reference, current))
    return float(np.sum((c - r) * np.log(c / r)))


def psi_equal_width(reference, current, bins=10):
    reference, current = np.asarray(reference, float), np.asarray(current, float)
    edges = np.linspace(reference.min(), reference.max(), bins + 1)[1:-1]
    r, c = (np.maximum(_shares(edges, x), monitoring.PSI_EPSILON) for x in (reference, current))
    return float(np.sum((c - r) * np.log(c / r)))


def psi_one_sided(reference, current, bins=10):
    reference, current = np.asarray(reference, float), np.asarray(current, float)
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)[1:-1]))
    r, c = (np.maximum(_shares(edges, x), monitoring.PSI_EPSILON) for x in (reference, current))
    return float(np.sum(c * np.log(c / r)))


def psi_without_epsilon(reference, current, bins=10):
    reference, current = np.asarray(reference, float), np.asarray(current, float)
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)[1:-1]))
    r, c = _shares(edges, reference), _shares(edges, current)
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.nansum((c - r) * np.log(c / r)))


def _psi_cases() -> list[Case]:
    cases = [
        Case((np.arange(10.0), np.array([0.0, 1, 2, 7, 8, 9, 9, 9, 9, 9]), 2),
             "reference=0..9, current=[0, 1, 2, 7, 8, 9, 9, 9, 9, 9], bins=2", size=0),
        Case((np.arange(20.0), np.arange(20.0) + 100, 4),
             "reference=0..19, current=100..119 (every current value above the reference: empty bins), bins=4", size=1),
    ]
    rng = np.random.default_rng(1601)
    for n, shift, bins in ((50, 0.5, 5), (400, -1.0, 10), (3000, 0.2, 10)):
        reference = rng.normal(size=n) * 3 - 2                       # negative values too
        current = rng.normal(shift, 1.3, size=n // 2) * 3 - 2
        cases.append(Case((reference, current, bins), f"{n} normal reference values, {n // 2} current ones shifted by "
                          f"{shift}, bins={bins}", size=n))
    ages = rng.integers(17, 90, 500).astype(float)                   # integer data: tied quantiles
    cases.append(Case((ages, ages[:200] + 2, 10), "500 integer ages (tied quantile edges), current = first 200 + 2",
                      size=500))
    return cases


register(Spec(
    "16.psi", monitoring.psi, _psi_cases,
    hint="Edges: the reference's quantiles at 1/bins, 2/bins, ... (np.unique them); shares of reference and current per "
         "bin, floored at PSI_EPSILON; PSI = sum (c - r) * ln(c / r).",
    mistakes=(
        Mistake(psi_edges_from_current, "Take the bin edges from the reference's quantiles, not the current window's: "
                                        "the reference defines what normal looks like."),
        Mistake(psi_equal_width, "Use quantile bins (each holding about 1/bins of the reference), not equal-width bins "
                                 "between the reference's min and max."),
        Mistake(psi_one_sided, "PSI is symmetric: sum (c - r) * ln(c / r), not the one-sided KL sum c * ln(c / r)."),
        Mistake(psi_without_epsilon, "Floor every share at PSI_EPSILON before the logarithm: an empty bin would "
                                     "otherwise give ln(0) and an infinite or missing term."),
    )))


# --- 16.ks_statistic ---


def ks_one_sided(a, b):
    a, b = np.sort(np.asarray(a, float)), np.sort(np.asarray(b, float))
    points = np.concatenate([a, b])
    return float(np.max(np.searchsorted(a, points, side="right") / len(a) - np.searchsorted(b, points, side="right") / len(b)))


def ks_pooled_order_without_ties(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    labels = np.r_[np.zeros(len(a)), np.ones(len(b))][np.argsort(np.r_[a, b], kind="stable")]
    cdf_a, cdf_b = np.cumsum(labels == 0) / len(a), np.cumsum(labels == 1) / len(b)
    return float(np.max(np.abs(cdf_a - cdf_b)))


def ks_at_a_only(a, b):
    a, b = np.sort(np.asarray(a, float)), np.sort(np.asarray(b, float))
    return float(np.max(np.abs(np.searchsorted(a, a, side="right") / len(a) - np.searchsorted(b, a, side="right") / len(b))))


def _ks_cases() -> list[Case]:
    cases = [
        Case((np.array([1.0, 2.0, 3.0]), np.array([2.0, 2.0, 4.0, 5.0])), "a=[1, 2, 3], b=[2, 2, 4, 5] (a tie across samples)",
             size=0),
        Case((np.array([5.0, 6.0]), np.array([0.0, 0.0, 1.0])), "a=[5, 6], b=[0, 0, 1] (b's CDF above a's: the largest "
             "gap at a point of b)", size=1),
    ]
    rng = np.random.default_rng(1602)
    for n, m in ((20, 35), (300, 120), (2000, 1500)):
        a = rng.integers(-5, 6, n).astype(float)                      # many ties, negative values
        b = rng.normal(0.5, 3, m).round()
        cases.append(Case((a, b), f"{n} and {m} integer values with many ties", size=n + m))
    return cases


register(Spec(
    "16.ks_statistic", monitoring.ks_statistic, _ks_cases,
    hint="Evaluate both empirical CDFs (share of values <= x) at every value of either sample, after all copies of "
         "a tied value, and return the largest absolute gap.",
    mistakes=(
        Mistake(ks_one_sided, "Take the absolute gap: b's CDF can lie above a's, and the statistic is the largest "
                              "gap in either direction."),
        Mistake(ks_pooled_order_without_ties, "Walking the pooled sorted order one value at a time splits ties: "
                                              "evaluate the CDFs only after every copy of a tied value."),
        Mistake(ks_at_a_only, "Evaluate the gap at the values of both samples: the largest gap can sit at a value of b."),
    )))


# --- 16.ewc_penalty ---


def ewc_without_half(model, fisher, anchor, lam):
    return lam * sum((fisher[n] * (p - anchor[n]).pow(2)).sum() for n, p in model.named_parameters())


def ewc_without_lambda(model, fisher, anchor, lam):
    return 0.5 * sum((fisher[n] * (p - anchor[n]).pow(2)).sum() for n, p in model.named_parameters())


def ewc_absolute_distance(model, fisher, anchor, lam):
    return lam / 2 * sum((fisher[n] * (p - anchor[n]).abs()).sum() for n, p in model.named_parameters())


def ewc_without_fisher(model, fisher, anchor, lam):
    return lam / 2 * sum(((p - anchor[n]).pow(2)).sum() for n, p in model.named_parameters())


def ewc_anchored_to_current_weights(model, fisher, anchor, lam):
    return lam / 2 * sum((fisher[n] * (p - p.detach()).pow(2)).sum() for n, p in model.named_parameters())


def _ewc_cases() -> list[Case]:
    cases = []
    for i, (sizes, lam, spread) in enumerate((((2, 2), 1.0, 1.0), ((4, 5, 3), 10.0, 0.5), ((8, 16, 10), 1000.0, 0.1))):
        generator = torch.Generator().manual_seed(1603 + i)
        layers = []
        with global_seed(1603 + i):  # nn.Linear draws its weights from torch's global generator
            for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
                layers += [nn.Linear(fan_in, fan_out), nn.Tanh()]
        model = nn.Sequential(*layers[:-1])
        fisher = {n: torch.rand(p.shape, generator=generator) for n, p in model.named_parameters()}
        anchor = {n: p.detach() + spread * torch.randn(p.shape, generator=generator) for n, p in model.named_parameters()}
        cases.append(Case((model, fisher, anchor, lam), f"an MLP of sizes {sizes}, random Fisher, anchor within "
                          f"{spread} of the weights, lam={lam}", atol=1e-5 * lam, size=i))
    return cases


register(Spec(
    "16.ewc_penalty", monitoring.ewc_penalty, _ewc_cases,
    hint="(lam / 2) * sum over parameters of fisher[name] * (p - anchor[name])**2, computed with torch so that it "
         "stays differentiable in the model's parameters.",
    mistakes=(
        Mistake(ewc_without_half, "Keep the 1/2: the penalty is (lam / 2) * sum F (theta - theta*)^2."),
        Mistake(ewc_without_lambda, "Multiply by lam: it sets how strongly the old task is protected."),
        Mistake(ewc_absolute_distance, "Square the distance to the anchor, (p - anchor)**2, not its absolute value."),
        Mistake(ewc_without_fisher, "Weight each squared distance by the Fisher value of that weight: weights that "
                                    "mattered for the old task are held, the others are free."),
        Mistake(ewc_anchored_to_current_weights, "Measure the distance to anchor[name], the weights saved after the old "
                                                 "task, not to the current weights (that distance is always 0)."),
    )))


# --- 16.reservoir_sample ---


def reservoir_first_k(stream, k, seed=0):
    memory = []
    for item in stream:
        if len(memory) < k:
            memory.append(item)
    return memory


def reservoir_off_by_one(stream, k, seed=0):
    rng = np.random.default_rng(seed)
    memory = []
    for t, item in enumerate(stream):
        if t < k:
            memory.append(item)
        else:
            slot = int(rng.integers(0, max(t, 1)))
            if slot < k:
                memory[slot] = item
    return memory


def reservoir_last_k(stream, k, seed=0):
    return list(stream)[-k:]


def reservoir_counts_first(stream, k, seed=0):
    n = sum(1 for _ in stream)                     # a first pass to learn the length: a stream has no second one
    keep = set(np.random.default_rng(seed).choice(n, size=min(k, n), replace=False).tolist())
    return [item for t, item in enumerate(stream) if t in keep]


class _Item:
    """A stream element whose lifetime can be watched (a weak reference), so the stream sees what is still held."""
    __slots__ = ("value", "__weakref__")

    def __init__(self, value):
        self.value = value


class _Stream:
    """An iterable of unknown length that can be read once (no len, no indexing, no second pass), counting how many
    of the items it handed out are still held by the reader."""

    def __init__(self, n):
        self.n, self.used, self.most_held = n, False, 0

    def __iter__(self):
        if self.used:
            raise RuntimeError("this stream can be read only once")
        self.used = True
        return self._items()

    def _items(self):
        handed_out = []
        for t in range(self.n):
            item = _Item(t)
            handed_out.append(weakref.ref(item))
            if t % 50 == 0:
                handed_out = [ref for ref in handed_out if ref() is not None]
                self.most_held = max(self.most_held, len(handed_out))
            yield item
        del item


@dataclass(frozen=True)
class _OnePass:
    """A case's stream of n items, read once: each call gets a fresh one."""
    n: int


ONE_PASS_HINT = ("The stream is an iterable of unknown length that can be read only once: no len(), no indexing, no "
                 "second pass. Keep k items as they go by.")


def _sample_and_footprint(function, args):
    """The sample, and for a one-pass stream whether the answer held far more than k of its items at once."""
    stream, k, seed = args
    if not isinstance(stream, _OnePass):
        return function(stream, k, seed), ""
    live = _Stream(stream.n)
    result = function(live, k, seed)
    values = [getattr(item, "value", item) for item in result] if isinstance(result, list) else result
    held = f"held {live.most_held} items at once" if live.most_held > 2 * k + 60 else "held about k items"
    return values, held


def _reservoir_cases() -> list[Case]:
    cases = [Case((range(3), 5, 0), "stream 0..2, k=5 (shorter than k: keep everything)", size=0),
             Case((range(10), 3, 7), "stream 0..9, k=3, seed=7", size=1)]
    for n, k, seed in ((100, 10, 1), (1000, 50, 2), (5000, 5, 3)):
        cases.append(Case((range(n), k, seed), f"stream 0..{n - 1}, k={k}, seed={seed}", size=n))
    cases.append(Case(([f"image {i}" for i in range(40)], 4, 5), "40 strings, k=4, seed=5", size=40))
    cases.append(Case((_OnePass(2000), 8, 4), "a one-pass stream of 2000 items (no len, no indexing), k=8, seed=4",
                      size=2000, hint=ONE_PASS_HINT))
    return cases


register(Spec(
    "16.reservoir_sample", monitoring.reservoir_sample, _reservoir_cases, seed=(2, int), invoke=_sample_and_footprint,
    hint="rng = np.random.default_rng(seed); keep the first k items; for item t (counting from 0) from t = k on, draw "
         "slot = rng.integers(0, t + 1) and replace memory[slot] when slot < k.",
    mistakes=(
        Mistake(reservoir_first_k, "Keeping the first k items remembers only the start of the stream: later items must "
                                   "replace a random slot with probability k / (t + 1)."),
        Mistake(reservoir_off_by_one, "Draw the slot from 0 to t inclusive: rng.integers(0, t + 1). With t + 1 items seen, "
                                      "the newest must be kept with probability k / (t + 1)."),
        Mistake(reservoir_counts_first, ONE_PASS_HINT),
        Mistake(reservoir_last_k, "The memory must be a uniform sample of the whole stream, not its last k items (and "
                                  "it must not hold the whole stream in memory)."),
    )))
