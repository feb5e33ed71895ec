"""utils.distributed against PyTorch's own: DistributedSampler, dist.all_reduce, DDP, ZeroRedundancyOptimizer, FSDP2.

Every test that needs a process group starts real gloo processes with ``launch`` (a fork server keeps each start
near a tenth of a second).
"""

import multiprocessing

import numpy as np
import pytest
import torch
from torch.utils.data.distributed import DistributedSampler

from utils import distributed as d
from utils import lm

CONFIG = lm.GPTConfig(context=16, d_model=32, n_heads=2, n_layers=2)
KW = dict(config=CONFIG, steps=6, batch_size=4, lr=1e-3, seed=3)


@pytest.fixture(scope="module")
def data():
    train, _ = lm.corpus_split()
    return train[:40 * 17 + 1].clone()


@pytest.mark.parametrize("n,world_size", [(10, 4), (3, 4), (17, 3), (8, 2), (1, 1), (5, 5)])
@pytest.mark.parametrize("shuffle,drop_last", [(True, False), (False, False), (True, True)])
def test_shard_indices_equal_distributed_sampler(n, world_size, shuffle, drop_last):
    if drop_last and n < world_size:
        pytest.skip("nothing to read")
    for seed, epoch in [(0, 0), (5, 2)]:
        for rank in range(world_size):
            sampler = DistributedSampler(range(n), num_replicas=world_size, rank=rank, shuffle=shuffle, seed=seed,
                                         drop_last=drop_last)
            sampler.set_epoch(epoch)
            assert d.shard_indices(n, rank, world_size, shuffle=shuffle, seed=seed, epoch=epoch,
                                   drop_last=drop_last) == list(sampler)


def test_shard_indices_cover_without_overlap():
    shards = [d.shard_indices(12, r, 3, seed=1) for r in range(3)]
    assert sorted(sum(shards, [])) == list(range(12))


@pytest.mark.parametrize("args", [(10, 4, 4), (10, -1, 2), (0, 0, 2), (10, 0, 0), (10.0, 0, 2), (True, 0, 1)])
def test_shard_indices_refuses_bad_input(args):
    with pytest.raises(ValueError):
        d.shard_indices(*args)


def test_rank_batches_plain_sampler_reads_the_same_batches():
    assert d.rank_batches(20, 0, 2, 4, 3, sampler="plain") == d.rank_batches(20, 1, 2, 4, 3, sampler="plain")
    first, second = d.rank_batches(20, 0, 2, 4, 5), d.rank_batches(20, 1, 2, 4, 5)
    assert all(not set(a) & set(b) for a, b in zip(first, second))


def test_zero_memory_per_rank():
    psi, n = 1000, 8
    assert d.zero_memory_per_rank(psi, n, 0)["total"] == 16 * psi
    assert d.zero_memory_per_rank(psi, n, 1)["total"] == 4 * psi + 4 * psi + 8 * psi / n
    assert d.zero_memory_per_rank(psi, n, 2)["total"] == 4 * psi + 12 * psi / n
    assert d.zero_memory_per_rank(psi, n, 3)["total"] == 16 * psi / n
    mixed = d.zero_memory_per_rank(psi, n, 0, weight_bytes=2, gradient_bytes=2, optimizer_bytes=12)
    assert mixed["total"] == 16 * psi  # the ZeRO paper's mixed-precision accounting: same 16 bytes
    for bad in [dict(stage=4), dict(stage=True), dict(world_size=0)]:
        with pytest.raises(ValueError):
            d.zero_memory_per_rank(psi, **{"world_size": n, "stage": 1, **bad})


@pytest.mark.parametrize("stages,micro", [(1, 1), (2, 3), (4, 4), (4, 16)])
def test_pipeline_bubble_is_the_idle_share_of_the_schedule(stages, micro):
    schedule = d.gpipe_schedule(stages, micro)
    slots = max(t for *_, t in schedule) + 1
    assert len({(s, t) for s, _, _, t in schedule}) == len(schedule)          # a stage runs one thing at a time
    assert 1 - len(schedule) / (stages * slots) == pytest.approx(d.pipeline_bubble(stages, micro))


