"""Checks for lab 08 (compression): global_mask, quantize_per_channel, distillation_loss, low_rank_linear."""

from __future__ import annotations

import torch
from torch import nn

from utils import compression
from utils.checks.core import Case, Mistake, Spec, global_seed, register

# --- 08.global_mask: compared as weights kept per layer, and whether the kept ones are the globally largest ---


def _network(sizes: tuple[int, ...], seed: int, scales: tuple[float, ...]) -> nn.Sequential:
    layers: list[nn.Module] = []
    with global_seed(seed):  # nn.Linear draws from torch's global generator; the caller's state is kept
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(fan_in, fan_out), nn.ReLU()]
    model = nn.Sequential(*layers[:-1])
    with torch.no_grad():
        for layer, scale in zip(model[0::2], scales):
            layer.weight.mul_(scale)  # layers on different scales: global and layer-wise masks differ
            layer.bias.fill_(0.001)   # tiny biases: a mask that ranks them too would cut them first
    return model


def _mask_summary(masks, args) -> dict:
    model, _ = args
    weights = {name: p.detach() for name, p in model.named_parameters() if name.endswith("weight")}
    kept = torch.cat([weights[n].abs()[torch.as_tensor(masks[n]).bool()].flatten() for n in weights])
    dropped = torch.cat([weights[n].abs()[~torch.as_tensor(masks[n]).bool()].flatten() for n in weights])
    largest = bool(kept.numel() == 0 or dropped.numel() == 0 or kept.min() > dropped.max())
    return {"kept per layer": {n: int(torch.as_tensor(masks[n]).sum()) for n in weights}, "globally largest": largest}


def mask_layerwise(model, sparsity):
    return {name: compression.magnitude_mask([p], sparsity)[0] for name, p in model.named_parameters()
            if name.endswith("weight")}


def mask_keeps_smallest(model, sparsity):
    weights = {name: p for name, p in model.named_parameters() if name.endswith("weight")}
    keep = compression.magnitude_mask(list(weights.values()), 1 - sparsity)
    return {name: ~mask for name, mask in zip(weights, keep)}


def mask_keeps_the_sparsity_share(model, sparsity):
    return compression.global_mask(model, 1 - sparsity)


def mask_ranks_biases_too(model, sparsity):
    params = dict(model.named_parameters())
    masks = compression.magnitude_mask(list(params.values()), sparsity)
    return {name: mask for name, mask in zip(params, masks) if name.endswith("weight")}


def _mask_cases() -> list[Case]:
    cases = []
    for sizes, seed, scales, sparsity in (((6, 8, 8, 3), 8, (3.0, 1.0, 0.3), 0.5), ((6, 8, 8, 3), 8, (3.0, 1.0, 0.3), 0.8),
                                          ((4, 3), 81, (1.0,), 0.25), ((10, 20, 5), 82, (0.5, 2.0), 0.9),
                                          ((12, 16, 16, 4), 83, (1.0, 1.0, 1.0), 0.3)):
        label = f"a {'-'.join(map(str, sizes))} network (weight scales {scales}), sparsity {sparsity}"
        cases.append(Case((_network(sizes, seed, scales), sparsity), label, atol=0, size=sum(sizes)))
    return cases


register(Spec(
    "08.global_mask", compression.global_mask, _mask_cases, measure=_mask_summary,
    hint="Rank the |w| of every weight matrix together (no biases) and drop the smallest share `sparsity`.",
    mistakes=(
        Mistake(mask_layerwise, "You pruned each layer by the same share (layer-wise); rank all weights together."),
        Mistake(mask_keeps_smallest, "You kept the smallest weights: keep those with the largest |w|."),
        Mistake(mask_keeps_the_sparsity_share, "`sparsity` is the share to remove, not the share to keep."),
        Mistake(mask_ranks_biases_too, "The biases took part in the ranking; rank the weight matrices only."),
    )))


# --- 08.quantize_per_channel ---

def quantize_per_tensor(weight):
    q, scale = compression.quantize_per_tensor(weight)
    return q, scale.expand(weight.shape[0], 1).clone()


def quantize_with_floor(weight):
    scale = weight.abs().amax(dim=1, keepdim=True) / 127
    return torch.floor(weight / scale).clamp(-127, 127).to(torch.int8), scale


def quantize_scale_128(weight):
    scale = weight.abs().amax(dim=1, keepdim=True) / 128
    return torch.round(weight / scale).clamp(-128, 127).to(torch.int8), scale


