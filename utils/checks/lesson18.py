"""Checks for lab 18 (long sequences): score_matrix_bytes, sliding_window_mask, alibi_bias, online_softmax_attention."""

from __future__ import annotations

import math

import torch
from torch.overrides import TorchFunctionMode

from utils import longseq
from utils.checks.core import Case, Mistake, Spec, _is_tensor, register, reject

# --- 18.score_matrix_bytes ---


def bytes_linear_in_n(n, heads, batch, bytes_per_value):
    return batch * heads * n * bytes_per_value


def bytes_without_heads(n, heads, batch, bytes_per_value):
    return batch * n * n * bytes_per_value


def bytes_counts_values(n, heads, batch, bytes_per_value):
    return batch * heads * n * n


def bytes_half_matrix_for_causal(n, heads, batch, bytes_per_value):
    return batch * heads * n * (n + 1) // 2 * bytes_per_value


register(Spec(
    "18.score_matrix_bytes", longseq.score_matrix_bytes,
    lambda: [Case(args, f"n={args[0]}, heads={args[1]}, batch={args[2]}, bytes_per_value={args[3]}", atol=0, size=i)
             for i, args in enumerate(((1, 1, 1, 4), (1024, 8, 1, 4), (4096, 32, 2, 2), (131072, 64, 1, 2),
                                       (3, 5, 7, 1)))],
    hint="batch × heads × n × n scores, each bytes_per_value bytes.",
    mistakes=(
        Mistake(bytes_linear_in_n, "Every query has a score for every key: n × n per head, not n."),
        Mistake(bytes_without_heads, "Each head has its own score matrix: multiply by heads."),
        Mistake(bytes_counts_values, "That counts values; multiply by bytes_per_value for bytes."),
        Mistake(bytes_half_matrix_for_causal, "A causal mask does not shrink the matrix naive attention builds: the "
                                              "masked half is stored as -inf, so it is still n × n."),
    )))


# --- 18.sliding_window_mask ---

def _offset(n):
    return torch.arange(n)[:, None] - torch.arange(n)[None, :]


def window_one_too_wide(n, window):
    return (_offset(n) >= 0) & (_offset(n) <= window)


def window_not_causal(n, window):
    return _offset(n).abs() < window


def window_inverted(n, window):
    return ~longseq.sliding_window_mask(n, window)


def window_without_itself(n, window):
    return (_offset(n) > 0) & (_offset(n) <= window)


register(Spec(
    "18.sliding_window_mask", longseq.sliding_window_mask,
    lambda: [Case((n, window), f"n={n}, window={window}", atol=0, size=n)
             for n, window in ((4, 2), (6, 1), (10, 3), (8, 8), (5, 20), (40, 7))],
    hint="mask[i, j] is True when j <= i and i - j < window: each query sees itself and the window - 1 before it.",
    mistakes=(
        Mistake(window_one_too_wide, "Off by one: a window of w covers the query and the w - 1 positions before it "
                                     "(i - j < w, not <= w)."),
        Mistake(window_not_causal, "The window must be causal: a query may not see later positions (j <= i)."),
        Mistake(window_inverted, "True means 'may attend' here; you returned the positions to hide."),
        Mistake(window_without_itself, "A query attends to itself too (i - j = 0 is inside the window)."),
    )))


# --- 18.alibi_bias ---

def alibi_positive_slope(n, slopes):
    return longseq.alibi_bias(n, -torch.as_tensor(slopes, dtype=torch.float32))


def alibi_future_not_masked(n, slopes):
    return -torch.as_tensor(slopes, dtype=torch.float32)[:, None, None] * _offset(n).float()


def alibi_absolute_distance(n, slopes):
    return -torch.as_tensor(slopes, dtype=torch.float32)[:, None, None] * _offset(n).abs().float()


def alibi_one_slope(n, slopes):
    return longseq.alibi_bias(n, torch.full_like(torch.as_tensor(slopes, dtype=torch.float32), float(slopes[0])))


