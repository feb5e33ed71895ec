"""utils.compression against torch.nn.utils.prune, the SVD and the distillation formula; utils.bench."""


import numpy as np

import pytest
import torch
from torch import nn
from torch.nn.utils import prune

from utils import compression
from utils.bench import OnnxModule, latency_ms


def network():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 4))


@pytest.mark.parametrize("sparsity", [0.0, 0.3, 0.75, 0.95])
def test_global_mask_matches_torch_prune(sparsity):
    model, reference = network(), network()
    ours = compression.magnitude_mask([layer.weight for layer in compression.linear_layers(model)], sparsity)
    prune.global_unstructured([(layer, "weight") for layer in compression.linear_layers(reference)],
                              pruning_method=prune.L1Unstructured, amount=sparsity)
    for mask, layer in zip(ours, compression.linear_layers(reference)):
        assert torch.equal(mask, layer.weight_mask.bool())
    compression.apply_masks(model, ours)
    assert compression.sparsity_of(model) == pytest.approx(sparsity, abs=1e-3)


@pytest.mark.parametrize("sparsity", [0.0, 0.5, 0.9])
def test_global_mask_by_name_matches_torch_prune(sparsity):
    model, reference = network(), network()
    ours = compression.global_mask(model, sparsity)
    assert sorted(ours) == ["0.weight", "2.weight", "4.weight"]
    prune.global_unstructured([(layer, "weight") for layer in compression.linear_layers(reference)],
                              pruning_method=prune.L1Unstructured, amount=sparsity)
    for name, layer in zip(ours, compression.linear_layers(reference)):
        assert torch.equal(ours[name], layer.weight_mask.bool())


def test_magnitude_mask_refuses_bad_input():
    with pytest.raises(ValueError, match="sparsity"):
        compression.magnitude_mask([torch.ones(3)], 1.0)
    with pytest.raises(ValueError, match="empty"):
        compression.magnitude_mask([], 0.5)


def test_zeros_do_not_shrink_the_file_but_csr_does():
    model = network()
    dense = compression.state_dict_bytes(model)
    compression.apply_masks(model, compression.magnitude_mask([l.weight for l in compression.linear_layers(model)], 0.9))
    assert compression.state_dict_bytes(model) == dense
    assert compression.csr_bytes(model) < dense / 2


def test_prune_neurons_keeps_the_function_of_the_kept_units():
    model = network()
    smaller = compression.prune_neurons(model, keep=1.0)
    x = torch.randn(5, 16)
    torch.testing.assert_close(smaller(x), model(x))
    half = compression.prune_neurons(model, keep=0.5)
    assert [l.out_features for l in compression.linear_layers(half)] == [16, 16, 4]


def test_per_channel_quantisation_is_symmetric_and_beats_per_tensor():
    torch.manual_seed(1)
    weight = torch.randn(8, 20) * torch.logspace(-2, 1, 8)[:, None]  # rows on very different scales
    q, scale = compression.quantize_per_channel(weight)
    assert q.dtype == torch.int8 and q.abs().max() == 127 and scale.shape == (8, 1)
    error_channel = (compression.dequantize(q, scale) - weight).abs().mean()
    qt, st = compression.quantize_per_tensor(weight)
    assert error_channel < (compression.dequantize(qt, st) - weight).abs().mean() / 3
    assert ((compression.dequantize(q, scale) - weight).abs() <= scale / 2 + 1e-7).all()
    with pytest.raises(ValueError, match="2-D"):
        compression.quantize_per_channel(torch.ones(3))


def test_low_rank_linear_is_exact_at_full_rank_and_optimal_below():
    torch.manual_seed(2)
    layer, x = nn.Linear(12, 10), torch.randn(4, 12)
    torch.testing.assert_close(compression.low_rank_linear(layer, 10)(x), layer(x), atol=1e-5, rtol=1e-5)
    approx = compression.low_rank_linear(layer, 3)
    W3 = (approx[1].weight @ approx[0].weight).detach()
    singular = torch.linalg.svdvals(layer.weight.detach())
    assert torch.linalg.matrix_norm(layer.weight.detach() - W3).item() == pytest.approx(singular[3:].norm().item(), rel=1e-4)
    with pytest.raises(ValueError, match="rank"):
        compression.low_rank_linear(layer, 11)


