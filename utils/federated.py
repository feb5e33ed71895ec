"""Federated learning from scratch: FedAvg and FedSGD, non-IID client splits, FedProx, secure aggregation.

The protocol (McMahan et al. 2017): the server sends the global weights to the clients of a round,
each client trains on its own data for a few epochs, and the server replaces the global weights by
the average of what comes back, weighted by each client's number of examples. No example leaves
its client; the weights (or updates) do, which is why secure aggregation and differential privacy
come next (lesson 12).

Two training paths that give the same numbers: :func:`local_update` trains one client's
``nn.Module`` in a readable loop (what a client runs, and what the real-process demo runs), and
:func:`train_clients` trains every client of a round at once on stacked weights (one batched
matrix product per step instead of one small one per client), which the lesson's sweeps need to
fit in a minute. Both take their batch order from ``np.random.default_rng([seed, round, client])``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from utils.serving import mlp_from_sizes

# --- the server's side: weighted averaging ---


def fedavg(states: list[dict[str, torch.Tensor]], sizes) -> dict[str, torch.Tensor]:
    """The average of client state dicts, weighted by each client's number of examples.

    Floating-point tensors are averaged in float64 and returned in their own dtype; integer tensors
    (a BatchNorm's ``num_batches_tracked``) are averaged and rounded to the nearest integer, keeping
    their dtype, so the result loads into the same model.

    >>> a, b = {"w": torch.tensor([0.0, 2.0])}, {"w": torch.tensor([4.0, 6.0])}
    >>> fedavg([a, b], [1, 3])["w"]
    tensor([3., 5.])
    """
    if not isinstance(states, (list, tuple)) or not states:
        raise ValueError("states must be a non-empty list of state dicts, one per client")
    sizes = [float(s) for s in sizes]
    if len(sizes) != len(states):
        raise ValueError(f"got {len(states)} states but {len(sizes)} sizes: give one size per client")
    if not all(s > 0 and math.isfinite(s) for s in sizes):
        raise ValueError(f"sizes must be positive numbers of examples, got {sizes}")
    keys = list(states[0])
    for i, state in enumerate(states[1:], start=1):
        if list(state) != keys:
            raise ValueError(f"client {i} has keys {sorted(state)}, client 0 has {sorted(keys)}: "
                             f"every client must send the same model")
        for key in keys:
            if state[key].shape != states[0][key].shape:
                raise ValueError(f"client {i}'s {key!r} has shape {tuple(state[key].shape)}, client 0's "
                                 f"{tuple(states[0][key].shape)}: every client must send the same model")
    total = sum(sizes)
    averaged = {}
    for key in keys:
        mean = sum(state[key].detach().double() * (size / total) for state, size in zip(states, sizes))
        dtype = states[0][key].dtype
        averaged[key] = mean.to(dtype) if dtype.is_floating_point else torch.round(mean).to(dtype)
    return averaged


# --- splitting one dataset among clients ---


def dirichlet_split(labels, n_clients: int, alpha: float, seed: int) -> list[np.ndarray]:
    """Label-skewed client shards: each class is divided among the clients in Dirichlet(alpha) shares.

    Small ``alpha`` gives each client a few classes; large ``alpha`` approaches an even (IID) split.
    Recipe (so the lab can reproduce it exactly): ``rng = np.random.default_rng(seed)``; for each
    class in sorted order, shuffle its indices with ``rng.permutation``, draw shares
    ``rng.dirichlet([alpha] * n_clients)`` and cut at ``(np.cumsum(shares)[:-1] * n).astype(int)``.
    A draw that leaves a client with no examples is thrown away and redrawn with the same generator.
    Returns one sorted index array per client; together they hold every index exactly once.

    >>> labels = np.repeat([0, 1, 2], 20)
    >>> [len(part) for part in dirichlet_split(labels, 3, alpha=100.0, seed=0)]
    [20, 19, 21]
    >>> [np.bincount(labels[part], minlength=3).tolist() for part in dirichlet_split(labels, 3, alpha=0.1, seed=0)]
    [[0, 10, 19], [0, 4, 0], [20, 6, 1]]
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) == 0:
        raise ValueError(f"labels must be a non-empty 1-D array, got shape {labels.shape}")
    if not isinstance(n_clients, (int, np.integer)) or not 1 <= n_clients <= len(labels):
        raise ValueError(f"n_clients must be an integer from 1 to the number of examples ({len(labels)}), "
                         f"got {n_clients!r}")
    if not alpha > 0:
        raise ValueError(f"alpha must be positive (small: skewed, large: even), got {alpha}")
    rng = np.random.default_rng(seed)
    for _ in range(1000):
        parts: list[list[np.ndarray]] = [[] for _ in range(n_clients)]
        for label in np.unique(labels):
            members = rng.permutation(np.flatnonzero(labels == label))
            shares = rng.dirichlet([alpha] * n_clients)
            cuts = (np.cumsum(shares)[:-1] * len(members)).astype(int)
            for client, chunk in enumerate(np.split(members, cuts)):
                parts[client].append(chunk)
        split = [np.sort(np.concatenate(chunks)) for chunks in parts]
        if min(len(part) for part in split) > 0:
            return split
    raise ValueError(f"1,000 draws with alpha={alpha} all left a client empty: use fewer clients or a larger alpha")


