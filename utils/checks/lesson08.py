"""Checks for lab 08 (compression): a global magnitude mask, per-channel int8, the distillation loss, an SVD layer."""

from __future__ import annotations

import torch
from torch import nn

from utils import compression
from utils.checks.core import Checker, format_value as fmt, register


def _model() -> nn.Sequential:
    torch.manual_seed(8)
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 3))
    with torch.no_grad():
        model[0].weight.mul_(3.0)   # layers on different scales: global and layer-wise masks differ
        model[4].weight.mul_(0.3)
        for layer in (model[0], model[2], model[4]):
            layer.bias.fill_(0.001)  # tiny biases: a mask that ranks them too would cut them first
    return model


@register("08.global_mask")
def _global_mask(c: Checker) -> None:
    model = _model()
    names = ["0.weight", "2.weight", "4.weight"]
    weights = [dict(model.named_parameters())[name] for name in names]
    for sparsity in (0.5, 0.8):
        got = c.call(model, sparsity)
        if not isinstance(got, dict) or sorted(got) != names:
            c.fail(f"expected a dict with the weight names {names} as keys, got keys {sorted(got) if isinstance(got, dict) else type(got).__name__}.",
                   "One boolean mask per Linear weight, keyed by parameter name; biases are not pruned.")
        expected = compression.magnitude_mask(weights, sparsity)
        kept = {name: int(torch.as_tensor(got[name]).sum()) for name in names}
        wanted = {name: int(mask.sum()) for name, mask in zip(names, expected)}
        layerwise = {name: int(compression.magnitude_mask([w], sparsity)[0].sum()) for name, w in zip(names, weights)}
        got_masks = [torch.as_tensor(got[name]).bool() for name in names]
        if any(not torch.equal(g, m) for g, m in zip(got_masks, expected)):
            with_biases = compression.magnitude_mask(list(model.parameters()), sparsity)[0::2]
            if kept == layerwise:
                hint = "You pruned each layer by the same share (layer-wise); rank all weights together (global)."
            elif all(torch.equal(g, ~m) for g, m in zip(got_masks, compression.magnitude_mask(weights, 1 - sparsity))):
                hint = "You kept the smallest weights: keep those with the largest |w|."
            elif all(torch.equal(g, m) for g, m in zip(got_masks, with_biases)):
                hint = "The biases took part in the ranking; rank the weight matrices only."
            else:
                hint = "Rank the |w| of every weight matrix together (no biases) and drop the smallest share `sparsity`."
            c.fail(f"for sparsity {sparsity} on a 6-8-8-3 network: expected weights kept per layer {wanted}, got {kept}.", hint)


@register("08.quantize")
def _quantize(c: Checker) -> None:
    weight = torch.tensor([[0.02, -0.01, 0.015, 0.0], [2.0, -1.3, 0.7, 0.05], [-0.4, 0.4, 0.1, -0.25]])
    got = c.call(weight)
    if not (isinstance(got, tuple) and len(got) == 2):
        c.fail(f"expected a pair (q, scale), got {type(got).__name__}.", "Return (q, scale).")
    q, scale = got
    expected_q, expected_scale = compression.quantize_per_channel(weight)
    if not isinstance(q, torch.Tensor) or q.dtype != torch.int8:
        c.fail(f"expected q as an int8 tensor, got {getattr(q, 'dtype', type(q).__name__)}.", "Use .to(torch.int8).")
    per_tensor, _ = compression.quantize_per_tensor(weight)
    c.expect_close(q.numpy(), expected_q.numpy(), atol=0, case=f"weight={fmt(weight.numpy())}: the integers q",
                   hint="One scale per row: scale = max|row| / 127, q = round(w / scale), clamped to [-127, 127].",
                   diagnose=((per_tensor.numpy(), "That is per-tensor (one scale for everything); use one scale per row."),
                             (torch.floor(weight / expected_scale).numpy(), "Round to the nearest integer; floor biases every weight down.")))
    c.expect_close(torch.as_tensor(scale).reshape(-1).numpy(), expected_scale.reshape(-1).numpy(), atol=1e-9,
                   case="the scales, one per row", hint="scale = max|row| / 127 (not 128: +128 does not fit in int8).")


@register("08.distill_loss")
def _distill_loss(c: Checker) -> None:
    student = torch.tensor([[2.0, 0.5, -1.0], [0.1, 0.2, 0.3], [-1.0, 3.0, 0.0]])
    teacher = torch.tensor([[3.0, 1.0, -2.0], [0.0, 1.0, 0.5], [-2.0, 4.0, 1.0]])
    targets = torch.tensor([0, 1, 1])
    for temperature, alpha in ((4.0, 0.9), (2.0, 0.5), (1.0, 0.7)):
        expected = compression.distillation_loss(student, teacher, targets, temperature, alpha).item()
        got = c.call(student, teacher, targets, temperature, alpha)
        got = got.item() if isinstance(got, torch.Tensor) else got
        soft = nn.functional.kl_div(nn.functional.log_softmax(student / temperature, 1),
                                    nn.functional.log_softmax(teacher / temperature, 1), reduction="batchmean", log_target=True)
        hard = nn.functional.cross_entropy(student, targets)
        reverse = nn.functional.kl_div(nn.functional.log_softmax(teacher / temperature, 1),
                                       nn.functional.log_softmax(student / temperature, 1), reduction="batchmean", log_target=True)
        c.expect_close(got, expected, atol=1e-5, case=f"3 examples, T={temperature}, alpha={alpha}",
                       hint="alpha * T^2 * KL(softmax(teacher/T) || softmax(student/T)) + (1 - alpha) * cross-entropy(student, targets).",
                       diagnose=(((alpha * soft + (1 - alpha) * hard).item(), "Multiply the soft term by T^2."),
                                 ((alpha * temperature ** 2 * reverse + (1 - alpha) * hard).item(),
                                  "KL goes from the teacher's distribution to the student's: KL(teacher || student).")))


@register("08.svd_linear")
def _svd_linear(c: Checker) -> None:
    torch.manual_seed(80)
    layer = nn.Linear(12, 10)
    x = torch.randn(5, 12)
    for rank in (2, 5):
        got = c.call(layer, rank)
        if not isinstance(got, nn.Module):
            c.fail(f"expected an nn.Module (two Linear layers in a Sequential), got {type(got).__name__}.",
                   "Return nn.Sequential(nn.Linear(in, rank, bias=False), nn.Linear(rank, out)).")
        expected = compression.low_rank_linear(layer, rank)
        n_params = sum(p.numel() for p in got.parameters())
        if n_params > rank * (12 + 10) + 10:
            c.fail(f"for rank {rank}: expected at most {rank * 22 + 10} parameters, got {n_params}.",
                   "The two factors hold rank*(in + out) numbers, plus the output bias.")
        with torch.no_grad():
            c.expect_close(c.run(got, x).numpy(), expected(x).numpy(), atol=1e-5,
                           case=f"a Linear(12, 10) at rank {rank}, on 5 random inputs",
                           hint="W = U S Vh; the first layer's weight is S[:r, None] * Vh[:r], the second's is U[:, :r], "
                                "and the second keeps the original bias.")
