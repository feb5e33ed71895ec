"""seed_everything and get_device."""

import random

import numpy as np
import pytest
import torch

from utils.device import get_device
from utils.repro import default_threads, seed_everything


def draw():
    return random.random(), np.random.rand(), torch.rand(1).item()


def test_same_seed_same_numbers_other_seed_other_numbers():
    seed_everything(3)
    first = draw()
    seed_everything(3)
    assert draw() == first
    seed_everything(4)
    assert draw() != first


def test_thread_count_is_fixed(monkeypatch):
    monkeypatch.setenv("BML_NUM_THREADS", "1")
    seed_everything(0)
    assert torch.get_num_threads() == 1
    seed_everything(0, threads=2)
    assert torch.get_num_threads() == 2


@pytest.mark.parametrize("seed", [-1, 1.5, "0", True])
def test_bad_seed_is_rejected(seed):
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        seed_everything(seed)


def test_bad_thread_setting_is_rejected(monkeypatch):
    monkeypatch.setenv("BML_NUM_THREADS", "many")
    with pytest.raises(ValueError, match="BML_NUM_THREADS"):
        default_threads()


def test_device_is_cuda_only_when_available():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert get_device().type == expected
    assert get_device("cpu").type == "cpu"


def test_bad_device_is_rejected():
    with pytest.raises(ValueError, match="device must be"):
        get_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            get_device("cuda")


def test_seed_everything_gives_blas_one_thread():
    from threadpoolctl import threadpool_info

    seed_everything(0)
    assert {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"} == {1}
