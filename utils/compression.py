"""Model compression from scratch: magnitude pruning, structured pruning, int8 quantisation,
low-rank factorisation, knowledge distillation, and honest size measurements.
"""

from __future__ import annotations

import copy
import io
import logging
import warnings
from pathlib import Path

import torch
from torch import nn


# --- sizes ---

def state_dict_bytes(model: nn.Module) -> int:
    """Bytes of ``torch.save(model.state_dict())``: what a deployment ships."""
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getbuffer().nbytes


def csr_bytes(model: nn.Module) -> int:
    """Bytes needed to store the weight matrices in CSR form (float32 values, int32 column indices and row
    pointers) plus every other parameter dense: the size a sparse format would ship."""
    from scipy.sparse import csr_matrix

    total = 0
    for parameter in model.parameters():
        values = parameter.detach().numpy()
        if values.ndim == 2:
            sparse = csr_matrix(values)
            total += sparse.data.nbytes + sparse.indices.astype("int32").nbytes + sparse.indptr.astype("int32").nbytes
        else:
            total += values.nbytes
    return total


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# --- pruning ---

def magnitude_mask(weights: list[torch.Tensor], sparsity: float) -> list[torch.Tensor]:
    """Boolean keep-masks removing the ``sparsity`` share of the smallest |w|, ranked globally across all tensors.

    Global ranking lets layers with many small weights lose more of them than layers with few.

    >>> [m.tolist() for m in magnitude_mask([torch.tensor([0.1, -3.0]), torch.tensor([2.0, 0.5])], 0.5)]
    [[False, True], [True, False]]
    """
    if not 0 <= sparsity < 1:
        raise ValueError(f"sparsity must be in [0, 1), got {sparsity}")
    if not weights:
        raise ValueError("weights is empty: pass the tensors to prune, for example every Linear layer's weight")
    magnitudes = torch.cat([w.detach().abs().flatten() for w in weights])
    n_pruned = int(round(sparsity * magnitudes.numel()))
    if n_pruned == 0:
        return [torch.ones_like(w, dtype=torch.bool) for w in weights]
    threshold = magnitudes.kthvalue(n_pruned).values
    return [w.detach().abs() > threshold for w in weights]


def global_mask(model: nn.Module, sparsity: float) -> dict[str, torch.Tensor]:
    """{name: keep-mask} for every parameter named ``*weight``, ranked together by |w| (biases are not pruned).

    >>> layer = nn.Linear(2, 2)
    >>> _ = layer.weight.data.copy_(torch.tensor([[0.1, -3.0], [2.0, 0.5]]))
    >>> global_mask(layer, 0.5)["weight"].tolist()
    [[False, True], [True, False]]
    """
    weights = {name: p for name, p in model.named_parameters() if name.endswith("weight")}
    return dict(zip(weights, magnitude_mask(list(weights.values()), sparsity)))


def linear_layers(model: nn.Module) -> list[nn.Linear]:
    return [module for module in model.modules() if isinstance(module, nn.Linear)]


@torch.no_grad()
def apply_masks(model: nn.Module, masks: list[torch.Tensor]) -> None:
    """Zero the pruned weights of the model's Linear layers in place."""
    for layer, mask in zip(linear_layers(model), masks):
        layer.weight.mul_(mask)


def sparsity_of(model: nn.Module) -> float:
    """Share of exactly-zero weights over the model's Linear weight matrices."""
    weights = torch.cat([layer.weight.detach().flatten() for layer in linear_layers(model)])
    return float((weights == 0).float().mean())


@torch.no_grad()
def prune_neurons(model: nn.Sequential, keep: float) -> nn.Sequential:
    """Structured pruning of an MLP: keep the ``keep`` share of each hidden layer's units with the largest
    incoming-weight norm, and return a smaller dense model (the next layer loses the matching inputs)."""
    layers = [copy.deepcopy(m) for m in model]
    linear_positions = [i for i, m in enumerate(layers) if isinstance(m, nn.Linear)]
    for current, following in zip(linear_positions[:-1], linear_positions[1:]):
        layer, nxt = layers[current], layers[following]
        n_keep = max(1, int(round(keep * layer.out_features)))
        units = layer.weight.norm(dim=1).topk(n_keep).indices.sort().values
        smaller = nn.Linear(layer.in_features, n_keep)
        smaller.weight.copy_(layer.weight[units])
        smaller.bias.copy_(layer.bias[units])
        narrower = nn.Linear(n_keep, nxt.out_features)
        narrower.weight.copy_(nxt.weight[:, units])
        narrower.bias.copy_(nxt.bias)
        layers[current], layers[following] = smaller, narrower
    return nn.Sequential(*layers)


# --- quantisation ---

