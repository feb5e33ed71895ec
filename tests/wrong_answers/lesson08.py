"""Plausible wrong answers to lab 08 (compression)."""

import torch
from torch import nn

from utils import compression


def _weights(model):
    return {name: p for name, p in model.named_parameters() if name.endswith("weight")}


def mask_layerwise(model, sparsity):
    return {name: compression.magnitude_mask([w], sparsity)[0] for name, w in _weights(model).items()}


def mask_keeps_smallest(model, sparsity):
    weights = _weights(model)
    keep = compression.magnitude_mask(list(weights.values()), 1 - sparsity)
    return {name: ~mask for name, mask in zip(weights, keep)}


def mask_ranks_biases_too(model, sparsity):
    params = dict(model.named_parameters())
    masks = compression.magnitude_mask(list(params.values()), sparsity)
    return {name: mask for name, mask in zip(params, masks) if name.endswith("weight")}


def quantize_per_tensor(weight):
    q, scale = compression.quantize_per_tensor(weight)
    return q, scale.expand(weight.shape[0], 1)


def quantize_with_floor(weight):
    scale = weight.abs().amax(dim=1, keepdim=True) / 127
    return torch.floor(weight / scale).clamp(-127, 127).to(torch.int8), scale


def quantize_scale_128(weight):
    scale = weight.abs().amax(dim=1, keepdim=True) / 128
    return torch.round(weight / scale).clamp(-128, 127).to(torch.int8), scale


def distill_without_t_squared(student, teacher, targets, temperature, alpha):
    return compression.distillation_loss(student, teacher, targets, temperature, alpha) \
        - alpha * (temperature ** 2 - 1) * nn.functional.kl_div(
            nn.functional.log_softmax(student / temperature, 1), nn.functional.log_softmax(teacher / temperature, 1),
            reduction="batchmean", log_target=True)


def distill_reversed_kl(student, teacher, targets, temperature, alpha):
    soft = nn.functional.kl_div(nn.functional.log_softmax(teacher / temperature, 1),
                                nn.functional.log_softmax(student / temperature, 1), reduction="batchmean", log_target=True)
    return alpha * temperature ** 2 * soft + (1 - alpha) * nn.functional.cross_entropy(student, targets)


def distill_teacher_not_softened(student, teacher, targets, temperature, alpha):
    soft = nn.functional.kl_div(nn.functional.log_softmax(student / temperature, 1),
                                nn.functional.log_softmax(teacher, 1), reduction="batchmean", log_target=True)
    return alpha * temperature ** 2 * soft + (1 - alpha) * nn.functional.cross_entropy(student, targets)


def svd_one_rank_too_many(layer, rank):
    return compression.low_rank_linear(layer, rank + 1)


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


WRONG = {
    "08.global_mask": [mask_layerwise, mask_keeps_smallest, mask_ranks_biases_too],
    "08.quantize": [quantize_per_tensor, quantize_with_floor, quantize_scale_128],
    "08.distill_loss": [distill_without_t_squared, distill_reversed_kl, distill_teacher_not_softened],
    "08.svd_linear": [svd_one_rank_too_many, svd_without_bias, svd_forgets_singular_values],
}
