"""Checks for lab 15 (real-time inference): fanout_slow_probability, kv_cache_bytes, cache_key, accept_draft."""

from __future__ import annotations

import hashlib
import json

import numpy as np

from utils import realtime
from utils.checks.core import Case, Mistake, Spec, register

# --- 15.fanout_slow_probability ---


def fanout_n_times_p(p, n):
    return n * p


def fanout_all_fast(p, n):
    return (1 - p) ** n


def fanout_all_slow(p, n):
    return p ** n


def _fanout_cases() -> list[Case]:
    hand = [(0.01, 1), (0.01, 100), (0.5, 3), (0.0, 10), (1.0, 4), (0.3, 7), (0.001, 2000)]
    rng = np.random.default_rng(1501)
    generated = [(float(rng.uniform(0, 0.2)), int(rng.integers(2, 300))) for _ in range(5)]
    return [Case((p, n), f"p={p:.4g}, n={n}", atol=1e-12, size=i) for i, (p, n) in enumerate(hand + generated)]


register(Spec(
    "15.fanout_slow_probability", realtime.fanout_slow_probability, _fanout_cases,
    hint="The request is fast only if all n servers are fast, (1 − p)^n; it is slow otherwise: 1 − (1 − p)^n.",
    mistakes=(
        Mistake(fanout_n_times_p, "n·p adds the servers' chances as if they could not overlap; it passes 1 for "
                                  "large n. Use the complement: 1 − (1 − p)^n."),
        Mistake(fanout_all_fast, "(1 − p)^n is the probability that every server is fast; the request is slow in "
                                 "the complement."),
        Mistake(fanout_all_slow, "p^n is the chance that all n are slow; one slow server is enough to make the "
                                 "request slow."),
    )))


# --- 15.kv_cache_bytes ---


def kv_without_two(layers, kv_heads, head_dim, tokens, batch=1, bytes_per_value=2):
    return float(layers * kv_heads * head_dim * tokens * batch * bytes_per_value)


def kv_ignores_batch(layers, kv_heads, head_dim, tokens, batch=1, bytes_per_value=2):
    return float(2 * layers * kv_heads * head_dim * tokens * bytes_per_value)


def kv_assumes_fp16(layers, kv_heads, head_dim, tokens, batch=1, bytes_per_value=2):
    return float(2 * layers * kv_heads * head_dim * tokens * batch * 2)


def _kv_cases() -> list[Case]:
    hand = [(2, 2, 4, 10, 1, 4), (32, 32, 128, 4096, 1, 2), (32, 8, 128, 4096, 16, 2), (80, 8, 128, 32768, 4, 1),
            (3, 4, 32, 48, 1, 4), (2, 1, 64, 0, 3, 2), (24, 4, 64, 1000, 2, 0.5)]
    rng = np.random.default_rng(1502)
    generated = [(int(rng.integers(1, 96)), int(rng.integers(1, 64)), int(rng.choice([32, 64, 128, 256])),
                  int(rng.integers(1, 100_000)), int(rng.integers(1, 64)), float(rng.choice([0.5, 1, 2, 4])))
                 for _ in range(5)]
    return [Case(args, "layers={}, kv_heads={}, head_dim={}, tokens={}, batch={}, bytes_per_value={}".format(*args),
                 atol=1e-6, size=i) for i, args in enumerate(hand + generated)]


register(Spec(
    "15.kv_cache_bytes", realtime.kv_cache_bytes, _kv_cases,
    hint="2 (a key and a value) × layers × kv_heads × head_dim × tokens × batch × bytes_per_value.",
    mistakes=(
        Mistake(kv_without_two, "Each token stores a key *and* a value per layer and head: multiply by 2."),
        Mistake(kv_ignores_batch, "Every sequence in the batch has its own cache: multiply by batch."),
        Mistake(kv_assumes_fp16, "Use bytes_per_value (2 for fp16, 1 for int8, 0.5 for int4), not a fixed 2."),
    )))


# --- 15.cache_key ---


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def key_without_version(model_version, payload):
    return _digest(json.dumps({"input": payload}, sort_keys=True, separators=(",", ":")))


def key_unsorted(model_version, payload):
    return _digest(json.dumps({"input": payload, "model": model_version}, separators=(",", ":")))


def key_from_str_dict(model_version, payload):
    return _digest(str({"input": payload, "model": model_version}))


def key_from_python_hash(model_version, payload):
    return str(hash(json.dumps({"input": payload, "model": model_version}, sort_keys=True, separators=(",", ":"))))


def key_default_separators(model_version, payload):
    return _digest(json.dumps({"input": payload, "model": model_version}, sort_keys=True))


def key_normalised_text(model_version, payload):
    def normalise(value):
        if isinstance(value, str):
            return value.strip().lower()
        if isinstance(value, dict):
            return {k: normalise(v) for k, v in value.items()}
        return [normalise(v) for v in value] if isinstance(value, list) else value
    return realtime.cache_key(model_version, normalise(payload))


