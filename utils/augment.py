"""Data augmentation for small images stored as flat rows (the 8x8 digits): shifts and noise.

Augmentations run on each training batch, so every epoch sees new variants; pass one to
``utils.train.fit(augment=...)``. Validation and test data are never augmented.
"""

from __future__ import annotations

import torch


def shift_images(X: torch.Tensor, dx: int, dy: int, side: int = 8) -> torch.Tensor:
    """Move every image ``dx`` pixels right and ``dy`` pixels down, filling the uncovered border with 0.

    Pixels pushed off the edge are dropped, never wrapped to the other side (``torch.roll`` would wrap).

    >>> shift_images(torch.arange(4.0).reshape(1, 4), 1, 0, side=2)
    tensor([[0., 0., 0., 2.]])
    """
    if X.ndim != 2 or X.shape[1] != side * side:
        raise ValueError(f"expected rows of {side}x{side}={side * side} pixels, got shape {tuple(X.shape)}")
    if abs(dx) >= side or abs(dy) >= side:
        raise ValueError(f"a shift of ({dx}, {dy}) moves the whole {side}x{side} image out of view")
    images = X.reshape(-1, side, side)
    out = torch.zeros_like(images)
    rows_to, rows_from = slice(max(dy, 0), side + min(dy, 0)), slice(max(-dy, 0), side + min(-dy, 0))
    cols_to, cols_from = slice(max(dx, 0), side + min(dx, 0)), slice(max(-dx, 0), side + min(-dx, 0))
    out[:, rows_to, cols_to] = images[:, rows_from, cols_from]
    return out.reshape(X.shape)


def random_shifts(X: torch.Tensor, generator: torch.Generator, max_shift: int = 1, side: int = 8) -> torch.Tensor:
    """Shift each image by its own random offset in [-max_shift, max_shift] on both axes."""
    offsets = torch.randint(-max_shift, max_shift + 1, (len(X), 2), generator=generator)
    out = torch.empty_like(X)
    for (dx, dy) in offsets.unique(dim=0).tolist():  # one vectorised shift per distinct offset
        rows = (offsets[:, 0] == dx) & (offsets[:, 1] == dy)
        out[rows] = shift_images(X[rows], dx, dy, side)
    return out


def gaussian_noise(X: torch.Tensor, generator: torch.Generator, std: float = 0.1) -> torch.Tensor:
    """Add N(0, std^2) noise to every pixel and clip to the valid range [0, 1]."""
    if std < 0:
        raise ValueError(f"std must be non-negative, got {std}")
    return (X + std * torch.randn(X.shape, generator=generator)).clamp(0, 1)


def shift_and_noise(max_shift: int = 1, std: float = 0.1):
    """An ``augment`` callable for ``fit``: random shifts, then Gaussian noise."""
    def augment(X: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return gaussian_noise(random_shifts(X, generator, max_shift), generator, std)
    return augment