def quantize_per_tensor(weight: torch.Tensor, bits: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric quantisation with one scale for the whole tensor: q = round(w / s), s = max|w| / (2^(bits-1) - 1)."""
    qmax = 2 ** (bits - 1) - 1
    scale = (weight.detach().abs().max() / qmax).clamp(min=1e-12)
    return torch.round(weight.detach() / scale).clamp(-qmax, qmax).to(torch.int8), scale


def quantize_per_channel(weight: torch.Tensor, bits: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric quantisation with one scale per output row: rows with small weights keep their resolution.

    Returns ``(q, scale)`` with ``q`` an int8 tensor shaped like ``weight`` and ``scale`` of shape (rows, 1).

    >>> q, s = quantize_per_channel(torch.tensor([[1.0, -0.5], [100.0, 50.0]]))
    >>> q.tolist(), s.flatten().tolist()
    ([[127, -64], [127, 64]], [0.007874015718698502, 0.787401556968689])
    """
    if weight.dim() != 2:
        raise ValueError(f"expected a 2-D weight matrix, got shape {tuple(weight.shape)}")
    if not 2 <= bits <= 8:
        raise ValueError(f"bits must be between 2 and 8 to fit int8, got {bits}")
    qmax = 2 ** (bits - 1) - 1
    scale = (weight.detach().abs().amax(dim=1, keepdim=True) / qmax).clamp(min=1e-12)
    return torch.round(weight.detach() / scale).clamp(-qmax, qmax).to(torch.int8), scale


def dequantize(q: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Back to float: q * scale."""
    return q.to(torch.float32) * scale


def quantize_groupwise(weight: torch.Tensor, bits: int = 4, group_size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric quantisation with one scale per group of ``group_size`` consecutive weights in a row, as
    LLM weight-only formats (int4 with groups of 32 to 128) do: an outlier spoils only its own group.

    Returns ``(q, scale)``: ``q`` int8 shaped (rows, columns / group_size, group_size), ``scale`` of
    shape (rows, columns / group_size, 1); ``dequantize(q, scale).reshape(weight.shape)`` is the
    approximation. ``group_size`` equal to the row length is per-channel quantisation.
    """
    if weight.dim() != 2:
        raise ValueError(f"expected a 2-D weight matrix, got shape {tuple(weight.shape)}")
    if group_size < 1 or weight.shape[1] % group_size:
        raise ValueError(f"group_size must divide the {weight.shape[1]} columns, got {group_size}")
    if not 2 <= bits <= 8:
        raise ValueError(f"bits must be between 2 and 8 to fit int8, got {bits}")
    qmax = 2 ** (bits - 1) - 1
    groups = weight.detach().reshape(weight.shape[0], -1, group_size)
    scale = (groups.abs().amax(dim=-1, keepdim=True) / qmax).clamp(min=1e-12)
    return torch.round(groups / scale).clamp(-qmax, qmax).to(torch.int8), scale


def onnx_int8(model: nn.Module, example: torch.Tensor, directory) -> tuple[Path, Path]:
    """Export ``model`` to ONNX (``fp32.onnx``) and write an int8 copy (``int8.onnx``) by ONNX Runtime's
    dynamic quantisation: int8 weights (one scale per output channel), activations quantised per call, integer matrix multiplies
    (``MatMulInteger``) on the CPU. The batch dimension stays dynamic. Returns both paths.

    The current exporter annotates intermediate shapes (``value_info``) that the quantiser's shape
    inference rejects for some graphs; they are recomputed at load time, so they are dropped first.
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    fp32_path, int8_path = directory / "fp32.onnx", directory / "int8.onnx"
    model.eval()
    # the exporter logs, once per process, that optional torchvision operators are not registered
    logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(model, (example,), dynamo=True, verbose=False, input_names=["x"],
                                    output_names=["logits"], dynamic_shapes=({0: torch.export.Dim("batch")},))
    graph = program.model_proto
    graph.graph.ClearField("value_info")
    onnx.save(graph, fp32_path)
    quantizer_log = logging.getLogger()  # the quantiser advises pre-processing through the root logger
    level = quantizer_log.level
    quantizer_log.setLevel(logging.ERROR)
    try:
        quantize_dynamic(fp32_path, int8_path, weight_type=QuantType.QInt8, per_channel=True)
    finally:
        quantizer_log.setLevel(level)
    return fp32_path, int8_path


# --- low rank ---

@torch.no_grad()
def low_rank_linear(layer: nn.Linear, rank: int) -> nn.Sequential:
    """Replace W (out x in) by its best rank-r approximation, as two Linear layers: in -> r -> out."""
    if not 1 <= rank <= min(layer.in_features, layer.out_features):
        raise ValueError(f"rank must be between 1 and {min(layer.in_features, layer.out_features)}, got {rank}")
    U, S, Vh = torch.linalg.svd(layer.weight.detach(), full_matrices=False)
    first, second = nn.Linear(layer.in_features, rank, bias=False), nn.Linear(rank, layer.out_features)
    first.weight.copy_(S[:rank, None] * Vh[:rank])
    second.weight.copy_(U[:, :rank])
    second.bias.copy_(layer.bias.detach())
    return nn.Sequential(first, second)


# --- distillation ---

def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, targets: torch.Tensor,
                      temperature: float = 4.0, alpha: float = 0.5) -> torch.Tensor:
    """Hinton et al. (2015): alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * cross-entropy(student, targets).

    Softening both distributions with temperature T exposes the teacher's "dark knowledge" (which
    wrong classes it finds plausible); T^2 keeps the soft term's gradients on the scale of the hard one.
    """
    if temperature <= 0 or not 0 <= alpha <= 1:
        raise ValueError(f"need temperature > 0 and alpha in [0, 1], got {temperature} and {alpha}")
    soft = nn.functional.kl_div(nn.functional.log_softmax(student_logits / temperature, dim=1),
                                nn.functional.log_softmax(teacher_logits.detach() / temperature, dim=1),
                                reduction="batchmean", log_target=True)
    hard = nn.functional.cross_entropy(student_logits, targets)
    return alpha * temperature ** 2 * soft + (1 - alpha) * hard
