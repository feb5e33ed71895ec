"""Checks for lab 12 (federated learning): fedavg, dirichlet_split, pairwise_masks, proximal_term."""

from __future__ import annotations

import numpy as np
import torch

from utils import federated
from utils.checks.core import Case, Mistake, Spec, like_reference, register

# --- 12.fedavg ---

INTEGER_HINT = ("An integer buffer (a BatchNorm's num_batches_tracked) must come back as an integer of the same dtype, "
                "or load_state_dict gives the model a float counter: average it, round to the nearest integer "
                "(torch.round), then cast back with .to(its dtype).")


def fedavg_unweighted(states, sizes):
    return federated.fedavg(states, [1] * len(states))


def fedavg_integers_as_floats(states, sizes):
    total = float(sum(sizes))
    return {key: sum(s[key].double() * (n / total) for s, n in zip(states, sizes)).to(
        states[0][key].dtype if states[0][key].is_floating_point() else torch.float32) for key in states[0]}


def fedavg_truncates_integers(states, sizes):
    total = float(sum(sizes))
    return {key: sum(s[key].double() * (n / total) for s, n in zip(states, sizes)).to(states[0][key].dtype)
            for key in states[0]}


def fedavg_divides_by_clients(states, sizes):
    out = {}
    for key in states[0]:
        mean = sum(s[key].double() * n for s, n in zip(states, sizes)) / len(states)
        dtype = states[0][key].dtype
        out[key] = mean.to(dtype) if dtype.is_floating_point else torch.round(mean).to(dtype)
    return out


def _state(rng: np.random.Generator, count: int, shapes: dict) -> dict:
    state = {k: torch.tensor(rng.normal(0, 2, shape), dtype=torch.float32) for k, shape in shapes.items()}
    state["bn.num_batches_tracked"] = torch.tensor(int(count))
    return state


def _fedavg_cases() -> list[Case]:
    a = {"w": torch.tensor([0.0, 2.0]), "b": torch.tensor([-1.0])}
    b = {"w": torch.tensor([4.0, 6.0]), "b": torch.tensor([3.0])}
    cases = [Case(([a, b], [1, 3]), "two clients of 1 and 3 examples, w=[0, 2] and [4, 6], b=[-1] and [3]", size=0)]
    counts = [{"w": torch.tensor([1.0, -1.0]), "bn.num_batches_tracked": torch.tensor(n)} for n in (2, 9, 4)]
    cases.append(Case((counts, [5, 10, 5]), "three clients (5, 10, 5 examples) whose BatchNorm counters are 2, 9 and "
                      "4 (weighted mean 6.0)", size=1))
    counts2 = [{"w": torch.tensor([0.5]), "bn.num_batches_tracked": torch.tensor(n)} for n in (2, 7)]
    cases.append(Case((counts2, [1, 3]), "two clients (1 and 3 examples) with counters 2 and 7 (weighted mean 5.75)",
                      size=2))
    rng = np.random.default_rng(120)
    shapes = {"0.weight": (4, 3), "0.bias": (4,), "bn.weight": (4,), "bn.running_mean": (4,)}
    for n_clients, label in ((2, "equal sizes"), (5, "sizes 1 to 300")):
        sizes = [7] * n_clients if n_clients == 2 else rng.integers(1, 300, n_clients).tolist()
        states = [_state(rng, rng.integers(1, 50), shapes) for _ in range(n_clients)]
        cases.append(Case((states, sizes), f"{n_clients} BatchNorm models ({label}: {sizes})", atol=1e-6,
                          size=10 + n_clients))
    return cases


def _state_dict_like(got, expected):
    """Like the reference's dict, except that a float where an integer buffer belongs gets its own hint."""
    if isinstance(got, dict) and set(map(str, got)) == set(map(str, expected)):
        for key, want in expected.items():
            have = got[key]
            if (isinstance(have, torch.Tensor) and not want.dtype.is_floating_point and have.dtype.is_floating_point
                    and tuple(have.shape) == tuple(want.shape)):
                return (f"your result[{key!r}] has dtype {have.dtype}, but the clients sent {want.dtype}.", INTEGER_HINT)
    return like_reference(got, expected)


register(Spec(
    "12.fedavg", federated.fedavg, _fedavg_cases, contract=_state_dict_like,
    hint="For every key: sum over clients of (n_k / total) * state_k[key]; floats keep their dtype, integer buffers "
         "are rounded to the nearest integer and keep theirs.",
    mistakes=(
        Mistake(fedavg_unweighted, "Weight each client by its number of examples, n_k / sum(n): with a plain mean a "
                                   "client with 5 examples counts as much as one with 500."),
        Mistake(fedavg_integers_as_floats, INTEGER_HINT),
        Mistake(fedavg_truncates_integers, "Round an averaged integer buffer to the nearest integer (torch.round) "
                                           "before casting: .to(torch.int64) alone truncates 5.75 to 5."),
        Mistake(fedavg_divides_by_clients, "Divide the weighted sum by the total number of examples, not by the "
                                           "number of clients: the weights n_k / sum(n) must add up to 1."),
    )))