def quantize_without_abs(weight):
    scale = weight.amax(dim=1, keepdim=True) / 127  # the largest value, not the largest magnitude
    return torch.round(weight / scale).clamp(-127, 127).to(torch.int8), scale


def _quantize_cases() -> list[Case]:
    weight = torch.tensor([[0.02, -0.01, 0.015, 0.0], [2.0, -1.3, 0.7, 0.05], [-0.4, 0.4, 0.1, -0.25]])
    cases = [Case((weight,), "weight=[[0.02, -0.01, 0.015, 0], [2, -1.3, 0.7, 0.05], [-0.4, 0.4, 0.1, -0.25]]")]
    generator = torch.Generator().manual_seed(804)
    for rows, cols in ((1, 5), (6, 3), (16, 32)):
        w = torch.randn(rows, cols, generator=generator) * torch.logspace(-2, 1, rows)[:, None]
        w[0, 0] = -2 * w[0].abs().max()  # the first row's largest magnitude is negative
        cases.append(Case((w,), f"a random {rows}x{cols} weight, rows on scales 0.01 to 10, some rows' largest "
                          "magnitude negative"))
    return cases


register(Spec(
    "08.quantize_per_channel", compression.quantize_per_channel, _quantize_cases,
    hint="One scale per row: scale = max|row| / 127 with shape (rows, 1), q = round(w / scale) clamped to "
         "[-127, 127], as torch.int8.",
    mistakes=(
        Mistake(quantize_per_tensor, "That is per-tensor (one scale for everything); use one scale per row."),
        Mistake(quantize_with_floor, "Round to the nearest integer; floor biases every weight down."),
        Mistake(quantize_scale_128, "Divide by 127, not 128: symmetric int8 uses [-127, 127] (+128 does not fit)."),
        Mistake(quantize_without_abs, "Take the largest magnitude, max|row| (abs first): a row whose biggest weight "
                                      "is negative needs it too."),
    )))


# --- 08.distillation_loss: its value and its gradient with respect to the student's logits ---

def _loss_and_gradient(loss, args):
    student = args[0]
    (gradient,) = torch.autograd.grad(loss, student)
    return loss.item(), gradient.numpy()


def distill_without_t_squared(student, teacher, targets, T, alpha):
    soft = nn.functional.kl_div(nn.functional.log_softmax(student / T, 1), nn.functional.log_softmax(teacher / T, 1),
                                reduction="batchmean", log_target=True)
    return alpha * soft + (1 - alpha) * nn.functional.cross_entropy(student, targets)


def distill_reversed_kl(student, teacher, targets, T, alpha):
    soft = nn.functional.kl_div(nn.functional.log_softmax(teacher / T, 1), nn.functional.log_softmax(student / T, 1),
                                reduction="batchmean", log_target=True)
    return alpha * T ** 2 * soft + (1 - alpha) * nn.functional.cross_entropy(student, targets)


def distill_teacher_not_softened(student, teacher, targets, T, alpha):
    soft = nn.functional.kl_div(nn.functional.log_softmax(student / T, 1), nn.functional.log_softmax(teacher, 1),
                                reduction="batchmean", log_target=True)
    return alpha * T ** 2 * soft + (1 - alpha) * nn.functional.cross_entropy(student, targets)


def distill_summed_over_batch(student, teacher, targets, T, alpha):
    soft = nn.functional.kl_div(nn.functional.log_softmax(student / T, 1), nn.functional.log_softmax(teacher / T, 1),
                                reduction="sum", log_target=True)
    return alpha * T ** 2 * soft + (1 - alpha) * nn.functional.cross_entropy(student, targets)


def _distill_cases() -> list[Case]:
    student = torch.tensor([[2.0, 0.5, -1.0], [0.1, 0.2, 0.3], [-1.0, 3.0, 0.0]])
    teacher = torch.tensor([[3.0, 1.0, -2.0], [0.0, 1.0, 0.5], [-2.0, 4.0, 1.0]])
    targets = torch.tensor([0, 1, 1])
    cases = [Case((student.clone().requires_grad_(), teacher, targets, T, alpha),
                  f"3 examples, 3 classes, T={T}, alpha={alpha}", atol=1e-5)  # float32 sums: 1e-5
             for T, alpha in ((4.0, 0.9), (2.0, 0.5), (1.0, 0.7))]
    generator = torch.Generator().manual_seed(803)
    for n, classes, T, alpha in ((8, 5, 3.0, 1.0), (32, 10, 8.0, 0.3)):
        s = (torch.randn(n, classes, generator=generator) * 3).requires_grad_()
        t = torch.randn(n, classes, generator=generator) * 5
        y = torch.randint(0, classes, (n,), generator=generator)
        cases.append(Case((s, t, y, T, alpha), f"{n} random examples, {classes} classes, T={T}, alpha={alpha}",
                          atol=1e-5))
    return cases


