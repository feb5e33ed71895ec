"""Shifts move pixels without wrapping; noise stays in range; both are reproducible from the generator."""

import pytest
import torch

from utils.augment import gaussian_noise, random_shifts, shift_and_noise, shift_images


def grid():
    return torch.arange(64, dtype=torch.float32).reshape(1, 64) / 64


@pytest.mark.parametrize("dx, dy", [(1, 0), (-1, 0), (0, 2), (-3, -1), (0, 0)])
def test_shift_matches_a_zero_padded_roll(dx, dy):
    image = grid().reshape(8, 8)
    padded = torch.nn.functional.pad(image, (8, 8, 8, 8))  # a zero frame wide enough that roll cannot wrap
    expected = torch.roll(padded, (dy, dx), (0, 1))[8:16, 8:16]
    assert torch.equal(shift_images(grid(), dx, dy).reshape(8, 8), expected)


def test_shift_fills_the_uncovered_border_with_zeros():
    shifted = shift_images(grid(), 2, -1).reshape(8, 8)
    assert torch.all(shifted[:, :2] == 0) and torch.all(shifted[-1, :] == 0)


@pytest.mark.parametrize("bad, message", [((torch.zeros(2, 63), 1, 0), "pixels"), ((grid(), 8, 0), "out of view")])
def test_bad_shift_input_is_rejected(bad, message):
    with pytest.raises(ValueError, match=message):
        shift_images(*bad)


def test_random_shifts_are_per_image_and_reproducible():
    batch = grid().repeat(50, 1)
    first = random_shifts(batch, torch.Generator().manual_seed(0))
    second = random_shifts(batch, torch.Generator().manual_seed(0))
    assert torch.equal(first, second)
    assert len(torch.unique(first, dim=0)) > 1  # not one offset for the whole batch
    offsets = [(dx, dy) for dx in (-1, 0, 1) for dy in (-1, 0, 1)]
    assert all(any(torch.equal(row, shift_images(grid(), dx, dy)[0]) for dx, dy in offsets) for row in first)


def test_noise_stays_in_range_and_composes():
    noisy = gaussian_noise(grid(), torch.Generator().manual_seed(0), std=0.5)
    assert noisy.min() >= 0 and noisy.max() <= 1 and not torch.equal(noisy, grid())
    assert shift_and_noise()(grid().repeat(4, 1), torch.Generator().manual_seed(1)).shape == (4, 64)
    with pytest.raises(ValueError, match="std"):
        gaussian_noise(grid(), torch.Generator(), std=-1)