# --- 12.dirichlet_split ---


def _split(labels, n_clients, alpha, seed, *, redraw=True, reuse=False, shuffle=True, one_draw=False, sort=True):
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    for _ in range(1000):
        parts = [[] for _ in range(n_clients)]
        shares = None
        for label in np.unique(labels):
            members = np.flatnonzero(labels == label)
            if shuffle:
                members = rng.permutation(members)
            if shares is None or not one_draw:
                shares = rng.dirichlet([alpha] * n_clients)
            cuts = (np.cumsum(shares)[:-1] * len(members)).astype(int)
            if reuse:
                chunks = [members[:int(share * len(members))] for share in shares]
            else:
                chunks = np.split(members, cuts)
            for client, chunk in enumerate(chunks):
                parts[client].append(chunk)
        split = [np.concatenate(chunks) for chunks in parts]
        split = [np.sort(part) for part in split] if sort else split
        if not redraw or min(len(part) for part in split) > 0:
            return split
    raise ValueError("no draw left every client with data")


def split_without_redraw(labels, n_clients, alpha, seed):
    return _split(labels, n_clients, alpha, seed, redraw=False)


def split_reusing_indices(labels, n_clients, alpha, seed):
    return _split(labels, n_clients, alpha, seed, reuse=True)


def split_without_shuffle(labels, n_clients, alpha, seed):
    return _split(labels, n_clients, alpha, seed, shuffle=False)


def split_with_one_draw(labels, n_clients, alpha, seed):
    return _split(labels, n_clients, alpha, seed, one_draw=True)


def split_unsorted(labels, n_clients, alpha, seed):
    return _split(labels, n_clients, alpha, seed, sort=False)


def _split_cases() -> list[Case]:
    cases = [Case((np.array([0, 0, 1, 1, 1, 2]), 2, 100.0, 0), "labels=[0, 0, 1, 1, 1, 2], 2 clients, alpha=100, seed=0",
                  size=0),
             Case((np.array([0, 0, 0, 1, 1, 2, 2, 2, 2, -1, 5, 5]), 4, 0.3, 1),
                  "labels=[0, 0, 0, 1, 1, 2, 2, 2, 2, -1, 5, 5], 4 clients, alpha=0.3, seed=1 (the first draw leaves "
                  "client 1 empty)", size=1)]
    rng = np.random.default_rng(121)
    for n, classes, clients, alpha in ((200, 10, 5, 0.5), (1000, 10, 10, 0.3), (300, 3, 8, 5.0)):
        labels = rng.integers(0, classes, n)
        cases.append(Case((labels, clients, alpha, 7), f"{n} labels of {classes} classes (in random order), {clients} "
                          f"clients, alpha={alpha}, seed=7", size=n))
    return cases


def _index_arrays(got, expected):
    """A list of one 1-D integer index array per client (their lengths are compared as values)."""
    if not isinstance(got, list) or len(got) != len(expected):
        return (f"your result should be a list of {len(expected)} index arrays, one per client, got "
                f"{type(got).__name__}" + (f" of {len(got)}" if hasattr(got, "__len__") else "") + ".",
                "Return a list with one np.ndarray of example indices per client.")
    for i, part in enumerate(got):
        if not isinstance(part, np.ndarray) or part.ndim != 1 or part.dtype.kind not in "iu":
            return (f"entry {i} of your result should be a 1-D integer NumPy array of indices, got "
                    f"{type(part).__name__}" + (f" of dtype {part.dtype}, shape {part.shape}" if isinstance(part, np.ndarray) else "")
                    + ".", "np.concatenate the index chunks of each client (they come from np.flatnonzero).")
    return None


register(Spec(
    "12.dirichlet_split", federated.dirichlet_split, _split_cases, seed=(3, lambda number: number),
    contract=_index_arrays,
    hint="Follow the recipe: rng = np.random.default_rng(seed); for each class in np.unique order, "
         "rng.permutation of its indices, then shares = rng.dirichlet([alpha] * n_clients), cut at "
         "(np.cumsum(shares)[:-1] * n).astype(int) with np.split; redraw everything if a client is empty; sort each "
         "client's indices.",
    mistakes=(
        Mistake(split_without_redraw, "A client with no examples cannot train: when a draw leaves one empty, draw the "
                                      "whole split again with the same generator."),
        Mistake(split_reusing_indices, "Cut the shuffled indices of a class into consecutive pieces (np.split at the "
                                       "cumulative cut points): taking the first share of them for every client gives "
                                       "the same examples to several clients."),
        Mistake(split_without_shuffle, "Shuffle each class's indices (rng.permutation) before cutting, and before "
                                       "drawing its shares: otherwise client 0 always gets the first examples of each class."),
        Mistake(split_with_one_draw, "Draw new shares for every class: one draw for all classes gives clients "
                                     "different amounts of data but the same label mix (no label skew)."),
        Mistake(split_unsorted, "Return each client's indices sorted (np.sort), as the question asks."),
    )))


# --- 12.pairwise_masks ---


