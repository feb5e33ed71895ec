"""utils.lm against PyTorch's own attention and transformer layer; the tokenizer, the closed forms, the corpus."""

import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from utils import lm
from utils.train import accumulated_gradients, warmup_cosine, warmup_cosine_scheduler

SMALL = lm.GPTConfig(context=16, d_model=32, n_heads=4, n_layers=2)


@pytest.mark.parametrize("text", ["The assert statement", "大模型的训练速度", "", "emoji 🙂 and \n newlines"])
def test_byte_tokenizer_round_trips_any_text(text):
    tokenizer = lm.ByteTokenizer()
    ids = tokenizer.encode(text)
    assert all(0 <= i < 256 for i in ids) and tokenizer.decode(ids) == text


@pytest.mark.parametrize("t_q", [1, 5, 12])
def test_causal_attention_equals_scaled_dot_product_attention(t_q):
    generator = torch.Generator().manual_seed(t_q)
    q = torch.randn(2, 3, 12, 8, generator=generator)
    k, v = torch.randn(2, 3, 12, 8, generator=generator), torch.randn(2, 3, 12, 8, generator=generator)
    ours = lm.causal_attention(q[..., -t_q:, :], k, v)
    if t_q == 12:
        theirs = nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
    else:  # the last t_q queries (a cache): each sees every key up to its own position
        mask = torch.ones(12, 12, dtype=torch.bool).tril()[-t_q:]
        theirs = nn.functional.scaled_dot_product_attention(q[..., -t_q:, :], k, v, attn_mask=mask)
    assert (ours - theirs).abs().max() <= 1e-5


def test_attention_with_a_bias_equals_sdpa_with_a_float_mask():
    q, k, v = (torch.randn(1, 4, 10, 8, generator=torch.Generator().manual_seed(i)) for i in range(3))
    bias = lm.alibi_bias(4, 10, 10)
    assert (lm.causal_attention(q, k, v, bias) - lm.sdpa_attention(q, k, v, bias)).abs().max() <= 1e-5


def test_a_block_equals_torch_transformer_encoder_layer_under_a_causal_mask():
    torch.manual_seed(0)
    config = lm.GPTConfig(d_model=32, n_heads=4, n_layers=1, context=16)
    block = lm.Block(config).eval()
    for parameter in block.parameters():  # non-trivial LayerNorm and bias values
        nn.init.normal_(parameter, std=0.2)
    layer = lm.encoder_layer_like(block)
    x = torch.randn(3, 16, 32)
    mask = nn.Transformer.generate_square_subsequent_mask(16)
    with torch.no_grad():
        difference = (block(x) - layer(x, src_mask=mask, is_causal=True)).abs().max().item()
    assert difference <= 1e-5


@pytest.mark.parametrize("position", lm.POSITIONS)
def test_parameter_count_is_the_closed_form(position):
    config = lm.GPTConfig(context=16, d_model=32, n_heads=4, n_layers=3, position=position)
    assert sum(p.numel() for p in lm.GPT(config).parameters()) == lm.parameter_count(config)


@pytest.mark.parametrize("position", lm.POSITIONS)
def test_every_position_scheme_is_causal(position):
    """Changing a later token never changes an earlier position's logits."""
    torch.manual_seed(1)
    model = lm.GPT(lm.GPTConfig(context=16, d_model=32, n_heads=4, n_layers=2, position=position)).eval()
    idx = torch.randint(0, 256, (1, 12))
    changed = idx.clone()
    changed[0, 8] = (changed[0, 8] + 1) % 256
    with torch.no_grad():
        assert torch.allclose(model(idx)[0, :8], model(changed)[0, :8], atol=1e-6)
        assert not torch.allclose(model(idx)[0, 8:], model(changed)[0, 8:], atol=1e-6)


def test_swapping_in_sdpa_changes_nothing():
    torch.manual_seed(2)
    model = lm.GPT(SMALL).eval()
    idx = torch.randint(0, 256, (2, 16))
    with torch.no_grad():
        before = model(idx)
        model.set_attention(lm.sdpa_attention)
        assert (model(idx) - before).abs().max() <= 1e-5


def test_training_flops_match_the_flop_counter():
    torch.manual_seed(3)
    model = lm.GPT(SMALL)
    idx = torch.randint(0, 256, (4, 16))
    with FlopCounterMode(display=False) as counter:
        model(idx, idx)[1].backward()
    tokens = idx.numel()
    assert counter.get_total_flops() == pytest.approx(lm.training_flops(SMALL, tokens, time=16), rel=0.01)


