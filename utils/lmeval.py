"""Evaluating a language model: bits per byte from token losses, multiple-choice scoring by log-likelihood,
and benchmark contamination as word n-gram overlap.

``tests/test_lmeval.py`` checks the scores against scoring each choice on its own with ``torch.nn.functional.cross_entropy``.
"""

from __future__ import annotations

import math
import re

import numpy as np
import torch


def bits_per_byte_from_tokens(token_nats, token_bytes) -> float:
    """Total loss in bits over total bytes: sum(token_nats) / ln 2 / sum(token_bytes).

    ``token_nats[i]`` is the cross-entropy (natural log) of token ``i``, ``token_bytes[i]`` how many bytes of
    text it covers. Unlike perplexity per token, the result does not depend on how the text was cut into tokens,
    so models with different tokenizers can be compared on the same text.

    >>> bits_per_byte_from_tokens([math.log(2), math.log(4)], [1, 1])       # 1 bit, then 2 bits
    1.5
    >>> bits_per_byte_from_tokens([math.log(8)], [2])                      # one token of 2 bytes, 3 bits
    1.5
    """
    nats = np.asarray(token_nats.detach().cpu() if isinstance(token_nats, torch.Tensor) else token_nats, dtype=float)
    sizes = np.asarray(token_bytes.detach().cpu() if isinstance(token_bytes, torch.Tensor) else token_bytes, dtype=float)
    if nats.ndim != 1 or sizes.shape != nats.shape or len(nats) == 0:
        raise ValueError(f"token_nats and token_bytes must be 1-D and the same length (one entry per token), got "
                         f"shapes {nats.shape} and {sizes.shape}")
    if not np.all(np.isfinite(nats)) or np.any(nats < 0):
        raise ValueError("token_nats must be finite cross-entropies, 0 or more (a negative loss is not a -log probability)")
    if np.any(sizes < 1) or np.any(sizes != np.round(sizes)):
        raise ValueError("token_bytes must be whole numbers of bytes, 1 or more per token")
    return float(nats.sum() / math.log(2) / sizes.sum())


@torch.no_grad()
def choice_log_likelihoods(model: torch.nn.Module, contexts: list[str], choices: list[list[str]]) -> np.ndarray:
    """log p(choice | context), summed over the choice's bytes, for a byte-level model: shape (items, choices).

    Every item must have the same number of choices. All items run as one padded batch per chunk; padding sits
    after each choice, where the causal mask keeps it from touching the scored bytes.
    """
    if len(contexts) != len(choices) or not contexts:
        raise ValueError(f"give one list of choices per context, got {len(contexts)} contexts and {len(choices)} lists")
    n_choices = {len(c) for c in choices}
    if len(n_choices) != 1:
        raise ValueError(f"every item needs the same number of choices, got {sorted(n_choices)}")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    rows = [(list(context.encode("utf-8")), list(choice.encode("utf-8")))
            for context, item in zip(contexts, choices) for choice in item]
    if any(not answer for _, answer in rows):
        raise ValueError("a choice is empty; every choice needs at least one byte")
    longest = max(len(c) + len(a) for c, a in rows)
    if longest > model.config.context + 1:
        raise ValueError(f"context + choice is {longest} bytes, more than the model's context + 1 "
                         f"({model.config.context + 1}); shorten the contexts")
    scores = []
    for start in range(0, len(rows), 512):
        chunk = rows[start:start + 512]
        ids = torch.tensor([c + a + [32] * (longest - len(c) - len(a)) for c, a in chunk], device=device)
        log_p = torch.log_softmax(model(ids[:, :-1]).float(), dim=-1)
        for row, (context, answer) in enumerate(chunk):
            positions = torch.arange(len(context) - 1, len(context) + len(answer) - 1, device=device)
            scores.append(float(log_p[row, positions, ids[row, positions + 1]].sum()))
    model.train(was_training)
    return np.array(scores).reshape(len(contexts), -1)


def word_ngrams(text: str, n: int) -> set[tuple[str, ...]]:
    """The set of n-word sequences in ``text`` (words: runs of letters, digits and underscores, lower-cased)."""
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    words = re.findall(r"\w+", text.lower())
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


def ngram_overlap(item: str, reference: set[tuple[str, ...]], n: int) -> float:
    """Share of ``item``'s word n-grams found in ``reference`` (from :func:`word_ngrams` of the training text).

    1.0 means every n-gram of the test item appears in the training text: contaminated; 0.0 means none does.
    An item shorter than n words has no n-grams and scores 0.0.

    >>> ngram_overlap("the cat sat on the mat", word_ngrams("a cat sat on the mat today", 3), 3)
    0.75
    """
    grams = word_ngrams(item, n)
    return len(grams & reference) / len(grams) if grams else 0.0