def test_launch_returns_results_by_rank_and_refuses_notebook_workers():
    results = d.launch(d.collectives_worker, 3)
    assert [r["all_reduce"] for r in results] == [[6.0, 6.0]] * 3
    assert [r["reduce_scatter"] for r in results] == [[0.0], [6.0], [12.0]]
    assert results[2]["all_gather"] == [1.0, 2.0, 3.0] and results[1]["broadcast"] == [1.0, 1.0]

    def local(rank, world_size):
        return rank
    with pytest.raises(ValueError, match="importable"):
        d.launch(local, 2)
    with pytest.raises(ValueError, match="world_size"):
        d.launch(d.collectives_worker, 0)


def test_a_failing_rank_is_named_and_no_process_is_left(data, tmp_path):
    with pytest.raises(RuntimeError, match=r"rank 1 of 2 failed(.|\n)*simulated crash"):
        d.launch(d.train_worker, 2, data, strategy="ddp", crash_at=1, **KW)
    assert multiprocessing.active_children() == []


@pytest.mark.parametrize("world_size", [2, 3, 4])
@pytest.mark.parametrize("size", [1, 5, 1001])
def test_ring_all_reduce_equals_all_reduce(world_size, size):
    for result in d.launch(d.all_reduce_worker, world_size, size):
        assert result["ring_error"] < 1e-5 and result["naive_error"] < 1e-5
        per_rank = 2 * (world_size - 1) / world_size * result["tensor_bytes"]
        assert abs(result["ring_bytes"] - per_rank) <= 2 * (world_size - 1) * 4  # chunks differ by one element
    assert sum(r["naive_bytes"] for r in d.launch(d.all_reduce_worker, world_size, size)) == \
        2 * (world_size - 1) * size * 4


def test_ring_all_reduce_needs_a_process_group():
    with pytest.raises(RuntimeError, match="process group"):
        d.ring_all_reduce(torch.zeros(3))


def test_every_strategy_equals_single_process_training_on_the_combined_batch(data):
    reference = d.train_single(data, world_size=2, **KW)
    for strategy in d.STRATEGIES:
        ranks = d.launch(d.train_worker, 2, data, strategy=strategy, **KW)
        for rank in ranks:
            assert np.abs(rank["params"] - reference).max() < 1e-5, strategy
        if strategy == "zero1":
            # moments 8/2 plus the fp32 copy of the shard 4/2: 6 bytes per parameter against the weights' 4
            assert ranks[0]["bytes"]["optimizer"] == pytest.approx(1.5 * ranks[0]["bytes"]["weights"], rel=0.01)
        if strategy == "fsdp":
            full = sum(p.numel() for p in lm.GPT(CONFIG).parameters()) * 4
            assert sum(r["bytes"]["weights"] for r in ranks) == pytest.approx(full, rel=0.01)
            assert ranks[0]["bytes"]["weights"] < 0.51 * full


def test_in_float64_data_parallel_equals_the_combined_batch_to_rounding(data):
    reference = d.train_single(data, world_size=2, dtype="float64", **KW)
    ranks = d.launch(d.train_worker, 2, data, strategy="ddp", dtype="float64", **KW)
    assert np.abs(ranks[0]["params"] - reference).max() < 1e-12


def test_a_plain_sampler_trains_on_one_rank_s_data(data):
    single_rank = d.train_single(data, world_size=1, dtype="float64", **KW)
    ranks = d.launch(d.train_worker, 2, data, strategy="manual", sampler="plain", dtype="float64", **KW)
    assert np.abs(ranks[0]["params"] - single_rank).max() < 1e-12


def test_a_crashed_run_resumes_from_its_checkpoint_to_the_same_weights(data, tmp_path):
    uninterrupted = d.launch(d.train_worker, 2, data, strategy="ddp", dtype="float64", **KW)[0]["params"]
    checkpoint = str(tmp_path / "state.pt")
    with pytest.raises(RuntimeError, match="rank 1"):
        d.launch(d.train_worker, 2, data, strategy="ddp", dtype="float64", checkpoint=checkpoint, save_every=2,
                 crash_at=4, **KW)
    assert torch.load(checkpoint, weights_only=True)["step"] == 4
    resumed = d.launch(d.train_worker, 2, data, strategy="ddp", dtype="float64", checkpoint=checkpoint,
                       save_every=2, **KW)
    assert resumed[0]["steps_timed"] == KW["steps"] - 4 - 1
    assert np.abs(resumed[0]["params"] - uninterrupted).max() < 1e-12


