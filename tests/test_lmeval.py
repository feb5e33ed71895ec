"""utils.lmeval against its definitions and torch's cross-entropy."""

import math

import numpy as np
import pytest
import torch

from utils import lm, lmeval


def _model():
    torch.manual_seed(0)
    return lm.GPT(lm.GPTConfig(context=32, d_model=32, n_heads=2, n_layers=1)).eval()


def test_bits_per_byte_equals_torch_cross_entropy_over_bytes_and_over_words():
    model, text = _model(), "the cat sat on the mat"
    ids = torch.tensor([list(text.encode())])
    per_byte = torch.nn.functional.cross_entropy(model(ids[:, :-1])[0], ids[0, 1:], reduction="none")
    expected = per_byte.mean().item() / math.log(2)
    assert lmeval.bits_per_byte_from_tokens(per_byte, torch.ones(len(per_byte))) == pytest.approx(expected)
    cuts = [0, 3, 7, 11, 14, 18, len(per_byte)]            # the same losses grouped into "words" of several bytes
    words = [per_byte[a:b].sum() for a, b in zip(cuts, cuts[1:])]
    assert lmeval.bits_per_byte_from_tokens(torch.stack(words), np.diff(cuts)) == pytest.approx(expected)


@pytest.mark.parametrize("nats, sizes, message", [([1.0], [1, 1], "same length"), ([], [], "same length"),
                                                   ([-0.1], [1], "0 or more"), ([np.nan], [1], "finite"),
                                                   ([1.0], [0], "1 or more"), ([1.0], [1.5], "whole")])
def test_bits_per_byte_refuses_bad_input(nats, sizes, message):
    with pytest.raises(ValueError, match=message):
        lmeval.bits_per_byte_from_tokens(nats, sizes)


def test_choice_log_likelihoods_equal_scoring_each_choice_alone():
    model = _model()
    contexts, choices = ["x = 1; print(", "def f"], [["x)", "y", "long_name)"], ["(a):", "oo", "["]]
    scores = lmeval.choice_log_likelihoods(model, contexts, choices)
    assert scores.shape == (2, 3)
    for i, (context, item) in enumerate(zip(contexts, choices)):
        for j, choice in enumerate(item):
            ids = torch.tensor([list((context + choice).encode())])
            n = len(choice.encode())
            loss = torch.nn.functional.cross_entropy(model(ids[:, :-1])[0, -n:], ids[0, -n:], reduction="sum")
            assert scores[i, j] == pytest.approx(-loss.item(), abs=1e-4)
    with pytest.raises(ValueError, match="same number"):
        lmeval.choice_log_likelihoods(model, contexts, [["a", "b"], ["c"]])
    with pytest.raises(ValueError, match="context"):
        lmeval.choice_log_likelihoods(model, ["x" * 40], [["a", "b"]])
    with pytest.raises(ValueError, match="empty"):
        lmeval.choice_log_likelihoods(model, ["x"], [["", "b"]])


def test_ngram_overlap():
    reference = lmeval.word_ngrams("A cat sat on the mat today", 3)
    assert lmeval.ngram_overlap("the cat sat on the mat", reference, 3) == 0.75
    assert lmeval.ngram_overlap("a cat sat on the mat today", reference, 3) == 1.0
    assert lmeval.ngram_overlap("two words", reference, 3) == 0.0
    with pytest.raises(ValueError, match="positive"):
        lmeval.word_ngrams("text", 0)
