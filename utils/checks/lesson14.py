"""Checks for lab 14 (deployment): the PredictRequest schema, onnx_parity, percentiles, sha256_of."""

from __future__ import annotations

import functools
import hashlib
import math
import tempfile
from pathlib import Path

import numpy as np

from utils import serving
from utils.bench import percentiles
from utils.checks.core import Case, Mistake, Spec, reject, global_seed, register

# --- 14.PredictRequest: each payload is accepted (with its rows unchanged) or rejected, like the reference ---

ROW = [0.5] * 64


def _verdict(schema, args) -> str:
    from pydantic import BaseModel, ValidationError

    (payload,) = args
    if not (isinstance(schema, type) and issubclass(schema, BaseModel)):
        reject(f"expected a pydantic model class, got {type(schema).__name__}.",
               "Define class PredictRequest(BaseModel) and pass the class itself.")
    try:
        parsed = schema.model_validate(payload)
    except ValidationError:
        return "rejected"
    except NotImplementedError:
        raise
    except Exception as error:
        reject(f"validating it raised {type(error).__name__} ({error}) instead of a validation error.",
               "Raise ValueError in a validator: pydantic turns it into a ValidationError (HTTP 422); any other "
               "exception becomes a server error (HTTP 500).")
    rows = parsed.instances
    if not isinstance(rows, list):
        return f"accepted, but instances came back as {type(rows).__name__}"
    return "accepted" if [list(r) for r in rows] == payload["instances"] else "accepted, but the rows changed"


def _schema_cases() -> list[Case]:
    nan_deep = [list(ROW) for _ in range(5)]
    nan_deep[3][17] = math.nan
    short_third = [list(ROW), list(ROW), ROW[:63]]
    payloads = [
        ("a valid batch of two rows", {"instances": [ROW, [-1.5] * 64]}),
        ("a valid batch of 64 rows (the limit)", {"instances": [ROW] * 64}),
        ("an empty batch", {"instances": []}),
        ("a row of 63 values", {"instances": [ROW[:63]]}),
        ("a row of 65 values", {"instances": [ROW + [0.5]]}),
        ("a NaN in row 3, position 17", {"instances": nan_deep}),
        ("-inf at the last position", {"instances": [ROW[:63] + [-math.inf]]}),
        ("+inf at the first position", {"instances": [[math.inf] + ROW[1:]]}),
        ("a short row at position 2 of 3", {"instances": short_third}),
        ("a string '0.5'", {"instances": [["0.5"] + ROW[1:]]}),
        ("a boolean True", {"instances": [[True] + ROW[1:]]}),
        ("a missing 'instances' field", {"rows": [ROW]}),
        ("a batch of 65 rows (limit 64)", {"instances": [ROW] * 65}),
    ]
    return [Case((payload,), description, size=i) for i, (description, payload) in enumerate(payloads)]


def _schema(name: str, validator, strict: bool = True):
    """A lab-style PredictRequest whose validator is ``validator`` (a plausible wrong one)."""
    from pydantic import BaseModel, ConfigDict, field_validator

    class PredictRequest(BaseModel):
        model_config = ConfigDict(strict=strict)
        instances: list[list[float]]
        check_rows = field_validator("instances")(classmethod(validator))
    PredictRequest.__name__ = PredictRequest.__qualname__ = name
    return PredictRequest


def _lets_nan_through(cls, rows):
    if not rows or len(rows) > 64 or any(len(r) != 64 for r in rows):
        raise ValueError("bad shape")
    return rows


def _complete(cls, rows):
    if not rows or len(rows) > 64 or any(len(r) != 64 for r in rows) or not all(
            math.isfinite(v) for r in rows for v in r):
        raise ValueError("bad rows")
    return rows


def _no_limits(cls, rows):
    return rows


def _checks_row_zero_only(cls, rows):
    if not rows or len(rows) > 64 or len(rows[0]) != 64 or not all(math.isfinite(v) for v in rows[0]):
        raise ValueError("bad rows")
    return rows


def _lets_infinity_through(cls, rows):
    if not rows or len(rows) > 64 or any(len(r) != 64 for r in rows) or any(v != v for r in rows for v in r):
        raise ValueError("bad rows")
    return rows


def _forgets_return(cls, rows):
    _complete(cls, rows)


def _raises_type_error(cls, rows):
    if not rows or len(rows) > 64 or any(len(r) != 64 for r in rows):
        raise TypeError("bad shape")
    return _complete(cls, rows)


