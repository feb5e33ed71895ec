"""utils.privacy: the accountant equals Opacus's, DP-SGD's pieces match their definitions, bad input is refused."""

import hashlib
import hmac
import itertools
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from opacus.accountants import RDPAccountant
from torch import nn

from utils import privacy


@pytest.mark.parametrize("sigma, q, steps", list(itertools.product([0.5, 1.1, 3.0], [0.004, 0.05, 0.4, 1.0], [1, 300])))
def test_rdp_epsilon_matches_opacus(sigma, q, steps):
    accountant = RDPAccountant()
    accountant.history = [(sigma, q, steps)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = accountant.get_epsilon(1e-5)
    assert abs(privacy.rdp_epsilon(sigma, q, steps, 1e-5) - theirs) <= 0.01 * theirs


def test_noise_for_epsilon_hits_the_target():
    sigma = privacy.noise_for_epsilon(2.0, 0.05, 400, 1e-5)
    assert privacy.rdp_epsilon(sigma, 0.05, 400, 1e-5) <= 2.0 < privacy.rdp_epsilon(sigma - 0.01, 0.05, 400, 1e-5)


@pytest.mark.parametrize("kwargs, message", [
    (dict(noise_multiplier=0.0, sample_rate=0.1, steps=10, delta=1e-5), "noise_multiplier"),
    (dict(noise_multiplier=1.0, sample_rate=1.5, steps=10, delta=1e-5), "sample_rate"),
    (dict(noise_multiplier=1.0, sample_rate=0.0, steps=10, delta=1e-5), "sample_rate"),
    (dict(noise_multiplier=1.0, sample_rate=0.1, steps=0, delta=1e-5), "steps"),
    (dict(noise_multiplier=1.0, sample_rate=0.1, steps=10, delta=0.0), "delta"),
])
def test_rdp_epsilon_refuses_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        privacy.rdp_epsilon(**kwargs)


def test_laplace_mechanism_scale_and_errors():
    rng = np.random.default_rng(0)
    noise = np.array([privacy.laplace_mechanism(0.0, 2.0, 0.5, rng) for _ in range(20000)])
    assert np.mean(np.abs(noise)) == pytest.approx(4.0, rel=0.03)
    for bad, message in ((dict(sensitivity=0, epsilon=1), "sensitivity"), (dict(sensitivity=1, epsilon=-1), "epsilon")):
        with pytest.raises(ValueError, match=message):
            privacy.laplace_mechanism(1.0, rng=rng, **bad)


def test_per_sample_gradients_equal_one_backward_per_example():
    torch.manual_seed(0)
    model, loss_fn = nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 3)), nn.CrossEntropyLoss()
    X, y = torch.randn(6, 5), torch.tensor([0, 1, 2, 0, 1, 2])
    grads = privacy.per_sample_gradients(model, loss_fn, X, y)
    for i in range(6):
        model.zero_grad()
        loss_fn(model(X[i:i + 1]), y[i:i + 1]).backward()
        for name, parameter in model.named_parameters():
            torch.testing.assert_close(grads[name][i], parameter.grad)


def test_clip_and_noise_bounds_each_example_and_adds_the_right_noise():
    per_sample = {"w": torch.tensor([[3.0, 4.0], [0.3, 0.4]]), "b": torch.zeros(2, 1)}
    clipped = privacy.clip_and_noise(per_sample, max_norm=1.0, noise_multiplier=0.0)
    torch.testing.assert_close(clipped["w"], torch.tensor([0.9, 1.2]))
    wide = {"w": torch.zeros(2, 50000)}
    noisy = privacy.clip_and_noise(wide, max_norm=0.5, noise_multiplier=2.0, generator=torch.Generator().manual_seed(0))
    assert noisy["w"].std().item() == pytest.approx(1.0, rel=0.02)
    with pytest.raises(ValueError, match="max_norm"):
        privacy.clip_and_noise(per_sample, max_norm=0, noise_multiplier=1.0)


def test_clip_and_noise_on_flattened_rows_equals_the_dict_form():
    rows = torch.randn(6, 5, generator=torch.Generator().manual_seed(1)) * 3
    flat = privacy.clip_and_noise(rows, 1.0, 0.7, torch.Generator().manual_seed(2))
    split = privacy.clip_and_noise({"a": rows[:, :2], "b": rows[:, 2:]}, 1.0, 0.0)
    noiseless = privacy.clip_and_noise(rows, 1.0, 0.0)
    torch.testing.assert_close(noiseless, torch.cat([split["a"], split["b"]]))
    assert flat.shape == (5,) and not torch.equal(flat, noiseless)
    with pytest.raises(ValueError, match="shape"):
        privacy.clip_and_noise(torch.ones(3), 1.0, 0.0)


def test_dp_sgd_learns_and_counts_its_steps():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 4)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    torch.manual_seed(0)
    model = nn.Linear(4, 2)
    steps = privacy.train_dp_sgd(model, X, y, epochs=5, sample_rate=0.1, max_norm=1.0, noise_multiplier=1.0, lr=1.0)
    assert steps == 50
    with torch.no_grad():
        accuracy = (model(torch.as_tensor(X)).argmax(1).numpy() == y).mean()
    assert accuracy > 0.85