def masks_both_add(n_clients, size, seed):
    masks = np.zeros((n_clients, size))
    for i in range(n_clients):
        for j in range(i + 1, n_clients):
            shared = np.random.default_rng([seed, i, j]).normal(0.0, 1000.0, size)
            masks[i] += shared
            masks[j] += shared
    return masks


def masks_from_one_generator(n_clients, size, seed):
    rng, masks = np.random.default_rng(seed), np.zeros((n_clients, size))
    for i in range(n_clients):
        for j in range(i + 1, n_clients):
            shared = rng.normal(0.0, 1000.0, size)
            masks[i] += shared
            masks[j] -= shared
    return masks


def masks_signs_swapped(n_clients, size, seed):
    return -federated.pairwise_masks(n_clients, size, seed)


def masks_unit_scale(n_clients, size, seed):
    return federated.pairwise_masks(n_clients, size, seed, scale=1.0)


def _mask_cases() -> list[Case]:
    return [Case((2, 3, 0), "n_clients=2, size=3, seed=0", atol=1e-6, size=0),
            Case((3, 1, 5), "n_clients=3, size=1, seed=5", atol=1e-6, size=1),
            Case((5, 7, 11), "n_clients=5, size=7, seed=11", atol=1e-6, size=2),
            Case((8, 40, 3), "n_clients=8, size=40, seed=3", atol=1e-6, size=3)]


register(Spec(
    "12.pairwise_masks", federated.pairwise_masks, _mask_cases, seed=(2, lambda number: number),
    hint="For every pair i < j: r = np.random.default_rng([seed, i, j]).normal(0.0, 1000.0, size); add r to row i and "
         "subtract it from row j.",
    mistakes=(
        Mistake(masks_both_add, "Client j must *subtract* the pair's vector that client i adds, or the masks do not "
                                "cancel and the server's sum is wrong."),
        Mistake(masks_from_one_generator, "Draw each pair's vector from its own generator, np.random.default_rng([seed, "
                                          "i, j]): in the protocol the two clients of a pair must each compute it "
                                          "alone, from their shared secret, without seeing anyone else's draws."),
        Mistake(masks_signs_swapped, "The lower-numbered client of the pair adds r_ij (row i, i < j) and the other "
                                     "subtracts it; you have the signs the other way round."),
        Mistake(masks_unit_scale, "Draw with standard deviation 1000 (normal(0.0, 1000.0, size)): a mask as small as "
                                  "the update does not hide it."),
    )))


# --- 12.proximal_term ---


def prox_wrong_sign(params, global_params, mu):
    return -federated.proximal_term(params, global_params, mu)


def prox_without_half(params, global_params, mu):
    return 2 * federated.proximal_term(params, global_params, mu)


def prox_anchored_to_itself(params, global_params, mu):
    return federated.proximal_term(params, [p.detach() for p in params], mu)


def prox_norm_not_squared(params, global_params, mu):
    return mu / 2 * torch.sqrt(sum(((p - g) ** 2).sum() for p, g in zip(params, global_params)))


def _prox_cases() -> list[Case]:
    def leaves(values):
        return [torch.tensor(v, dtype=torch.float32, requires_grad=True) for v in values]

    cases = [Case((leaves([[3.0, 4.0]]), [torch.zeros(2)], 0.1), "params=[[3, 4]], global_params=[[0, 0]], mu=0.1",
                  atol=1e-5, size=0),
             Case((leaves([[1.0, -2.0], [[0.5]]]), [torch.tensor([1.0, 1.0]), torch.tensor([[-0.5]])], 2.0),
                  "two tensors, params=[[1, -2], [[0.5]]], global_params=[[1, 1], [[-0.5]]], mu=2.0", atol=1e-5, size=1)]
    rng = np.random.default_rng(122)
    for shapes, mu in ((((5, 3), (5,)), 0.01), (((16, 8), (16,), (4, 16), (4,)), 0.5)):
        params = leaves([rng.normal(0, 1, s) for s in shapes])
        anchor = [torch.tensor(rng.normal(0, 1, s), dtype=torch.float32) for s in shapes]
        cases.append(Case((params, anchor, mu), f"{len(shapes)} random tensors of shapes {list(shapes)}, mu={mu}",
                          atol=1e-4, size=10 + len(shapes)))
    return cases


register(Spec(
    "12.proximal_term", federated.proximal_term, _prox_cases,
    hint="(mu / 2) * the sum over tensors of ((p - g) ** 2).sum(), kept as a torch tensor so gradients flow to params.",
    mistakes=(
        Mistake(prox_wrong_sign, "The penalty is added to the loss, so it must be positive: + (mu / 2) ||w - w_g||^2. "
                                 "With a minus sign it pushes the client away from the global model."),
        Mistake(prox_without_half, "FedProx's term is (mu / 2) ||w - w_g||^2: you are missing the 1/2."),
        Mistake(prox_anchored_to_itself, "Measure the distance from global_params (the model received this round), not "
                                         "from the client's own current weights: that distance is always zero."),
        Mistake(prox_norm_not_squared, "Square the distance: (mu / 2) * sum((p - g) ** 2), not the norm itself."),
    )))
