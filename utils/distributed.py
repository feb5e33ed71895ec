"""Training one model in several processes with ``torch.distributed`` (gloo, on this machine's CPU).

``launch(worker, world_size, *args, **kwargs)`` starts ``world_size`` processes, joins them into one process
group and runs ``worker(rank, world_size, *args, **kwargs)`` in each; it returns every rank's return value,
in rank order. Worker functions must be importable (defined in a module, not in a notebook cell), because each
process is started by a fork server that imports them by name. Return values travel back through a queue, so
keep them picklable and small (NumPy arrays, numbers, dicts of them).

The rest is lesson 05 built from scratch: the ring all-reduce (:func:`ring_all_reduce`), sharding a dataset
the way ``DistributedSampler`` does (:func:`shard_indices`), ZeRO's memory per rank (:func:`zero_memory_per_rank`)
and its stage 1 (:class:`ShardedAdamW`), a Megatron-style tensor-parallel MLP, the pipeline bubble, and the
importable workers the lesson launches (:func:`train_worker` trains ``utils.lm``'s model data-parallel with
each strategy).
"""

from __future__ import annotations

import argparse
import math
import os
import socket
import time
import traceback
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from utils import lm

STRATEGIES = ("manual", "ring", "ddp", "zero1", "zero_torch", "fsdp")
ZERO_STAGES = (0, 1, 2, 3)