def test_membership_advantage_is_zero_for_identical_losses_and_one_for_separated():
    same = np.linspace(0, 1, 50)
    assert privacy.membership_advantage(same, same)[0] == pytest.approx(0.0, abs=1e-12)
    assert privacy.membership_advantage(np.zeros(10), np.ones(10)) == (1.0, 1.0)


def test_k_anonymity_unique_share_and_hmac():
    table = pd.DataFrame({"a": [1, 1, 2, 2, 2], "b": ["x", "x", "y", "y", "z"]})
    assert privacy.k_anonymity(table, ["a"]) == 2 and privacy.k_anonymity(table, ["a", "b"]) == 1
    assert privacy.unique_share(table, ["a", "b"]) == 0.2
    with pytest.raises(ValueError, match="not columns"):
        privacy.k_anonymity(table, ["zip"])
    key = bytes(32)
    assert privacy.hmac_pseudonym("7", key) == hmac.new(key, b"7", hashlib.sha256).hexdigest()
    with pytest.raises(ValueError, match="16 random bytes"):
        privacy.hmac_pseudonym("7", b"short")


def test_exposure_by_definition_and_its_errors():
    assert privacy.exposure([-3.0, -1.0, -2.0, -5.0], 1) == 2.0
    assert privacy.exposure([-3.0, -1.0, -2.0, -5.0], 3) == 0.0                  # least likely of 4
    assert privacy.exposure(torch.tensor([0.0, 0.0, -1.0]), 0) == pytest.approx(np.log2(3))   # ties do not count
    rng = np.random.default_rng(0)
    scores = rng.normal(size=1000)
    for secret in rng.integers(0, 1000, 20):
        rank = 1 + np.argsort(-scores).tolist().index(secret)
        assert privacy.exposure(scores, int(secret)) == pytest.approx(np.log2(1000) - np.log2(rank))
    for bad, message in [(([1.0], 0), "at least 2"), (([1.0, np.nan], 0), "NaN"), (([1.0, 2.0], 2), "index"),
                         (([1.0, 2.0], 1.0), "index"), (([[1.0, 2.0]], 0), "1-D")]:
        with pytest.raises(ValueError, match=message):
            privacy.exposure(*bad)


def test_secret_log_probs_equal_scoring_each_secret_alone():
    from utils import lm

    torch.manual_seed(0)
    model = lm.GPT(lm.GPTConfig(context=32, d_model=32, n_heads=2, n_layers=1))
    prefixes = ["pin 01: ", "pin 02: "]
    tree = privacy.secret_log_probs(model, prefixes, digits=2)
    assert tree.shape == (2, 100)
    for row, prefix in enumerate(prefixes):
        for secret in (0, 7, 42, 99):
            ids = torch.tensor([list(f"{prefix}{secret:02d}".encode())])
            log_p = torch.log_softmax(model(ids[:, :-1]), dim=-1)[0, -2:].gather(1, ids[0, -2:, None]).sum()
            assert tree[row, secret] == pytest.approx(float(log_p), abs=1e-5)
    assert (tree.exp().sum(dim=1) < 1).all()        # the other 246 bytes take the rest of the probability
    with pytest.raises(ValueError, match="same length"):
        privacy.secret_log_probs(model, ["a", "bb"], digits=2)
    with pytest.raises(ValueError, match="digits"):
        privacy.secret_log_probs(model, ["a"], digits=0)


def test_membership_p_value_is_the_ks_test_of_the_advantage():
    from scipy import stats

    rng = np.random.default_rng(0)
    same = privacy.membership_p_value(rng.random(300), rng.random(300))
    shifted_members = privacy.membership_p_value(rng.random(300) * 0.8, rng.random(300))   # members lower: a leak
    assert same > 0.01 and shifted_members < 1e-4
    # the advantage is the KS statistic the p-value belongs to
    members, outsiders = rng.random(50), rng.random(60) + 0.1
    assert privacy.membership_advantage(members, outsiders)[0] == pytest.approx(
        stats.ks_2samp(members, outsiders, alternative="greater").statistic)
    # under the null, p < 0.05 about 5% of the time (the test is calibrated, not just small)
    p = [privacy.membership_p_value(rng.random(100), rng.random(100)) for _ in range(400)]
    assert 0.02 < np.mean(np.array(p) < 0.05) < 0.09
    with pytest.raises(ValueError, match="1-D"):
        privacy.membership_p_value([1.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="finite"):
        privacy.membership_p_value([1.0, np.nan], [1.0, 2.0])


def test_tpr_at_fpr_counts_members_below_the_non_member_quantile():
    members, outsiders = np.array([0.1, 0.2, 5.0, 6.0]), np.array([1.0, 2.0, 3.0, 4.0])
    assert privacy.tpr_at_fpr(members, outsiders, 0.0) == 0.5      # below every non-member
    assert privacy.tpr_at_fpr(members, outsiders, 0.25) == 0.5     # one non-member (1.0) may be flagged: threshold 2.0
    assert privacy.tpr_at_fpr(members, outsiders, 1.0) == 1.0
    rng = np.random.default_rng(1)
    a, b = rng.random(1000), rng.random(1000)
    assert abs(privacy.tpr_at_fpr(a, b, 0.1) - 0.1) < 0.04            # no leak: TPR = FPR
    with pytest.raises(ValueError, match="fpr"):
        privacy.tpr_at_fpr(members, outsiders, 1.5)