SchemaLetsNaNThrough = _schema("SchemaLetsNaNThrough", _lets_nan_through)
SchemaCoercesStrings = _schema("SchemaCoercesStrings", _complete, strict=False)
SchemaWithoutLimits = _schema("SchemaWithoutLimits", _no_limits)
SchemaChecksRowZeroOnly = _schema("SchemaChecksRowZeroOnly", _checks_row_zero_only)
SchemaLetsInfinityThrough = _schema("SchemaLetsInfinityThrough", _lets_infinity_through)
SchemaForgetsReturn = _schema("SchemaForgetsReturn", _forgets_return)
SchemaRaisesTypeError = _schema("SchemaRaisesTypeError", _raises_type_error)

register(Spec(
    "14.PredictRequest", serving.request_schema(64, 64), _schema_cases, invoke=_verdict,
    contract=lambda got, expected: None,
    hint="The validator must refuse an empty batch, more than 64 rows, any row whose length is not 64, and any "
         "NaN or infinity (math.isfinite) anywhere, by raising ValueError; then return the rows.",
    mistakes=(
        Mistake(SchemaLetsNaNThrough, "Check every value with math.isfinite: NaN and infinities are floats too."),
        Mistake(SchemaCoercesStrings, "Keep model_config = ConfigDict(strict=True): lax mode turns '0.5' into 0.5."),
        Mistake(SchemaWithoutLimits, "A type alone does not limit the batch: check not empty, at most 64 rows, "
                                     "64 values per row, every value finite."),
        Mistake(SchemaChecksRowZeroOnly, "Check every row, not only the first: loop over all of them."),
        Mistake(SchemaLetsInfinityThrough, "v != v catches NaN only; math.isfinite refuses NaN, inf and -inf."),
        Mistake(SchemaForgetsReturn, "A field validator must return the value (return rows); otherwise the "
                                     "field becomes None."),
        Mistake(SchemaRaisesTypeError, "Raise ValueError in a validator: pydantic turns it into a ValidationError "
                                       "(HTTP 422); any other exception becomes a server error (HTTP 500)."),
    )))


# --- 14.onnx_parity: the ONNX graph of a Linear layer, written with onnx.helper once per process (no export, no file) ---

@functools.cache
def _exported():
    """A model, a copy whose logits all move by 1e-3 (argmax unchanged), and an ONNX Runtime session of the copy."""
    import onnxruntime as ort
    import torch
    from onnx import TensorProto, helper, numpy_helper

    with global_seed(14):  # nn.Linear draws from torch's global generator; the caller's state is kept
        model = torch.nn.Sequential(torch.nn.Linear(8, 4)).eval()
        shifted = torch.nn.Sequential(torch.nn.Linear(8, 4)).eval()
    shifted.load_state_dict(model.state_dict())
    with torch.no_grad():
        shifted[0].bias.add_(1e-3)
    weight, bias = (p.detach().numpy() for p in (shifted[0].weight, shifted[0].bias))
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["x", "weight", "bias"], ["y"], transB=1)], "linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])],
        initializer=[numpy_helper.from_array(weight, "weight"), numpy_helper.from_array(bias, "bias")])
    onnx_model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=10)  # ORT reads <= 13
    session = ort.InferenceSession(onnx_model.SerializeToString(), providers=["CPUExecutionProvider"])
    return model, shifted, session


def _parity_cases() -> list[Case]:
    model, shifted, session = _exported()
    rng = np.random.default_rng(14)
    cases = []
    for n, which in ((1, "a faithful export"), (32, "an export whose logits differ by 1e-3"),
                     (100, "an export whose logits differ by 1e-3")):
        X = (rng.normal(size=(n, 8)) * 3).astype(np.float32)
        torch_model = shifted if which == "a faithful export" else model
        # Tolerance 1e-7: float32 rounding of the two runtimes stays below it on these inputs.
        cases.append(Case((torch_model, session, X), f"{n} rows, {which} (its argmax always agrees)", atol=1e-7))
    return cases


def parity_on_labels(model, session, X):
    import torch
    with torch.no_grad():
        ours = model(torch.as_tensor(X)).argmax(1).numpy()
    return float(np.abs(ours - session.run(None, {"x": X})[0].argmax(1)).max())


def parity_mean_not_max(model, session, X):
    import torch
    with torch.no_grad():
        ours = model(torch.as_tensor(X)).numpy()
    return float(np.abs(ours - session.run(None, {"x": X})[0]).mean())


