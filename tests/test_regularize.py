"""L1/L2 penalties, the penalised loss, and weight sparsity."""

import pytest
import torch
from torch import nn

from utils.regularize import l1_penalty, l2_penalty, penalized_loss, weight_sparsity


def model():
    net = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1))
    with torch.no_grad():
        for parameter in net.parameters():
            parameter.fill_(-2.0)
    return net


def test_penalties_skip_biases_unless_asked():
    net = model()  # weights: 4 + 2 = 6 entries; biases: 2 + 1 = 3 entries, all -2
    assert l2_penalty(net).item() == 6 * 4 and l2_penalty(net, include_bias=True).item() == 9 * 4
    assert l1_penalty(net).item() == 6 * 2 and l1_penalty(net, include_bias=True).item() == 9 * 2


def test_penalized_loss_adds_both_terms_and_backpropagates():
    net = model()
    logits, targets = torch.zeros(3, 2, requires_grad=True), torch.tensor([0, 1, 0])
    base = nn.CrossEntropyLoss()(logits, targets).item()
    loss = penalized_loss(net, l2=0.1, l1=0.01)(logits, targets)
    assert loss.item() == pytest.approx(base + 0.1 * 24 + 0.01 * 12)
    loss.backward()
    assert torch.allclose(net[0].weight.grad, torch.full((2, 2), 0.1 * 2 * -2.0 + 0.01 * -1.0))
    assert net[0].bias.grad is None


def test_negative_strength_is_rejected():
    with pytest.raises(ValueError, match="non-negative"):
        penalized_loss(model(), l2=-1)


def test_weight_sparsity_counts_small_weights_only():
    net = model()
    with torch.no_grad():
        net[0].weight[0].zero_()
    assert weight_sparsity(net) == pytest.approx(2 / 6)