def shard_split(labels, n_clients: int, shards_per_client: int, seed: int) -> list[np.ndarray]:
    """McMahan et al.'s pathological non-IID split: sort by label, cut into equal shards, deal them out.

    With two shards per client on digits, most clients see only two classes.
    """
    labels = np.asarray(labels)
    n_shards = n_clients * shards_per_client
    if n_shards > len(labels):
        raise ValueError(f"{n_shards} shards need at least as many examples, got {len(labels)}")
    rng = np.random.default_rng(seed)
    order = np.argsort(labels, kind="stable")
    shards = np.array_split(order, n_shards)
    dealt = rng.permutation(n_shards).reshape(n_clients, shards_per_client)
    return [np.sort(np.concatenate([shards[s] for s in row])) for row in dealt]


# --- a client's side: local training ---


def init_state(sizes: list[int], seed: int) -> dict[str, torch.Tensor]:
    """The initial weights of ``mlp_from_sizes(sizes)`` under a given seed (the same for every client)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return {k: v.clone() for k, v in mlp_from_sizes(sizes).state_dict().items()}


def batch_order(n: int, epochs: int, batch_size: int | None, rng: np.random.Generator) -> list[np.ndarray]:
    """The mini-batches of ``epochs`` passes over ``n`` examples, reshuffled each epoch (None: full batch)."""
    size = n if batch_size is None else batch_size
    batches = []
    for _ in range(epochs):
        order = rng.permutation(n)
        batches.extend(order[start:start + size] for start in range(0, n, size))
    return batches


def proximal_term(params, global_params, mu: float) -> torch.Tensor:
    """FedProx's penalty (mu / 2) * ||w - w_global||^2, summed over every parameter tensor.

    ``global_params`` are the weights the client received this round (held fixed, no gradient).

    >>> proximal_term([torch.tensor([3.0, 4.0])], [torch.zeros(2)], mu=0.1)
    tensor(1.2500)
    """
    params, global_params = list(params), list(global_params)
    if len(params) != len(global_params):
        raise ValueError(f"got {len(params)} parameter tensors and {len(global_params)} global ones")
    if mu < 0:
        raise ValueError(f"mu must be non-negative, got {mu}")
    return mu / 2 * sum(((p - g.detach()) ** 2).sum() for p, g in zip(params, global_params))


def local_update(model: nn.Module, X, y, *, epochs: int, batch_size: int | None, lr: float,
                 rng: np.random.Generator, mu: float = 0.0) -> nn.Module:
    """One client's round: plain SGD on its own examples (plus FedProx's pull to the received weights when mu > 0)."""
    X, y = torch.as_tensor(X, dtype=torch.float32), torch.as_tensor(y, dtype=torch.long)
    received = [p.detach().clone() for p in model.parameters()]
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    for batch in batch_order(len(X), epochs, batch_size, rng):
        loss = F.cross_entropy(model(X[batch]), y[batch])
        if mu > 0:
            loss = loss + proximal_term(model.parameters(), received, mu)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model


def _forward(params: list[torch.Tensor], X: torch.Tensor) -> torch.Tensor:
    """An MLP on stacked weights: params alternate weight (C, out, in) and bias (C, out); X is (C, B, in)."""
    h = X
    for i in range(0, len(params), 2):
        h = torch.baddbmm(params[i + 1].unsqueeze(1), h, params[i].transpose(1, 2))
        if i + 2 < len(params):
            h = torch.relu(h)
    return h


def _mean_loss_gradients(params: list[torch.Tensor], X: torch.Tensor, y: torch.Tensor,
                         row_weights: torch.Tensor) -> list[torch.Tensor]:
    """Gradients of each client's weighted cross-entropy, by hand (back-propagation through Linear and ReLU).

    Written out instead of calling autograd: the rounds are thousands of tiny steps, and autograd's
    bookkeeping cost more than the arithmetic (2-3x, measured). ``tests/test_federated.py`` checks it
    against autograd.
    """
    activations, pre = [X], []
    for i in range(0, len(params), 2):
        z = torch.baddbmm(params[i + 1].unsqueeze(1), activations[-1], params[i].transpose(1, 2))
        pre.append(z)
        if i + 2 < len(params):
            activations.append(torch.relu(z))
    delta = torch.softmax(pre[-1], dim=2)
    delta[torch.arange(len(y))[:, None], torch.arange(y.shape[1])[None], y] -= 1.0
    delta = delta * row_weights.unsqueeze(2)
    grads: list[torch.Tensor] = [torch.empty(0)] * len(params)
    for layer in range(len(pre) - 1, -1, -1):
        grads[2 * layer] = torch.bmm(delta.transpose(1, 2), activations[layer])
        grads[2 * layer + 1] = delta.sum(dim=1)
        if layer > 0:
            delta = torch.bmm(delta, params[2 * layer]) * (pre[layer - 1] > 0)
    return grads


def train_clients(global_state: dict[str, torch.Tensor], clients: list[tuple[np.ndarray, np.ndarray]], *,
                  epochs: int, batch_size: int | None, lr: float, seed: int, round_index: int,
                  client_ids: list[int] | None = None, mu: float = 0.0) -> list[dict[str, torch.Tensor]]:
    """Every client's :func:`local_update` at once, on stacked weights; returns one state dict per client.

    Clients with fewer batches stop early (their later steps have zero weight). Equal to running
    :func:`local_update` client by client with ``rng = np.random.default_rng([seed, round_index, client_id])``.
    """
    client_ids = list(range(len(clients))) if client_ids is None else list(client_ids)
    keys = list(global_state)
    n_clients = len(clients)
    schedules = [batch_order(len(y), epochs, batch_size, np.random.default_rng([seed, round_index, cid]))
                 for (_, y), cid in zip(clients, client_ids)]
    steps, width = max(len(s) for s in schedules), max(len(b) for s in schedules for b in s)
    index = np.zeros((steps, n_clients, width), dtype=np.int64)
    weight = np.zeros((steps, n_clients, width), dtype=np.float32)
    for c, schedule in enumerate(schedules):
        for t, batch in enumerate(schedule):
            index[t, c, :len(batch)], weight[t, c, :len(batch)] = batch, 1.0
    n_max = max(len(y) for _, y in clients)
    X_all = torch.zeros(n_clients, n_max, clients[0][0].shape[1])
    y_all = torch.zeros(n_clients, n_max, dtype=torch.long)
    for c, (X, y) in enumerate(clients):
        X_all[c, :len(y)], y_all[c, :len(y)] = torch.as_tensor(X, dtype=torch.float32), torch.as_tensor(y)
    received = [global_state[k].detach().float().expand(n_clients, *global_state[k].shape) for k in keys]
    params = [r.clone() for r in received]
    rows = torch.arange(n_clients)[:, None]
    index_t, weight_t = torch.from_numpy(index), torch.from_numpy(weight)
    for t in range(steps):
        w = weight_t[t]
        counts = w.sum(dim=1, keepdim=True)
        grads = _mean_loss_gradients(params, X_all[rows, index_t[t]], y_all[rows, index_t[t]], w / counts.clamp(min=1.0))
        active = (counts > 0).float().view(-1)
        for p, g, r in zip(params, grads, received):
            if mu > 0:  # FedProx: the gradient of (mu / 2) * ||w - w_received||^2, for clients still training
                g = g + mu * active.view(-1, *[1] * (p.dim() - 1)) * (p - r)
            p -= lr * g
    return [{k: params[i][c].detach().clone() for i, k in enumerate(keys)} for c in range(n_clients)]


def predict(state: dict[str, torch.Tensor], X) -> np.ndarray:
    """The class an MLP state dict (as from ``mlp_from_sizes``) predicts for each row of X."""
    params = [v.unsqueeze(0) for v in state.values()]
    logits = _forward(params, torch.as_tensor(X, dtype=torch.float32).unsqueeze(0))[0]
    return logits.argmax(dim=1).numpy()


def accuracy(state: dict[str, torch.Tensor], X, y) -> float:
    """Accuracy of an MLP state dict (as from ``mlp_from_sizes``) on (X, y)."""
    return float((predict(state, X) == np.asarray(y)).mean())


def flat(state: dict[str, torch.Tensor]) -> torch.Tensor:
    """All the tensors of a state dict as one float vector."""
    return torch.cat([v.detach().float().flatten() for v in state.values()])


def unflat(vector: torch.Tensor, like: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The inverse of :func:`flat`, shaped like ``like``."""
    out, start = {}, 0
    for key, value in like.items():
        out[key] = vector[start:start + value.numel()].view_as(value).to(value.dtype)
        start += value.numel()
    return out


