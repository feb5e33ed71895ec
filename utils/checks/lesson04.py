"""Checks for lab 04 (training efficiency): causal_attention, accumulated_gradients, warmup_cosine, parameter_count."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from utils import lm
from utils.checks.core import Case, Mistake, Spec, reject, global_seed, register
from utils.train import accumulated_gradients, warmup_cosine

# --- 04.causal_attention ---


def _reference_attention(q, k, v):
    return lm.causal_attention(q, k, v)


def _scores(q, k, scale):
    return q @ k.transpose(-2, -1) / scale


def attention_without_mask(q, k, v):
    return torch.softmax(_scores(q, k, math.sqrt(q.shape[-1])), dim=-1) @ v


def attention_sees_one_step_ahead(q, k, v):
    t = q.shape[-2]
    future = torch.ones(t, t, dtype=torch.bool).triu(2)  # off by one: position i also sees i + 1
    return torch.softmax(_scores(q, k, math.sqrt(q.shape[-1])).masked_fill(future, float("-inf")), dim=-1) @ v


def attention_scaled_by_d(q, k, v):
    t = q.shape[-2]
    future = torch.ones(t, t, dtype=torch.bool).triu(1)
    return torch.softmax(_scores(q, k, q.shape[-1]).masked_fill(future, float("-inf")), dim=-1) @ v


def attention_softmax_over_queries(q, k, v):
    t = q.shape[-2]
    future = torch.ones(t, t, dtype=torch.bool).triu(1)
    return torch.softmax(_scores(q, k, math.sqrt(q.shape[-1])).masked_fill(future, float("-inf")), dim=-2).nan_to_num() @ v


def _attention_cases() -> list[Case]:
    generator = torch.Generator().manual_seed(401)
    cases = []
    for batch, heads, time, d, scale in ((1, 1, 4, 2, 1.0), (2, 3, 7, 8, 1.0), (1, 4, 16, 16, 1.0), (2, 2, 9, 4, 30.0)):
        q, k, v = (torch.randn(batch, heads, time, d, generator=generator) * scale for _ in range(3))
        note = " (large scores: exp must not overflow)" if scale > 1 else ""
        # float32 sums in a different order: 1e-5, relative to values of size up to the scale
        cases.append(Case((q, k, v), f"q, k, v of shape {(batch, heads, time, d)}{note}", atol=1e-5 * scale))
    return cases


register(Spec(
    "04.causal_attention", _reference_attention, _attention_cases,
    hint="softmax over the last axis of q kᵀ / √d, with every score of a later key (j > i) set to -inf before the "
         "softmax, then multiply by v.",
    mistakes=(
        Mistake(attention_without_mask, "Mask the future: position i may only attend to positions j <= i "
                                        "(torch.ones(T, T).triu(1) marks the scores to set to -inf)."),
        Mistake(attention_sees_one_step_ahead, "The mask is off by one: triu(1) masks every j > i; triu(2) lets each "
                                               "position see the next token."),
        Mistake(attention_scaled_by_d, "Divide the scores by √d, not by d: the dot product of two random d-vectors "
                                       "has a standard deviation of √d."),
        Mistake(attention_softmax_over_queries, "Take the softmax over the keys (the last axis, dim=-1): each "
                                                "query's weights must sum to 1."),
    )))


# --- 04.accumulated_gradients ---

def _tiny_network(seed: int, width: int) -> nn.Module:
    with global_seed(seed):  # nn.Linear draws from torch's global generator; the caller's state is kept
        return nn.Sequential(nn.Linear(6, width), nn.LayerNorm(width), nn.GELU(), nn.Linear(width, 3))


def grads_not_divided(model, loss_fn, X, y, micro_batches):
    model.zero_grad(set_to_none=True)
    for X_part, y_part in zip(X.chunk(micro_batches), y.chunk(micro_batches)):
        loss_fn(model(X_part), y_part).backward()
    return {name: p.grad.detach().clone() for name, p in model.named_parameters()}


def grads_zeroed_every_micro_batch(model, loss_fn, X, y, micro_batches):
    for X_part, y_part in zip(X.chunk(micro_batches), y.chunk(micro_batches)):
        model.zero_grad(set_to_none=True)
        (loss_fn(model(X_part), y_part) / micro_batches).backward()
    return {name: p.grad.detach().clone() for name, p in model.named_parameters()}


def grads_first_micro_batch_only(model, loss_fn, X, y, micro_batches):
    model.zero_grad(set_to_none=True)
    loss_fn(model(X.chunk(micro_batches)[0]), y.chunk(micro_batches)[0]).backward()
    return {name: p.grad.detach().clone() for name, p in model.named_parameters()}


def grads_divided_by_rows(model, loss_fn, X, y, micro_batches):
    model.zero_grad(set_to_none=True)
    for X_part, y_part in zip(X.chunk(micro_batches), y.chunk(micro_batches)):
        (loss_fn(model(X_part), y_part) / len(X)).backward()
    return {name: p.grad.detach().clone() for name, p in model.named_parameters()}


def grads_onto_stale_ones(model, loss_fn, X, y, micro_batches):
    for X_part, y_part in zip(X.chunk(micro_batches), y.chunk(micro_batches)):
        (loss_fn(model(X_part), y_part) / micro_batches).backward()     # adds to whatever .grad held
    return {name: p.grad.detach().clone() for name, p in model.named_parameters()}


def _accumulation_cases() -> list[Case]:
    generator = torch.Generator().manual_seed(402)
    cases = []
    for rows, micro_batches, width, seed in ((4, 2, 4, 40), (12, 3, 8, 41), (24, 4, 16, 42), (30, 6, 8, 43), (8, 1, 4, 44)):
        X = torch.randn(rows, 6, generator=generator) * 2
        y = torch.randint(0, 3, (rows,), generator=generator)
        cases.append(Case((_tiny_network(seed, width), nn.functional.cross_entropy, X, y, micro_batches),
                          f"a 6-{width}-3 network with LayerNorm, {rows} rows in {micro_batches} micro-batches",
                          atol=1e-6, size=rows))  # float32 gradients summed in a different order: 1e-6
    model = _tiny_network(45, 4)
    for parameter in model.parameters():                    # a model straight from a training loop
        parameter.grad = torch.full_like(parameter, 0.25)
    X, y = torch.randn(6, 6, generator=generator, dtype=torch.float32), torch.randint(0, 3, (6,), generator=generator)
    cases.append(Case((model, nn.functional.cross_entropy, X, y, 3), "a 6-4-3 network arriving with stale gradients "
                      "(0.25 everywhere), 6 rows in 3 micro-batches", atol=1e-6, size=-1))
    return cases


register(Spec(
    "04.accumulated_gradients", accumulated_gradients, _accumulation_cases,
    hint="zero_grad once; for each of the micro_batches equal slices, backward(loss_fn(model(slice), targets) / "
         "micro_batches); return {name: parameter.grad.clone()}.",
    mistakes=(
        Mistake(grads_not_divided, "Divide each micro-batch's loss by the number of micro-batches: summing k mean "
                                   "losses gives a gradient k times too large."),
        Mistake(grads_zeroed_every_micro_batch, "Call zero_grad once, before the first micro-batch: zeroing inside "
                                                "the loop throws away the gradients accumulated so far."),
        Mistake(grads_onto_stale_ones, "Call model.zero_grad() before the first micro-batch: the model may arrive "
                                       "with gradients from an earlier step, and backward() adds to them."),
        Mistake(grads_first_micro_batch_only, "Loop over every micro-batch, not only the first."),
        Mistake(grads_divided_by_rows, "loss_fn already averages over the rows of its slice: divide by the number "
                                       "of micro-batches, not by the number of rows."),
    )))


# --- 04.warmup_cosine: the whole schedule, every step from 0 to total, is compared ---

def _schedule(function, args):
    warmup, total, peak_lr, min_lr = args
    values = []
    for step in range(total + 1):
        value = function(step, warmup, total, peak_lr, min_lr)
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
            reject(f"the learning rate at step {step} should be a single number, got a {type(value).__name__}.",
                   "Return a float for one step.")
        values.append(float(value))
    return np.array(values)


def schedule_warmup_from_zero(step, warmup, total, peak_lr, min_lr):
    if step < warmup:
        return peak_lr * step / warmup  # off by one: step 0 trains with a learning rate of 0
    return warmup_cosine(step, warmup, total, peak_lr, min_lr)


def schedule_cosine_over_total(step, warmup, total, peak_lr, min_lr):
    if step < warmup:
        return peak_lr * (step + 1) / warmup
    return min_lr + (peak_lr - min_lr) * 0.5 * (1 + math.cos(math.pi * min(step, total) / total))


def schedule_decays_to_zero(step, warmup, total, peak_lr, min_lr):
    return warmup_cosine(step, warmup, total, peak_lr, 0.0)


def schedule_linear_decay(step, warmup, total, peak_lr, min_lr):
    if step < warmup:
        return peak_lr * (step + 1) / warmup
    return peak_lr - (peak_lr - min_lr) * min(step - warmup, total - warmup) / (total - warmup)


def _schedule_cases() -> list[Case]:
    return [Case((warmup, total, peak, floor), f"warmup={warmup}, total={total}, peak_lr={peak}, min_lr={floor}: the "
                 f"rates of steps 0 to {total}", atol=1e-12 * max(peak, 1.0), size=total)
            for warmup, total, peak, floor in ((2, 6, 1.0, 0.1), (1, 5, 0.5, 0.05), (10, 100, 3e-3, 3e-4),
                                               (50, 60, 1.0, 0.2))]


register(Spec(
    "04.warmup_cosine", warmup_cosine, _schedule_cases, invoke=_schedule, contract=lambda got, expected: None,
    hint="Warm-up: peak_lr * (step + 1) / warmup for step < warmup; then min_lr + (peak_lr - min_lr) * (1 + cos(pi * "
         "(step - warmup) / (total - warmup))) / 2.",
    mistakes=(
        Mistake(schedule_warmup_from_zero, "Off by one: step 0 must already train, at peak_lr / warmup; use "
                                           "(step + 1) / warmup so step warmup - 1 reaches the peak."),
        Mistake(schedule_cosine_over_total, "The cosine runs over the steps after warm-up, (step - warmup) / (total "
                                            "- warmup); over step / total it decays too early and never reaches "
                                            "min_lr."),
        Mistake(schedule_decays_to_zero, "Decay to min_lr, not to 0: the last steps still train."),
        Mistake(schedule_linear_decay, "Decay along a half cosine, (1 + cos(pi * progress)) / 2, not a straight line."),
    )))


# --- 04.parameter_count ---

def count_head_twice(config):
    return lm.parameter_count(config) + config.vocab_size * config.d_model


def count_without_layernorms(config):
    return lm.parameter_count(config) - 4 * config.d_model * config.n_layers - 2 * config.d_model


def count_without_biases(config):
    return lm.parameter_count(config) - 9 * config.d_model * config.n_layers


def count_mlp_as_two_d_squared(config):
    return lm.parameter_count(config) - 6 * config.d_model ** 2 * config.n_layers


def count_positions_always(config):
    return lm.parameter_count(lm.GPTConfig(**{**config.__dict__, "position": "learned"}))


def _config_cases() -> list[Case]:
    settings = ((256, 64, 32, 4, 1, "learned"), (256, 128, 128, 4, 3, "learned"), (1000, 512, 64, 8, 6, "rope"),
                (50257, 1024, 768, 12, 12, "learned"), (256, 32, 48, 6, 2, "alibi"))
    return [Case((lm.GPTConfig(vocab_size=v, context=c, d_model=d, n_heads=h, n_layers=layers, position=position),),
                 f"vocab_size={v}, context={c}, d_model={d}, n_layers={layers}, position={position!r}",
                 atol=0, size=i)
            for i, (v, c, d, h, layers, position) in enumerate(settings)]


register(Spec(
    "04.parameter_count", lm.parameter_count, _config_cases,
    hint="Embeddings V d (+ context d for learned positions), per block 12 d² + 13 d (attention 4 d² + 4 d, MLP "
         "8 d² + 5 d, two LayerNorms 4 d), a final LayerNorm 2 d; the tied output layer adds nothing.",
    mistakes=(
        Mistake(count_head_twice, "The output layer reuses the embedding matrix (tied weights): count it once."),
        Mistake(count_without_layernorms, "Count the LayerNorms: a weight and a bias of size d each, two per block "
                                          "and one at the end."),
        Mistake(count_without_biases, "Count the Linear layers' biases: 3d + d in attention, 4d + d in the MLP."),
        Mistake(count_mlp_as_two_d_squared, "The MLP widens to 4 d: its two matrices hold 4 d² each, 8 d² in all."),
        Mistake(count_positions_always, "Only learned positions are parameters; sinusoidal tables, RoPE and ALiBi "
                                        "add none."),
    )))
