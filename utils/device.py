"""Pick the device: CUDA when present, else CPU. Every lesson runs on either."""

from __future__ import annotations

import os

DEVICE_ENV = "BML_DEVICE"


def get_device(prefer: str | None = None):
    """Return a ``torch.device``: ``prefer`` or ``$BML_DEVICE`` if given, else CUDA if available, else CPU.

    >>> get_device("cpu")
    device(type='cpu')
    """
    import torch

    choice = prefer or os.environ.get(DEVICE_ENV)
    if choice is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice not in {"cpu", "cuda"} and not choice.startswith("cuda:"):
        raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:N', got {choice!r}")
    if choice.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {choice!r} was asked for but CUDA is not available; use 'cpu'")
    return torch.device(choice)