register(Spec(
    "18.alibi_bias", longseq.alibi_bias,
    lambda: [Case((n, slopes), f"n={n}, slopes={[round(float(s), 4) for s in slopes]}", atol=1e-6, size=n * len(slopes))
             for n, slopes in ((3, torch.tensor([0.5])), (5, torch.tensor([1.0, 0.25])), (8, longseq.alibi_slopes(4)),
                               (17, longseq.alibi_slopes(8)))],
    hint="bias[h, i, j] = -slopes[h] × (i - j) for keys j <= i, and -inf for the future (j > i); shape (heads, n, n).",
    mistakes=(
        Mistake(alibi_positive_slope, "The penalty must grow with distance: -slope × (i - j), not +slope × (i - j)."),
        Mistake(alibi_future_not_masked, "Mask the future: bias[h, i, j] = -inf for j > i (otherwise later tokens "
                                         "even get a bonus)."),
        Mistake(alibi_absolute_distance, "Future positions are not merely penalised by distance: they are masked "
                                         "with -inf."),
        Mistake(alibi_one_slope, "Each head has its own slope: use slopes[h] for head h."),
    )))


# --- 18.online_softmax_attention ---

def online_without_rescaling(q, k, v, block, causal):
    n_q, n_k, d = q.shape[-2], k.shape[-2], q.shape[-1]
    running_max = torch.full(q.shape[:-1], float("-inf"))
    running_sum = torch.zeros(q.shape[:-1])
    accumulator = torch.zeros(*q.shape[:-1], v.shape[-1])
    rows = torch.arange(n_k - n_q, n_k)[:, None]
    for start in range(0, n_k, block):
        scores = q @ k[..., start:start + block, :].transpose(-2, -1) / math.sqrt(d)
        if causal:
            scores = scores.masked_fill(torch.arange(start, min(start + block, n_k))[None, :] > rows, float("-inf"))
        running_max = torch.maximum(running_max, scores.amax(dim=-1))
        weights = torch.exp(scores - running_max[..., None])  # the old sum and accumulator are not rescaled
        running_sum = running_sum + weights.sum(dim=-1)
        accumulator = accumulator + weights @ v[..., start:start + block, :]
    return accumulator / running_sum[..., None]


def online_blocks_see_own_keys(q, k, v, block, causal):
    outputs = []
    for start in range(0, q.shape[-2], block):
        outputs.append(longseq.naive_attention(q[..., start:start + block, :], k[..., start:start + block, :],
                                               v[..., start:start + block, :], causal=causal))
    return torch.cat(outputs, dim=-2)


def _blockwise(q, k, v, block, causal, subtract_max=True, see_next=0):
    """Online softmax attention, with a mistake switched on: no running max, or a causal mask off by ``see_next``."""
    n_q, n_k, d = q.shape[-2], k.shape[-2], q.shape[-1]
    running_max = torch.full(q.shape[:-1], float("-inf"), dtype=q.dtype)
    running_sum = torch.zeros(q.shape[:-1], dtype=q.dtype)
    accumulator = torch.zeros(*q.shape[:-1], v.shape[-1], dtype=q.dtype)
    rows = torch.arange(n_k - n_q, n_k)[:, None] + see_next
    for start in range(0, n_k, block):
        scores = q @ k[..., start:start + block, :].transpose(-2, -1) / math.sqrt(d)
        if causal:
            scores = scores.masked_fill(torch.arange(start, min(start + block, n_k))[None, :] > rows, float("-inf"))
        new_max = torch.maximum(running_max, scores.amax(dim=-1)) if subtract_max else torch.zeros_like(running_max)
        rescale = torch.exp(running_max - new_max) if subtract_max else torch.ones_like(running_max)
        weights = torch.exp(scores - new_max[..., None])
        running_sum = running_sum * rescale + weights.sum(dim=-1)
        accumulator = accumulator * rescale[..., None] + weights @ v[..., start:start + block, :]
        running_max = new_max
    return accumulator / running_sum[..., None]


def online_without_max(q, k, v, block, causal):
    return _blockwise(q, k, v, block, causal, subtract_max=False)  # exp of a large score overflows


