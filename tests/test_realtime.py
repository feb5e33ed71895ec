"""utils.realtime against recomputation, the standard library and brute force: KV cache, speculative decoding,
LRU cache, cache keys, dynamic batching, fan-out probability, static and continuous batching."""

import asyncio
import functools

import numpy as np
import pytest
import torch

from utils import lm, realtime


def small_gpt(position="learned", seed=0, context=64):
    torch.manual_seed(seed)
    return lm.GPT(lm.GPTConfig(context=context, d_model=32, n_heads=4, n_layers=2, position=position)).eval()


@pytest.mark.parametrize("position", ["learned", "sinusoidal", "rope", "none"])
def test_cached_forward_equals_the_full_forward_piece_by_piece(position):
    model = small_gpt(position)
    idx = torch.randint(0, 256, (2, 20), generator=torch.Generator().manual_seed(1))
    full = model(idx)
    cache = realtime.KVCache(len(model.blocks))
    pieces = [realtime.cached_forward(model, idx[:, a:b], cache) for a, b in ((0, 7), (7, 8), (8, 15), (15, 20))]
    torch.testing.assert_close(torch.cat(pieces, dim=1), full, atol=1e-5, rtol=1e-5)
    assert len(cache) == 20
    assert cache.nbytes() == realtime.kv_cache_bytes(2, 4, 8, 20, batch=2, bytes_per_value=4)


def test_cached_and_recomputed_greedy_generation_give_the_same_tokens():
    model = small_gpt()
    prompt = list(b"def f(x):")
    assert realtime.greedy_generate(model, prompt, 40) == realtime.greedy_generate(model, prompt, 40, use_cache=False)


def test_is_causal_with_one_query_sees_only_the_first_key():
    q, k, v = (torch.randn(1, 1, t, 4, generator=torch.Generator().manual_seed(t)) for t in (1, 6, 6))
    wrong = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
    torch.testing.assert_close(wrong, v[:, :, :1])
    right = realtime.decode_attention(q, k, v, start=5)
    torch.testing.assert_close(right, torch.nn.functional.scaled_dot_product_attention(q, k, v))


def test_cache_truncation_and_limits_are_checked():
    model = small_gpt(context=16)
    cache = realtime.KVCache(2)
    realtime.cached_forward(model, torch.zeros(1, 10, dtype=torch.long), cache)
    cache.truncate(4)
    assert len(cache) == 4
    with pytest.raises(ValueError, match="truncate"):
        cache.truncate(5)
    with pytest.raises(ValueError, match="context of 16"):
        realtime.cached_forward(model, torch.zeros(1, 13, dtype=torch.long), cache)
    with pytest.raises(ValueError, match="alibi"):
        realtime.cached_forward(small_gpt("alibi"), torch.zeros(1, 2, dtype=torch.long), realtime.KVCache(2))


def test_kv_cache_bytes_formula_and_errors():
    assert realtime.kv_cache_bytes(32, 32, 128, 4096, 1, 2) == 2 * 2 ** 30            # Llama-2-7B, fp16, 4k tokens
    assert realtime.kv_cache_bytes(32, 8, 128, 4096, 1, 2) == 2 ** 29                 # grouped-query: 8 KV heads
    assert realtime.kv_cache_bytes(2, 2, 4, 0) == 0
    with pytest.raises(ValueError, match="kv_heads"):
        realtime.kv_cache_bytes(2, 0, 4, 10)
    with pytest.raises(ValueError, match="bytes_per_value"):
        realtime.kv_cache_bytes(2, 2, 4, 10, 1, 0)


def test_accept_draft_cases():
    assert realtime.accept_draft([1, 2, 3], [1, 2, 3, 4]) == [1, 2, 3, 4]
    assert realtime.accept_draft([1, 2, 3], [9, 2, 3, 4]) == [9]
    assert realtime.accept_draft([1, 2, 3], [1, 9, 3, 4]) == [1, 9]          # not [1, 9, 3]: stop at the mismatch
    assert realtime.accept_draft([], [7]) == [7]
    with pytest.raises(ValueError, match="one entry per draft token plus one"):
        realtime.accept_draft([1, 2], [1, 2])


