"""utils.federated against the trusted versions: torch's autograd and nn.Module training, plain averaging,
numpy set arithmetic; secure aggregation and secret sharing on their defining properties; utils.distributed
on a real two-process group."""

import numpy as np
import pytest
import torch

from utils import federated as fl
from utils.distributed import launch
from utils.serving import mlp_from_sizes

SIZES = [6, 5, 3]


def _clients(seed=0, n_clients=3):
    rng = np.random.default_rng(seed)
    return [(rng.normal(size=(n, 6)), rng.integers(0, 3, n)) for n in rng.integers(3, 25, n_clients)]


def test_fedavg_weights_by_size_and_keeps_integer_buffers():
    a = {"w": torch.tensor([0.0, 2.0]), "n": torch.tensor(3)}
    b = {"w": torch.tensor([4.0, 6.0]), "n": torch.tensor(6)}
    out = fl.fedavg([a, b], [1, 3])
    torch.testing.assert_close(out["w"], torch.tensor([3.0, 5.0]))
    assert out["n"].dtype == torch.int64 and out["n"].item() == 5  # 0.25 * 3 + 0.75 * 6 = 5.25
    equal = fl.fedavg([a, b], [2, 2])
    torch.testing.assert_close(equal["w"], (a["w"] + b["w"]) / 2)


def test_fedavg_loads_into_a_batchnorm_model():
    models = [torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3)) for _ in range(3)]
    for i, model in enumerate(models):
        model(torch.randn(8 + i, 4))
    merged = fl.fedavg([m.state_dict() for m in models], [10, 20, 30])
    target = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3))
    target.load_state_dict(merged)
    assert merged["1.num_batches_tracked"].dtype == torch.int64


@pytest.mark.parametrize("bad, message", [
    (([], []), "non-empty"),
    (([{"w": torch.zeros(2)}], [1, 2]), "one size per client"),
    (([{"w": torch.zeros(2)}, {"w": torch.zeros(2)}], [1, 0]), "positive"),
    (([{"w": torch.zeros(2)}, {"v": torch.zeros(2)}], [1, 1]), "same model"),
    (([{"w": torch.zeros(2)}, {"w": torch.zeros(3)}], [1, 1]), "same model"),
])
def test_fedavg_rejects_bad_input(bad, message):
    with pytest.raises(ValueError, match=message):
        fl.fedavg(*bad)


@pytest.mark.parametrize("alpha", [0.05, 0.5, 100.0])
def test_dirichlet_split_covers_every_index_once(alpha):
    labels = np.random.default_rng(1).integers(0, 10, 500)
    parts = fl.dirichlet_split(labels, 8, alpha, seed=3)
    assert len(parts) == 8 and all(len(p) > 0 for p in parts)
    np.testing.assert_array_equal(np.sort(np.concatenate(parts)), np.arange(500))
    again = fl.dirichlet_split(labels, 8, alpha, seed=3)
    assert all(np.array_equal(p, q) for p, q in zip(parts, again))


def test_dirichlet_split_skew_grows_as_alpha_falls():
    labels = np.repeat(np.arange(10), 100)

    def classes_per_client(alpha):
        return np.mean([np.mean([(labels[p] == c).mean() > 0.05 for c in range(10)]) * 10
                        for p in fl.dirichlet_split(labels, 10, alpha, seed=0)])
    assert classes_per_client(0.1) < 4 < 9 < classes_per_client(100.0)


def test_dirichlet_split_rejects_bad_input():
    with pytest.raises(ValueError, match="alpha"):
        fl.dirichlet_split([0, 1], 2, 0.0, seed=0)
    with pytest.raises(ValueError, match="n_clients"):
        fl.dirichlet_split([0, 1], 3, 1.0, seed=0)


def test_shard_split_gives_two_classes_per_client_on_sorted_data():
    labels = np.repeat(np.arange(10), 20)
    parts = fl.shard_split(labels, 10, 2, seed=0)
    np.testing.assert_array_equal(np.sort(np.concatenate(parts)), np.arange(200))
    assert all(len(np.unique(labels[p])) <= 2 for p in parts)


def test_manual_gradients_equal_autograd():
    torch.manual_seed(0)
    params = [torch.randn(2, 5, 6), torch.randn(2, 5), torch.randn(2, 3, 5), torch.randn(2, 3)]
    X, y = torch.randn(2, 4, 6), torch.randint(0, 3, (2, 4))
    w = torch.tensor([[1.0, 1.0, 1.0, 0.0], [1.0, 0.0, 0.0, 0.0]])
    w = w / w.sum(dim=1, keepdim=True)
    leaves = [p.clone().requires_grad_(True) for p in params]
    losses = torch.nn.functional.cross_entropy(fl._forward(leaves, X).flatten(0, 1), y.flatten(), reduction="none")
    expected = torch.autograd.grad((losses.view_as(w) * w).sum(), leaves)
    for got, want in zip(fl._mean_loss_gradients(params, X, y, w), expected):
        torch.testing.assert_close(got, want)


