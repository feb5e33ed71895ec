"""Plausible wrong answers to lab 11 (privacy)."""

import hashlib
import hmac

import torch


def laplace_scale_inverted(value, sensitivity, epsilon, rng):
    return value + rng.laplace(0, epsilon / sensitivity)


def gaussian_instead_of_laplace(value, sensitivity, epsilon, rng):
    return value + rng.normal(0, sensitivity / epsilon)


def noise_without_value(value, sensitivity, epsilon, rng):
    return rng.laplace(0, sensitivity / epsilon)


def clip_the_batch_gradient(per_example, max_norm, noise_multiplier, generator):
    total = per_example.sum(dim=0)
    clipped = total * min(1.0, max_norm / total.norm().item())
    return clipped + torch.randn(clipped.shape, generator=generator) * noise_multiplier * max_norm


def clip_each_coordinate(per_example, max_norm, noise_multiplier, generator):
    clipped = per_example.clamp(-max_norm, max_norm).sum(dim=0)
    return clipped + torch.randn(clipped.shape, generator=generator) * noise_multiplier * max_norm


def noise_not_scaled_by_norm(per_example, max_norm, noise_multiplier, generator):
    norms = per_example.norm(dim=1, keepdim=True)
    clipped = (per_example * (max_norm / norms).clamp(max=1.0)).sum(dim=0)
    return clipped + torch.randn(clipped.shape, generator=generator) * noise_multiplier


def k_per_column(table, quasi_identifiers):
    return min(table[col].value_counts().min() for col in quasi_identifiers)


def k_over_all_columns(table, quasi_identifiers):
    return int(table.groupby(list(table.columns)).size().min())


def plain_sha256(identifier, key):
    return hashlib.sha256(identifier.encode()).hexdigest()


def key_prefixed_sha256(identifier, key):
    return hashlib.sha256(key + identifier.encode()).hexdigest()


def hmac_md5(identifier, key):
    return hmac.new(key, identifier.encode(), hashlib.md5).hexdigest()


WRONG = {
    "11.laplace": [laplace_scale_inverted, gaussian_instead_of_laplace, noise_without_value],
    "11.privatize": [clip_the_batch_gradient, clip_each_coordinate, noise_not_scaled_by_norm],
    "11.k_anonymity": [k_per_column, k_over_all_columns],
    "11.pseudonym": [plain_sha256, key_prefixed_sha256, hmac_md5],
}
