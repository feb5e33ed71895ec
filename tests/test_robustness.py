"""utils.robustness against the Adversarial Robustness Toolbox and against what each function promises."""

import numpy as np
import pytest
import torch
from torch import nn

from utils import robustness as R


def _model(seed=0, dropout=False):
    torch.manual_seed(seed)
    layers = [nn.Linear(16, 12), nn.ReLU()] + ([nn.Dropout(0.5)] if dropout else []) + [nn.Linear(12, 3)]
    return nn.Sequential(*layers)


def _data(n=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 16, generator=g)
    x[:5] = 0.0                         # rows on the edges of the valid range: the clamp matters
    x[5:10] = 1.0
    return x, torch.randint(0, 3, (n,), generator=g)


def _art(model):
    from art.estimators.classification import PyTorchClassifier
    return PyTorchClassifier(model=model, loss=nn.CrossEntropyLoss(), input_shape=(16,), nb_classes=3,
                             clip_values=(0.0, 1.0))


@pytest.mark.parametrize("eps", [0.0, 0.05, 0.3])
def test_fgsm_equals_art(eps):
    from art.attacks.evasion import FastGradientMethod
    model, (x, y) = _model(), _data()
    art = FastGradientMethod(_art(model), norm=np.inf, eps=eps).generate(x.numpy(), y=np.eye(3)[y.numpy()])
    np.testing.assert_allclose(R.fgsm(model, x, y, eps).numpy(), art, atol=1e-7)


def test_pgd_without_random_start_equals_art():
    from art.attacks.evasion import ProjectedGradientDescent
    model, (x, y) = _model(1), _data(seed=1)
    art = ProjectedGradientDescent(_art(model), norm=np.inf, eps=0.2, eps_step=0.05, max_iter=7, num_random_init=0,
                                   batch_size=len(x), verbose=False).generate(x.numpy(), y=np.eye(3)[y.numpy()])
    np.testing.assert_allclose(R.pgd(model, x, y, 0.2, 0.05, 7, random_start=False).numpy(), art, atol=1e-6)


@pytest.mark.parametrize("random_start", [True, False])
def test_pgd_stays_in_the_ball_and_the_range_and_raises_the_loss(random_start):
    model, (x, y) = _model(2), _data(seed=2)
    adv = R.pgd(model, x, y, eps=0.1, alpha=0.04, steps=10, random_start=random_start)
    assert (adv - x).abs().max() <= 0.1 + 1e-6 and adv.min() >= 0 and adv.max() <= 1
    loss = nn.functional.cross_entropy
    with torch.no_grad():
        assert loss(model(adv), y) > loss(model(x), y)
        assert loss(model(adv), y) >= loss(model(R.fgsm(model, x, y, 0.1)), y) - 1e-6


def test_pgd_seed_decides_the_random_start():
    model, (x, y) = _model(), _data()
    a, b = (R.pgd(model, x, y, 0.1, 0.01, 1, seed=s) for s in (0, 0))
    assert torch.equal(a, b)
    assert not torch.equal(a, R.pgd(model, x, y, 0.1, 0.01, 1, seed=1))


def test_attacks_leave_the_model_in_its_mode_and_use_eval_mode():
    model, (x, y) = _model(dropout=True), _data()
    model.train()
    first = R.fgsm(model, x, y, 0.1)
    assert model.training                               # left as it was
    assert torch.equal(first, R.fgsm(model, x, y, 0.1))   # dropout off during the attack: deterministic
    model.eval()
    R.pgd(model, x, y, 0.1, 0.05, 2)
    assert not model.training


def test_attacks_refuse_bad_input():
    model, (x, y) = _model(), _data()
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        R.fgsm(model, x * 255, y, 0.1)
    with pytest.raises(TypeError, match="torch.long"):
        R.fgsm(model, x, y.float(), 0.1)
    with pytest.raises(ValueError, match="eps"):
        R.pgd(model, x, y, -0.1, 0.01, 3)
    with pytest.raises(ValueError, match="steps"):
        R.pgd(model, x, y, 0.1, 0.01, 2.5)


def test_trigger_and_poison():
    x = np.zeros((100, 64))
    y = np.repeat(np.arange(10), 10)
    stamped = R.add_trigger(x[:1], size=2)
    assert stamped.reshape(8, 8)[6:, 6:].sum() == 4 and stamped.sum() == 4 and x.sum() == 0
    xp, yp, idx = R.poison(x, y, rate=0.05, target=3, seed=0)
    assert len(idx) == 5 and (y[idx] != 3).all() and (yp[idx] == 3).all() and (y == np.repeat(np.arange(10), 10)).all()
    assert np.array_equal(np.flatnonzero((xp != x).any(1)), idx)
    with pytest.raises(ValueError, match="does not fit"):
        R.add_trigger(x, size=3, row=6)


def test_attack_success_rate_leaves_out_the_target_class():
    assert R.attack_success_rate([1, 1, 1, 0], [1, 0, 2, 2], target=1) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="undefined"):
        R.attack_success_rate([1, 1], [1, 1], target=1)


def test_spectral_signatures_rank_a_planted_direction_first():
    rng = np.random.default_rng(0)
    clean = rng.normal(size=(200, 20))
    planted = rng.normal(size=(10, 20)) + 6 * np.eye(20)[0]
    scores = R.spectral_signature_scores(np.vstack([clean, planted]))
    assert set(np.argsort(scores)[-10:]) == set(range(200, 210))


def test_trigger_scan_finds_a_planted_backdoor():
    model = nn.Linear(64, 2)
    with torch.no_grad():
        model.weight.zero_()
        model.bias.copy_(torch.tensor([1.0, 0.0]))
        model.weight[1, 63] = 10.0                       # pixel (7, 7) lit sends everything to class 1
    scan = R.trigger_scan(model, np.zeros((20, 64)), size=1)
    top = max(scan, key=lambda r: r["share"])
    assert (top["row"], top["col"], top["class"], top["share"]) == (7, 7, 1, 1.0)
    assert sorted(r["share"] for r in scan)[-2] == 0.0


def test_extraction_is_exact_and_rejects_rounded_answers():
    rng = np.random.default_rng(3)
    w, b = rng.normal(size=(5, 8)), rng.normal(size=5)
    calls = []

    def query(q):
        calls.append(len(q))
        return R.softmax_regression_proba(q, w, b)

    w2, b2 = R.extract_softmax_regression(query, n_features=8)
    assert sum(calls) == 9
    probe = rng.random((50, 8))
    np.testing.assert_allclose(R.softmax_regression_proba(probe, w2, b2), R.softmax_regression_proba(probe, w, b),
                               atol=1e-9)
    with pytest.raises(ValueError, match="rounded"):
        R.extract_softmax_regression(lambda q: np.round(R.softmax_regression_proba(q, 20 * w, b), 2), 8)