register(Spec(
    "08.distillation_loss", compression.distillation_loss, _distill_cases, measure=_loss_and_gradient,
    hint="alpha * T^2 * KL(softmax(teacher/T) || softmax(student/T)), averaged over the batch, "
         "+ (1 - alpha) * cross-entropy(student, targets).",
    mistakes=(
        Mistake(distill_without_t_squared, "Multiply the soft term by T^2, or its gradients shrink as 1/T^2."),
        Mistake(distill_reversed_kl, "KL goes from the teacher's distribution to the student's: KL(teacher || "
                                     "student); kl_div takes the student's log-probabilities first."),
        Mistake(distill_teacher_not_softened, "Soften the teacher too: softmax(teacher_logits / T)."),
        Mistake(distill_summed_over_batch, "Average the KL over the batch (reduction='batchmean'), like the "
                                           "cross-entropy; a sum grows with the batch size."),
    )))


# --- 08.low_rank_linear: compared by its outputs on fixed inputs and its parameter count ---

def _outputs_and_size(module, args) -> dict:
    layer, _ = args
    x = torch.randn(5, layer.in_features, generator=torch.Generator().manual_seed(805))
    with torch.no_grad():
        outputs = module(x)
    return {"outputs": outputs.numpy(), "parameters": sum(p.numel() for p in module.parameters())}


def svd_one_rank_too_many(layer, rank):
    full = min(layer.in_features, layer.out_features)
    return compression.low_rank_linear(layer, rank + 1 if rank < full else rank - 1)  # off by one, either way


def svd_without_bias(layer, rank):
    factored = compression.low_rank_linear(layer, rank)
    with torch.no_grad():
        factored[1].bias.zero_()
    return factored


def svd_forgets_singular_values(layer, rank):
    U, S, Vh = torch.linalg.svd(layer.weight.detach(), full_matrices=False)
    first, second = nn.Linear(layer.in_features, rank, bias=False), nn.Linear(rank, layer.out_features)
    with torch.no_grad():
        first.weight.copy_(Vh[:rank])
        second.weight.copy_(U[:, :rank])
        second.bias.copy_(layer.bias)
    return nn.Sequential(first, second)


def svd_smallest_singular_values(layer, rank):
    U, S, Vh = torch.linalg.svd(layer.weight.detach(), full_matrices=False)
    first, second = nn.Linear(layer.in_features, rank, bias=False), nn.Linear(rank, layer.out_features)
    with torch.no_grad():
        first.weight.copy_(S[-rank:, None] * Vh[-rank:])
        second.weight.copy_(U[:, -rank:])
        second.bias.copy_(layer.bias)
    return nn.Sequential(first, second)


def _low_rank_cases() -> list[Case]:
    cases = []
    for (fan_in, fan_out, rank), seed in zip(((12, 10, 2), (12, 10, 5), (6, 9, 6), (20, 3, 1)), range(80, 84)):
        with global_seed(seed):
            layer = nn.Linear(fan_in, fan_out)
        cases.append(Case((layer, rank), f"a Linear({fan_in}, {fan_out}) at rank {rank}, "
                          "on 5 random inputs", atol=1e-5, size=fan_in * fan_out))  # float32 SVD: 1e-5
    return cases


register(Spec(
    "08.low_rank_linear", compression.low_rank_linear, _low_rank_cases, measure=_outputs_and_size,
    hint="W = U S Vh; the first layer's weight is S[:r, None] * Vh[:r], the second's is U[:, :r], and the second "
         "keeps the original bias.",
    mistakes=(
        Mistake(svd_one_rank_too_many, "Keep exactly `rank` singular values: Vh[:rank] and U[:, :rank]."),
        Mistake(svd_without_bias, "The second layer keeps the original layer's bias."),
        Mistake(svd_forgets_singular_values, "Scale by the singular values: the first weight is S[:r, None] * Vh[:r]."),
        Mistake(svd_smallest_singular_values, "Keep the largest singular values (the first ones: "
                                              "torch.linalg.svd sorts them in decreasing order)."),
    )))


