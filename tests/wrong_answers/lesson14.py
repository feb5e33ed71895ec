"""Plausible wrong answers to lab 14 (deployment)."""

import hashlib
from pathlib import Path

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, field_validator


class SchemaLetsNaNThrough(BaseModel):
    model_config = ConfigDict(strict=True)
    instances: list[list[float]]

    @field_validator("instances")
    @classmethod
    def check(cls, rows):
        if not rows or len(rows) > 64 or any(len(r) != 64 for r in rows):
            raise ValueError("bad shape")
        return rows


class SchemaCoercesStrings(BaseModel):
    instances: list[list[float]]  # lax mode: "0.5" becomes 0.5

    @field_validator("instances")
    @classmethod
    def check(cls, rows):
        import math
        if not rows or len(rows) > 64 or any(len(r) != 64 for r in rows) or not all(math.isfinite(v) for r in rows for v in r):
            raise ValueError("bad rows")
        return rows


class SchemaWithoutLimits(BaseModel):
    model_config = ConfigDict(strict=True)
    instances: list[list[float]]


def parity_on_labels(model, session, X):
    with torch.no_grad():
        ours = model(torch.as_tensor(X)).argmax(1).numpy()
    return float(np.abs(ours - session.run(None, {"x": X})[0].argmax(1)).max())


def parity_mean_not_max(model, session, X):
    with torch.no_grad():
        ours = model(torch.as_tensor(X)).numpy()
    return float(np.abs(ours - session.run(None, {"x": X})[0]).mean() / 2)


def percentiles_of_batch_means(latencies):
    means = np.asarray(latencies).reshape(100, 10).mean(axis=1)
    return {f"p{p}": float(np.percentile(means, p)) for p in (50, 95, 99)}


def p99_is_the_max(latencies):
    return {"p50": float(np.percentile(latencies, 50)), "p95": float(np.percentile(latencies, 95)),
            "p99": float(np.max(latencies))}


def hash_of_the_name(path):
    return hashlib.sha256(Path(path).name.encode()).hexdigest()


def hash_of_the_path(path):
    return hashlib.sha256(str(path).encode()).hexdigest()


def md5_of_the_bytes(path):
    return hashlib.md5(Path(path).read_bytes()).hexdigest()


WRONG = {
    "14.schema": [SchemaLetsNaNThrough, SchemaCoercesStrings, SchemaWithoutLimits],
    "14.parity": [parity_on_labels, parity_mean_not_max],
    "14.percentiles": [percentiles_of_batch_means, p99_is_the_max],
    "14.file_sha256": [hash_of_the_name, hash_of_the_path, md5_of_the_bytes],
}