def test_distillation_loss_formula():
    student, teacher, targets = torch.randn(6, 5), torch.randn(6, 5), torch.randint(0, 5, (6,))
    T, alpha = 3.0, 0.7
    p_t = torch.softmax(teacher / T, 1)
    kl = (p_t * (torch.log(p_t) - torch.log_softmax(student / T, 1))).sum(1).mean()
    expected = alpha * T ** 2 * kl + (1 - alpha) * nn.functional.cross_entropy(student, targets)
    assert compression.distillation_loss(student, teacher, targets, T, alpha).item() == pytest.approx(expected.item(), rel=1e-5)
    assert compression.distillation_loss(student, student, targets, T, 1.0).item() == pytest.approx(0.0, abs=1e-6)


def test_latency_reports_median_and_p95_and_restores_mode():
    model = network()
    model.train()
    result = latency_ms(model, torch.randn(1, 16), repeats=20, warmup=2)
    assert 0 < result["median"] <= result["p95"] and model.training
    with pytest.raises(ValueError, match="repeats"):
        latency_ms(model, torch.randn(1, 16), repeats=0)


def test_percentiles_of_individual_requests():
    from utils.bench import percentiles

    assert percentiles(np.arange(1, 101)) == pytest.approx({"p50": 50.5, "p95": 95.05, "p99": 99.01})
    with pytest.raises(ValueError, match="non-empty"):
        percentiles([])


def test_onnx_int8_matches_the_model_and_is_four_times_smaller(tmp_path):
    import onnx
    import onnxruntime as ort

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 10)).eval()
    X = torch.randn(5, 64)
    fp32_path, int8_path = compression.onnx_int8(model, X, tmp_path)
    ops = {node.op_type for node in onnx.load(int8_path).graph.node}
    assert "MatMulInteger" in ops                        # integer kernels, not dequantise-then-float
    assert int8_path.stat().st_size < fp32_path.stat().st_size / 3
    with torch.no_grad():
        expected = model(X).numpy()
    scale = np.abs(expected).max()
    # int8 is lossy twice: weights per channel, and each call's activations over their own range
    for path, atol in ((fp32_path, 1e-5 * scale), (int8_path, 0.15 * scale)):
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        for rows in (X[:1], X):                          # the batch dimension stays dynamic
            got = session.run(None, {"x": rows.numpy()})[0]
            np.testing.assert_allclose(got, expected[: len(rows)], atol=atol)
    wrapped = OnnxModule(fp32_path)                      # a session behind a module: timed and scored like one
    np.testing.assert_allclose(wrapped(X).numpy(), expected, atol=1e-5 * scale)
    assert latency_ms(wrapped, X, repeats=3)["median"] > 0


def test_groupwise_quantisation_is_per_channel_at_full_width_and_more_accurate_in_small_groups():
    torch.manual_seed(0)
    weight = torch.randn(16, 128)
    weight[3, 5] = 40.0                                         # one outlier
    q, s = compression.quantize_groupwise(weight, bits=8, group_size=128)
    q_row, s_row = compression.quantize_per_channel(weight, bits=8)
    assert torch.equal(q.reshape(16, 128), q_row) and torch.allclose(s.reshape(16, 1), s_row)
    errors = []
    for group in (128, 64, 32):
        q, s = compression.quantize_groupwise(weight, bits=4, group_size=group)
        assert q.dtype == torch.int8 and q.abs().max() <= 7
        errors.append((compression.dequantize(q, s).reshape(weight.shape) - weight).abs().mean().item())
    assert errors[0] > errors[1] > errors[2]
    with pytest.raises(ValueError, match="divide"):
        compression.quantize_groupwise(weight, group_size=48)
