"""Latency measurement that means something: warm-up first, many repeats, median and p95, no autograd."""

from __future__ import annotations

import time

import numpy as np
import torch


@torch.no_grad()
def latency_ms(model: torch.nn.Module, example: torch.Tensor, *, repeats: int = 100, warmup: int = 10) -> dict[str, float]:
    """Median and 95th-percentile wall time of ``model(example)`` in milliseconds, in eval mode.

    Warm-up runs are discarded (first calls allocate memory and pick kernels). Compare numbers
    only within one run on one machine: they depend on the processor and the thread count.
    """
    if repeats < 1 or warmup < 0:
        raise ValueError(f"repeats must be >= 1 and warmup >= 0, got {repeats} and {warmup}")
    was_training = model.training
    model.eval()
    for _ in range(warmup):
        model(example)
    times = np.empty(repeats)
    for i in range(repeats):
        start = time.perf_counter()
        model(example)
        times[i] = time.perf_counter() - start
    model.train(was_training)
    return {"median": float(np.median(times) * 1e3), "p95": float(np.percentile(times, 95) * 1e3)}


def percentiles(latencies, points=(50, 95, 99)) -> dict[str, float]:
    """Tail latency of individual requests: p50/p95/p99 of the raw samples (never of averages)."""
    values = np.asarray(latencies, dtype=float)
    if values.ndim != 1 or values.size == 0:
        raise ValueError("latencies must be a non-empty 1-D sequence of individual request times")
    return {f"p{p}": float(np.percentile(values, p)) for p in points}
