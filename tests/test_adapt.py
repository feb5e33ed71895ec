"""utils.adapt against peft (LoRA), closed forms (uncertainty) and scikit-learn's SelfTrainingClassifier."""

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.semi_supervised import SelfTrainingClassifier
from torch import nn

from utils import adapt, lm


def test_lora_starts_at_the_base_function_and_merges_exactly():
    torch.manual_seed(0)
    base = nn.Linear(6, 5)
    layer = adapt.LoRALinear(base, rank=2, alpha=4)
    x = torch.randn(3, 6)
    assert torch.equal(layer(x), base(x))                     # B = 0: the pretrained function, exactly
    with torch.no_grad():
        layer.lora_B.normal_()
    merged = layer.merge()
    torch.testing.assert_close(merged(x), layer(x), atol=1e-6, rtol=1e-6)
    assert [n for n, p in layer.named_parameters() if p.requires_grad] == ["lora_A", "lora_B"]
    assert layer.scaling == 2.0 and not torch.equal(merged.weight, base.weight)


@pytest.mark.parametrize("bad", [dict(rank=0), dict(rank=7), dict(rank=2.0)])
def test_lora_refuses_bad_ranks(bad):
    with pytest.raises(ValueError):
        adapt.LoRALinear(nn.Linear(6, 5), **{"alpha": 1, **bad})
    with pytest.raises(TypeError):
        adapt.LoRALinear(nn.Conv1d(1, 1, 1), 1, 1)


def test_lora_on_the_course_model_equals_peft_with_the_same_weights():
    import peft

    config = lm.GPTConfig(context=16, d_model=32, n_heads=4, n_layers=2)
    torch.manual_seed(0)
    ours = lm.GPT(config)
    torch.manual_seed(0)
    theirs = peft.get_peft_model(lm.GPT(config), peft.LoraConfig(
        r=4, lora_alpha=8, target_modules=["qkv", "proj", "mlp.0", "mlp.2"], lora_dropout=0.0))
    replaced = adapt.add_lora(ours, 4, 8, ["qkv", "proj", "mlp.0", "mlp.2"])
    assert len(replaced) == 8
    trainable, _ = adapt.trainable_parameters(ours)
    assert trainable == sum(p.numel() for p in theirs.parameters() if p.requires_grad)
    with torch.no_grad():          # give both the same non-zero adapters
        for name, module in ours.named_modules():
            if isinstance(module, adapt.LoRALinear):
                module.lora_B.normal_(0, 0.1)
                target = theirs.base_model.model.get_submodule(name)
                target.lora_A["default"].weight.copy_(module.lora_A)
                target.lora_B["default"].weight.copy_(module.lora_B)
    x = torch.randint(0, 256, (2, 16))
    torch.testing.assert_close(ours(x), theirs(x), atol=1e-5, rtol=1e-5)
    merged = adapt.merge_lora(ours)
    torch.testing.assert_close(merged(x), theirs(x), atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="no nn.Linear"):
        adapt.add_lora(lm.GPT(config), 2, 2, ["nothing"])


def test_uncertainty_scores():
    proba = np.array([[0.7, 0.2, 0.1], [0.4, 0.4, 0.2], [1.0, 0.0, 0.0]])
    np.testing.assert_allclose(adapt.uncertainty_scores(proba, "least_confidence"), [0.3, 0.6, 0.0])
    np.testing.assert_allclose(adapt.uncertainty_scores(proba, "margin"), [0.5, 1.0, 0.0])
    entropy = [-(0.7 * np.log(0.7) + 0.2 * np.log(0.2) + 0.1 * np.log(0.1)), -(2 * 0.4 * np.log(0.4) + 0.2 * np.log(0.2)), 0.0]
    np.testing.assert_allclose(adapt.uncertainty_scores(proba, "entropy"), entropy)
    for bad in ([0.5, 0.5], [[1.0]]):
        with pytest.raises(ValueError):
            adapt.uncertainty_scores(bad)
    with pytest.raises(ValueError):
        adapt.uncertainty_scores(proba, "variance")


@pytest.mark.parametrize("threshold,max_iter", [(0.75, 10), (0.9, 2), (0.99, 10)])
def test_self_training_equals_scikit_learn(threshold, max_iter):
    from sklearn.datasets import load_digits
    X, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(0)
    partial = np.full(len(y), -1)
    keep = rng.choice(len(y), 60, replace=False)
    partial[keep] = y[keep]
    make = lambda: LogisticRegression(max_iter=500)   # noqa: E731
    model, labels = adapt.self_training(make, X, partial, threshold=threshold, max_iter=max_iter)
    reference = SelfTrainingClassifier(make(), threshold=threshold, max_iter=max_iter).fit(X, partial)
    np.testing.assert_array_equal(labels, reference.transduction_)
    np.testing.assert_allclose(model.predict_proba(X), reference.predict_proba(X))


def test_tune_lr_keeps_the_rate_with_the_lowest_validation_loss():
    config = lm.GPTConfig(context=16, d_model=16, n_heads=2, n_layers=1)
    data = torch.tensor(list(b"abcabcabd" * 40), dtype=torch.long)
    train, val = data[:280], data[280:]
    made = []

    def make():
        made.append(lm.GPT(config))
        return made[-1]

    result = adapt.tune_lr(make, (1e-5, 3e-2), train, val, steps=12, eval_every=4, eval_batches=2)
    assert len(made) == 2 and set(result["val_bpb"]) == {1e-5, 3e-2}
    assert result["lr"] == min(result["val_bpb"], key=result["val_bpb"].get) == 3e-2   # a tiny rate barely moves
    assert result["model"] is made[1]
    assert result["val_bpb"][3e-2] == min(h["val_bpb"] for h in result["history"])
    for bad in ((), (0.0,), (-1e-3,), ("1e-3",)):
        with pytest.raises(ValueError):
            adapt.tune_lr(make, bad, train, val, steps=1)