def parity_without_abs(model, session, X):
    import torch
    with torch.no_grad():
        ours = model(torch.as_tensor(X)).numpy()
    return float((ours - session.run(None, {"x": X})[0]).max())


register(Spec(
    "14.onnx_parity", serving.onnx_parity, _parity_cases,
    hint="Run both on the same inputs and return the largest absolute difference of the raw outputs (logits).",
    mistakes=(
        Mistake(parity_on_labels, "Comparing predicted classes hides numerical drift: compare the logits."),
        Mistake(parity_mean_not_max, "Return the largest difference (max), not the mean: one bad output is enough."),
        Mistake(parity_without_abs, "Take the absolute value before the max: a difference can be negative."),
    )))


# --- 14.percentiles ---

def _percentiles(latencies):
    return percentiles(latencies)


def percentiles_of_batch_means(latencies):
    means = [chunk.mean() for chunk in np.array_split(np.asarray(latencies), max(1, len(latencies) // 10))]
    return {f"p{p}": float(np.percentile(means, p)) for p in (50, 95, 99)}


def p99_is_the_max(latencies):
    return {"p50": float(np.percentile(latencies, 50)), "p95": float(np.percentile(latencies, 95)),
            "p99": float(np.max(latencies))}


def percentile_by_index(latencies):
    ordered = np.sort(latencies)
    return {f"p{p}": float(ordered[min(int(p / 100 * len(ordered)), len(ordered) - 1)]) for p in (50, 95, 99)}


def _latency_cases() -> list[Case]:
    rng = np.random.default_rng(140)
    tail = rng.permutation(np.r_[rng.lognormal(-4, 0.3, 990), rng.lognormal(-1.5, 0.5, 10)])  # 1% slow requests
    return [Case((np.arange(1.0, 101.0)[::-1].copy(),), "the latencies 100, 99, ..., 1 (in that order)"),
            Case((np.array([0.012, 0.011, 0.250, 0.013, 0.010, 0.014, 0.011]),), "7 latencies with one slow request"),
            Case((tail,), "1,000 request latencies with a slow 1% tail, unsorted")]


register(Spec(
    "14.percentiles", _percentiles, _latency_cases,
    hint="np.percentile of the individual latencies at 50, 95 and 99 (NumPy's default linear interpolation).",
    mistakes=(
        Mistake(percentiles_of_batch_means, "Percentiles of averages hide the tail: use the individual request "
                                            "times."),
        Mistake(p99_is_the_max, "p99 is not the maximum: 1% of requests are slower than p99."),
        Mistake(percentile_by_index, "Use np.percentile's linear interpolation between the two nearest ranks, "
                                     "not one element picked by index."),
    )))


# --- 14.sha256_of: files written to a temporary folder that the check removes afterwards ---

def _file_cases(folder) -> list[Case]:
    folder = Path(folder)
    contents = (("abc.txt", b"abc"), ("empty.bin", b""), ("weights.bin", bytes(range(256)) * 100),
                ("模型.onnx", b"not really a model"),
                ("large.safetensors", np.random.default_rng(141).bytes(3 * (1 << 20) + 7)))  # > 1 MiB read buffer
    cases = []
    for name, content in contents:
        path = folder / name
        path.write_bytes(content)
        cases.append(Case((path,), f"a {len(content):,}-byte file {name}", size=len(content)))
    return cases


def hash_of_the_name(path):
    return hashlib.sha256(Path(path).name.encode()).hexdigest()


def hash_of_the_path(path):
    return hashlib.sha256(str(path).encode()).hexdigest()


def md5_of_the_bytes(path):
    return hashlib.md5(Path(path).read_bytes()).hexdigest()


def first_chunk_only(path):
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read(1 << 20)).hexdigest()


register(Spec(
    "14.sha256_of", serving.sha256_of, _file_cases, fixture=tempfile.TemporaryDirectory,
    hint="Read the file in binary mode (in chunks for large files) and return hashlib.sha256(content).hexdigest().",
    mistakes=(
        Mistake(hash_of_the_name, "That is the hash of the file's name; hash its bytes."),
        Mistake(hash_of_the_path, "That is the hash of the path string; hash the file's bytes."),
        Mistake(md5_of_the_bytes, "Use SHA-256 (hashlib.sha256), not MD5."),
        Mistake(first_chunk_only, "Keep reading until the file ends: update the hash with every chunk."),
    )))