def test_rope_keeps_norms_and_depends_on_relative_position_only():
    x = torch.randn(1, 1, 6, 8)
    rotated = lm.rope(x, torch.arange(6))
    assert torch.allclose(rotated.norm(dim=-1), x.norm(dim=-1), atol=1e-5)
    q, k = torch.randn(8), torch.randn(8)
    at = lambda i, j: (lm.rope(q.view(1, 1, 1, 8), torch.tensor([i])) * lm.rope(k.view(1, 1, 1, 8), torch.tensor([j]))).sum()
    assert torch.allclose(at(3, 1), at(10, 8), atol=1e-5)


def test_generate_is_reproducible_and_greedy_is_deterministic():
    torch.manual_seed(4)
    model = lm.GPT(SMALL)
    a = lm.generate(model, "ab", 10, generator=torch.Generator().manual_seed(0))
    b = lm.generate(model, "ab", 10, generator=torch.Generator().manual_seed(0))
    assert a == b and lm.generate(model, "ab", 10, temperature=0) == lm.generate(model, "ab", 10, temperature=0)
    with pytest.raises(ValueError, match="temperature"):
        lm.generate(model, "ab", 5, temperature=-1)


def test_bad_configuration_is_refused_clearly():
    with pytest.raises(ValueError, match="position must be one of"):
        lm.GPTConfig(position="relative")
    with pytest.raises(ValueError, match="multiple of n_heads"):
        lm.GPTConfig(d_model=30, n_heads=4)
    with pytest.raises(ValueError, match="longer than the context"):
        lm.GPT(SMALL)(torch.zeros(1, 17, dtype=torch.long))
    assert lm.GPT(lm.GPTConfig(context=16, d_model=32, n_heads=4, n_layers=1, position="sinusoidal"))(
        torch.zeros(1, 40, dtype=torch.long)).shape == (1, 40, 256)  # fixed tables extend to any length


def test_corpus_is_the_shipped_text_and_splits_without_overlap():
    train, val = lm.corpus_split()
    assert len(train) + len(val) == len(lm.load_corpus()) and len(val) / (len(train) + len(val)) == pytest.approx(0.1, abs=1e-3)
    assert lm.ngram_bits_per_byte(train, val, 2) < lm.ngram_bits_per_byte(train, val, 1) < 8


def test_warmup_cosine_equals_pytorch_schedulers():
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([parameter], lr=0.3)
    warmup, total = 5, 40
    scheduler = warmup_cosine_scheduler(optimizer, warmup, total, min_lr=0.01)
    theirs = []
    for _ in range(total):
        theirs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    ours = [warmup_cosine(step, warmup=warmup, total=total, peak_lr=0.3, min_lr=0.01) for step in range(total)]
    assert np.allclose(ours, theirs, rtol=0, atol=1e-9)


def test_accumulated_gradients_equal_one_large_batch_and_bad_splits_are_refused():
    torch.manual_seed(5)
    model = nn.Sequential(nn.Linear(6, 8), nn.LayerNorm(8), nn.Tanh(), nn.Linear(8, 3))
    X, y = torch.randn(24, 6), torch.randint(0, 3, (24,))
    accumulated = accumulated_gradients(model, nn.functional.cross_entropy, X, y, 4)
    model.zero_grad()
    nn.functional.cross_entropy(model(X), y).backward()
    assert all((accumulated[n] - p.grad).abs().max() <= 1e-6 for n, p in model.named_parameters())
    with pytest.raises(ValueError, match="equal micro-batches"):
        accumulated_gradients(model, nn.functional.cross_entropy, X, y, 5)


def test_bits_per_byte_is_nats_over_ln2():
    assert lm.bits_per_byte(math.log(2)) == pytest.approx(1.0)


def test_checkpointing_saves_memory_and_keeps_the_gradients():
    torch.manual_seed(6)
    model = lm.GPT(SMALL)
    idx = torch.randint(0, 256, (2, 16))
    grads = []
    for flag in (False, True):
        model.checkpointing = flag
        model.zero_grad()
        model(idx, idx)[1].backward()
        grads.append([p.grad.clone() for p in model.parameters()])
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(*grads))