class RandomDraft:
    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)

    def propose(self, ids, k):
        return self.rng.integers(0, 256, k).tolist()


@pytest.mark.parametrize("k", [1, 3, 8])
def test_speculative_decoding_returns_the_target_greedy_output(k):
    model = small_gpt(context=48)
    prompt = list(b"class A:")
    plain = realtime.greedy_generate(model, prompt, 40)
    for draft in (RandomDraft(k), realtime.NgramDraft(np.frombuffer(b"class A:\n    pass\n" * 20, np.uint8), 3)):
        tokens, calls = realtime.speculative_generate(model, draft, prompt, 40, k)
        assert tokens == plain and 1 <= calls <= 41


def test_a_draft_that_agrees_cuts_target_calls():
    model = small_gpt(context=64)
    prompt = list(b"ab")
    plain = realtime.greedy_generate(model, prompt, 40)

    class Oracle:
        def propose(self, ids, k):
            return (plain + [0] * 8)[len(ids) - 2:len(ids) - 2 + k]

    tokens, calls = realtime.speculative_generate(model, Oracle(), prompt, 40, 4)
    assert tokens == plain and calls == 1 + 8                 # prefill, then 5 tokens per call


def test_ngram_draft_predicts_the_most_frequent_next_byte_with_backoff():
    draft = realtime.NgramDraft(np.frombuffer(b"abcabdabcx", np.uint8), order=3)
    assert draft.next_token(list(b"ab")) == ord("c")           # "ab" -> c twice, d once
    assert draft.next_token(list(b"zb")) == ord("c")           # unseen "zb": back off to "b"
    assert draft.propose(list(b"a"), 3) == list(b"bca")


def test_lru_cache_counts_the_hits_functools_counts():
    trace = realtime.zipf_trace(500, 5000, 1.1, seed=3)
    for size in (1, 10, 100):
        ours = realtime.LRUCache(size)
        for key in trace:
            ours.get_or_compute(int(key), lambda: None)
        theirs = functools.lru_cache(maxsize=size)(lambda key: None)
        for key in trace:
            theirs(int(key))
        info = theirs.cache_info()
        assert (ours.hits, ours.misses, len(ours)) == (info.hits, info.misses, info.currsize)


def test_zipf_trace_ranks_keys_by_popularity():
    counts = np.bincount(realtime.zipf_trace(50, 20000, 1.2, seed=0), minlength=50)
    assert counts[0] > counts[1] > counts[5] > counts[40]
    uniform = np.bincount(realtime.zipf_trace(10, 20000, 0.0, seed=0), minlength=10)
    assert uniform.min() > 1800


def test_cache_key_is_stable_order_free_and_versioned():
    key = realtime.cache_key("v1", {"x": [1, 2], "y": "a"})
    assert key == realtime.cache_key("v1", {"y": "a", "x": [1, 2]}) and len(key) == 64
    assert key != realtime.cache_key("v2", {"x": [1, 2], "y": "a"})
    with pytest.raises(TypeError, match="tolist"):
        realtime.cache_key("v1", np.zeros(2))
    with pytest.raises(ValueError, match="model_version"):
        realtime.cache_key("", {})


def test_fanout_probability_matches_simulation():
    rng = np.random.default_rng(0)
    slow = (rng.random((200_000, 20)) < 0.05).any(axis=1).mean()
    assert realtime.fanout_slow_probability(0.05, 20) == pytest.approx(slow, abs=0.005)
    with pytest.raises(ValueError):
        realtime.fanout_slow_probability(1.5, 2)


def test_static_and_continuous_batching_step_counts():
    result = realtime.static_vs_continuous([4, 1, 1, 1], slots=2)
    assert result["static steps"] == 4 + 1 and result["continuous steps"] == 4
    assert realtime.static_vs_continuous([3, 3], 2)["continuous utilisation"] == 1.0


def run(coroutine):
    return asyncio.run(coroutine)


def test_dynamic_batcher_returns_each_caller_its_own_row_in_batches():
    seen = []

    def double(rows):
        seen.append(len(rows))
        return [2 * r for r in rows]

    async def main():
        async with realtime.DynamicBatcher(double, max_batch=8, max_wait_ms=20) as batcher:
            return await asyncio.gather(*(batcher.submit(i) for i in range(30))), batcher.batch_sizes

    results, sizes = run(main())
    assert results == [2 * i for i in range(30)]
    assert max(seen) == 8 and sum(seen) == 30 and sizes == seen