@pytest.mark.parametrize("world_size", [2, 3])
def test_tensor_parallel_mlp_equals_the_unsplit_layer(world_size):
    g = torch.Generator().manual_seed(0)
    x, a, b = torch.randn(5, 8, generator=g), torch.randn(8, 10, generator=g), torch.randn(10, 8, generator=g)
    expected = (torch.nn.functional.gelu(x @ a) @ b).numpy()
    results = d.launch(d.tensor_parallel_worker, world_size, x, a, b)
    for result in results:
        np.testing.assert_allclose(result["output"], expected, atol=1e-5)
    assert sum(r["weight_share"] for r in results) == pytest.approx(1.0)


@pytest.mark.parametrize("world_size,size", [(1, 3), (2, 1), (3, 10), (4, 3), (5, 1001)])
def test_simulated_ring_equals_the_real_one(world_size, size):
    g = torch.Generator().manual_seed(world_size)
    tensors = [torch.randn(size, generator=g) for _ in range(world_size)]
    before = [t.clone() for t in tensors]
    results, sent = d.simulate_ring_all_reduce(tensors)
    for result in results:
        torch.testing.assert_close(result, sum(before), atol=1e-5, rtol=1e-5)
    assert all(torch.equal(a, b) for a, b in zip(tensors, before))
    real = d.launch(d.all_reduce_worker, world_size, size) if world_size > 1 else [{"ring_bytes": 0}]
    assert [4 * s for s in sent] == [r["ring_bytes"] for r in real]


def test_combine_gradients_equals_the_gradient_of_the_combined_batch():
    torch.manual_seed(0)
    model, x, y = torch.nn.Linear(3, 2), torch.randn(7, 3), torch.randint(0, 2, (7,))
    loss = torch.nn.functional.cross_entropy
    def grads(rows):
        model.zero_grad()
        loss(model(x[rows]), y[rows]).backward()
        return {n: p.grad.clone() for n, p in model.named_parameters()}
    combined = d.combine_gradients([grads(slice(0, 2)), grads(slice(2, 7))], [2, 5])
    for name, value in grads(slice(0, 7)).items():
        torch.testing.assert_close(combined[name], value)
    with pytest.raises(ValueError):
        d.combine_gradients([{}], [0])


def test_torchrun_runs_the_same_training(tmp_path):
    import subprocess
    import sys
    out = tmp_path / "weights.npy"
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m",
                    "utils.distributed", "--steps", "4", "--windows", "40", "--context", "16", "--d-model", "32",
                    "--out", str(out)], check=True, capture_output=True, timeout=300)  # three fresh interpreters import torch: slow on a loaded machine
    reference = d.train_single(d.demo_data(16, 40), config=lm.GPTConfig(context=16, d_model=32, n_heads=4, n_layers=2),
                               steps=4, batch_size=8, world_size=2)
    assert np.abs(np.load(out) - reference).max() < 1e-5


def test_step_times_worker_interleaves_the_strategies_and_validates(data):
    results = d.launch(d.step_times_worker, 2, data, config=CONFIG, batch_size=2, rounds=3)
    for result in results:
        times, calls = result["seconds"], result["all_reduce_calls_per_step"]
        assert set(times) == {"manual", "ring", "ddp"} and all(len(v) == 3 and min(v) > 0 for v in times.values())
        assert calls["manual"] == len(list(lm.GPT(CONFIG).parameters())) and calls["ddp"] == 1  # one 25 MB bucket
    with pytest.raises(RuntimeError, match="compares"):
        d.launch(d.step_times_worker, 1, data, config=CONFIG, batch_size=2, rounds=1, strategies=("fsdp",))


def test_wrap_returns_the_model_to_call_and_the_optimizer_to_step():
    from utils.show import source
    text = source(d.wrap).data
    assert "DistributedDataParallel(model)" in text and "fully_shard(block)" in text and "ZeroRedundancyOptimizer(" in text


def test_busy_worker_computes_for_the_cpu_time_asked():
    walls = d.launch(d.busy_worker, 1, 0.05)
    assert walls[0] >= 0.05
    with pytest.raises(RuntimeError, match="seconds must be"):
        d.launch(d.busy_worker, 1, -1.0)