# --- 08.quantize_groupwise: compared through the weights it stands for (dequantised) and its largest code ---

def _groupwise_result(output, args):
    weight = args[0]
    if not (isinstance(output, tuple) and len(output) == 2):
        from utils.checks.core import reject
        reject(f"expected a pair (q, scale), got a {type(output).__name__}.",
               "Return q (int8 codes) and scale, as quantize_per_channel does.")
    q, scale = output
    approx = (q.to(torch.float32) * scale).reshape(weight.shape)
    return approx.numpy(), int(q.abs().max()), str(q.dtype)


def groupwise_one_scale_per_row(weight, bits=4, group_size=64):
    q, scale = compression.quantize_groupwise(weight, bits, weight.shape[1])   # one group: the whole row
    groups = weight.shape[1] // group_size
    return q.reshape(weight.shape[0], groups, group_size), scale.expand(weight.shape[0], groups, 1).clone()


def groupwise_asymmetric_range(weight, bits=4, group_size=64):
    qmax = 2 ** (bits - 1)
    groups = weight.reshape(weight.shape[0], -1, group_size)
    scale = (groups.abs().amax(dim=-1, keepdim=True) / qmax).clamp(min=1e-12)
    return torch.round(groups / scale).clamp(-qmax, qmax - 1).to(torch.int8), scale


def groupwise_unsigned_range(weight, bits=4, group_size=64):
    qmax = 2 ** bits - 1
    groups = weight.reshape(weight.shape[0], -1, group_size)
    scale = (groups.abs().amax(dim=-1, keepdim=True) / qmax).clamp(min=1e-12)
    return torch.round(groups / scale).clamp(-qmax, qmax).to(torch.int8), scale


def groupwise_without_abs(weight, bits=4, group_size=64):
    qmax = 2 ** (bits - 1) - 1
    groups = weight.reshape(weight.shape[0], -1, group_size)
    scale = (groups.amax(dim=-1, keepdim=True) / qmax).clamp(min=1e-12)
    return torch.round(groups / scale).clamp(-qmax, qmax).to(torch.int8), scale


def _groupwise_cases() -> list[Case]:
    generator = torch.Generator().manual_seed(808)
    cases = []
    w = torch.tensor([[0.1, -0.2, 0.05, 0.3, 4.0, -0.1, 0.2, 0.0], [-0.6, 0.1, 0.2, -0.05, 0.3, 0.3, -0.2, 0.1]])
    cases.append(Case((w, 4, 4), "a 2x8 weight with an outlier 4.0 in its second group, int4, groups of 4"))
    zeros = torch.tensor([[0.0, 0.0, 0.0, 0.0, 0.3, -0.1, 0.0, 0.2]])
    cases.append(Case((zeros, 4, 4), "a row whose first group is all zeros (q must stay 0, not NaN)"))
    for rows, cols, bits, group in ((4, 16, 4, 8), (3, 64, 3, 16), (8, 128, 4, 64), (2, 12, 8, 6)):
        w = torch.randn(rows, cols, generator=generator) * 0.05
        w[0, 0] = -1.0                                   # a negative outlier: the largest magnitude of its group
        cases.append(Case((w, bits, group), f"a random {rows}x{cols} weight with a negative outlier, int{bits}, "
                          f"groups of {group}", atol=1e-6))
    return cases


register(Spec(
    "08.quantize_groupwise", compression.quantize_groupwise, _groupwise_cases, measure=_groupwise_result,
    hint="Reshape to (rows, columns / group_size, group_size); per group, scale = max|w| / (2 ** (bits - 1) - 1); "
         "q = round(w / scale) clamped to ±(2 ** (bits - 1) - 1), as torch.int8; return (q, scale).",
    mistakes=(
        Mistake(groupwise_one_scale_per_row, "One scale per group of group_size consecutive weights, not per row: "
                                             "an outlier should spoil only its own group."),
        Mistake(groupwise_asymmetric_range, "Use the symmetric range ±(2 ** (bits - 1) - 1) (±7 for int4): dividing "
                                            "by 8 and clipping at 7 cuts the largest positive weights."),
        Mistake(groupwise_unsigned_range, "A signed int4 holds -7..7, not ±15: qmax = 2 ** (bits - 1) - 1."),
        Mistake(groupwise_without_abs, "Take the largest magnitude of each group, max|w|: a group whose biggest "
                                       "weight is negative needs it too."),
    )))