def test_a_failing_batch_fails_only_its_callers():
    def fragile(rows):
        if -1 in rows:
            raise ZeroDivisionError("bad row")
        return rows

    async def main():
        async with realtime.DynamicBatcher(fragile, max_batch=2, max_wait_ms=50) as batcher:
            first = await asyncio.gather(batcher.submit(-1), batcher.submit(5), return_exceptions=True)
            second = await asyncio.gather(batcher.submit(6), batcher.submit(7))
        return first, second

    first, second = run(main())
    assert all(isinstance(r, ZeroDivisionError) for r in first) and second == [6, 7]


def test_a_wrong_number_of_results_is_an_error_for_the_batch():
    async def main():
        async with realtime.DynamicBatcher(lambda rows: rows[:1], max_batch=4, max_wait_ms=20) as batcher:
            return await asyncio.gather(*(batcher.submit(i) for i in range(3)), return_exceptions=True)

    assert all(isinstance(r, ValueError) and "one result per row" in str(r) for r in run(main()))


def test_no_request_is_lost_when_the_batcher_stops():
    async def slow(rows):
        await asyncio.sleep(0.01)
        return rows

    async def main():
        async with realtime.DynamicBatcher(slow, max_batch=3, max_wait_ms=1000) as batcher:
            tasks = [asyncio.create_task(batcher.submit(i)) for i in range(10)]
            await asyncio.sleep(0)                     # submitted, most still waiting for their batch
        return [task.result() for task in tasks]       # every one answered before the block returned

    assert run(main()) == list(range(10))


def test_submit_outside_the_block_and_bad_settings_are_refused():
    batcher = realtime.DynamicBatcher(lambda rows: rows)
    with pytest.raises(RuntimeError, match="async with"):
        run(batcher.submit(1))
    with pytest.raises(ValueError, match="max_batch"):
        realtime.DynamicBatcher(lambda rows: rows, max_batch=0)
    with pytest.raises(TypeError, match="predict_batch"):
        realtime.DynamicBatcher(None)


def test_poisson_load_measures_queueing_from_the_scheduled_arrival():
    async def main(service):
        async with realtime.DynamicBatcher(service, max_batch=1, max_wait_ms=0) as batcher:
            return await realtime.poisson_load(batcher.submit, rate=400, n_requests=60, seed=0)

    async def busy(rows):
        await asyncio.sleep(0.01)                      # capacity 100 requests/s, offered 400/s
        return rows

    latencies = run(main(busy))
    assert latencies.shape == (60,) and latencies.min() >= 0.009
    assert latencies[-10:].mean() > 3 * latencies[:10].mean()  # the queue grows: later requests wait longer


def test_a_row_arriving_during_a_slow_batch_keeps_its_own_deadline():
    """The deadline starts when a row is submitted, not when the previous batch finishes: a row that arrives
    early in a 300 ms batch, with a 200 ms max_wait, has used up its wait by the time the batch ends and leaves
    at once (the old behaviour made it wait the batch plus another full 200 ms)."""
    max_wait, service = 0.2, 0.3
    starts, ends = [], []

    async def slow_model(rows):
        starts.append(asyncio.get_running_loop().time())
        await asyncio.sleep(service)
        ends.append(asyncio.get_running_loop().time())
        return rows

    async def main():
        loop = asyncio.get_running_loop()
        async with realtime.DynamicBatcher(slow_model, max_batch=8, max_wait_ms=1e3 * max_wait) as batcher:
            submitted = loop.time()
            first = asyncio.create_task(batcher.submit("a"))
            while not starts:                           # the first batch is running
                await asyncio.sleep(0.005)
            second = asyncio.create_task(batcher.submit("b"))    # arrives early in the running batch
            await asyncio.gather(first, second)
        return submitted

    submitted = run(main())
    assert starts[0] - submitted >= 0.9 * max_wait           # a lone row waited for company, about max_wait
    assert len(starts) == 2 and starts[1] - ends[0] < 0.5 * max_wait   # "b"'s deadline passed during the batch
