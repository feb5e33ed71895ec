"""Long sequences: what attention costs, exact attention in less memory, windows, ALiBi and linear attention.

Every function takes and returns (batch, heads, n, d) tensors like ``scaled_dot_product_attention``;
``tests/test_longseq.py`` checks each exact one against it.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def score_matrix_bytes(n: int, heads: int, batch: int = 1, bytes_per_value: int = 4) -> int:
    """Bytes of the attention score matrix that naive attention materialises: batch × heads × n × n values.

    >>> score_matrix_bytes(4096, 8) / 2**20   # MiB, one sequence of 4,096 tokens, 8 heads, float32
    512.0
    """
    for name, value in (("n", n), ("heads", heads), ("batch", batch), ("bytes_per_value", bytes_per_value)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return batch * heads * n * n * bytes_per_value


def naive_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool = False,
                    mask: torch.Tensor | None = None) -> torch.Tensor:
    """softmax(q kᵀ / √d) v with the whole (n × n) score matrix in memory; ``mask`` is boolean, True = may attend."""
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if causal:
        n_q, n_k = q.shape[-2], k.shape[-2]
        scores = scores.masked_fill(torch.ones(n_q, n_k, dtype=torch.bool, device=q.device).triu(n_k - n_q + 1),
                                    float("-inf"))
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return torch.softmax(scores, dim=-1) @ v


def chunked_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, chunk: int = 256,
                      causal: bool = False) -> torch.Tensor:
    """Exact attention computed ``chunk`` queries at a time: the score memory falls from n² to chunk × n."""
    n = q.shape[-2]
    outputs = []
    for start in range(0, n, chunk):
        scores = q[..., start:start + chunk, :] @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
        if causal:
            rows = torch.arange(start, min(start + chunk, n), device=q.device)[:, None]
            scores = scores.masked_fill(torch.arange(k.shape[-2], device=q.device)[None, :] > rows, float("-inf"))
        outputs.append(torch.softmax(scores, dim=-1) @ v)
    return torch.cat(outputs, dim=-2)


def online_softmax_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, block: int = 64,
                             causal: bool = False) -> torch.Tensor:
    """Exact attention reading keys ``block`` at a time with a running max and a running sum (FlashAttention's idea).

    For each query it keeps m (the largest score so far), l (the sum of exp(score - m)) and the weighted sum
    of values; a new block with a larger max rescales both by exp(m_old - m_new). The n × n matrix never exists.
    """
    if block < 1:
        raise ValueError(f"block must be a positive integer, got {block}")
    n_q, n_k, d = q.shape[-2], k.shape[-2], q.shape[-1]
    running_max = torch.full(q.shape[:-1], float("-inf"), dtype=q.dtype, device=q.device)
    running_sum = torch.zeros(q.shape[:-1], dtype=q.dtype, device=q.device)
    accumulator = torch.zeros(*q.shape[:-1], v.shape[-1], dtype=q.dtype, device=q.device)
    query_positions = torch.arange(n_k - n_q, n_k, device=q.device)[:, None]
    for start in range(0, n_k, block):
        scores = q @ k[..., start:start + block, :].transpose(-2, -1) / math.sqrt(d)
        if causal:
            key_positions = torch.arange(start, min(start + block, n_k), device=q.device)[None, :]
            scores = scores.masked_fill(key_positions > query_positions, float("-inf"))
        new_max = torch.maximum(running_max, scores.amax(dim=-1))
        safe_max = torch.where(torch.isinf(new_max), torch.zeros_like(new_max), new_max)  # rows with nothing yet
        rescale = torch.exp(running_max - safe_max)
        weights = torch.exp(scores - safe_max[..., None])
        running_sum = running_sum * rescale + weights.sum(dim=-1)
        accumulator = accumulator * rescale[..., None] + weights @ v[..., start:start + block, :]
        running_max = new_max
    return accumulator / running_sum[..., None]


def sliding_window_mask(n: int, window: int) -> torch.Tensor:
    """Boolean (n, n), True = may attend: causal, each query sees itself and the ``window - 1`` previous positions.

    >>> sliding_window_mask(4, 2).int().tolist()
    [[1, 0, 0, 0], [1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 1]]
    """
    if window < 1:
        raise ValueError(f"window must be at least 1, got {window}")
    offset = torch.arange(n)[:, None] - torch.arange(n)[None, :]  # i - j
    return (offset >= 0) & (offset < window)


def blocked_window_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, window: int) -> torch.Tensor:
    """Sliding-window causal attention in memory linear in n: query block b attends to key blocks b - 1 and b only.

    With blocks of ``window`` positions, every key a query may see (itself and the window - 1 before it) lies in
    its own block or the previous one, so the result equals ``naive_attention`` under ``sliding_window_mask``.
    """
    n = q.shape[-2]
    outputs = []
    for start in range(0, n, window):
        stop, key_start = min(start + window, n), max(0, start - window)
        scores = q[..., start:stop, :] @ k[..., key_start:stop, :].transpose(-2, -1) / math.sqrt(q.shape[-1])
        offset = torch.arange(start, stop)[:, None] - torch.arange(key_start, stop)[None, :]
        scores = scores.masked_fill(~((offset >= 0) & (offset < window)).to(q.device), float("-inf"))
        outputs.append(torch.softmax(scores, dim=-1) @ v[..., key_start:stop, :])
    return torch.cat(outputs, dim=-2)


def alibi_slopes(heads: int) -> torch.Tensor:
    """ALiBi's head slopes 2^(-8h/H), h = 1..H (Press et al., 2022)."""
    return 2.0 ** (-8.0 * torch.arange(1, heads + 1) / heads)


def alibi_bias(n: int, slopes: torch.Tensor) -> torch.Tensor:
    """(heads, n, n) additive bias: -slope × (i - j) for keys j <= i, -inf for the future (j > i).

    >>> alibi_bias(3, torch.tensor([0.5]))[0].tolist()
    [[0.0, -inf, -inf], [-0.5, 0.0, -inf], [-1.0, -0.5, 0.0]]
    """
    distance = (torch.arange(n)[:, None] - torch.arange(n)[None, :]).to(torch.float32)
    bias = -torch.as_tensor(slopes, dtype=torch.float32)[:, None, None] * distance + 0.0  # + 0.0: no -0.0 on the diagonal
    return bias.masked_fill(distance < 0, float("-inf"))


def feature_map(x: torch.Tensor) -> torch.Tensor:
    """elu(x) + 1: the positive feature map of Katharopoulos et al. (2020)."""
    return nn.functional.elu(x) + 1


def linear_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Causal linear attention, parallel form: φ(q_i)·Σ_{j≤i} φ(k_j) v_jᵀ / φ(q_i)·Σ_{j≤i} φ(k_j)."""
    fq, fk = feature_map(q), feature_map(k)
    weights = (fq @ fk.transpose(-2, -1)).tril()
    return (weights @ v) / weights.sum(dim=-1, keepdim=True)


def linear_attention_recurrent(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """The same, as a recurrence: a (d × d_v) state and a d-vector, updated once per token (constant cost)."""
    fq, fk = feature_map(q), feature_map(k)
    state = torch.zeros(*q.shape[:-2], q.shape[-1], v.shape[-1], dtype=q.dtype, device=q.device)
    normaliser = torch.zeros(*q.shape[:-2], q.shape[-1], dtype=q.dtype, device=q.device)
    outputs = []
    for i in range(q.shape[-2]):
        state = state + fk[..., i, :, None] * v[..., i, None, :]
        normaliser = normaliser + fk[..., i, :]
        outputs.append((fq[..., i, None, :] @ state)[..., 0, :] / (fq[..., i, :] * normaliser).sum(-1, keepdim=True))
    return torch.stack(outputs, dim=-2)