# --- the whole protocol ---


@dataclass
class FedRun:
    """What a federated run returns: the final weights and, per round, validation accuracy and drift."""
    state: dict[str, torch.Tensor]
    accuracy: list[float] = field(default_factory=list)
    drift: list[float] = field(default_factory=list)       # mean distance of the client models from their average
    participants: list[int] = field(default_factory=list)  # clients whose update reached the server

    def rounds_to(self, target: float) -> int | None:
        """The first round (counting from 1) whose validation accuracy reaches ``target``; None if none did."""
        hits = [r for r, a in enumerate(self.accuracy, start=1) if a >= target]
        return hits[0] if hits else None


def run_federated(clients: list[tuple[np.ndarray, np.ndarray]], X_val, y_val, *, sizes: list[int], rounds: int,
                  epochs: int, batch_size: int | None, lr: float, seed: int, fraction: float = 1.0,
                  mu: float = 0.0, drop=None, dp: tuple[float, float] | None = None,
                  generator: torch.Generator | None = None) -> FedRun:
    """FedAvg (FedSGD with ``epochs=1, batch_size=None``) for ``rounds`` rounds, from ``init_state(sizes, seed)``.

    ``fraction``: the share of clients drawn each round. ``drop(round, chosen) -> kept``: which chosen
    clients' updates arrive (stragglers, failures). ``dp=(clip, noise_multiplier)``: DP-FedAvg
    (McMahan et al. 2018): each client's update is clipped to that L2 norm, the updates are summed,
    Gaussian noise is added and the sum divided by the number of clients (equal weights, so one
    client's influence is bounded by the clip).
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    from utils.privacy import clip_and_noise

    state = init_state(sizes, seed)
    run = FedRun(state)
    selector = np.random.default_rng([seed, 10**6])
    n_per_round = max(1, round(fraction * len(clients)))
    for r in range(rounds):
        chosen = sorted(selector.choice(len(clients), n_per_round, replace=False).tolist())
        if drop is not None:
            chosen = [c for c in chosen if c in set(drop(r, chosen))]
        if chosen:
            local = train_clients(state, [clients[c] for c in chosen], epochs=epochs, batch_size=batch_size, lr=lr,
                                  seed=seed, round_index=r, client_ids=chosen, mu=mu)
            if dp is None:
                new_state = fedavg(local, [len(clients[c][1]) for c in chosen])
            else:
                clip, noise = dp
                updates = torch.stack([flat(s) - flat(state) for s in local])
                step = clip_and_noise(updates, clip, noise, generator) / len(chosen)
                new_state = unflat(flat(state) + step, state)
            average = torch.stack([flat(s) for s in local]).mean(dim=0)
            run.drift.append(float(np.mean([(flat(s) - average).norm().item() for s in local])))
            state = new_state
        else:
            run.drift.append(0.0)
        run.participants.append(len(chosen))
        run.accuracy.append(accuracy(state, X_val, y_val))
    run.state = state
    return run


# --- secure aggregation ---


def pairwise_masks(n_clients: int, size: int, seed: int, scale: float = 1000.0) -> np.ndarray:
    """Masks that cancel in the sum (Bonawitz et al. 2017): row i is client i's mask, shape (n_clients, size).

    Each pair i < j shares a random vector r_ij drawn from ``np.random.default_rng([seed, i, j])``
    (in the real protocol, from a secret the two agreed by Diffie-Hellman): client i adds it, client
    j subtracts it, so every r_ij appears once with each sign in the sum.

    >>> bool(np.allclose(pairwise_masks(3, 4, seed=0).sum(axis=0), 0.0, atol=1e-9))
    True
    """
    if not isinstance(n_clients, (int, np.integer)) or n_clients < 2:
        raise ValueError(f"n_clients must be an integer of at least 2 (one client cannot hide), got {n_clients!r}")
    if not isinstance(size, (int, np.integer)) or size < 1:
        raise ValueError(f"size must be a positive integer, got {size!r}")
    masks = np.zeros((n_clients, size))
    for i in range(n_clients):
        for j in range(i + 1, n_clients):
            shared = np.random.default_rng([seed, i, j]).normal(0.0, scale, size)
            masks[i] += shared
            masks[j] -= shared
    return masks


PRIME = 2**127 - 1  # a Mersenne prime: the field for the toy Diffie-Hellman and Shamir sharing below


def shamir_split(secret: int, n_shares: int, threshold: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    """Shamir's secret sharing: any ``threshold`` of the ``n_shares`` points recover ``secret``; fewer reveal nothing.

    The shares are points (x, f(x)) of a random polynomial of degree ``threshold - 1`` with f(0) = secret,
    over the integers modulo :data:`PRIME`.
    """
    if not 1 <= threshold <= n_shares:
        raise ValueError(f"need 1 <= threshold <= n_shares, got threshold={threshold}, n_shares={n_shares}")
    if not 0 <= secret < PRIME:
        raise ValueError("the secret must be an integer in [0, PRIME)")
    coefficients = [secret] + [int.from_bytes(rng.bytes(16), "big") % PRIME for _ in range(threshold - 1)]
    return [(x, sum(c * pow(x, k, PRIME) for k, c in enumerate(coefficients)) % PRIME) for x in range(1, n_shares + 1)]


def shamir_combine(shares: list[tuple[int, int]]) -> int:
    """The secret f(0) from enough shares, by Lagrange interpolation modulo :data:`PRIME`."""
    secret = 0
    for i, (xi, yi) in enumerate(shares):
        numerator, denominator = 1, 1
        for j, (xj, _) in enumerate(shares):
            if i != j:
                numerator, denominator = numerator * -xj % PRIME, denominator * (xi - xj) % PRIME
        secret = (secret + yi * numerator * pow(denominator, -1, PRIME)) % PRIME
    return secret


# --- what federated learning does not hide ---


def invert_linear_gradient(grad_weight, grad_bias) -> np.ndarray:
    """The input of a linear layer, recovered exactly from the gradient of one example's loss.

    For y = W x + b, dL/dW = (dL/dy) x^T and dL/db = dL/dy, so every row i with dL/db_i != 0 gives
    x = (dL/dW)_i / (dL/db)_i. The row with the largest |dL/db_i| is used (the least rounding error).
    """
    gw = np.asarray(grad_weight.detach() if hasattr(grad_weight, "detach") else grad_weight, dtype=float)
    gb = np.asarray(grad_bias.detach() if hasattr(grad_bias, "detach") else grad_bias, dtype=float)
    if gw.ndim != 2 or gb.shape != (gw.shape[0],):
        raise ValueError(f"expected grad_weight (out, in) and grad_bias (out,), got {gw.shape} and {gb.shape}")
    row = int(np.argmax(np.abs(gb)))
    if gb[row] == 0:
        raise ValueError("the bias gradient is zero everywhere: this example's loss did not flow through the layer")
    return gw[row] / gb[row]


# --- the same protocol over a real transport ---


def fedavg_worker(rank: int, world_size: int, clients: list[tuple[np.ndarray, np.ndarray]], sizes: list[int], *,
                  rounds: int, epochs: int, batch_size: int | None, lr: float, seed: int):
    """One process of FedAvg over ``torch.distributed``: rank 0 is the server, rank k >= 1 holds ``clients[k - 1]``.

    Each round the server broadcasts the global weights; every client trains them on its own data
    (:func:`local_update`) and the size-weighted sum of the client weights is reduced to the server
    (the server adds zeros). Only weights cross the process boundary. Run it with
    ``utils.distributed.launch(fedavg_worker, len(clients) + 1, clients, sizes, rounds=..., ...)``;
    rank 0 returns the final state dict as NumPy arrays, the clients return the bytes they sent.
    """
    import torch.distributed as dist

    state = init_state(sizes, seed)
    vector = flat(state)
    own = clients[rank - 1] if rank > 0 else None
    sent = 0
    for r in range(rounds):
        dist.broadcast(vector, src=0)
        if rank == 0:
            contribution, weight = torch.zeros_like(vector), torch.zeros(1)
        else:
            model = mlp_from_sizes(sizes)
            model.load_state_dict(unflat(vector, state))
            local_update(model, own[0], own[1], epochs=epochs, batch_size=batch_size, lr=lr,
                         rng=np.random.default_rng([seed, r, rank - 1]))
            weight = torch.tensor([float(len(own[1]))])
            contribution = flat(model.state_dict()) * weight
            sent += contribution.numel() * contribution.element_size()
        dist.reduce(contribution, dst=0, op=dist.ReduceOp.SUM)
        dist.reduce(weight, dst=0, op=dist.ReduceOp.SUM)
        if rank == 0:
            vector = contribution / weight
    if rank == 0:
        return {k: v.numpy() for k, v in unflat(vector, state).items()}
    return sent
