"""Real-time inference (lesson 15): tail latency, the KV cache, dynamic batching, caching, speculative decoding.

Every piece is small enough to read; lesson 15 builds each one step by step, measures it on the course's
language model (``utils.lm``) and checks it against recomputation or the standard library.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import inspect
import json
import math
from typing import Any, Callable, Sequence

import numpy as np
import torch

# --- tail latency ---


def fanout_slow_probability(p: float, n: int) -> float:
    """Probability that a request fanned out to ``n`` servers is slow when each server is slow with
    probability ``p`` independently: it waits for the slowest, so it is fast only if all n are fast.

    >>> round(fanout_slow_probability(0.01, 100), 3)
    0.634
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p is a probability, between 0 and 1; got {p}")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n is a number of servers, an integer >= 1; got {n!r}")
    return float(1.0 - (1.0 - p) ** int(n))


# --- the KV cache ---


def kv_cache_bytes(layers: int, kv_heads: int, head_dim: int, tokens: int, batch: int = 1,
                   bytes_per_value: float = 2) -> float:
    """Memory of a KV cache: a key and a value vector per layer, KV head and token, for each sequence.

    2 · layers · kv_heads · head_dim · tokens · batch · bytes_per_value. With grouped-query attention,
    ``kv_heads`` is the number of key/value heads (fewer than the query heads); ``bytes_per_value`` is
    2 for fp16/bf16, 1 for int8, 0.5 for int4.

    >>> kv_cache_bytes(32, 32, 128, 4096, 1, 2) / 2**30   # Llama-2-7B, one 4k-token sequence in fp16
    2.0
    """
    for name, value in (("layers", layers), ("kv_heads", kv_heads), ("head_dim", head_dim), ("batch", batch)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if isinstance(tokens, bool) or not isinstance(tokens, (int, np.integer)) or tokens < 0:
        raise ValueError(f"tokens must be a non-negative integer, got {tokens!r}")
    if not bytes_per_value > 0:
        raise ValueError(f"bytes_per_value must be positive (2 for fp16, 1 for int8, 0.5 for int4), got {bytes_per_value}")
    return float(2 * layers * kv_heads * head_dim * tokens * batch * bytes_per_value)


class KVCache:
    """Per layer, the keys and values of every token seen so far, each (batch, heads, tokens, head_dim)."""

    def __init__(self, n_layers: int):
        self.keys: list[torch.Tensor | None] = [None] * n_layers
        self.values: list[torch.Tensor | None] = [None] * n_layers

    def __len__(self) -> int:
        return 0 if self.keys[0] is None else self.keys[0].shape[2]

    def append(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Add the new tokens' keys and values to ``layer``; return all of them."""
        if self.keys[layer] is not None:
            k, v = torch.cat([self.keys[layer], k], dim=2), torch.cat([self.values[layer], v], dim=2)
        self.keys[layer], self.values[layer] = k, v
        return k, v

    def truncate(self, length: int) -> None:
        """Forget every token from position ``length`` on (rejected draft tokens, say)."""
        if not 0 <= length <= len(self):
            raise ValueError(f"cannot truncate a cache of {len(self)} tokens to {length}")
        self.keys = [None if k is None else k[:, :, :length] for k in self.keys]
        self.values = [None if v is None else v[:, :, :length] for v in self.values]

    def nbytes(self) -> int:
        """Bytes the cached tensors hold."""
        return sum(t.numel() * t.element_size() for t in (*self.keys, *self.values) if t is not None)


def decode_attention(q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, start: int) -> torch.Tensor:
    """Attention of the new queries (positions ``start``, ``start + 1``, ...) over every cached key.

    The query at position ``start + i`` may see keys ``0 .. start + i``. (``is_causal=True`` in
    ``scaled_dot_product_attention`` aligns the mask to the top-left: one query would see key 0 only.)
    """
    t_new, t_all = q.shape[2], keys.shape[2]
    visible = torch.arange(t_all, device=q.device)[None, :] <= start + torch.arange(t_new, device=q.device)[:, None]
    return torch.nn.functional.scaled_dot_product_attention(q, keys, values, attn_mask=visible)


@torch.no_grad()
def cached_forward(model, idx: torch.Tensor, cache: KVCache) -> torch.Tensor:
    """Logits for the tokens ``idx`` (batch, new) that follow the ``len(cache)`` tokens already in ``cache``.

    The same arithmetic as ``model(idx_all)`` for those positions, but each block computes keys and
    values for the new tokens only and reads the earlier ones from the cache (which it extends).
    """
    config, start, new = model.config, len(cache), idx.shape[1]
    if config.position == "alibi":
        raise ValueError("cached_forward supports learned, sinusoidal, rope and no positions, not alibi")
    if config.position == "learned" and start + new > config.context:
        raise ValueError(f"{start + new} tokens exceed the context of {config.context}: learned positions "
                         "end there (use a shorter generation or a model with rope positions)")
    positions = torch.arange(start, start + new, device=idx.device)
    x = model.tok_emb(idx)
    if config.position == "learned":
        x = x + model.pos_emb(positions)
    elif config.position == "sinusoidal":
        from utils.lm import sinusoidal_positions

        table = model.pos_table if start + new <= len(model.pos_table) else sinusoidal_positions(start + new, config.d_model)
        x = x + table[start:start + new].to(x.device, x.dtype)
    for layer, block in enumerate(model.blocks):
        attention, h = block.attn, block.ln1(x)
        q, k, v = attention.qkv(h).split(config.d_model, dim=-1)
        q, k, v = (t.view(idx.shape[0], new, config.n_heads, -1).transpose(1, 2) for t in (q, k, v))
        if config.position == "rope":
            from utils.lm import rope

            q, k = rope(q, positions * attention.rope_scale), rope(k, positions * attention.rope_scale)
        keys, values = cache.append(layer, k, v)
        y = decode_attention(q, keys, values, start).transpose(1, 2).reshape(idx.shape[0], new, config.d_model)
        x = x + attention.proj(y)
        x = x + block.mlp(block.ln2(x))
    return model.ln_f(x) @ model.tok_emb.weight.T


@torch.no_grad()
def greedy_stream(model, prompt_ids: Sequence[int], max_new_tokens: int):
    """Yield greedy tokens one at a time with the KV cache: the prompt once (prefill), then one token per
    step. What a streaming endpoint sends as each token is ready."""
    if not len(prompt_ids):
        raise ValueError("prompt_ids is empty: give at least one token")
    device = next(model.parameters()).device
    cache = KVCache(len(model.blocks))
    logits = cached_forward(model, torch.tensor([list(prompt_ids)], device=device), cache)
    for step in range(max_new_tokens):
        token = int(logits[0, -1].argmax())
        yield token
        if step + 1 < max_new_tokens:
            logits = cached_forward(model, torch.tensor([[token]], device=device), cache)


@torch.no_grad()
def greedy_generate(model, prompt_ids: Sequence[int], max_new_tokens: int, *, use_cache: bool = True) -> list[int]:
    """Greedy decoding: ``max_new_tokens`` token ids after ``prompt_ids``, with the KV cache or by
    recomputing the whole sequence at every step."""
    if use_cache:
        return list(greedy_stream(model, prompt_ids, max_new_tokens))
    if not len(prompt_ids):
        raise ValueError("prompt_ids is empty: give at least one token")
    device = next(model.parameters()).device
    idx, new = torch.tensor([list(prompt_ids)], device=device), []
    for _ in range(max_new_tokens):
        token = int(model(idx)[0, -1].argmax())
        new.append(token)
        idx = torch.cat([idx, torch.tensor([[token]], device=device)], dim=1)
    return new


# --- speculative decoding ---


def accept_draft(draft_tokens: Sequence[int], target_tokens: Sequence[int]) -> list[int]:
    """Greedy verification: keep the draft's tokens while they equal the target's, then add the target's own
    token at the first disagreement (or its bonus token after all k were accepted).

    ``target_tokens[i]`` is the target's greedy choice after the prompt and ``draft_tokens[:i]``, so it has
    one more entry than ``draft_tokens``. Every call adds at least one token.

    >>> accept_draft([5, 7, 9], [5, 7, 2, 4])
    [5, 7, 2]
    >>> accept_draft([5, 7], [5, 7, 8])
    [5, 7, 8]
    """
    draft_tokens, target_tokens = list(draft_tokens), list(target_tokens)
    if len(target_tokens) != len(draft_tokens) + 1:
        raise ValueError(f"target_tokens needs one entry per draft token plus one (the bonus token): got "
                         f"{len(target_tokens)} for {len(draft_tokens)} draft tokens")
    accepted = 0
    while accepted < len(draft_tokens) and draft_tokens[accepted] == target_tokens[accepted]:
        accepted += 1
    return draft_tokens[:accepted] + [target_tokens[accepted]]


class NgramDraft:
    """A draft model with no weights: the most frequent next byte after the last ``order - 1`` bytes of the
    training text, backing off to shorter contexts. Proposes ``k`` tokens greedily; costs microseconds."""

    def __init__(self, data, order: int = 4):
        if order < 2:
            raise ValueError(f"order must be at least 2 (one byte of context), got {order}")
        data = np.asarray(data, dtype=np.int64)
        self.order, self.tables = order, []
        for context in range(order - 1, 0, -1):
            keys = np.zeros(len(data) - context, dtype=np.int64)
            for offset in range(context):
                keys = keys * 256 + data[offset:len(data) - context + offset]
            pairs, counts = np.unique(keys * 256 + data[context:], return_counts=True)
            order_by = np.lexsort((-counts, pairs // 256))       # per context, the most frequent next byte first
            contexts, first = np.unique(pairs[order_by] // 256, return_index=True)
            self.tables.append((context, dict(zip(contexts.tolist(), (pairs[order_by][first] % 256).tolist()))))
        self.fallback = int(np.bincount(data, minlength=256).argmax())

    def next_token(self, ids: Sequence[int]) -> int:
        for context, table in self.tables:
            if len(ids) >= context:
                key = 0
                for token in ids[len(ids) - context:]:
                    key = key * 256 + token
                if key in table:
                    return table[key]
        return self.fallback

    def propose(self, ids: Sequence[int], k: int) -> list[int]:
        ids, proposal = list(ids), []
        for _ in range(k):
            proposal.append(self.next_token(ids))
            ids.append(proposal[-1])
        return proposal


@torch.no_grad()
def speculative_generate(target, draft, prompt_ids: Sequence[int], max_new_tokens: int, k: int = 4) -> tuple[list[int], int]:
    """Greedy speculative decoding (Leviathan et al. 2023, the greedy case): ``draft.propose(ids, k)`` guesses
    k tokens, the target scores all of them in one cached call, :func:`accept_draft` keeps the agreed prefix
    plus one target token. The output equals the target's own greedy decoding. Returns (tokens, target calls)."""
    if k < 1:
        raise ValueError(f"k (draft tokens per round) must be at least 1, got {k}")
    device, ids = next(target.parameters()).device, list(prompt_ids)
    limit = target.config.context if target.config.position == "learned" else math.inf
    if not ids or len(ids) + max_new_tokens - 1 > limit:
        raise ValueError(f"need a non-empty prompt, and prompt + new tokens - 1 <= the context of {limit}; got "
                         f"{len(ids)} + {max_new_tokens}")
    cache = KVCache(len(target.blocks))
    logits = cached_forward(target, torch.tensor([ids[:-1]], device=device), cache) if len(ids) > 1 else None
    calls, new = (1 if logits is not None else 0), []
    while len(new) < max_new_tokens:
        proposal = draft.propose(ids, min(k, limit - len(ids)))   # no draft token beyond the context
        logits = cached_forward(target, torch.tensor([[ids[-1], *proposal]], device=device), cache)
        calls += 1
        accepted = accept_draft(proposal, logits[0].argmax(-1).tolist())
        cache.truncate(len(ids) + len(accepted) - 1)   # keep the last token and the accepted draft tokens
        ids += accepted
        new += accepted
    return new[:max_new_tokens], calls


# --- caching ---


class LRUCache:
    """A least-recently-used cache of at most ``maxsize`` entries, counting hits and misses.

    ``get_or_compute(key, compute)`` returns the cached value or computes, stores and returns it; the
    entry used least recently is evicted when the cache is full (what ``functools.lru_cache`` does).
    """

    def __init__(self, maxsize: int):
        if isinstance(maxsize, bool) or not isinstance(maxsize, (int, np.integer)) or maxsize < 1:
            raise ValueError(f"maxsize must be a positive integer, got {maxsize!r}")
        self.maxsize, self.hits, self.misses = int(maxsize), 0, 0
        self._entries: collections.OrderedDict = collections.OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get_or_compute(self, key, compute: Callable[[], Any]):
        if key in self._entries:
            self.hits += 1
            self._entries.move_to_end(key)
            return self._entries[key]
        self.misses += 1
        value = compute()
        self._entries[key] = value
        if len(self._entries) > self.maxsize:
            self._entries.popitem(last=False)
        return value


def zipf_trace(n_keys: int, n_requests: int, s: float, seed: int = 0) -> np.ndarray:
    """Request keys 0..n_keys-1 drawn with probability proportional to 1 / (rank + 1) ** s (key 0 the most popular)."""
    if n_keys < 1 or n_requests < 0 or s < 0:
        raise ValueError(f"need n_keys >= 1, n_requests >= 0 and s >= 0; got {n_keys}, {n_requests}, {s}")
    weights = 1.0 / np.arange(1, n_keys + 1) ** s
    return np.random.default_rng(seed).choice(n_keys, size=n_requests, p=weights / weights.sum())


def cache_key(model_version: str, payload) -> str:
    """A response-cache key: the SHA-256 hex digest of ``{"input": payload, "model": model_version}`` as JSON
    with sorted keys, so equal requests give equal keys in every process, and a new model version gives new
    keys (no stale answers after a deploy). Python's ``hash()`` is salted per process; ``str(dict)`` depends
    on key order.

    >>> cache_key("v1", {"a": 1, "b": 2}) == cache_key("v1", {"b": 2, "a": 1}) != cache_key("v2", {"a": 1, "b": 2})
    True
    """
    if not isinstance(model_version, str) or not model_version:
        raise ValueError(f"model_version must be a non-empty string, got {model_version!r}")
    try:
        text = json.dumps({"input": payload, "model": model_version}, sort_keys=True, separators=(",", ":"))
    except TypeError as error:
        raise TypeError(f"the payload must be JSON data (dicts, lists, strings, numbers): {error}. "
                        "Convert arrays with .tolist() first.") from None
    return hashlib.sha256(text.encode()).hexdigest()


# --- dynamic batching ---


class DynamicBatcher:
    """Collect concurrent requests into batches: a batch goes to ``predict_batch`` when it holds ``max_batch``
    rows or when its first row has waited ``max_wait_ms`` since it was submitted. One batch runs at a time:
    rows that arrive while it runs wait for it, and their deadline keeps counting meanwhile, so a row whose
    deadline passed during the batch leaves in the next batch at once (it never waits a batch plus a full
    ``max_wait_ms``).

    ``predict_batch`` takes a list of rows and returns one result per row (a plain function runs in a
    worker thread so the event loop keeps accepting requests; a coroutine function is awaited). Each caller
    gets its own result; a batch that raises fails only its own callers, with that error; leaving the
    ``async with`` block answers every request already submitted before it returns.

        async with DynamicBatcher(model_rows, max_batch=16, max_wait_ms=5) as batcher:
            y = await batcher.submit(x)
    """

    def __init__(self, predict_batch: Callable[[list], Sequence], max_batch: int = 32, max_wait_ms: float = 5.0):
        if not callable(predict_batch):
            raise TypeError("predict_batch must be a function taking a list of rows and returning one result per row")
        if isinstance(max_batch, bool) or not isinstance(max_batch, (int, np.integer)) or max_batch < 1:
            raise ValueError(f"max_batch must be a positive integer, got {max_batch!r}")
        if not max_wait_ms >= 0:
            raise ValueError(f"max_wait_ms must be >= 0, got {max_wait_ms}")
        self.predict_batch, self.max_batch, self.max_wait = predict_batch, int(max_batch), max_wait_ms / 1000
        self.batch_sizes: list[int] = []
        self._pending: collections.deque = collections.deque()
        self._wake: asyncio.Event | None = None
        self._worker: asyncio.Task | None = None
        self._closing = False

    async def __aenter__(self) -> "DynamicBatcher":
        self._wake, self._closing = asyncio.Event(), False
        self._worker = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc) -> None:
        self._closing = True
        self._wake.set()
        await self._worker
        self._worker = None

    async def submit(self, row):
        """Queue one row; return its result once its batch has run (or raise the batch's error)."""
        if self._worker is None or self._closing:
            raise RuntimeError("submit() is only accepted inside `async with DynamicBatcher(...) as batcher:`")
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._pending.append((row, future, loop.time()))      # the arrival time starts the row's deadline
        self._wake.set()
        return await future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            while not self._pending:
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
            deadline = self._pending[0][2] + self.max_wait       # the oldest pending row's arrival + max_wait
            while len(self._pending) < self.max_batch and not self._closing:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), remaining)
                except TimeoutError:
                    break
            batch = [self._pending.popleft()[:2] for _ in range(min(self.max_batch, len(self._pending)))]
            await self._answer(batch)

    async def _answer(self, batch: list) -> None:
        rows = [row for row, _ in batch]
        self.batch_sizes.append(len(rows))
        try:
            if inspect.iscoroutinefunction(self.predict_batch):
                results = await self.predict_batch(rows)
            else:
                results = await asyncio.to_thread(self.predict_batch, rows)
            results = list(results)
            if len(results) != len(rows):
                raise ValueError(f"predict_batch returned {len(results)} results for {len(rows)} rows: "
                                 "it must return one result per row, in order")
        except Exception as error:  # the batch's callers get the error; the batcher goes on
            for _, future in batch:
                if not future.done():
                    future.set_exception(error)
            return
        for (_, future), result in zip(batch, results):
            if not future.done():
                future.set_result(result)


async def poisson_load(call: Callable[[int], Any], rate: float, n_requests: int, seed: int = 0) -> np.ndarray:
    """Send ``n_requests`` requests ``await call(i)`` at Poisson arrival times (``rate`` per second) and return
    each one's latency in seconds, measured from its *scheduled* arrival (so a slow server cannot hide its
    queue by delaying the senders: no coordinated omission). Stops when every request has been answered."""
    if rate <= 0 or n_requests < 1:
        raise ValueError(f"rate must be positive and n_requests at least 1, got {rate} and {n_requests}")
    loop = asyncio.get_running_loop()
    arrivals = np.cumsum(np.random.default_rng(seed).exponential(1 / rate, n_requests))
    start, latencies = loop.time(), np.empty(n_requests)

    async def one(i: int) -> None:
        await asyncio.sleep(max(0.0, start + arrivals[i] - loop.time()))
        await call(i)
        latencies[i] = loop.time() - (start + arrivals[i])

    await asyncio.gather(*(one(i) for i in range(n_requests)))
    return latencies


def static_vs_continuous(lengths: Sequence[int], slots: int) -> dict[str, float]:
    """Decode steps to finish sequences of the given lengths with ``slots`` sequences per step.

    Static batching takes ``slots`` sequences at a time and runs until the longest is done (the finished
    ones idle); continuous batching refills a slot the step after its sequence finishes. Returns the steps
    and the share of slot-steps that did useful work for each.
    """
    lengths = [int(n) for n in lengths]
    if slots < 1 or not lengths or min(lengths) < 1:
        raise ValueError("need slots >= 1 and at least one sequence, each of length >= 1")
    static = sum(max(lengths[i:i + slots]) for i in range(0, len(lengths), slots))
    remaining, queue, continuous = [], collections.deque(lengths), 0
    while queue or remaining:
        while queue and len(remaining) < slots:
            remaining.append(queue.popleft())
        continuous += 1
        remaining = [n - 1 for n in remaining if n > 1]
    useful = sum(lengths)
    return {"static steps": static, "continuous steps": continuous,
            "static utilisation": useful / (static * slots), "continuous utilisation": useful / (continuous * slots)}


__all__ = ["fanout_slow_probability", "kv_cache_bytes", "KVCache", "decode_attention", "cached_forward",
           "greedy_stream", "greedy_generate", "accept_draft", "NgramDraft", "speculative_generate", "LRUCache", "zipf_trace",
           "cache_key", "DynamicBatcher", "poisson_load", "static_vs_continuous"]
