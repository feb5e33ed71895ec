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


class OnnxModule(torch.nn.Module):
    """An ONNX Runtime session (or the path of an .onnx file) behind a torch module's interface, so that
    :func:`latency_ms` and ``utils.train.evaluate`` time and score it like the eager model: tensors in,
    tensors out, through the graph's first input."""

    def __init__(self, session_or_path, *, threads: int | None = None):
        super().__init__()
        if isinstance(session_or_path, (str, bytes)) or hasattr(session_or_path, "__fspath__"):
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.intra_op_num_threads = threads or torch.get_num_threads()
            session_or_path = ort.InferenceSession(str(session_or_path), options, providers=["CPUExecutionProvider"])
        self.session = session_or_path
        self.input_name = self.session.get_inputs()[0].name
        self.anchor = torch.nn.Parameter(torch.zeros(0), requires_grad=False)  # evaluate() reads the device here

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.session.run(None, {self.input_name: x.detach().cpu().numpy()})[0])
