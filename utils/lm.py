"""The course's small language model: a byte-level GPT written to be read, its corpus and its cached checkpoint.

Lessons on large models (training speed, distribution, fine-tuning, serving, long context) share it.
It is a decoder-only transformer with pre-LayerNorm blocks, GELU MLPs and tied embeddings; the position
scheme is a constructor argument and the attention function can be swapped. ``tests/test_lm.py`` checks
the attention against ``scaled_dot_product_attention`` and a block against ``nn.TransformerEncoderLayer``.

    model = pretrained()        # shipped in data/lm/; `python -m utils.lm train` reproduces it
    generate(model, "The assert statement", max_new_tokens=80)
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.utils.checkpoint
from torch import nn

POSITIONS = ("learned", "sinusoidal", "rope", "alibi", "none")
CORPUS_FILE = "lm/python_reference.txt.gz"
CORPUS_SHA256 = "74d0773e08745aecb4918d358b4bfee396ba7d3e66575d55f09f366c7b5a6355"


# --- tokenizer ---

class ByteTokenizer:
    """Bytes are tokens: a vocabulary of 256, any text (Chinese included, through UTF-8) round-trips exactly.

    >>> tokenizer = ByteTokenizer()
    >>> tokenizer.encode("大模型")
    [229, 164, 167, 230, 168, 161, 229, 158, 139]
    >>> tokenizer.decode(tokenizer.encode("大模型"))
    '大模型'
    """
    vocab_size = 256

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))

    def decode(self, ids) -> str:
        """Bytes back to text; a byte sequence cut in the middle of a character shows as '�'."""
        return bytes(int(i) for i in ids).decode("utf-8", errors="replace")


# --- attention ---

def causal_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """softmax(q kᵀ / √d + bias, masked so position i sees positions ≤ i) v, for (batch, heads, time, d) tensors.

    Equal to ``torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)`` when ``bias`` is None.
    """
    t_q, t_k, d = q.shape[-2], k.shape[-2], q.shape[-1]
    scores = q @ k.transpose(-2, -1) / math.sqrt(d)
    if bias is not None:
        scores = scores + bias
    future = torch.ones(t_q, t_k, dtype=torch.bool, device=q.device).triu(t_k - t_q + 1)  # j > i (last rows if t_q < t_k)
    scores = scores.masked_fill(future, float("-inf"))
    return torch.softmax(scores, dim=-1) @ v


def sdpa_attention(q, k, v, bias=None):
    """The same computation by PyTorch's fused kernel (flash or memory-efficient where the hardware has them)."""
    if bias is None:
        return nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
    t_q, t_k = q.shape[-2], k.shape[-2]
    future = torch.ones(t_q, t_k, dtype=torch.bool, device=q.device).triu(t_k - t_q + 1)
    return nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=bias.masked_fill(future, float("-inf")))


def rope(x: torch.Tensor, positions: torch.Tensor, base: float = 10000.0) -> torch.Tensor:
    """Rotary position embedding: rotate each pair of channels by an angle proportional to the position."""
    d = x.shape[-1]
    frequencies = base ** (-torch.arange(0, d, 2, device=x.device, dtype=torch.float32) / d)
    angles = positions.to(torch.float32)[:, None] * frequencies[None, :]          # (time, d/2)
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
    even, odd = x[..., 0::2], x[..., 1::2]
    return torch.stack((even * cos - odd * sin, even * sin + odd * cos), dim=-1).flatten(-2)


def alibi_bias(n_heads: int, t_q: int, t_k: int, device=None) -> torch.Tensor:
    """ALiBi: head h adds -slope_h × distance to every score; slopes 2^(-8h/H) (Press et al., 2022)."""
    slopes = 2.0 ** (-8.0 * torch.arange(1, n_heads + 1, device=device) / n_heads)
    query = torch.arange(t_k - t_q, t_k, device=device)[:, None]
    distance = (query - torch.arange(t_k, device=device)[None, :]).clamp(min=0)
    return -slopes[:, None, None] * distance[None]                               # (heads, t_q, t_k)


