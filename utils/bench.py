"""Latency measurement that means something: warm-up first, many repeats, median and p95, no autograd."""

from __future__ import annotations

import contextlib
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


# ----------------------------------------------------------------------------------------------------------------
# Timing claims that hold under load: interleaved arms, a robust statistic, a stated bound, preconditions first.
# ----------------------------------------------------------------------------------------------------------------

class PreconditionFailed(AssertionError):
    """A timing claim's precondition does not hold, so the claim itself was not judged."""


class TimingClaimFailed(AssertionError):
    """A timing claim measured outside its asserted bound."""


_STATISTICS = {"median": np.median, "min": np.min, "mean": np.mean}


class Comparison:
    """Per-call wall times of several arms measured in the same rounds, and their ratios.

    ``times[name]`` holds one per-call time (seconds) per round. ``seconds[name]`` is the robust statistic of
    those rounds (the median by default, or the minimum: background load only ever adds time, so the minimum is
    the least disturbed reading; the median is the typical one). Ratios compare these statistics.
    """

    def __init__(self, times: dict, *, stat: str = "median"):
        if stat not in _STATISTICS:
            raise ValueError(f"stat must be one of {sorted(_STATISTICS)}, got {stat!r}")
        if len(times) < 2:
            raise ValueError(f"a comparison needs at least two arms, got {list(times)}")
        self.times = {}
        for name, values in times.items():
            values = np.asarray(values, dtype=float).ravel()
            if values.size == 0 or not np.all(np.isfinite(values)) or np.any(values < 0):
                raise ValueError(f"arm {name!r}: times must be a non-empty sequence of finite, non-negative seconds")
            self.times[name] = values
        self.stat = stat

    @property
    def seconds(self) -> dict[str, float]:
        return {name: float(_STATISTICS[self.stat](values)) for name, values in self.times.items()}

    def ratio(self, slow: str, fast: str) -> float:
        """``seconds[slow] / seconds[fast]``: how many times faster ``fast`` is than ``slow``."""
        for name in (slow, fast):
            if name not in self.times:
                raise ValueError(f"no arm named {name!r}; arms: {list(self.times)}")
        seconds = self.seconds
        if seconds[fast] == 0:
            return float("inf")
        return seconds[slow] / seconds[fast]

    def table(self):
        """One row per arm: the statistic, minimum, median and maximum per call, in milliseconds."""
        import pandas as pd

        seconds = self.seconds
        return pd.DataFrame({name: {f"{self.stat} (ms)": seconds[name] * 1e3, "min (ms)": values.min() * 1e3,
                                    "median (ms)": np.median(values) * 1e3, "max (ms)": values.max() * 1e3,
                                    "rounds": values.size}
                             for name, values in self.times.items()}).T

    def __repr__(self) -> str:
        return f"Comparison({self.stat} of {len(next(iter(self.times.values())))} rounds)\n{self.table().round(3)}"


@contextlib.contextmanager
def single_thread():
    """Run the block on one torch thread, then restore the caller's count. For claims about *work* (how time grows
    with size): with several threads on a loaded machine, every parallel region waits for its slowest thread, which
    can make a small call take as long as a large one and hide the growth being measured."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def compare(arms: dict, *, rounds: int = 7, number: int = 1, warmup: int = 1, stat: str = "median") -> Comparison:
    """Time each callable in ``arms`` (name -> zero-argument function) interleaved: every round runs every arm
    ``number`` times, in an order that reverses each round (A, B, B, A, ...), so load that comes and goes falls
    on all arms alike. Returns a :class:`Comparison` of per-call seconds.

    >>> c = compare({"short": lambda: sum(range(1_000)), "long": lambda: sum(range(50_000))}, rounds=3)
    >>> c.ratio("long", "short") > 1
    True
    """
    if not arms or len(arms) < 2:
        raise ValueError("compare needs a dict of at least two named zero-argument callables")
    if rounds < 1 or number < 1 or warmup < 0:
        raise ValueError(f"rounds and number must be >= 1 and warmup >= 0, got {rounds}, {number}, {warmup}")
    for name, function in arms.items():
        if not callable(function):
            raise ValueError(f"arm {name!r} is not callable")
    names = list(arms)
    for _ in range(warmup):
        for name in names:
            arms[name]()
    times = {name: [] for name in names}
    for r in range(rounds):
        for name in (names if r % 2 == 0 else names[::-1]):
            function = arms[name]
            start = time.perf_counter()
            for _ in range(number):
                function()
            times[name].append((time.perf_counter() - start) / number)
    return Comparison(times, stat=stat)


def check_samples(samples, other=None, *, names: tuple[str, str] = ("a", "b"), stat: str = "median") -> Comparison:
    """A :class:`Comparison` from times measured by your own loop: a dict name -> samples, or two sequences
    (named by ``names``). Measure the arms interleaved yourself (alternate them inside one loop)."""
    if other is not None:
        samples = {names[0]: samples, names[1]: other}
    if not isinstance(samples, dict):
        raise ValueError("check_samples takes a dict of name -> samples, or two sequences of samples")
    return Comparison(samples, stat=stat)


def require(condition: bool, message: str) -> None:
    """Assert a timing claim's precondition before the claim, so that a failure says which of the two broke."""
    if not bool(condition):
        raise PreconditionFailed(f"precondition not met: {message}")


def assert_ratio(comparison: Comparison, slow: str, fast: str, *, at_least: float | None = None,
                 at_most: float | None = None, claim: str = "") -> float:
    """Assert ``comparison.ratio(slow, fast)`` (how many times faster ``fast`` is) against a bound and return it.

    State the bound with a margin: about half the ratio a quiet machine measures for a lower bound (twice it for
    an upper bound), so that a loaded machine still passes and a machine where the claim is false fails.
    """
    if at_least is None and at_most is None:
        raise ValueError("give at_least and/or at_most")
    if at_least is not None and at_most is not None and at_least > at_most:
        raise ValueError(f"at_least ({at_least}) > at_most ({at_most})")
    ratio = comparison.ratio(slow, fast)
    seconds = comparison.seconds
    measured = (f"{slow} {seconds[slow] * 1e3:.3g} ms / {fast} {seconds[fast] * 1e3:.3g} ms = {ratio:.2f}x "
                f"({comparison.stat} of {comparison.times[slow].size} interleaved rounds)")
    if at_least is not None and not ratio >= at_least:
        raise TimingClaimFailed(f"{claim or 'timing claim'}: measured {measured}, asserted at least {at_least}x")
    if at_most is not None and not ratio <= at_most:
        raise TimingClaimFailed(f"{claim or 'timing claim'}: measured {measured}, asserted at most {at_most}x")
    return ratio