@pytest.mark.parametrize("mu, batch_size", [(0.0, 4), (0.5, 7), (0.0, None)])
def test_train_clients_equals_local_update_client_by_client(mu, batch_size):
    clients, start = _clients(), fl.init_state(SIZES, seed=1)
    stacked = fl.train_clients(start, clients, epochs=3, batch_size=batch_size, lr=0.1, seed=5, round_index=2,
                               client_ids=[4, 0, 7], mu=mu)
    for (X, y), cid, got in zip(clients, [4, 0, 7], stacked):
        model = mlp_from_sizes(SIZES)
        model.load_state_dict(start)
        fl.local_update(model, X, y, epochs=3, batch_size=batch_size, lr=0.1, rng=np.random.default_rng([5, 2, cid]), mu=mu)
        for key, value in model.state_dict().items():
            torch.testing.assert_close(got[key], value, atol=1e-5, rtol=0)


def test_fedsgd_equals_one_full_batch_step_on_the_union():
    clients, start = _clients(seed=2), fl.init_state(SIZES, seed=0)
    local = fl.train_clients(start, clients, epochs=1, batch_size=None, lr=0.3, seed=0, round_index=0)
    merged = fl.fedavg(local, [len(y) for _, y in clients])
    model = mlp_from_sizes(SIZES)
    model.load_state_dict(start)
    X, y = np.vstack([c[0] for c in clients]), np.concatenate([c[1] for c in clients])
    fl.local_update(model, X, y, epochs=1, batch_size=None, lr=0.3, rng=np.random.default_rng(0))
    for key, value in model.state_dict().items():
        torch.testing.assert_close(merged[key], value, atol=1e-6, rtol=0)


def test_proximal_term_and_its_gradient():
    w, g = torch.tensor([3.0, 4.0], requires_grad=True), torch.tensor([1.0, 1.0])
    term = fl.proximal_term([w], [g], mu=0.2)
    assert term.item() == pytest.approx(0.1 * (4 + 9))
    term.backward()
    torch.testing.assert_close(w.grad, 0.2 * (w.detach() - g))
    with pytest.raises(ValueError, match="mu"):
        fl.proximal_term([w], [g], mu=-1.0)


def test_run_federated_learns_and_reports_rounds():
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 3, (3, 6))
    y = rng.integers(0, 3, 300)
    X = centres[y] + rng.normal(size=(300, 6))
    parts = fl.dirichlet_split(y[:240], 4, 1.0, seed=0)
    run = fl.run_federated([(X[p], y[p]) for p in parts], X[240:], y[240:], sizes=SIZES, rounds=5, epochs=2,
                           batch_size=8, lr=0.1, seed=0)
    assert len(run.accuracy) == 5 and run.accuracy[-1] > 0.9 and run.rounds_to(0.9) <= 5
    assert run.rounds_to(1.01) is None


@pytest.mark.parametrize("n_clients", [2, 3, 7])
def test_pairwise_masks_cancel_and_are_pairwise(n_clients):
    masks = fl.pairwise_masks(n_clients, 50, seed=4)
    np.testing.assert_allclose(masks.sum(axis=0), 0.0, atol=1e-9)
    assert np.abs(masks).mean() > 100  # large enough to hide an update of size ~1
    shared = np.random.default_rng([4, 0, 1]).normal(0.0, 1000.0, 50)
    if n_clients == 2:
        np.testing.assert_allclose(masks[0], shared)
    with pytest.raises(ValueError, match="at least 2"):
        fl.pairwise_masks(1, 5, seed=0)


def test_shamir_threshold_recovers_and_fewer_do_not():
    rng = np.random.default_rng(0)
    secret = 123456789012345678901234567890
    shares = fl.shamir_split(secret, 5, 3, rng)
    assert fl.shamir_combine(shares[:3]) == secret == fl.shamir_combine([shares[4], shares[1], shares[2]])
    assert fl.shamir_combine(shares[:2]) != secret


def test_invert_linear_gradient_recovers_one_input_exactly():
    torch.manual_seed(0)
    layer, x = torch.nn.Linear(6, 4), torch.rand(6)
    torch.nn.functional.cross_entropy(layer(x)[None], torch.tensor([2])).backward()
    np.testing.assert_allclose(fl.invert_linear_gradient(layer.weight.grad, layer.bias.grad), x.numpy(), atol=1e-5)
    with pytest.raises(ValueError, match="zero"):
        fl.invert_linear_gradient(np.zeros((2, 3)), np.zeros(2))


def test_the_protocol_over_real_processes_equals_the_loop():
    clients = _clients(seed=3, n_clients=2)
    results = launch(fl.fedavg_worker, 3, clients, SIZES, rounds=2, epochs=1, batch_size=4, lr=0.1, seed=0)
    loop = fl.run_federated(clients, clients[0][0], clients[0][1], sizes=SIZES, rounds=2, epochs=1, batch_size=4,
                            lr=0.1, seed=0)
    for key, value in loop.state.items():
        np.testing.assert_allclose(results[0][key], value.numpy(), atol=1e-5)
    assert results[1] == results[2] == 2 * 4 * sum(v.numel() for v in loop.state.values())


def test_launch_refuses_a_worker_defined_in_a_notebook():
    def worker(rank, world_size):
        return rank
    with pytest.raises(ValueError, match="importable module"):
        launch(worker, 2)


def test_predict_matches_the_nn_module_and_accuracy_uses_it():
    state = fl.init_state(SIZES, seed=3)
    model = mlp_from_sizes(SIZES)
    model.load_state_dict(state)
    X, y = _clients(seed=4, n_clients=1)[0]
    with torch.no_grad():
        expected = model(torch.as_tensor(X, dtype=torch.float32)).argmax(1).numpy()
    np.testing.assert_array_equal(fl.predict(state, X), expected)
    assert fl.accuracy(state, X, y) == pytest.approx(np.mean(expected == y))