def test_show_source_renders_a_utils_function():
    from utils.show import source
    assert "def causal_attention" in source(lm.causal_attention).data


def test_the_shipped_weights_are_the_ones_pretrained_loads():
    """A changed file would make pretrained() retrain for minutes; its digest must match the one in utils.lm."""
    from utils.data import data_dir
    assert lm._sha256(data_dir() / lm.SHIPPED) == lm.SHIPPED_SHA256
    model = lm.pretrained(verbose=False)
    assert sum(p.numel() for p in model.parameters()) == lm.parameter_count(lm.PRETRAINED["config"])


def test_decay_groups_exempt_every_one_dimensional_parameter():
    model = lm.GPT(SMALL)
    decayed, exempt = lm.decay_groups(model, 0.1)
    assert decayed["weight_decay"] == 0.1 and exempt["weight_decay"] == 0.0
    assert {id(p) for p in decayed["params"]} | {id(p) for p in exempt["params"]} == {id(p) for p in model.parameters()}
    names = {id(p): n for n, p in model.named_parameters()}
    assert all(names[id(p)].endswith(".bias") or ".ln" in names[id(p)] or names[id(p)].startswith("ln_f")
               for p in exempt["params"])
    assert id(model.ln_f.weight) in map(id, exempt["params"]) and id(model.tok_emb.weight) in map(id, decayed["params"])
    with pytest.raises(ValueError, match="weight_decay"):
        lm.decay_groups(model, -1.0)


def test_train_lm_decays_matrices_only_unless_asked(monkeypatch):
    data = torch.randint(0, 256, (400,), generator=torch.Generator().manual_seed(0))
    built = []
    real = torch.optim.AdamW
    monkeypatch.setattr(torch.optim, "AdamW", lambda groups, **kw: built.append(real(groups, **kw)) or built[-1])
    for decay_all in (False, True):
        model = lm.GPT(SMALL)
        lm.train_lm(model, data, steps=2, batch_size=2, decay_all=decay_all)
        decayed = {id(p) for g in built[-1].param_groups if g["weight_decay"] > 0 for p in g["params"]}
        expected = {id(p) for p in model.parameters() if decay_all or p.dim() >= 2}
        assert decayed == expected and (id(model.ln_f.weight) in decayed) == decay_all
    with pytest.raises(ValueError, match="mixed_precision"):
        lm.train_lm(lm.GPT(SMALL), data, steps=1, batch_size=2, mixed_precision="yes")


def test_saved_tensor_bytes_splits_weights_copies_and_activations():
    torch.manual_seed(0)
    model = lm.GPT(SMALL)
    idx = torch.randint(0, 256, (2, 16))

    def step(autocast=False):
        def run():
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
                loss = model(idx, idx)[1]
            loss.backward()
            model.zero_grad()
        return run

    weight_bytes = sum(p.numel() * 4 for p in model.parameters())
    fp32 = lm.saved_tensor_bytes(model, step())
    assert fp32["weight copies"] == 0 and 0 < fp32["weights"] <= weight_bytes and fp32["activations"] > 0
    bf16 = lm.saved_tensor_bytes(model, step(True))
    assert 0 < bf16["weight copies"] <= weight_bytes / 2 and bf16["activations"] < fp32["activations"]
    model.checkpointing = True
    checkpointed = lm.saved_tensor_bytes(model, step())
    block_inputs = SMALL.n_layers * idx.numel() * SMALL.d_model * 4   # what each block's checkpoint keeps
    assert block_inputs <= checkpointed["activations"] < fp32["activations"]


def test_cpu_bf16_units_and_the_measured_step_ratio():
    assert set(lm.cpu_bf16_units()) <= {"avx512_bf16", "amx_bf16"}
    model = lm.GPT(SMALL)
    ratio, comparison = lm.bf16_step_ratio(model, torch.randint(0, 256, (200,)), rounds=1)
    assert ratio > 0 and set(comparison.seconds) == {"fp32", "bf16 autocast"}


def test_byte_windows_wait_or_compute_per_item():
    import time
    data = torch.arange(65) % 256
    busy = lm.ByteWindows(data, 16, cpu=0.01)
    start = time.process_time()
    x, y = busy[0]
    assert time.process_time() - start >= 0.01 and torch.equal(x[1:], y[:-1]) and len(busy) == 4
    with pytest.raises(ValueError, match="delay and cpu"):
        lm.ByteWindows(data, 16, delay=-1)