def _key_cases() -> list[Case]:
    payloads = [{"text": "reset my password"}, {"lang": "en", "text": "hi"}, {"text": "hi", "lang": "en"},
                {"b": [3, 1, 2], "a": {"y": 1.5, "x": None}}, {"prompt": "你好, 世界", "max_tokens": 64}, [1, 2, 3],
                "plain string", {"z": True, "a": -2},
                {"Text": "  Reset My PASSWORD ", "user": 2**70, "Émoji": "naïve ☕"}]  # padding, case, a big int
    cases = []
    for i, payload in enumerate(payloads):
        for version in ("v1", "2026-11-23.3"):
            cases.append(Case((version, payload), f"model_version={version!r}, payload={payload!r}", size=2 * i + len(version)))
    return cases


register(Spec(
    "15.cache_key", realtime.cache_key, _key_cases,
    hint='SHA-256 hex digest of json.dumps({"input": payload, "model": model_version}, sort_keys=True, '
         'separators=(",", ":")), encoded as UTF-8.',
    mistakes=(
        Mistake(key_without_version, "Put the model version in the key: after a deploy, an input-only key serves "
                                     "the old model's answers."),
        Mistake(key_normalised_text, "Hash the payload exactly as given: lower-casing or stripping the text makes "
                                     "different requests share a key, and one user gets another's answer."),
        Mistake(key_unsorted, "Pass sort_keys=True: the same request with its keys in another order must give "
                              "the same key."),
        Mistake(key_from_str_dict, "str(dict) depends on key order and is not a stable format: serialise with "
                                   "json.dumps(..., sort_keys=True)."),
        Mistake(key_from_python_hash, "Python's hash() of a string changes from process to process "
                                      "(PYTHONHASHSEED): replicas would never share keys. Use hashlib.sha256."),
        Mistake(key_default_separators, 'Use separators=(",", ":") as asked: the same request must serialise to '
                                        "exactly the same bytes everywhere."),
    )))


# --- 15.accept_draft ---


def accept_every_match(draft_tokens, target_tokens):
    kept = [d for d, t in zip(draft_tokens, target_tokens) if d == t]
    return kept + [list(target_tokens)[len(kept)]]


def accept_without_bonus(draft_tokens, target_tokens):
    accepted = realtime.accept_draft(draft_tokens, target_tokens)
    return accepted[:len(draft_tokens)] if accepted[:-1] == list(draft_tokens) else accepted


def accept_keeps_draft_token(draft_tokens, target_tokens):
    accepted = realtime.accept_draft(draft_tokens, target_tokens)
    n = len(accepted) - 1
    return accepted if n == len(draft_tokens) else list(draft_tokens)[:n + 1]


def _accept_cases() -> list[Case]:
    hand = [([5, 7, 9], [5, 7, 2, 4]), ([5, 7], [5, 7, 8]), ([1, 2, 3], [9, 2, 3, 4]), ([], [7]),
            ([1, 2, 3, 4], [1, 9, 3, 4, 5]), ([0, 0, 0], [0, 0, 0, 0]), ([32, 32, 32, 32], [32, 32, 10, 32, 32])]
    rng = np.random.default_rng(1504)
    generated = []
    for _ in range(6):
        k = int(rng.integers(1, 9))
        draft = rng.integers(0, 4, k).tolist()             # a small alphabet: agreements after a mismatch happen
        target = rng.integers(0, 4, k + 1).tolist()
        agree = int(rng.integers(0, k + 1))
        target[:agree] = draft[:agree]
        generated.append((draft, target))
    return [Case((draft, target), f"draft_tokens={draft}, target_tokens={target}", atol=0, size=i)
            for i, (draft, target) in enumerate(hand + generated)]


def _token_list(got, expected):
    """A list of token ids; its length may differ from the expected one (a wrong answer keeps too many or too few)."""
    if not isinstance(got, list):
        return (f"your result should be a list of token ids, got a {type(got).__name__}.",
                "Return a list: the accepted draft tokens followed by one target token.")
    if not all(isinstance(t, (int, np.integer)) and not isinstance(t, (bool, np.bool_)) for t in got):
        return ("your result should hold integer token ids only.", "Build it from the tokens you are given.")
    return None


register(Spec(
    "15.accept_draft", realtime.accept_draft, _accept_cases, contract=_token_list,
    hint="Walk the draft from the start; stop at the first token the target disagrees with; return the agreed "
         "draft tokens plus target_tokens at that position (the bonus token when all were agreed).",
    mistakes=(
        Mistake(accept_every_match, "Stop at the first disagreement: the target's later predictions were made "
                                    "after a wrong token, so they are not valid."),
        Mistake(accept_without_bonus, "When every draft token is accepted, add target_tokens[k] too: the target "
                                      "computed it in the same call, for free."),
        Mistake(accept_keeps_draft_token, "At the first disagreement, append the *target's* token, not the "
                                          "draft's: the output must be exactly the target's."),
    )))
