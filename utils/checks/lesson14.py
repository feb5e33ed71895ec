"""Checks for lab 14 (deployment): the input schema, an ONNX parity check, tail percentiles, file hashing."""

import hashlib
import math
import tempfile
from pathlib import Path

import numpy as np

from utils.checks.core import Checker, format_value as fmt, register

ROW = [0.5] * 64
SCHEMA_CASES = [
    ("a valid batch of two rows", {"instances": [ROW, [0.0] * 64]}, True),
    ("an empty batch", {"instances": []}, False),
    ("a row of 63 values", {"instances": [ROW[:63]]}, False),
    ("a NaN", {"instances": [[math.nan] + ROW[1:]]}, False),
    ("an infinity", {"instances": [[math.inf] + ROW[1:]]}, False),
    ("a string '0.5'", {"instances": [["0.5"] + ROW[1:]]}, False),
    ("a missing 'instances' field", {"rows": [ROW]}, False),
    ("a batch of 65 rows (limit 64)", {"instances": [ROW] * 65}, False),
]


@register("14.schema")
def _schema(c: Checker) -> None:
    from pydantic import BaseModel, ValidationError

    if not (isinstance(c.candidate, type) and issubclass(c.candidate, BaseModel)):
        c.fail(f"expected a pydantic model class, got {type(c.candidate).__name__}.",
               "Define class PredictRequest(BaseModel) and pass the class itself.")
    for description, payload, valid in SCHEMA_CASES:
        c.cases += 1
        try:
            parsed = c.candidate.model_validate(payload)
            accepted = True
        except ValidationError:
            accepted = False
        except NotImplementedError:
            c.fail("not answered yet: the validator still raises NotImplementedError.",
                   "Replace `# YOUR CODE HERE` and `raise NotImplementedError` with your answer, then rerun the cell.")
        if accepted != valid:
            c.fail(f"for {description} expected the schema to {'accept' if valid else 'reject'} it, but it "
                   f"{'accepted' if accepted else 'rejected'} it.",
                   "Strict mode refuses strings; the validator must check: not empty, at most 64 rows, "
                   "64 values per row, every value finite (math.isfinite).")
        if valid and [list(r) for r in parsed.instances] != payload["instances"]:
            c.fail(f"for {description} the parsed instances differ from the input.", "Return the rows unchanged.")


def _parity_case():
    """A model and an ONNX export of a slightly different model: logits differ, argmax agrees."""
    import onnxruntime as ort
    import torch

    torch.manual_seed(14)
    model = torch.nn.Sequential(torch.nn.Linear(8, 4)).eval()
    shifted = torch.nn.Sequential(torch.nn.Linear(8, 4)).eval()
    shifted.load_state_dict(model.state_dict())
    with torch.no_grad():
        shifted[0].bias.add_(1e-3)  # every logit moves by 1e-3: the argmax never changes
    path = Path(tempfile.mkdtemp()) / "shifted.onnx"
    torch.onnx.export(shifted, (torch.zeros(2, 8),), path, dynamo=True, input_names=["x"], output_names=["y"],
                      dynamic_shapes=({0: torch.export.Dim("batch")},), verbose=False)
    return model, ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


@register("14.parity")
def _parity(c: Checker) -> None:
    import torch

    model, session = _parity_case()
    X = np.random.default_rng(14).normal(size=(32, 8)).astype(np.float32)
    with torch.no_grad():
        expected = float(np.abs(model(torch.as_tensor(X)).numpy() - session.run(None, {"x": X})[0]).max())
    got = c.call(model, session, X, copy_args=False)
    c.expect_close(got, expected, atol=1e-7,
                   case="a model and an export whose logits differ by 1e-3 but whose argmax agrees",
                   hint="Run both on the same inputs and return the largest absolute difference of the raw outputs "
                        "(logits), not of the predicted classes.",
                   diagnose=((0.0, "Comparing predicted classes hides numerical drift: compare the logits."),))


@register("14.percentiles")
def _percentiles(c: Checker) -> None:
    rng = np.random.default_rng(140)
    latencies = np.r_[rng.lognormal(-4, 0.3, 990), rng.lognormal(-1.5, 0.5, 10)]  # 1% of slow requests
    expected = [float(np.percentile(latencies, p)) for p in (50, 95, 99)]
    got = c.call(latencies)
    if not isinstance(got, dict) or set(got) != {"p50", "p95", "p99"}:
        c.fail(f"expected a dict with keys p50, p95, p99, got {fmt(got)}.", "Return {'p50': ..., 'p95': ..., 'p99': ...}.")
    batches = latencies.reshape(100, 10).mean(axis=1)
    c.expect_close([got["p50"], got["p95"], got["p99"]], expected, atol=1e-9,
                   case="1,000 request latencies with a slow 1% tail (values in the order p50, p95, p99)",
                   hint="np.percentile of the individual latencies at 50, 95 and 99.",
                   diagnose=(([float(np.percentile(batches, p)) for p in (50, 95, 99)],
                              "Percentiles of averages hide the tail: use the individual request times."),
                             ([expected[0], expected[1], float(latencies.max())], "p99 is not the maximum."),))


@register("14.file_sha256")
def _file_sha256(c: Checker) -> None:
    folder = Path(tempfile.mkdtemp())
    for name, content in (("weights.bin", bytes(range(256)) * 100), ("model.onnx", b"not really a model")):
        path = folder / name
        path.write_bytes(content)
        expected = hashlib.sha256(content).hexdigest()
        got = c.call(path)
        if got != expected:
            hint = ("That is the hash of the file's name or path; hash its bytes." if got in (
                hashlib.sha256(name.encode()).hexdigest(), hashlib.sha256(str(path).encode()).hexdigest()) else
                "Read the file in binary mode and return hashlib.sha256(content).hexdigest().")
            c.fail(f"for a {len(content):,}-byte file {name} expected {expected[:16]}..., got {str(got)[:16]}...", hint)
