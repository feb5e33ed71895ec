"""utils.longseq against scaled_dot_product_attention and dense masks."""

import pytest
import torch
from torch import nn

from utils import longseq


def qkv(n, d=16, heads=2, batch=2, seed=0, n_q=None):
    generator = torch.Generator().manual_seed(seed)
    q = torch.randn(batch, heads, n_q or n, d, generator=generator)
    return q, torch.randn(batch, heads, n, d, generator=generator), torch.randn(batch, heads, n, d, generator=generator)


@pytest.mark.parametrize("n, block", [(1, 64), (37, 8), (100, 64), (128, 32), (65, 64)])
@pytest.mark.parametrize("causal", [False, True])
def test_online_softmax_attention_equals_sdpa(n, block, causal):
    q, k, v = qkv(n, seed=n)
    ours = longseq.online_softmax_attention(q * 3, k, v, block=block, causal=causal)
    theirs = nn.functional.scaled_dot_product_attention(q * 3, k, v, is_causal=causal)
    assert (ours - theirs).abs().max() <= 1e-5


@pytest.mark.parametrize("causal", [False, True])
def test_naive_and_chunked_attention_equal_sdpa(causal):
    q, k, v = qkv(50)
    theirs = nn.functional.scaled_dot_product_attention(q, k, v, is_causal=causal)
    assert (longseq.naive_attention(q, k, v, causal=causal) - theirs).abs().max() <= 1e-5
    assert (longseq.chunked_attention(q, k, v, chunk=16, causal=causal) - theirs).abs().max() <= 1e-5


@pytest.mark.parametrize("n, window", [(10, 1), (10, 3), (33, 8), (64, 16), (20, 40)])
def test_blocked_window_attention_equals_the_masked_version(n, window):
    q, k, v = qkv(n, seed=window)
    dense = longseq.naive_attention(q, k, v, mask=longseq.sliding_window_mask(n, window))
    assert (longseq.blocked_window_attention(q, k, v, window) - dense).abs().max() <= 1e-5


def test_sliding_window_mask_is_causal_with_the_right_width():
    mask = longseq.sliding_window_mask(12, 4)
    assert mask.dtype == torch.bool and not mask.triu(1).any()
    assert mask.sum(dim=1).tolist() == [1, 2, 3] + [4] * 9
    with pytest.raises(ValueError, match="window"):
        longseq.sliding_window_mask(5, 0)


def test_alibi_bias_equals_the_language_models_bias():
    from utils import lm
    bias = longseq.alibi_bias(9, longseq.alibi_slopes(4))
    assert torch.allclose(bias.masked_fill(torch.isinf(bias), 0), lm.alibi_bias(4, 9, 9))
    assert torch.isinf(bias).sum() == 4 * 9 * 8 // 2


def test_linear_attention_recurrent_equals_parallel_and_differs_from_softmax():
    q, k, v = qkv(24)
    parallel, recurrent = longseq.linear_attention(q, k, v), longseq.linear_attention_recurrent(q, k, v)
    assert (parallel - recurrent).abs().max() <= 1e-5
    assert (parallel - nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)).abs().max() > 0.05


def test_score_matrix_bytes_closed_form_and_bad_input():
    assert longseq.score_matrix_bytes(2048, 4, batch=2, bytes_per_value=2) == 2 * 4 * 2048 * 2048 * 2
    with pytest.raises(ValueError, match="n must be a positive integer"):
        longseq.score_matrix_bytes(0, 4)