def online_mask_off_by_one(q, k, v, block, causal):
    return _blockwise(q, k, v, block, causal, see_next=1)          # query i also sees key i + 1


def online_naive_softmax(q, k, v, block, causal):
    n = k.shape[-2]
    return longseq.naive_attention(q, k, v, mask=torch.ones(n, n, dtype=torch.bool).tril() if causal else None)


NAIVE_HINT = ("Never build the n x n matrix: read the keys and values `block` positions at a time, keeping a running "
              "max, sum and weighted sum per query (memory O(n x block)).")


class _Largest(TorchFunctionMode):
    """Records the number of elements of the largest floating-point tensor any torch function or tensor method
    (q @ k.T included) returns."""
    largest = 0

    def __torch_function__(self, func, types, arguments=(), kwargs=None):
        out = func(*arguments, **(kwargs or {}))
        for leaf in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(leaf, torch.Tensor) and leaf.is_floating_point():
                self.largest = max(self.largest, leaf.numel())
        return out


def _attention_and_footprint(function, args):
    """The result; a right result computed through a whole n x n score matrix per head (recorded by a torch function
    mode that sees every torch operation's outputs) is rejected: the question's defining property, where n > block and d."""
    q, k, v, block, causal = args
    with _Largest() as recorder:
        output = function(q, k, v, block, causal)
    n_k, widest = k.shape[-2], max(block, q.shape[-1], v.shape[-1])  # legitimate tensors: n_q x max(block, d) per head
    if n_k > widest and recorder.largest >= q.numel() // q.shape[-1] * n_k and _is_tensor(output) \
            and output.shape == q.shape and torch.allclose(
                output, longseq.online_softmax_attention(q, k, v, block, causal), atol=1e-5):
        reject(f"your result is right, but your code built a whole {q.shape[-2]} x {k.shape[-2]} score matrix per "
               f"head (a tensor of {recorder.largest} values) while block={block}.", NAIVE_HINT)
    return output


def _attention_cases() -> list[Case]:
    generator = torch.Generator().manual_seed(1801)
    cases = []
    for n, block, causal, scale in ((4, 2, False, 1.0), (5, 2, True, 1.0), (37, 8, True, 1.0), (64, 16, False, 1.0),
                                    (50, 64, True, 1.0), (40, 8, True, 20.0)):
        q, k, v = (torch.randn(1, 2, n, 8, generator=generator) for _ in range(3))
        note = ", large scores (q × 20)" if scale > 1 else ""
        cases.append(Case((q * scale, k, v, block, causal), f"n={n}, block={block}, causal={causal}{note}",
                          atol=1e-5, size=n))  # float32, another order of summation: 1e-5
    q, k, v = (torch.randn(3, 2, 6, 4, generator=generator, dtype=torch.float64) for _ in range(3))
    cases.append(Case((q, k, v, 4, True), "batch 3, 2 heads, n=6, d=4, float64, block=4 (a last block of 2), causal",
                      atol=1e-9, size=6))
    return cases


register(Spec(
    "18.online_softmax_attention", longseq.online_softmax_attention, _attention_cases, invoke=_attention_and_footprint,
    hint="For each key block: m_new = max(m, block max); rescale the running sum and accumulator by exp(m - m_new); "
         "add exp(scores - m_new) and exp(scores - m_new) @ v_block; at the end divide the accumulator by the sum.",
    mistakes=(
        Mistake(online_without_rescaling, "When a block raises the running max, multiply the running sum and the "
                                          "accumulator by exp(m_old - m_new) before adding the new block."),
        Mistake(online_blocks_see_own_keys, "Each query must read every key block (up to its own position when "
                                            "causal), not only the block at its own position."),
        Mistake(online_without_max, "Subtract the running max before exp: exp of a large score overflows to inf."),
        Mistake(online_naive_softmax, NAIVE_HINT),
        Mistake(online_mask_off_by_one, "Causal means key j is visible to query i only when j <= i."),
    )))
