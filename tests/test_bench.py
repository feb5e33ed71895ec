"""utils.bench: latency, percentiles and the timing-claim helper (interleaved, robust, with preconditions)."""

import time

import pytest

from conftest import busy_core
from utils import bench


def _spin(seconds: float) -> None:
    """Busy-wait on the CPU for ``seconds`` (CPU work, so a competing process slows it)."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def _work(n: int) -> int:
    return sum(i * i for i in range(n))


@pytest.fixture
def busy_process():
    """One process that keeps a core busy for the duration of the test."""
    with busy_core() as process:
        yield process


def test_percentiles_of_raw_samples():
    assert bench.percentiles([1, 2, 3, 4, 100], points=(50,)) == {"p50": 3.0}
    with pytest.raises(ValueError, match="non-empty"):
        bench.percentiles([])


def test_compare_interleaves_and_alternates_order():
    calls = []
    arms = {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}
    bench.compare(arms, rounds=4, number=1, warmup=1)
    # warm-up a, b; then a b | b a | a b | b a
    assert calls == ["a", "b", "a", "b", "b", "a", "a", "b", "b", "a"]


def test_comparison_ratio_and_statistics():
    c = bench.check_samples({"slow": [4.0, 5.0, 6.0, 100.0], "fast": [1.0, 1.0, 2.0, 2.0]})
    assert c.seconds == {"slow": 5.5, "fast": 1.5}
    assert c.ratio("slow", "fast") == pytest.approx(5.5 / 1.5)
    assert bench.check_samples([4.0, 5.0], [1.0, 2.0], names=("x", "y"), stat="min").ratio("x", "y") == 4.0
    assert "rounds" in repr(c)


@pytest.mark.parametrize("bad, message", [
    ({"a": [1.0]}, "at least two arms"),
    ({"a": [], "b": [1.0]}, "non-empty"),
    ({"a": [float("nan")], "b": [1.0]}, "finite"),
    ({"a": [-1.0], "b": [1.0]}, "non-negative"),
])
def test_bad_samples_are_refused(bad, message):
    with pytest.raises(ValueError, match=message):
        bench.check_samples(bad)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="stat"):
        bench.check_samples({"a": [1.0], "b": [1.0]}, stat="mode")
    with pytest.raises(ValueError, match="callable"):
        bench.compare({"a": 1, "b": lambda: None})
    with pytest.raises(ValueError, match="rounds"):
        bench.compare({"a": lambda: None, "b": lambda: None}, rounds=0)
    c = bench.check_samples({"a": [1.0], "b": [1.0]})
    with pytest.raises(ValueError, match="no arm"):
        c.ratio("a", "c")
    with pytest.raises(ValueError, match="at_least"):
        bench.assert_ratio(c, "a", "b")


def test_require_names_the_precondition():
    bench.require(True, "fine")
    with pytest.raises(bench.PreconditionFailed, match="mean batch"):
        bench.require(False, "mean batch near 1")


def test_assert_ratio_passes_a_true_claim_and_fails_a_false_one():
    c = bench.check_samples({"slow": [3.0, 3.1, 2.9], "fast": [1.0, 1.0, 1.1]})
    assert bench.assert_ratio(c, "slow", "fast", at_least=2.0) == pytest.approx(3.0)
    with pytest.raises(bench.TimingClaimFailed, match="asserted at least 4"):
        bench.assert_ratio(c, "slow", "fast", at_least=4.0, claim="four times")
    with pytest.raises(bench.TimingClaimFailed, match="asserted at most 2"):
        bench.assert_ratio(c, "slow", "fast", at_most=2.0)
    bench.assert_ratio(c, "slow", "fast", at_least=2.0, at_most=4.0)


def test_a_true_claim_holds_under_a_competing_busy_process(busy_process):
    """5x the CPU work, claimed at least 2.5x slower (margin 2x): passes while another process burns a core."""
    c = bench.compare({"1x": lambda: _spin(0.002), "5x": lambda: _spin(0.010)}, rounds=9, warmup=1)
    bench.assert_ratio(c, "5x", "1x", at_least=2.5, claim="five times the work")
    c = bench.compare({"1x": lambda: _work(5_000), "5x": lambda: _work(25_000)}, rounds=9, warmup=1)
    bench.assert_ratio(c, "5x", "1x", at_least=2.5, claim="five times the work")


def test_a_false_claim_fails_under_a_competing_busy_process(busy_process):
    """Equal work claimed 2x faster fails, loaded or not: interleaving puts the load on both arms."""
    c = bench.compare({"a": lambda: _work(10_000), "b": lambda: _work(10_000)}, rounds=9, warmup=1)
    with pytest.raises(bench.TimingClaimFailed):
        bench.assert_ratio(c, "a", "b", at_least=2.0)
    assert 0.5 < c.ratio("a", "b") < 2.0


def test_interleaving_spreads_a_load_burst_over_both_arms(monkeypatch):
    """A burst that slows a stretch of calls slows both arms in it (a fake clock makes this exact): equal arms
    stay equal. Timed back to back instead (all of a, then all of b), the same burst lands on a alone."""
    clock = {"now": 0.0, "calls": 0}
    monkeypatch.setattr(bench.time, "perf_counter", lambda: clock["now"])

    def arm():
        clock["calls"] += 1
        clock["now"] += 5.0 if 3 <= clock["calls"] < 11 else 1.0   # a burst over calls 3-10

    c = bench.compare({"a": arm, "b": arm}, rounds=10, warmup=0, stat="median")
    assert c.ratio("a", "b") == 1.0
    assert sorted(c.times["a"]) == sorted(c.times["b"])       # 4 slow rounds each
    clock.update(now=0.0, calls=0)
    back_to_back = bench.check_samples({"a": bench.compare({"a": arm, "x": lambda: None}, rounds=10, warmup=0).times["a"],
                                        "b": bench.compare({"b": arm, "x": lambda: None}, rounds=10, warmup=0).times["b"]})
    assert back_to_back.ratio("a", "b") == 5.0


def test_single_thread_restores_the_thread_count():
    import torch

    before = torch.get_num_threads()
    with bench.single_thread():
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError), bench.single_thread():
        raise RuntimeError("inside")
    assert torch.get_num_threads() == before