def sinusoidal_positions(context: int, d_model: int, scale: float = 0.02 * math.sqrt(2)) -> torch.Tensor:
    """The fixed sine/cosine position table of Vaswani et al. (2017), times ``scale``.

    Unscaled, its values have an RMS of 1/√2 and would drown token embeddings initialised at 0.02; the default
    scale gives both the same RMS (Vaswani et al. scale the embeddings up by √d instead)."""
    position = torch.arange(context, dtype=torch.float32)[:, None]
    frequencies = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model))
    table = torch.zeros(context, d_model)
    table[:, 0::2], table[:, 1::2] = torch.sin(position * frequencies), torch.cos(position * frequencies)
    return table * scale


# --- the model ---

@dataclass(frozen=True)
class GPTConfig:
    """Sizes of the model. The defaults train in a few minutes on a 2-core CPU."""
    vocab_size: int = 256
    context: int = 128
    d_model: int = 128
    n_heads: int = 4
    n_layers: int = 4
    position: str = "learned"
    dropout: float = 0.0

    def __post_init__(self):
        if self.position not in POSITIONS:
            raise ValueError(f"position must be one of {POSITIONS}, got {self.position!r}")
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model ({self.d_model}) must be a multiple of n_heads ({self.n_heads})")
        if self.position == "rope" and (self.d_model // self.n_heads) % 2:
            raise ValueError("rope needs an even head size")


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention; ``attend`` is the swappable attention function."""

    def __init__(self, config: GPTConfig, attend: Callable = causal_attention):
        super().__init__()
        self.n_heads, self.position, self.attend = config.n_heads, config.position, attend
        self.rope_scale = 1.0  # < 1: position interpolation, positions squeezed into the trained range
        self.qkv = nn.Linear(config.d_model, 3 * config.d_model)
        self.proj = nn.Linear(config.d_model, config.d_model)

    def forward(self, x: torch.Tensor, start: int = 0) -> torch.Tensor:
        batch, time, d_model = x.shape
        q, k, v = self.qkv(x).split(d_model, dim=-1)
        q, k, v = (t.view(batch, time, self.n_heads, -1).transpose(1, 2) for t in (q, k, v))  # (B, H, T, d)
        bias = None
        if self.position == "rope":
            positions = torch.arange(start, start + time, device=x.device) * self.rope_scale
            q, k = rope(q, positions), rope(k, positions)
        elif self.position == "alibi":
            bias = alibi_bias(self.n_heads, time, time, device=x.device).to(q.dtype)
        y = self.attend(q, k, v, bias)
        return self.proj(y.transpose(1, 2).reshape(batch, time, d_model))


class Block(nn.Module):
    """Pre-LayerNorm transformer block: x + attention(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, config: GPTConfig, attend: Callable = causal_attention):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(config.d_model), nn.LayerNorm(config.d_model)
        self.attn = CausalSelfAttention(config, attend)
        self.mlp = nn.Sequential(nn.Linear(config.d_model, 4 * config.d_model), nn.GELU(),
                                 nn.Linear(4 * config.d_model, config.d_model))
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.dropout(self.attn(self.ln1(x)))
        return x + self.dropout(self.mlp(self.ln2(x)))


class GPT(nn.Module):
    """Token embedding (+ positions) → blocks → LayerNorm → logits through the embedding matrix (tied)."""

    def __init__(self, config: GPTConfig = GPTConfig(), attend: Callable = causal_attention):
        super().__init__()
        self.config = config
        self.tok_emb = nn.Embedding(config.vocab_size, config.d_model)
        if config.position == "learned":
            self.pos_emb = nn.Embedding(config.context, config.d_model)
        elif config.position == "sinusoidal":
            self.register_buffer("pos_table", sinusoidal_positions(config.context, config.d_model), persistent=False)
        self.blocks = nn.ModuleList(Block(config, attend) for _ in range(config.n_layers))
        self.ln_f = nn.LayerNorm(config.d_model)
        self.checkpointing = False  # True: keep only each block's input for backward, recompute the rest
        self.apply(self._init)
        for name, parameter in self.named_parameters():  # GPT-2: residual projections scaled by depth
            if name.endswith(("attn.proj.weight", "mlp.2.weight")):
                nn.init.normal_(parameter, std=0.02 / math.sqrt(2 * config.n_layers))

    @staticmethod
    def _init(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def set_attention(self, attend: Callable) -> None:
        """Swap the attention function of every block (a cached or memory-efficient one, say)."""
        for block in self.blocks:
            block.attn.attend = attend

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        """Logits (batch, time, vocab), and the mean cross-entropy in nats when ``targets`` are given."""
        logits = self.from_embeddings(self.tok_emb(idx))
        if targets is None:
            return logits
        return logits, nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))

    def from_embeddings(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (batch, time, vocab) from token embeddings (batch, time, d_model): everything after the lookup.

        Positions are added here, so a gradient with respect to ``x`` is a gradient with respect to the tokens'
        embeddings alone (lesson 09 attributes the next byte to them).
        """
        time = x.shape[1]
        if time > self.config.context and self.config.position == "learned":
            raise ValueError(f"a sequence of {time} tokens is longer than the context of {self.config.context}: "
                             "learned positions have no embedding beyond it")
        if self.config.position == "learned":
            x = x + self.pos_emb(torch.arange(time, device=x.device))
        elif self.config.position == "sinusoidal":
            table = self.pos_table if time <= len(self.pos_table) else sinusoidal_positions(time, self.config.d_model)
            x = x + table[:time].to(x.device, x.dtype)
        for block in self.blocks:
            if self.checkpointing and self.training and torch.is_grad_enabled():
                x = torch.utils.checkpoint.checkpoint(block, x, use_reentrant=False)
            else:
                x = block(x)
        return self.ln_f(x) @ self.tok_emb.weight.T


def encoder_layer_like(block: Block) -> nn.TransformerEncoderLayer:
    """PyTorch's own pre-LayerNorm encoder layer holding ``block``'s weights: under a causal mask it computes
    the same function, which is how the course checks its block against the library."""
    d_model = block.ln1.normalized_shape[0]
    layer = nn.TransformerEncoderLayer(d_model, block.attn.n_heads, dim_feedforward=block.mlp[0].out_features,
                                       dropout=0.0, activation="gelu", batch_first=True, norm_first=True)
    with torch.no_grad():
        layer.self_attn.in_proj_weight.copy_(block.attn.qkv.weight)
        layer.self_attn.in_proj_bias.copy_(block.attn.qkv.bias)
        layer.self_attn.out_proj.weight.copy_(block.attn.proj.weight)
        layer.self_attn.out_proj.bias.copy_(block.attn.proj.bias)
        for ours, theirs in ((block.mlp[0], layer.linear1), (block.mlp[2], layer.linear2),
                             (block.ln1, layer.norm1), (block.ln2, layer.norm2)):
            theirs.weight.copy_(ours.weight)
            theirs.bias.copy_(ours.bias)
    return layer.eval()


def parameter_count(config: GPTConfig) -> int:
    """The closed form: embeddings, then per block 12d² + 13d (attention 4d² + 4d, MLP 8d² + 5d, two LayerNorms
    4d), then the final LayerNorm 2d; the output layer is the embedding matrix (tied), so it adds nothing.

    >>> parameter_count(GPTConfig(vocab_size=256, context=128, d_model=128, n_layers=4))
    842496
    """
    d, layers = config.d_model, config.n_layers
    embeddings = config.vocab_size * d + (config.context * d if config.position == "learned" else 0)
    return embeddings + layers * (12 * d * d + 13 * d) + 2 * d


def matmul_parameters(config: GPTConfig) -> int:
    """Parameters that take part in a matrix multiply per token: the blocks' weights and the tied output layer.

    This is the N of "training costs about 6 N D FLOPs" (embedding lookups and LayerNorms cost no matmul).
    """
    return config.n_layers * 12 * config.d_model ** 2 + config.vocab_size * config.d_model


def training_flops(config: GPTConfig, tokens: int, time: int | None = None) -> int:
    """Forward + backward FLOPs: 6 N D for the weights plus 12 L T d D for attention scores and mixing.

    Each token's forward pass costs 2 FLOPs per matmul parameter and 4 T d per layer for q kᵀ and the
    weighted sum of v; the backward pass costs twice the forward.
    """
    time = config.context if time is None else time
    return 6 * matmul_parameters(config) * tokens + 12 * config.n_layers * time * config.d_model * tokens


# --- text generation ---

@torch.no_grad()
def generate(model: GPT, prompt: str, max_new_tokens: int = 100, temperature: float = 1.0, top_k: int | None = None,
             generator: torch.Generator | None = None) -> str:
    """Sample ``max_new_tokens`` bytes after ``prompt``; temperature 0 is greedy decoding."""
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    tokenizer, device = ByteTokenizer(), next(model.parameters()).device
    was_training = model.training
    model.eval()
    idx = torch.tensor([tokenizer.encode(prompt) or [10]], device=device)
    for _ in range(max_new_tokens):
        logits = model(idx[:, -model.config.context:])[0, -1].float()
        if temperature == 0:
            next_id = logits.argmax()
        else:
            logits = logits / temperature
            if top_k is not None:
                logits[logits < torch.topk(logits, min(top_k, logits.numel())).values[-1]] = float("-inf")
            next_id = torch.multinomial(torch.softmax(logits, dim=-1).cpu(), 1, generator=generator)[0].to(device)
        idx = torch.cat([idx, next_id.view(1, 1)], dim=1)
    model.train(was_training)
    return tokenizer.decode(idx[0, -max_new_tokens:].tolist()) if max_new_tokens else ""


# --- data ---

def load_corpus(directory: Path | None = None) -> bytes:
    """The shipped training text: the Python Language Reference topics (PSF licence), checked by SHA-256."""
    from utils.data import DataFileError, data_dir

    path = (directory or data_dir()) / CORPUS_FILE
    try:
        raw = gzip.decompress(path.read_bytes())
    except (OSError, EOFError) as error:
        raise DataFileError(f"cannot read {path} ({error}); restore it with: git checkout -- data/{CORPUS_FILE}") from error
    if hashlib.sha256(raw).hexdigest() != CORPUS_SHA256:
        raise DataFileError(f"{path} does not match its SHA-256; restore it with: git checkout -- data/{CORPUS_FILE}")
    return raw


def corpus_split(val_fraction: float = 0.1) -> tuple[torch.Tensor, torch.Tensor]:
    """Train and validation bytes: the last ``val_fraction`` of the text is validation (deterministic, no overlap)."""
    data = torch.frombuffer(bytearray(load_corpus()), dtype=torch.uint8).long()
    cut = int(len(data) * (1 - val_fraction))
    return data[:cut], data[cut:]


def random_batch(data: torch.Tensor, batch_size: int, context: int, generator: torch.Generator,
                 device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch_size`` windows at random offsets: inputs and the same windows shifted by one byte (targets)."""
    starts = torch.randint(0, len(data) - context - 1, (batch_size,), generator=generator)
    windows = torch.stack([data[s:s + context + 1] for s in starts.tolist()])
    windows = windows.to(device) if device is not None else windows
    return windows[:, :-1], windows[:, 1:]


class ByteWindows(torch.utils.data.Dataset):
    """Fixed windows of a byte tensor, with optional work per item: ``delay`` seconds of waiting (standing in for
    reading a file: no CPU used) or ``cpu`` seconds of computing (standing in for decoding: a busy loop)."""

    def __init__(self, data: torch.Tensor, context: int, delay: float = 0.0, cpu: float = 0.0):
        if delay < 0 or cpu < 0:
            raise ValueError(f"delay and cpu must be >= 0 seconds, got {delay} and {cpu}")
        self.data, self.context, self.delay, self.cpu = data, context, delay, cpu

    def __len__(self) -> int:
        return (len(self.data) - 1) // self.context

    def __getitem__(self, i: int):
        import time

        if self.delay:
            time.sleep(self.delay)
        if self.cpu:
            until = time.process_time() + self.cpu   # CPU time of this process: waiting for a core does not count
            while time.process_time() < until:
                pass
        window = self.data[i * self.context:(i + 1) * self.context + 1]
        return window[:-1], window[1:]


def bits_per_byte(nats: float) -> float:
    """Cross-entropy per byte in bits: nats / ln 2."""
    return nats / math.log(2)


def ngram_bits_per_byte(train: torch.Tensor, val: torch.Tensor, order: int) -> float:
    """Validation bits per byte of a unigram (order 1) or bigram (order 2) model with add-one smoothing."""
    train, val = train.numpy(), val.numpy()
    if order == 1:
        counts = np.bincount(train, minlength=256) + 1.0
        return float(-np.mean(np.log2(counts[val] / counts.sum())))
    if order == 2:
        counts = np.ones((256, 256))
        np.add.at(counts, (train[:-1], train[1:]), 1.0)
        probabilities = counts / counts.sum(axis=1, keepdims=True)
        return float(-np.mean(np.log2(probabilities[val[:-1], val[1:]])))
    raise ValueError(f"order must be 1 or 2, got {order}")


@torch.no_grad()
def evaluate_bpb(model: GPT, data: torch.Tensor, *, batches: int = 20, batch_size: int = 16, seed: int = 0) -> float:
    """Mean validation bits per byte over ``batches`` random windows (the same windows for every model)."""
    generator, device = torch.Generator().manual_seed(seed), next(model.parameters()).device
    was_training = model.training
    model.eval()
    losses = [model(*random_batch(data, batch_size, model.config.context, generator, device))[1].item()
              for _ in range(batches)]
    model.train(was_training)
    return bits_per_byte(float(np.mean(losses)))


# --- training and the cached checkpoint ---

def saved_tensor_bytes(model: GPT, step: Callable[[], object]) -> dict[str, int]:
    """Bytes that autograd keeps for the backward pass while ``step()`` runs a forward and backward of ``model``.

    Counted from scratch with ``saved_tensors_hooks``, each storage once, and split three ways:
    ``activations`` (what the forward pass computed and backward needs), ``weights`` (the parameters themselves,
    saved by reference: no extra memory) and ``weight copies`` (lower-precision casts of the weights that
    autocast makes: real memory, but not activations). With ``model.checkpointing`` the input each block's
    checkpoint keeps for its recomputation is added to the activations: the checkpoint holds it outside these
    hooks. Lesson 04 compares fp32, bf16 autocast and checkpointing with it.
    """
    parameters = [p.detach() for p in model.parameters()]
    weight_storages = {p.untyped_storage().data_ptr() for p in parameters}
    seen: dict[int, tuple[int, str]] = {}

    def kind_of(tensor: torch.Tensor) -> str:
        storage = tensor.untyped_storage()
        if storage.data_ptr() in weight_storages:
            return "weights"
        flat = torch.empty(0, dtype=tensor.dtype, device=tensor.device).set_(storage)
        for p in parameters:
            if tensor.dtype != p.dtype and tensor.is_floating_point() and flat.numel() == p.numel() \
                    and torch.equal(flat, p.to(tensor.dtype).reshape(-1)):
                return "weight copies"
        return "activations"

    kept = []  # a reference to every counted tensor, so no storage is freed and its address reused mid-count

    def record(tensor: torch.Tensor) -> torch.Tensor:
        if torch._C._current_autograd_node() is not None:
            return tensor  # saved during backward (a checkpoint's recomputation): transient, not kept from forward
        pointer = tensor.untyped_storage().data_ptr()
        if pointer not in seen:
            seen[pointer] = (tensor.untyped_storage().nbytes(), kind_of(tensor))
            kept.append(tensor)
        return tensor

    def keep_input(module, args):
        record(args[0])

    hooks = [block.register_forward_pre_hook(keep_input) for block in model.blocks] if model.checkpointing else []
    try:
        with torch.autograd.graph.saved_tensors_hooks(record, lambda tensor: tensor):
            step()
    finally:
        for hook in hooks:
            hook.remove()
    kept.clear()
    totals = {"activations": 0, "weights": 0, "weight copies": 0}
    for size, kind in seen.values():
        totals[kind] += size
    return totals


def decay_groups(model: nn.Module, weight_decay: float = 0.1) -> list[dict]:
    """AdamW parameter groups, GPT-2 / nanoGPT / LLaMA practice: matrices (embeddings, linear weights) decay;
    1-D parameters (LayerNorm gains and biases, every bias) do not, since shrinking a gain or an offset
    towards zero is not a regulariser of the function's complexity, just a distortion of its scale.

    >>> groups = decay_groups(GPT(GPTConfig(context=8, d_model=16, n_heads=2, n_layers=1)))
    >>> [(g["weight_decay"], len(g["params"])) for g in groups]
    [(0.1, 6), (0.0, 10)]
    """
    if weight_decay < 0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
    parameters = [p for p in model.parameters() if p.requires_grad]
    return [{"params": [p for p in parameters if p.dim() >= 2], "weight_decay": weight_decay},
            {"params": [p for p in parameters if p.dim() < 2], "weight_decay": 0.0}]


def cpu_bf16_units() -> list[str]:
    """The bf16 instruction sets this machine's CPU reports (``avx512_bf16``, ``amx_bf16``), from /proc/cpuinfo
    on Linux; an empty list where it reports none or the flags cannot be read."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            flags = set(cpuinfo.read().split())
    except OSError:
        return []
    return [flag for flag in ("avx512_bf16", "amx_bf16") if flag in flags]


def bf16_step_ratio(model: GPT, data: torch.Tensor, *, batch_size: int = 2, rounds: int = 5, seed: int = 0):
    """A training step's time under bf16 autocast over its time in fp32, on this model and device, measured
    interleaved (``utils.bench.compare``, median of ``rounds``). Below 1: bf16 is faster here. Returns the
    ratio and the :class:`utils.bench.Comparison` (the weights are not changed: no optimizer step)."""
    from utils import bench

    device = next(model.parameters()).device
    x, y = random_batch(data, batch_size, model.config.context, torch.Generator().manual_seed(seed), device)

    def step(enabled: bool):
        def run():
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=enabled):
                loss = model(x, y)[1]
            loss.backward()
            model.zero_grad(set_to_none=True)
            if device.type == "cuda":
                torch.cuda.synchronize()
        return run

    comparison = bench.compare({"fp32": step(False), "bf16 autocast": step(True)}, rounds=rounds, warmup=1)
    return 1 / comparison.ratio("fp32", "bf16 autocast"), comparison


def train_lm(model: GPT, data: torch.Tensor, *, steps: int, batch_size: int = 32, lr: float = 3e-3,
             warmup: int = 50, seed: int = 0, log_every: int = 0, weight_decay: float = 0.1,
             decay_all: bool = False, mixed_precision: bool | str | None = None) -> list[float]:
    """AdamW with linear warm-up and cosine decay; returns the training loss (nats) of every step.

    Weight decay applies to matrices only (:func:`decay_groups`); ``decay_all=True`` decays every parameter,
    the recipe the shipped weights were trained with. ``mixed_precision``: ``True`` or ``False`` runs the
    forward pass under bf16 autocast or not (weights and optimizer state stay fp32 either way); ``"auto"``
    measures a step both ways first (:func:`bf16_step_ratio`) and uses bf16 only if it is at least 10% faster
    here; ``None`` (the default) uses bf16 on CUDA and fp32 elsewhere, so CPU runs give the same weights on
    every CPU. Whether bf16 is faster on a CPU depends on its bf16 units: lesson 04, section 6 measures it.
    """
    from utils.train import warmup_cosine

    if mixed_precision not in (None, True, False, "auto"):
        raise ValueError(f"mixed_precision must be None, True, False or 'auto', got {mixed_precision!r}")
    generator, device = torch.Generator().manual_seed(seed), next(model.parameters()).device
    if mixed_precision == "auto":
        mixed_precision = bf16_step_ratio(model, data, batch_size=min(batch_size, 4), seed=seed)[0] < 0.9
    elif mixed_precision is None:
        mixed_precision = device.type == "cuda"
    warmup = min(warmup, max(1, steps // 10)) if steps > 1 else 1
    groups = [{"params": list(model.parameters()), "weight_decay": weight_decay}] if decay_all else \
        decay_groups(model, weight_decay)
    optimizer = torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.95))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: warmup_cosine(step, warmup=warmup, total=max(steps, 2), peak_lr=1.0, min_lr=0.1))
    model.train()
    losses = []
    for step in range(steps):
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bool(mixed_precision)):
            _, loss = model(*random_batch(data, batch_size, model.config.context, generator, device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
        if log_every and (step + 1) % log_every == 0:
            print(f"step {step + 1}/{steps}: loss {bits_per_byte(np.mean(losses[-log_every:])):.3f} bits/byte")
    return losses


PRETRAINED = {"config": GPTConfig(context=128, d_model=128, n_heads=4, n_layers=3), "steps": 2000, "batch_size": 16,
              "lr": 3e-3, "warmup": 100, "seed": 0, "decay_all": True}
# decay_all: the shipped weights were trained decaying every parameter (train_lm's recipe before it exempted 1-D
# parameters); PRETRAINED keeps that recipe so that `python -m utils.lm train` reproduces them.
SHIPPED = "lm/gpt-pretrained.safetensors"  # PRETRAINED's weights, in data/ with their SHA-256 in data/lm/README.md
SHIPPED_SHA256 = "edc9d79dba26491a4933f32122f527b379982a2509091d2054870e5ef64e710c"


def _cache_key(settings: dict) -> str:
    text = json.dumps({**settings, "config": asdict(settings["config"]), "corpus": CORPUS_SHA256,
                       "decay_all": settings.get("decay_all", False),  # recipe 2: 1-D parameters not decayed
                       "torch": torch.__version__.split("+")[0]}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def checkpoint_path(settings: dict | None = None) -> Path:
    """Where the trained model is cached: an ignored folder, keyed by its configuration and training settings."""
    from utils.data import data_dir

    return data_dir().parent / "build" / "lm_cache" / f"gpt-{_cache_key(settings or PRETRAINED)}.safetensors"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def pretrained(settings: dict | None = None, *, device=None, verbose: bool = True, use_shipped: bool = True) -> GPT:
    """The course's trained model. With the default settings: the weights shipped in ``data/lm/`` (checked by
    SHA-256). Other settings: loaded from the cache, or trained by :func:`train_lm` on first use and cached.

    Training the default settings takes a few minutes on a 2-core CPU (2,000 steps of roughly 0.1 s) (``python -m utils.lm train``).
    """
    from safetensors.torch import load_file, save_file

    from utils.data import data_dir
    from utils.repro import seed_everything

    settings = settings or PRETRAINED
    path, shipped = checkpoint_path(settings), data_dir() / SHIPPED
    if use_shipped and settings == PRETRAINED and shipped.exists() and _sha256(shipped) == SHIPPED_SHA256:
        path = shipped  # the shipped weights: no training on a fresh clone
    if path.exists():
        model = GPT(settings["config"])
        model.load_state_dict(load_file(path))
    else:
        if verbose:
            print(f"training the course's language model once ({settings['steps']} steps); cached at {path}")
        seed_everything(settings["seed"])
        model = GPT(settings["config"])
        train, _ = corpus_split()
        train_lm(model, train, steps=settings["steps"], batch_size=settings["batch_size"], lr=settings["lr"],
                 warmup=settings["warmup"], seed=settings["seed"], log_every=250 if verbose else 0,
                 decay_all=settings.get("decay_all", False))
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path.with_suffix(".tmp")))
        path.with_suffix(".tmp").replace(path)
    model.eval()
    return model.to(device) if device is not None else model


def main(argv: list[str] | None = None) -> int:
    """``python -m utils.lm train``: retrain the shipped checkpoint from scratch and print its SHA-256."""
    import argparse
    import shutil

    from utils.data import data_dir

    parser = argparse.ArgumentParser(prog="python -m utils.lm", description=main.__doc__)
    parser.add_argument("command", choices=["train"])
    parser.parse_args(argv)
    checkpoint_path(PRETRAINED).unlink(missing_ok=True)
    model = pretrained(PRETRAINED, use_shipped=False)
    shutil.copyfile(checkpoint_path(PRETRAINED), data_dir() / SHIPPED)
    _, val = corpus_split()
    print(f"wrote data/{SHIPPED}: sha256 {_sha256(data_dir() / SHIPPED)}, validation "
          f"{evaluate_bpb(model, val):.3f} bits per byte; put the digest in utils/lm.py (SHIPPED_SHA256)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