# ----------------------------------------------------------------------------------------------- launching
def free_port() -> int:
    """A TCP port nobody listens on now, for the process group's rendezvous."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _entry(worker: Callable, rank: int, world_size: int, port: int, queue, args: tuple, kwargs: dict) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)  # one core per process: a worker may raise it (train_worker's ``threads``)
    try:
        dist.init_process_group("gloo", rank=rank, world_size=world_size, timeout=timedelta(seconds=60))
    except BaseException:
        queue.put((rank, None, (time.time(), traceback.format_exc())))
        return
    try:
        queue.put((rank, worker(rank, world_size, *args, **kwargs), None))
    except BaseException:
        # the time it failed: a rank that fails closes its connections, so the others fail next ("Connection reset
        # by peer"); the earliest failure is the cause
        queue.put((rank, None, (time.time(), traceback.format_exc())))
    finally:
        dist.destroy_process_group()


def _context():
    """A fork server that has imported torch once: later processes start in a fraction of a second.

    ``torch._dynamo`` is in the list because an optimizer's first ``step()`` imports it (a second's work).
    """
    import multiprocessing

    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["torch", "torch._dynamo", "torch.distributed", "utils.lm", "utils.distributed"])
    return context


def launch(worker: Callable, world_size: int, *args, timeout: float = 600.0, **kwargs) -> list[Any]:
    """Run ``worker(rank, world_size, *args, **kwargs)`` in ``world_size`` processes joined by gloo; their results by rank.

    When a rank raises, the others are stopped at once (they would wait for it in the next collective) and a
    ``RuntimeError`` names the failing rank with its traceback. No process outlives the call: on success,
    on error, on a timeout and on an interrupt, every child is joined or killed before ``launch`` returns.
    """
    import queue as queues

    if not isinstance(world_size, int) or isinstance(world_size, bool) or world_size < 1:
        raise ValueError(f"world_size must be a positive integer, got {world_size!r}")
    if getattr(worker, "__module__", "__main__") == "__main__" or "<locals>" in getattr(worker, "__qualname__", ""):
        raise ValueError(f"{getattr(worker, '__name__', worker)!r} must be defined at the top level of an importable "
                         f"module (a new process imports it by name); move it from the notebook into a .py file")
    context = _context()
    results_queue, port = context.Queue(), free_port()
    processes = [context.Process(target=_entry, args=(worker, rank, world_size, port, results_queue, args, kwargs),
                                 daemon=True) for rank in range(world_size)]
    results: dict[int, Any] = {}
    deadline = time.monotonic() + timeout
    try:
        for process in processes:
            process.start()
        while len(results) < world_size:
            try:
                rank, value, error = results_queue.get(timeout=0.2)
            except queues.Empty:
                dead = [r for r, p in enumerate(processes) if p.exitcode not in (None, 0) and r not in results]
                if dead:
                    raise RuntimeError(f"worker rank {dead[0]} died with exit code {processes[dead[0]].exitcode} "
                                       "before returning (killed, out of memory, or a crash in native code)") from None
                if time.monotonic() > deadline:
                    missing = sorted(set(range(world_size)) - set(results))
                    raise RuntimeError(f"ranks {missing} returned nothing within {timeout} s; raise timeout= if "
                                       "the work is long, or look for a rank that skips a collective") from None
                continue
            if error:
                errors = {rank: error}
                settle = time.monotonic() + 1.0          # collect the failures that follow from this one
                while time.monotonic() < settle and len(errors) + len(results) < world_size:
                    try:
                        other, _, other_error = results_queue.get(timeout=0.1)
                    except queues.Empty:
                        continue
                    if other_error:
                        errors[other] = other_error
                first = min(errors, key=lambda r: errors[r][0])
                after = sorted(set(errors) - {first})
                raise RuntimeError(f"worker rank {first} of {world_size} failed"
                                   + (f" (then ranks {after}, waiting for it)" if after else "")
                                   + f":\n{errors[first][1]}")
            results[rank] = value
    finally:
        for process in processes:
            if process.pid is not None and process.exitcode is None and len(results) < world_size:
                process.kill()  # a failed run: the others would wait for the failed rank until their timeout
        for process in processes:
            if process.pid is not None:
                process.join(10)
                if process.is_alive():
                    process.kill()
                    process.join()
    return [results[rank] for rank in range(world_size)]


# -------------------------------------------------------------------------------------------- collectives
def collectives_worker(rank: int, world_size: int) -> dict[str, list]:
    """The four collectives on small tensors: what each rank holds after each (for lesson 05's table)."""
    out = {}
    t = torch.tensor([float(rank + 1)] * 2)
    dist.all_reduce(t)                                   # every rank: the sum
    out["all_reduce"] = t.tolist()
    t = torch.tensor([float(rank + 1)] * 2)
    dist.broadcast(t, src=0)                             # every rank: rank 0's tensor
    out["broadcast"] = t.tolist()
    gathered = torch.empty(world_size)
    dist.all_gather_single(gathered, torch.tensor([float(rank + 1)]))   # every rank: everyone's, in rank order
    out["all_gather"] = gathered.tolist()
    mine = torch.empty(1)
    dist.reduce_scatter_single(mine, torch.arange(world_size, dtype=torch.float32) * (rank + 1))
    out["reduce_scatter"] = mine.tolist()                # rank r: the sum of everyone's element r
    return out


def busy_worker(rank: int, world_size: int, seconds: float) -> float:
    """Compute (a busy loop) for ``seconds`` of this process's CPU time; the wall-clock seconds that took.

    A probe for free cores: N ranks that each get a core of their own finish in about ``seconds``; ranks that
    share cores with each other or with other programs take longer.
    """
    if seconds < 0:
        raise ValueError(f"seconds must be >= 0, got {seconds}")
    dist.barrier()
    started, until = time.perf_counter(), time.process_time() + seconds
    while time.process_time() < until:
        pass
    return time.perf_counter() - started


def ring_all_reduce(tensor: torch.Tensor) -> int:
    """Sum ``tensor`` over all ranks, in place, with a ring: reduce-scatter, then all-gather; the bytes this rank sent.

    The tensor is cut into ``world_size`` chunks (sizes may differ by one element). In step ``s`` of the
    reduce-scatter, rank ``r`` sends chunk ``(r - s) % n`` to its right neighbour and adds the chunk it receives
    from its left one; after ``n - 1`` steps it holds the full sum of chunk ``(r + 1) % n``. The all-gather then
    passes the finished chunks round the ring in ``n - 1`` more steps. Each rank sends ``2 (n - 1) / n`` times the
    tensor's size, whatever the number of ranks. Call it inside an initialised process group, as you would
    ``dist.all_reduce(tensor)``.
    """
    if not dist.is_initialized():
        raise RuntimeError("ring_all_reduce needs a process group: call it inside a worker started by launch()")
    if not isinstance(tensor, torch.Tensor) or not tensor.is_contiguous():
        raise ValueError("ring_all_reduce reduces a contiguous tensor in place; pass tensor.contiguous() and keep it")
    n, rank = dist.get_world_size(), dist.get_rank()
    if n == 1:
        return 0
    chunks = torch.tensor_split(tensor.view(-1), n)           # views: writing a chunk writes the tensor
    right, left = (rank + 1) % n, (rank - 1) % n
    sent = 0

    def exchange(send_index: int, receive_index: int, reduce: bool) -> None:
        nonlocal sent
        outgoing, incoming = chunks[send_index], chunks[receive_index]
        request = dist.isend(outgoing, right) if outgoing.numel() else None   # not waited for yet: no deadlock
        buffer = torch.empty_like(incoming)
        if incoming.numel():
            dist.recv(buffer, left)
        if request is not None:
            request.wait()
            sent += outgoing.numel() * outgoing.element_size()
        if reduce:
            incoming += buffer
        else:
            incoming.copy_(buffer)

    for step in range(n - 1):                                  # reduce-scatter
        exchange((rank - step) % n, (rank - step - 1) % n, reduce=True)
    for step in range(n - 1):                                  # all-gather
        exchange((rank + 1 - step) % n, (rank - step) % n, reduce=False)
    return sent


def simulate_ring_all_reduce(tensors: list[torch.Tensor]) -> tuple[list[torch.Tensor], list[int]]:
    """The ring all-reduce of :func:`ring_all_reduce`, played out in one process: each rank's result and values sent.

    ``tensors[r]`` is rank r's tensor (all of one shape); the inputs are not modified. Same chunks (``tensor_split``
    into ``len(tensors)`` pieces), same schedule, same order of additions as the real one.

    >>> results, sent = simulate_ring_all_reduce([torch.tensor([1., 2., 3.]), torch.tensor([10., 20., 30.])])
    >>> [r.tolist() for r in results], sent
    ([[11.0, 22.0, 33.0], [11.0, 22.0, 33.0]], [3, 3])
    """
    if not isinstance(tensors, (list, tuple)) or not tensors or not all(isinstance(t, torch.Tensor) for t in tensors):
        raise ValueError("pass a non-empty list of tensors, one per rank")
    if len({tuple(t.shape) for t in tensors}) > 1:
        raise ValueError(f"every rank's tensor must have the same shape, got {[tuple(t.shape) for t in tensors]}")
    n = len(tensors)
    chunks = [list(torch.tensor_split(t.reshape(-1).clone(), n)) for t in tensors]
    sent = [0] * n
    for phase in ("reduce-scatter", "all-gather"):
        for step in range(n - 1):
            messages = []
            for rank in range(n):             # everyone sends at once: collect the messages, then deliver them
                index = (rank - step) % n if phase == "reduce-scatter" else (rank + 1 - step) % n
                messages.append((index, chunks[rank][index].clone()))
                sent[rank] += chunks[rank][index].numel()
            for rank in range(n):
                index, payload = messages[(rank - 1) % n]     # from the left neighbour
                if phase == "reduce-scatter":
                    chunks[rank][index] = chunks[rank][index] + payload
                else:
                    chunks[rank][index] = payload
    return [torch.cat(c).reshape(t.shape) for c, t in zip(chunks, tensors)], sent


def combine_gradients(gradients: list[dict[str, torch.Tensor]], batch_sizes: list[int]) -> dict[str, torch.Tensor]:
    """The gradient of the mean loss over all ranks' examples, from each rank's gradient of its own mean loss.

    Rank r's gradient is the mean over its ``batch_sizes[r]`` examples, so the combined one weights it by
    ``batch_sizes[r] / sum(batch_sizes)``; with equal batches that is the plain mean DDP computes (sum, divide by N).

    >>> combine_gradients([{"w": torch.tensor([1.0])}, {"w": torch.tensor([4.0])}], [1, 2])["w"].tolist()
    [3.0]
    """
    if not gradients or len(gradients) != len(batch_sizes):
        raise ValueError(f"need one gradient dict per rank and one batch size per rank, got {len(gradients)} and "
                         f"{len(batch_sizes)}")
    if any(not isinstance(b, (int, np.integer)) or b < 1 for b in batch_sizes):
        raise ValueError(f"batch sizes must be positive integers, got {batch_sizes}")
    total = sum(batch_sizes)
    return {key: sum(g[key] * (b / total) for g, b in zip(gradients, batch_sizes)) for key in gradients[0]}


def naive_all_reduce(tensor: torch.Tensor) -> int:
    """Sum ``tensor`` over all ranks in place by sending everything to rank 0 and back; the bytes this rank sent."""
    n, rank, size = dist.get_world_size(), dist.get_rank(), tensor.numel() * tensor.element_size()
    if rank == 0:
        buffer = torch.empty_like(tensor)
        for source in range(1, n):
            dist.recv(buffer, source)
            tensor += buffer
        for target in range(1, n):
            dist.send(tensor, target)
        return (n - 1) * size
    dist.send(tensor, 0)
    dist.recv(tensor, 0)
    return size


def all_reduce_worker(rank: int, world_size: int, size: int, seed: int = 0) -> dict[str, float]:
    """Ring and naive all-reduce against ``dist.all_reduce`` on a random tensor of ``size`` floats per rank."""
    data = torch.randn(size, generator=torch.Generator().manual_seed(seed + rank))
    expected = data.clone()
    dist.all_reduce(expected)
    ring, naive = data.clone(), data.clone()
    ring_bytes, naive_bytes = ring_all_reduce(ring), naive_all_reduce(naive)
    return {"ring_error": (ring - expected).abs().max().item(), "naive_error": (naive - expected).abs().max().item(),
            "ring_bytes": ring_bytes, "naive_bytes": naive_bytes, "tensor_bytes": data.numel() * data.element_size()}


# ---------------------------------------------------------------------------------------- data parallel
def shard_indices(n_items: int, rank: int, world_size: int, shuffle: bool = True, seed: int = 0,
                  epoch: int = 0, drop_last: bool = False) -> list[int]:
    """The dataset indices rank ``rank`` of ``world_size`` reads in one epoch: ``DistributedSampler``'s, exactly.

    Every rank draws the *same* permutation (same seed and epoch), pads it by repeating its start until its length
    divides by ``world_size`` (or drops the tail with ``drop_last``), and takes every ``world_size``-th index from
    position ``rank``. So the shards are disjoint, cover the data, and have equal lengths: ranks that read
    different numbers of batches would wait for each other forever in the gradient all-reduce.

    >>> [shard_indices(10, r, 4, shuffle=False) for r in range(4)]
    [[0, 4, 8], [1, 5, 9], [2, 6, 0], [3, 7, 1]]
    >>> [shard_indices(10, r, 4, shuffle=False, drop_last=True) for r in range(4)]
    [[0, 4], [1, 5], [2, 6], [3, 7]]
    """
    for name, value in (("n_items", n_items), ("world_size", world_size), ("rank", rank)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
            raise ValueError(f"{name} must be an integer, got {value!r}")
    if n_items < 1 or world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"need n_items >= 1, world_size >= 1 and 0 <= rank < world_size; got n_items={n_items}, "
                         f"rank={rank}, world_size={world_size}")
    if drop_last and n_items < world_size:
        raise ValueError(f"drop_last with {n_items} items and {world_size} ranks leaves every rank nothing")
    if shuffle:
        indices = torch.randperm(n_items, generator=torch.Generator().manual_seed(seed + epoch)).tolist()
    else:
        indices = list(range(n_items))
    if drop_last:
        total = n_items // world_size * world_size
        indices = indices[:total]
    else:
        total = math.ceil(n_items / world_size) * world_size
        indices = (indices * math.ceil(total / n_items))[:total]
    return indices[rank:total:world_size]


def rank_batches(n_items: int, rank: int, world_size: int, batch_per_rank: int, steps: int, seed: int = 0,
                 sampler: str = "distributed") -> list[list[int]]:
    """The index batches this rank trains on, step by step: one epoch's shard after another, cut into batches.

    ``sampler="plain"`` is the common mistake: every rank reads the whole dataset in the same order, as a
    single-process ``DataLoader(shuffle=True)`` with a shared seed would, so all ranks see the same batches.
    """
    if sampler not in ("distributed", "plain"):
        raise ValueError(f"sampler must be 'distributed' or 'plain', got {sampler!r}")
    batches, epoch = [], 0
    while len(batches) < steps:
        if sampler == "distributed":
            shard = shard_indices(n_items, rank, world_size, seed=seed, epoch=epoch)
        else:
            shard = shard_indices(n_items, 0, 1, seed=seed, epoch=epoch)
        if len(shard) < batch_per_rank:
            raise ValueError(f"a shard of {len(shard)} items cannot fill a batch of {batch_per_rank}")
        batches += [shard[i:i + batch_per_rank] for i in range(0, len(shard) - batch_per_rank + 1, batch_per_rank)]
        epoch += 1
    return batches[:steps]


def average_gradients(model: nn.Module) -> None:
    """Data parallel by hand: every gradient summed over ranks, then divided by their number (the mean)."""
    world_size = dist.get_world_size()
    for parameter in model.parameters():
        if parameter.grad is not None:
            dist.all_reduce(parameter.grad)
            parameter.grad /= world_size


class ShardedAdamW:
    """ZeRO stage 1 from scratch: each rank keeps all weights and gradients but AdamW's state for 1/N of them.

    The parameters are viewed as one flat vector, padded to a multiple of ``world_size`` and cut in equal shards.
    A step reduce-scatters the gradient (rank r receives the mean gradient of shard r only), runs AdamW on that
    shard, and all-gathers the updated shards into every rank's full weights. AdamW is element-wise, so this is
    the same update as unsharded AdamW on the mean gradient.

    Memory per rank: the full weights and gradients, AdamW's two moments for the shard, the shard itself (the
    tensor the inner AdamW updates: 4/N bytes per parameter more, the place where mixed precision keeps its fp32
    master weights), and during a step two transient full-size buffers (the flattened gradient, the gathered
    weights).
    """

    def __init__(self, parameters, lr: float = 1e-3, **adamw):
        self.parameters = [p for p in parameters]
        self.world_size, rank = dist.get_world_size(), dist.get_rank()
        self.total = sum(p.numel() for p in self.parameters)
        self.shard_size = math.ceil(self.total / self.world_size)
        flat = self._flat([p.detach() for p in self.parameters])
        self.shard = nn.Parameter(flat[rank * self.shard_size:(rank + 1) * self.shard_size].clone())
        self.optimizer = torch.optim.AdamW([self.shard], lr=lr, **adamw)

    def _flat(self, tensors) -> torch.Tensor:
        flat = torch.cat([t.reshape(-1) for t in tensors])
        return nn.functional.pad(flat, (0, self.shard_size * self.world_size - self.total))

    def zero_grad(self) -> None:
        for parameter in self.parameters:
            parameter.grad = None

    def step(self) -> None:
        self.shard.grad = torch.empty_like(self.shard)
        dist.reduce_scatter_single(self.shard.grad, self._flat([p.grad for p in self.parameters]))
        self.shard.grad /= self.world_size
        self.optimizer.step()
        full = torch.empty(self.shard_size * self.world_size)
        dist.all_gather_single(full, self.shard.detach())
        nn.utils.vector_to_parameters(full[:self.total], self.parameters)


def _local(tensor: torch.Tensor) -> torch.Tensor:
    """The part of a (possibly sharded DTensor) tensor that lives on this rank."""
    return tensor.to_local() if hasattr(tensor, "to_local") else tensor


def rank_bytes(model: nn.Module, optimizer) -> dict[str, int]:
    """Bytes this rank holds in weights, gradients and optimizer state, counted from the tensors' sizes (sharded
    ones locally), not measured from the allocator: transient buffers (a step's gathered weights, flattened
    gradients) are not included. Tensors the optimizer updates that are not the model's (ShardedAdamW's copy of
    its shard) count as optimizer state."""
    inner = getattr(optimizer, "optimizer", None) or getattr(optimizer, "optim", None) or optimizer
    state = [v for s in inner.state.values() for v in s.values() if isinstance(v, torch.Tensor) and v.dim() > 0]
    parameters = list(model.parameters())
    own = {id(p) for p in parameters}
    # tensors the optimizer steps that are not the model's (ShardedAdamW's fp32 copy of its shard): optimizer state
    copies = [p for group in inner.param_groups for p in group["params"] if id(p) not in own]
    return {"weights": sum(_local(p).nbytes for p in parameters),
            "gradients": sum(_local(p.grad).nbytes for p in parameters if p.grad is not None),
            "optimizer": sum(_local(v).nbytes for v in state) + sum(_local(p).nbytes for p in copies)}


def _flat_parameters(model: nn.Module) -> np.ndarray:
    """Every weight of the model as one float64 vector, sharded parameters gathered in full."""
    return torch.cat([(p.full_tensor() if hasattr(p, "full_tensor") else p).detach().reshape(-1)
                      for p in model.parameters()]).double().numpy()


def demo_data(context: int, n_windows: int) -> torch.Tensor:
    """The first ``n_windows`` windows of ``context`` bytes of the course corpus's training split (lesson 05's data)."""
    return lm.corpus_split()[0][: n_windows * context + 1].clone()


def train_single(data: torch.Tensor, *, config: lm.GPTConfig, steps: int, batch_size: int, lr: float = 1e-3,
                 seed: int = 0, world_size: int = 1, dtype: str = "float32", rank_order: str = "up") -> np.ndarray:
    """One process trains on the *combined* batches that ``world_size`` data-parallel ranks would read; its weights.

    ``batch_size`` is each rank's batch; step ``s`` trains on all ranks' batch ``s`` joined: the reference that
    data-parallel training must equal. ``rank_order="down"`` joins the ranks' batches in reverse order: the same
    examples summed in another order, a control for rounding.
    """
    dataset = lm.ByteWindows(data, config.context)
    per_rank = [rank_batches(len(dataset), r, world_size, batch_size, steps, seed) for r in range(world_size)]
    if rank_order == "down":
        per_rank = per_rank[::-1]
    previous = torch.get_default_dtype()
    torch.set_default_dtype(getattr(torch, dtype))
    try:
        return _train_joined(dataset, per_rank, config, steps, lr, seed)
    finally:
        torch.set_default_dtype(previous)


def _train_joined(dataset, per_rank, config, steps, lr, seed) -> np.ndarray:
    torch.manual_seed(seed)
    model = lm.GPT(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    for step in range(steps):
        x, y = _stack(dataset, [i for batches in per_rank for i in batches[step]])
        _, loss = model(x, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return _flat_parameters(model)


def _stack(dataset, indices):
    pairs = [dataset[i] for i in indices]
    return torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])


def wrap(model: nn.Module, strategy: str, lr: float = 1e-3) -> tuple[nn.Module, Any]:
    """The model to call and the optimizer to step for one of :data:`STRATEGIES`, inside a process group.

    These few lines are all a data-parallel or sharded job changes in a training loop: DDP wraps the model
    (its backward all-reduces gradients in buckets); ``ZeroRedundancyOptimizer`` wraps the optimizer (each rank
    keeps the state of its share of the tensors); FSDP2's ``fully_shard`` shards each block, then the root.
    ``manual`` and ``ring`` leave both alone: the loop averages the gradients itself.
    """
    net = model
    if strategy in ("ddp", "zero_torch"):  # ZeroRedundancyOptimizer shards the state but leaves averaging to DDP
        net = nn.parallel.DistributedDataParallel(model)
    elif strategy == "fsdp":
        from torch.distributed.fsdp import fully_shard

        for block in model.blocks:
            fully_shard(block)  # each block's weights gathered just before its use, freed after
        fully_shard(model)
    if strategy == "zero1":
        optimizer = ShardedAdamW(model.parameters(), lr=lr)
    elif strategy == "zero_torch":
        from torch.distributed.optim import ZeroRedundancyOptimizer

        optimizer = ZeroRedundancyOptimizer(model.parameters(), optimizer_class=torch.optim.AdamW, lr=lr)
    else:
        optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    return net, optimizer


def step_times_worker(rank: int, world_size: int, data: torch.Tensor, *, config: lm.GPTConfig, batch_size: int,
                      rounds: int, seed: int = 0, strategies: tuple[str, ...] = ("manual", "ring", "ddp")) -> dict:
    """Seconds per training step of several gradient-averaging strategies, measured interleaved in one launch.

    Each strategy trains its own copy of the model on the same batches; every round runs one step of each, in
    an order that reverses every round (A, B, C, C, B, A, ...), all ranks starting each step together (a
    barrier), so that load coming and going falls on every strategy alike. Round 0 is a warm-up, not returned.
    Returns ``{"seconds": {strategy: [per-step seconds]}, "all_reduce_calls_per_step": {strategy: count}}``: one
    call per parameter tensor by hand or by ring, one per gradient bucket under DDP (counted with a comm hook).
    """
    for strategy in strategies:
        if strategy not in ("manual", "ring", "ddp"):
            raise ValueError(f"step_times_worker compares 'manual', 'ring' and 'ddp', got {strategy!r}")
    dataset = lm.ByteWindows(data, config.context)
    batches = rank_batches(len(dataset), rank, world_size, batch_size, rounds + 1, seed)
    runs, ddp_calls = {}, [0]
    for strategy in strategies:
        torch.manual_seed(seed)
        model = lm.GPT(config)
        runs[strategy] = (model, *wrap(model, strategy))
        if strategy == "ddp":   # count the all-reduces DDP launches: one per bucket of gradients
            from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import allreduce_hook

            def counting_hook(state, bucket):
                ddp_calls[0] += 1
                return allreduce_hook(state, bucket)

            runs[strategy][1].register_comm_hook(None, counting_hook)
    times: dict[str, list[float]] = {strategy: [] for strategy in strategies}
    for r in range(rounds + 1):
        x, y = _stack(dataset, batches[r])
        for strategy in (strategies if r % 2 == 0 else strategies[::-1]):
            model, net, optimizer = runs[strategy]
            dist.barrier()
            started = time.perf_counter()
            _, loss = net(x, y)
            optimizer.zero_grad()
            loss.backward()
            if strategy == "manual":
                average_gradients(model)
            elif strategy == "ring":
                for parameter in model.parameters():
                    ring_all_reduce(parameter.grad)
                    parameter.grad /= world_size
            optimizer.step()
            if r > 0:
                times[strategy].append(time.perf_counter() - started)
    tensors = len(list(runs[strategies[0]][0].parameters()))
    calls = {"manual": tensors, "ring": tensors, "ddp": ddp_calls[0] / (rounds + 1)}
    return {"seconds": times, "all_reduce_calls_per_step": {strategy: calls[strategy] for strategy in strategies}}


def train_worker(rank: int, world_size: int, data: torch.Tensor, *, config: lm.GPTConfig, steps: int,
                 batch_size: int, lr: float = 1e-3, seed: int = 0, strategy: str = "ddp",
                 sampler: str = "distributed", threads: int = 1, checkpoint: str | None = None,
                 save_every: int = 0, crash_at: int | None = None, dtype: str = "float32") -> dict[str, Any]:
    """Train ``utils.lm.GPT`` data-parallel with one of :data:`STRATEGIES`; this rank's weights, bytes and time.

    Every rank builds the same model from ``seed`` and reads its own shard (:func:`rank_batches`) of windows of
    ``data``, ``batch_size`` per step. ``manual`` averages gradients with ``dist.all_reduce``, ``ring`` with
    :func:`ring_all_reduce`, ``ddp`` wraps the model in ``DistributedDataParallel``, ``zero1`` shards AdamW's
    state with :class:`ShardedAdamW`, ``zero_torch`` with PyTorch's ``ZeroRedundancyOptimizer``, ``fsdp`` shards
    weights, gradients and state with FSDP2's ``fully_shard``. With ``checkpoint`` (a file path) rank 0 saves
    weights, optimizer and step every ``save_every`` steps and a restarted run resumes from it; ``crash_at``
    makes the last rank raise at that step, to show a failure and the restart. ``dtype="float64"`` trains in
    double precision, to tell rounding from mistakes.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    torch.set_num_threads(threads)
    torch.set_default_dtype(getattr(torch, dtype))   # this process only: each worker is a fresh process
    dataset = lm.ByteWindows(data, config.context)
    batches = rank_batches(len(dataset), rank, world_size, batch_size, steps, seed, sampler)
    torch.manual_seed(seed)
    model = lm.GPT(config)
    net, optimizer = wrap(model, strategy, lr)
    start = 0
    if checkpoint and Path(checkpoint).exists():
        saved = torch.load(checkpoint, weights_only=True)
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        start = saved["step"]
    memory, began, losses = {}, None, []
    for step in range(start, steps):
        if step == start + 1:
            began = time.perf_counter()           # time from the second step: the first pays one-off set-up
        x, y = _stack(dataset, batches[step])
        _, loss = net(x, y)
        optimizer.zero_grad()
        loss.backward()
        if strategy == "manual":
            average_gradients(model)
        elif strategy == "ring":
            for parameter in model.parameters():
                ring_all_reduce(parameter.grad)
                parameter.grad /= world_size
        optimizer.step()
        losses.append(loss.item())
        if step == start:
            memory = rank_bytes(model, optimizer)
        if crash_at is not None and step == crash_at and rank == world_size - 1:
            raise RuntimeError(f"simulated crash of rank {rank} at step {step} (a lost machine, say)")
        if checkpoint and save_every and (step + 1) % save_every == 0:
            if rank == 0:
                torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step + 1},
                           checkpoint + ".tmp")
                os.replace(checkpoint + ".tmp", checkpoint)   # a crash mid-save never leaves half a file
            dist.barrier()
    seconds = time.perf_counter() - began if began is not None else float("nan")
    return {"params": _flat_parameters(model), "bytes": memory, "seconds": seconds, "losses": losses,
            "steps_timed": max(steps - start - 1, 0)}


# --------------------------------------------------------------------------------------------- sharding
def zero_memory_per_rank(parameters: int, world_size: int, stage: int, *, weight_bytes: int = 4,
                         gradient_bytes: int = 4, optimizer_bytes: int = 8) -> dict[str, float]:
    """Bytes of model state per rank under ZeRO stage 0-3 (Rajbhandari et al. 2020), activations not included.

    Stage 0 is plain data parallel: every rank holds everything (16 bytes per parameter with fp32 AdamW, lesson 04).
    Stage 1 shards the optimizer state over the ranks, stage 2 also the gradients, stage 3 also the weights
    (FSDP's full sharding).

    >>> zero_memory_per_rank(1000, 4, 0)["total"], zero_memory_per_rank(1000, 4, 1)["total"]
    (16000.0, 10000.0)
    >>> zero_memory_per_rank(1000, 4, 3)
    {'weights': 1000.0, 'gradients': 1000.0, 'optimizer': 2000.0, 'total': 4000.0}
    """
    if stage not in ZERO_STAGES or isinstance(stage, bool):
        raise ValueError(f"stage must be one of {ZERO_STAGES}, got {stage!r}")
    if not isinstance(world_size, (int, np.integer)) or world_size < 1:
        raise ValueError(f"world_size must be a positive integer, got {world_size!r}")
    if parameters < 0:
        raise ValueError(f"parameters must be >= 0, got {parameters}")
    weights = parameters * weight_bytes / (world_size if stage >= 3 else 1)
    gradients = parameters * gradient_bytes / (world_size if stage >= 2 else 1)
    optimizer = parameters * optimizer_bytes / (world_size if stage >= 1 else 1)
    return {"weights": weights, "gradients": gradients, "optimizer": optimizer,
            "total": weights + gradients + optimizer}


# ---------------------------------------------------------------------------------------- model parallel
def tensor_parallel_mlp(x: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Megatron's MLP split over the ranks: ``gelu(x @ a) @ b`` with ``a`` cut by columns and ``b`` by rows.

    Rank r computes ``gelu(x @ a[:, cols_r]) @ b[cols_r, :]``, a partial sum of the output, with no communication
    (GeLU acts element-wise, so each rank's slice of the hidden layer is complete); one all-reduce adds the parts.
    """
    n, rank = dist.get_world_size(), dist.get_rank()
    columns = torch.tensor_split(torch.arange(a.shape[1]), n)[rank]
    partial = nn.functional.gelu(x @ a[:, columns]) @ b[columns, :]
    dist.all_reduce(partial)
    return partial


def tensor_parallel_worker(rank: int, world_size: int, x: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> dict:
    """:func:`tensor_parallel_mlp` on one rank: the output and the share of the weights this rank stored."""
    out = tensor_parallel_mlp(x, a, b)
    columns = torch.tensor_split(torch.arange(a.shape[1]), world_size)[rank]
    return {"output": out.numpy(), "weight_share": 2 * len(columns) * a.shape[0] / (a.numel() + b.numel())}


def pipeline_bubble(stages: int, micro_batches: int) -> float:
    """Idle share of a GPipe schedule: ``(p - 1) / (m + p - 1)`` for ``p`` stages and ``m`` micro-batches.

    >>> pipeline_bubble(4, 1), pipeline_bubble(4, 16)
    (0.75, 0.15789473684210525)
    """
    if stages < 1 or micro_batches < 1:
        raise ValueError(f"stages and micro_batches must be >= 1, got {stages} and {micro_batches}")
    return (stages - 1) / (micro_batches + stages - 1)


def gpipe_schedule(stages: int, micro_batches: int) -> list[tuple[int, str, int, int]]:
    """(stage, "F" or "B", micro-batch, time slot) for GPipe: all forwards, then all backwards, one slot each.

    Stage s runs micro-batch m's forward at slot ``s + m``; backwards run in reverse stage order once the last
    forward is done.
    """
    forwards = [(s, "F", m, s + m) for s in range(stages) for m in range(micro_batches)]
    start = micro_batches + stages - 1
    backwards = [(s, "B", m, start + (stages - 1 - s) + m) for s in range(stages) for m in range(micro_batches)]
    return forwards + backwards


def main(argv: list[str] | None = None) -> int:
    """Run :func:`train_worker` under ``torchrun``, which starts the processes and sets RANK, WORLD_SIZE and the address.

        torchrun --standalone --nproc-per-node 2 -m utils.distributed --steps 10 --out weights.npy

    Rank 0 writes the trained weights to ``--out``. On several machines only torchrun's flags change (lesson 05).
    """
    parser = argparse.ArgumentParser(prog="torchrun ... -m utils.distributed", description=main.__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=8, help="windows per rank per step")
    parser.add_argument("--windows", type=int, default=128, help="training windows in the dataset")
    parser.add_argument("--context", type=int, default=32)
    parser.add_argument("--d-model", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--strategy", choices=STRATEGIES, default="ddp")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True, help="where rank 0 saves the weights (.npy)")
    args = parser.parse_args(argv)
    dist.init_process_group("gloo")
    try:
        rank, world_size = dist.get_rank(), dist.get_world_size()
        config = lm.GPTConfig(context=args.context, d_model=args.d_model, n_heads=4, n_layers=args.layers)
        result = train_worker(rank, world_size, demo_data(args.context, args.windows), config=config, steps=args.steps,
                              batch_size=args.batch_size, seed=args.seed, strategy=args.strategy)
        if rank == 0:
            np.save(args.out, result["params"])
            print(f"{world_size} ranks trained {args.steps} steps; weights in {args.out}")
    finally:
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
