"""Checks for lab 05 (distributed training): shard_indices, simulate_ring_all_reduce, zero_memory_per_rank,
combine_gradients."""

from __future__ import annotations

import math

import numpy as np
import torch

from utils import distributed
from utils.checks.core import GLOBAL_RANDOM_HINT, Case, Mistake, Spec, register

# --- 05.shard_indices ---


def _permutation(n, seed):
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()


def shard_seeded_by_rank(n_items, rank, world_size, shuffle=True, seed=0, epoch=0, drop_last=False):
    return distributed.shard_indices(n_items, rank, world_size, shuffle=shuffle, seed=seed + rank, epoch=epoch,
                                     drop_last=drop_last)


def shard_without_padding(n_items, rank, world_size, shuffle=True, seed=0, epoch=0, drop_last=False):
    indices = _permutation(n_items, seed + epoch) if shuffle else list(range(n_items))
    if drop_last:
        indices = indices[: n_items // world_size * world_size]
    return indices[rank::world_size]


def shard_always_drops_the_tail(n_items, rank, world_size, shuffle=True, seed=0, epoch=0, drop_last=False):
    indices = _permutation(n_items, seed + epoch) if shuffle else list(range(n_items))
    return indices[: n_items // world_size * world_size][rank::world_size]


def shard_ignoring_epoch(n_items, rank, world_size, shuffle=True, seed=0, epoch=0, drop_last=False):
    return distributed.shard_indices(n_items, rank, world_size, shuffle=shuffle, seed=seed, epoch=0, drop_last=drop_last)


def shard_in_blocks(n_items, rank, world_size, shuffle=True, seed=0, epoch=0, drop_last=False):
    indices = _permutation(n_items, seed + epoch) if shuffle else list(range(n_items))
    total = n_items // world_size * world_size if drop_last else math.ceil(n_items / world_size) * world_size
    indices = (indices * math.ceil(total / n_items))[:total]
    per_rank = total // world_size
    return indices[rank * per_rank:(rank + 1) * per_rank]


def shard_seeding_the_global_generator(n_items, rank, world_size, shuffle=True, seed=0, epoch=0, drop_last=False):
    torch.manual_seed(seed + epoch)   # the right permutation, but the caller's dropout and init now repeat each epoch
    indices = torch.randperm(n_items).tolist() if shuffle else list(range(n_items))
    total = n_items // world_size * world_size if drop_last else math.ceil(n_items / world_size) * world_size
    return (indices * math.ceil(total / n_items))[:total][rank::world_size]


def _shard_cases() -> list[Case]:
    cases = [Case((10, 1, 4, True, 0, 0, False), "10 items, rank 1 of 4, seed 0, epoch 0", size=0),
             Case((10, 3, 4, True, 0, 0, True), "10 items, rank 3 of 4, seed 0, drop_last=True", size=1),
             Case((8, 1, 2, True, 5, 3, False), "8 items, rank 1 of 2, seed 5, epoch 3", size=2),
             Case((3, 3, 4, True, 1, 0, False), "3 items, rank 3 of 4 (fewer items than ranks)", size=3),
             Case((10, 2, 4, False, 0, 0, False), "10 items, rank 2 of 4, shuffle=False (two items are repeated)",
                  size=4)]
    rng = np.random.default_rng(50)
    for n in (1, 97, 1000):
        world_size = int(rng.integers(1, 9))
        rank = int(rng.integers(0, world_size))
        cases.append(Case((n, rank, world_size, True, 11, int(rng.integers(0, 5)),
                           bool(n > world_size and rng.random() < 0.5)),
                          f"{n} items, rank {rank} of {world_size}", size=n))
    return cases


def _index_list(got, expected):
    """A list of integer indices, of any length (a wrong length is compared as a value, so its mistake is named)."""
    if not isinstance(got, list) or not all(isinstance(i, (int, np.integer)) and not isinstance(i, bool) for i in got):
        return (f"your result should be a list of integer indices, got {type(got).__name__}"
                + (f" holding {type(got[0]).__name__}" if isinstance(got, list) and got else "") + ".",
                "Return a Python list of ints, as DistributedSampler yields (torch.randperm(...).tolist()).")
    return None


register(Spec(
    "05.shard_indices", distributed.shard_indices, _shard_cases, seed=(4, lambda number: number),
    contract=_index_list,
    hint="Like DistributedSampler: one permutation from torch.Generator().manual_seed(seed + epoch) (the same on "
         "every rank), padded with its own start to a multiple of world_size (or cut to one with drop_last), then "
         "indices[rank:total:world_size].",
    mistakes=(
        Mistake(shard_seeded_by_rank, "Every rank must draw the same permutation (seed + epoch, not + rank): with "
                                      "different permutations the shards overlap and some items are never read."),
        Mistake(shard_without_padding, "Pad the permutation with its own first items until its length divides by "
                                       "world_size: ranks with fewer batches leave the others waiting in all-reduce."),
        Mistake(shard_always_drops_the_tail, "Drop the last items only when drop_last=True; otherwise pad, so every "
                                             "item is read in each epoch."),
        Mistake(shard_ignoring_epoch, "Seed the permutation with seed + epoch: with seed alone every epoch reads the "
                                      "items in the same order."),
        Mistake(shard_seeding_the_global_generator, GLOBAL_RANDOM_HINT),  # caught by the side-effect contract
        Mistake(shard_in_blocks, "Take every world_size-th index starting at rank (indices[rank::world_size]), as "
                                 "DistributedSampler does; contiguous blocks are a different sharding, so ranks "
                                 "mixing yours and PyTorch's would overlap."),
    )))


# --- 05.simulate_ring_all_reduce ---


def ring_naive(tensors):
    total = sum(t.clone() for t in tensors)
    size = tensors[0].numel()
    return [total.clone() for _ in tensors], [(len(tensors) - 1) * size] + [size] * (len(tensors) - 1)


def ring_reduce_scatter_only(tensors):
    n = len(tensors)
    chunks = [list(torch.tensor_split(t.reshape(-1).clone(), n)) for t in tensors]
    sent = [0] * n
    for step in range(n - 1):
        messages = [((r - step) % n, chunks[r][(r - step) % n].clone()) for r in range(n)]
        for r in range(n):
            sent[r] += messages[r][1].numel()
        for r in range(n):
            index, payload = messages[(r - 1) % n]
            chunks[r][index] = chunks[r][index] + payload
    return [torch.cat(c).reshape(t.shape) for c, t in zip(chunks, tensors)], sent


def ring_mean(tensors):
    results, sent = distributed.simulate_ring_all_reduce(tensors)
    return [r / len(tensors) for r in results], sent


def ring_gathers_from_the_wrong_chunk(tensors):
    n = len(tensors)
    chunks = [list(torch.tensor_split(t.reshape(-1).clone(), n)) for t in tensors]
    sent = [0] * n
    for phase in ("reduce-scatter", "all-gather"):
        for step in range(n - 1):
            messages = [((r - step) % n, chunks[r][(r - step) % n].clone()) for r in range(n)]
            for r in range(n):
                sent[r] += messages[r][1].numel()
            for r in range(n):
                index, payload = messages[(r - 1) % n]
                chunks[r][index] = chunks[r][index] + payload if phase == "reduce-scatter" else payload
    return [torch.cat(c).reshape(t.shape) for c, t in zip(chunks, tensors)], sent


def _ring_cases() -> list[Case]:
    cases = [Case(([torch.tensor([1.0, 2.0]), torch.tensor([10.0, 20.0])],), "2 ranks, [1, 2] and [10, 20]", size=0),
             Case(([torch.tensor([1.0, 2.0, 3.0]), torch.tensor([10.0, 20.0, 30.0]), torch.tensor([-100.0, 0.0, 100.0])],),
                  "3 ranks, [1, 2, 3], [10, 20, 30] and [-100, 0, 100]", size=1),
             Case(([torch.tensor([5.0])],), "1 rank (nothing to send)", size=2),
             Case(([torch.arange(7.0) * (r + 1) for r in range(4)],), "4 ranks, 7 values each (chunks of 2, 2, 2, 1)",
                  size=3)]
    g = torch.Generator().manual_seed(51)
    for n, shape in ((3, (2, 5)), (5, (3,)), (6, (40,))):
        cases.append(Case(([torch.randn(shape, generator=g) for _ in range(n)],),
                          f"{n} ranks, random tensors of shape {shape}", atol=1e-5, size=10 + n * math.prod(shape)))
    return cases


register(Spec(
    "05.simulate_ring_all_reduce", distributed.simulate_ring_all_reduce, _ring_cases,
    hint="Cut each tensor into len(tensors) chunks with torch.tensor_split; n - 1 reduce-scatter steps where rank r "
         "sends chunk (r - step) % n to rank r + 1, which adds it; then n - 1 all-gather steps sending chunk "
         "(r + 1 - step) % n, which the receiver copies; count the values each rank sends.",
    mistakes=(
        Mistake(ring_naive, "The sums are right but rank 0 sent (n - 1) whole tensors: a ring sends one chunk per "
                            "step, 2 (n - 1) chunks of size/n per rank, so no link carries more than twice the tensor."),
        Mistake(ring_reduce_scatter_only, "After the reduce-scatter each rank holds only one finished chunk "
                                          "((r + 1) % n); run the n - 1 all-gather steps that pass the finished "
                                          "chunks round the ring."),
        Mistake(ring_mean, "All-reduce sums (like dist.all_reduce's default op); DDP divides by the number of ranks "
                           "afterwards, as a separate step."),
        Mistake(ring_gathers_from_the_wrong_chunk, "In the all-gather, rank r starts by sending the chunk it has "
                                                   "finished, (r + 1) % n, then (r + 1 - step) % n; sending (r - step) "
                                                   "% n passes on partial sums."),
    )))


# --- 05.zero_memory_per_rank ---


def _zero(function, args):
    parameters, world_size, stage, weight_bytes, gradient_bytes, optimizer_bytes = args
    return function(parameters, world_size, stage, weight_bytes=weight_bytes, gradient_bytes=gradient_bytes,
                    optimizer_bytes=optimizer_bytes)


def _zero_with(shards, parameters, world_size, weight_bytes, gradient_bytes, optimizer_bytes):
    w = parameters * weight_bytes / (world_size if "weights" in shards else 1)
    g = parameters * gradient_bytes / (world_size if "gradients" in shards else 1)
    o = parameters * optimizer_bytes / (world_size if "optimizer" in shards else 1)
    return {"weights": w, "gradients": g, "optimizer": o, "total": w + g + o}


ORDER = ("optimizer", "gradients", "weights")


def zero_shards_everything_from_stage_1(parameters, world_size, stage, *, weight_bytes=4, gradient_bytes=4,
                                        optimizer_bytes=8):
    return _zero_with(ORDER if stage else (), parameters, world_size, weight_bytes, gradient_bytes, optimizer_bytes)


def zero_one_stage_ahead(parameters, world_size, stage, *, weight_bytes=4, gradient_bytes=4, optimizer_bytes=8):
    return _zero_with(ORDER[:stage + 1], parameters, world_size, weight_bytes, gradient_bytes, optimizer_bytes)


def zero_stage_2_shards_weights(parameters, world_size, stage, *, weight_bytes=4, gradient_bytes=4, optimizer_bytes=8):
    shards = {0: (), 1: ("optimizer",), 2: ("optimizer", "weights"), 3: ORDER}[stage]
    return _zero_with(shards, parameters, world_size, weight_bytes, gradient_bytes, optimizer_bytes)


def zero_fixed_bytes(parameters, world_size, stage, *, weight_bytes=4, gradient_bytes=4, optimizer_bytes=8):
    return _zero_with(ORDER[:stage], parameters, world_size, 4, 4, 8)


def zero_accepts_any_stage(parameters, world_size, stage, *, weight_bytes=4, gradient_bytes=4, optimizer_bytes=8):
    return _zero_with(ORDER[:max(stage, 0)], parameters, world_size, weight_bytes, gradient_bytes, optimizer_bytes)


def _zero_cases() -> list[Case]:
    cases = [Case((1000, 4, stage, 4, 4, 8), f"1,000 parameters, 4 ranks, stage {stage}, fp32 AdamW (4, 4, 8 bytes)",
                  size=stage) for stage in (0, 1, 2, 3)]
    cases.append(Case((7_000_000_000, 8, 2, 2, 2, 12), "a 7B model on 8 ranks, stage 2, mixed precision (2, 2, 12 bytes)",
                      size=4))
    cases.append(Case((5, 1, 3, 4, 4, 8), "5 parameters on 1 rank, stage 3 (nothing to shard)", size=5))
    rng = np.random.default_rng(52)
    for _ in range(3):
        cases.append(Case((int(rng.integers(1, 10**9)), int(rng.integers(1, 1025)), int(rng.integers(0, 4)), 2, 4, 12),
                          "a random size, rank count and stage (2, 4, 12 bytes)", atol=1e-3, size=10))
    refuse = "The question promises a ValueError for a stage outside 0-3: check `stage in (0, 1, 2, 3)` first."
    cases += [Case((1000, 4, stage, 4, 4, 8), f"stage {stage} (no such ZeRO stage)", raises=ValueError, hint=refuse)
              for stage in (4, -1)]
    return cases


register(Spec(
    "05.zero_memory_per_rank", distributed.zero_memory_per_rank, _zero_cases, invoke=_zero,
    hint="Return {'weights', 'gradients', 'optimizer', 'total'} in bytes per rank: parameters times each byte count, "
         "divided by world_size for the optimizer state from stage 1, the gradients from stage 2, the weights at stage 3.",
    mistakes=(
        Mistake(zero_shards_everything_from_stage_1, "Stage 1 shards only the optimizer state; the gradients join at "
                                                     "stage 2 and the weights at stage 3."),
        Mistake(zero_one_stage_ahead, "Stage 0 is plain data parallel: nothing is sharded. Stage 1 shards the "
                                      "optimizer state, stage 2 adds the gradients, stage 3 the weights."),
        Mistake(zero_stage_2_shards_weights, "Stage 2 shards the gradients (reduce-scatter gives each rank only its "
                                             "shard's sum); the weights stay whole until stage 3."),
        Mistake(zero_accepts_any_stage, "The question promises a ValueError for a stage outside 0-3: check "
                                        "`stage in (0, 1, 2, 3)` first."),
        Mistake(zero_fixed_bytes, "Use the byte counts passed in (weight_bytes, gradient_bytes, optimizer_bytes): "
                                  "mixed precision keeps 2, 2 and 12."),
    )))


# --- 05.combine_gradients ---


def gradients_summed(gradients, batch_sizes):
    return {key: sum(g[key] for g in gradients) for key in gradients[0]}


def gradients_plain_mean(gradients, batch_sizes):
    return {key: sum(g[key] for g in gradients) / len(gradients) for key in gradients[0]}


def gradients_weighted_not_normalised(gradients, batch_sizes):
    return {key: sum(g[key] * b for g, b in zip(gradients, batch_sizes)) for key in gradients[0]}


def _gradient_cases() -> list[Case]:
    cases = [Case(([{"w": torch.tensor([1.0])}, {"w": torch.tensor([4.0])}], [1, 2]),
                  "two ranks with batches of 1 and 2, gradients w=[1] and w=[4] (combined: [3])", size=0),
             Case(([{"w": torch.tensor([2.0, -2.0])}, {"w": torch.tensor([0.0, 6.0])}], [4, 4]),
                  "two ranks with batches of 4, w=[2, -2] and [0, 6]", size=1)]
    g = torch.Generator().manual_seed(53)
    for n, sizes in ((3, [8, 8, 3]), (5, [1, 7, 7, 2, 30])):
        grads = [{"layer.weight": torch.randn(3, 2, generator=g), "layer.bias": torch.randn(3, generator=g)} for _ in range(n)]
        cases.append(Case((grads, sizes), f"{n} ranks with batches {sizes} (the last batch of an epoch is smaller)",
                          atol=1e-6, size=10 + n))
    return cases


register(Spec(
    "05.combine_gradients", distributed.combine_gradients, _gradient_cases,
    hint="For every key: sum over ranks of gradient * (batch_size / total batch): each rank's gradient is a mean over "
         "its own examples.",
    mistakes=(
        Mistake(gradients_summed, "Divide: the combined gradient is a mean over all examples, not the sum of the "
                                  "ranks' gradients (that multiplies the learning rate by the number of ranks)."),
        Mistake(gradients_plain_mean, "Weight each rank by its batch size: a plain mean is right only when every "
                                      "rank had the same batch, and the last batch of an epoch often is smaller."),
        Mistake(gradients_weighted_not_normalised, "Divide the size-weighted sum by the total number of examples: "
                                                   "the weights batch_size / total must add up to 1."),
    )))
