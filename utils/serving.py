"""Ship a model: a verified artifact (safetensors weights + SHA-256 manifest, optionally signed with
Ed25519), a validated FastAPI service with liveness, readiness and Prometheus metrics, and a bounded
async load test.

    app = create_app("build/artifacts/digits-mlp/1")   # then: uvicorn --factory utils.serving:app_from_env
"""

import asyncio
import hashlib
import json
import math
import os
import re
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

ARTIFACT_ENV = "BML_ARTIFACT_DIR"
PUBLIC_KEY_ENV = "BML_PUBLIC_KEY"      # hex of the 32-byte Ed25519 public key that must have signed the manifest
PUBLIC_KEY_FILE_ENV = "BML_PUBLIC_KEY_FILE"   # or a file holding that hex (a mounted ConfigMap)
ALLOW_UNSIGNED_ENV = "BML_ALLOW_UNSIGNED"     # "1": serve an unsigned artifact (local experiments only)
WEIGHTS_FILE, MANIFEST_FILE, SIGNATURE_FILE = "weights.safetensors", "manifest.json", "manifest.sig"


class ArtifactError(RuntimeError):
    """An artifact is missing a file, or a file does not match the hash in its manifest."""


def sha256_of(path: Path) -> str:
    """SHA-256 of a file's bytes (not of its name), read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def mlp_from_sizes(sizes: list[int]) -> nn.Sequential:
    """Linear layers of the given sizes with ReLU between them: the architecture an artifact records."""
    layers: list[nn.Module] = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(fan_in, fan_out))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def save_artifact(model: nn.Sequential, directory: Path, *, name: str, version: str, sizes: list[int],
                  input_range: tuple[float, float], metrics: dict, extra_files: dict[str, Path] | None = None,
                  signing_key=None) -> Path:
    """Write weights (safetensors: tensors only, nothing executable) and a manifest with every file's SHA-256.

    With ``signing_key`` (a ``cryptography`` Ed25519 private key), also write ``manifest.sig``: the
    publisher's signature over the manifest's bytes. A hash manifest alone catches corruption; only a
    signature catches someone who rewrites the weights *and* the manifest together.
    """
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()}, str(directory / WEIGHTS_FILE))
    files = [WEIGHTS_FILE]
    for file_name, source in (extra_files or {}).items():
        if Path(source).resolve() != (directory / file_name).resolve():
            (directory / file_name).write_bytes(Path(source).read_bytes())
        files.append(file_name)
    manifest = {"name": name, "version": version, "architecture": {"type": "mlp", "sizes": sizes},
                "input": {"features": sizes[0], "dtype": "float32", "min": input_range[0], "max": input_range[1]},
                "outputs": sizes[-1], "metrics": metrics,
                "files": {file_name: sha256_of(directory / file_name) for file_name in files}}
    (directory / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    if signing_key is not None:
        sign_manifest(directory, signing_key)
    return directory


def sign_manifest(directory: Path, signing_key) -> Path:
    """Write ``manifest.sig``, the Ed25519 signature of ``manifest.json``'s exact bytes; return its path."""
    directory = Path(directory)
    signature_path = directory / SIGNATURE_FILE
    signature_path.write_bytes(signing_key.sign((directory / MANIFEST_FILE).read_bytes()))
    return signature_path


def public_key_from_hex(text: str):
    """An Ed25519 public key from the 64 hex characters of its raw 32 bytes (how ``$BML_PUBLIC_KEY`` carries it)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        raw = bytes.fromhex(text.strip())
    except ValueError:
        raise ValueError("the public key must be 64 hex characters (the raw 32-byte Ed25519 key)") from None
    if len(raw) != 32:
        raise ValueError(f"the public key must be 32 bytes (64 hex characters), got {len(raw)} bytes")
    return Ed25519PublicKey.from_public_bytes(raw)


def public_key_hex(public_key) -> str:
    """The raw 32 bytes of an Ed25519 public key, as hex."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return public_key.public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


def load_artifact(directory: Path, *, public_key=None) -> tuple[nn.Sequential, dict]:
    """Verify every file against the manifest, then build the model and load its weights. Refuses tampering.

    With ``public_key`` (Ed25519), first verify ``manifest.sig`` over the manifest's bytes, so that a
    manifest rewritten to match rewritten weights is refused too.
    """
    from safetensors.torch import load as load_safetensors

    directory = Path(directory)
    manifest_path = directory / MANIFEST_FILE
    if not manifest_path.is_file():
        raise ArtifactError(f"{manifest_path} is missing: not a model artifact (create one with save_artifact)")
    manifest_bytes = manifest_path.read_bytes()     # verified and parsed from the same bytes
    if public_key is not None:
        from cryptography.exceptions import InvalidSignature

        signature_path = directory / SIGNATURE_FILE
        if not signature_path.is_file():
            raise ArtifactError(f"{signature_path} is missing: a signed artifact is required (save_artifact(..., signing_key=...))")
        try:
            public_key.verify(signature_path.read_bytes(), manifest_bytes)
        except InvalidSignature:
            raise ArtifactError(f"{manifest_path} is not signed by the expected key: the manifest was changed or signed "
                                "by someone else; refusing to load it") from None
    manifest = json.loads(manifest_bytes)
    weights = None
    for file_name, expected in manifest["files"].items():
        path = directory / file_name
        if not path.is_file():
            raise ArtifactError(f"{path} is listed in the manifest but missing")
        if file_name == WEIGHTS_FILE:    # hash the bytes that are loaded, not a file that could change in between
            weights = path.read_bytes()
            actual = hashlib.sha256(weights).hexdigest()
        else:
            actual = sha256_of(path)
        if actual != expected:
            raise ArtifactError(f"{path} does not match its SHA-256 in the manifest: the file was changed or corrupted; "
                                "refusing to load it")
    if weights is None:
        raise ArtifactError(f"{manifest_path} does not list {WEIGHTS_FILE}: refusing unverified weights")
    model = mlp_from_sizes(manifest["architecture"]["sizes"])
    model.load_state_dict(load_safetensors(weights))
    return model.eval(), manifest


# The oldest Python release still given security fixes (3.9 reached its end of life in October 2025).
PYTHON_SUPPORTED = (3, 10)


def dockerfile_problems(text: str) -> list[str]:
    """What a reviewer would flag in a Dockerfile: unpinned base or packages, data baked in, a requirements file
    installed but never copied in, root user, no health check, no command to start the service."""
    problems = []
    text = re.sub(r"\\\n", " ", text)    # one instruction per line: join the lines continued with a backslash
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    copied = " ".join(line for line in lines if line.upper().startswith(("COPY", "ADD")))
    base = next((line.split()[1] for line in lines if line.upper().startswith("FROM ")), "")
    image = base.rsplit("/", 1)[-1]      # a registry's port ("registry.local:5000/python") is not a tag
    tag = image.split("@")[0].partition(":")[2]
    if not (tag or "@sha256:" in image) or tag == "latest":
        problems.append(f"base image {base or '(none)'} is not pinned to a version")
    version = re.match(r"(\d+)\.(\d+)", tag)
    if image.startswith("python:") and version and (int(version[1]), int(version[2])) < PYTHON_SUPPORTED:
        problems.append(f"base image {base}: Python {version[1]}.{version[2]} is past its end of life (no security "
                        f"fixes); use {PYTHON_SUPPORTED[0]}.{PYTHON_SUPPORTED[1]} or later")
    for line in lines:
        if re.search(r"pip3? install", line) and "-r " not in line and re.search(r"install\s+(-\S+\s+)*[A-Za-z]", line) \
                and not re.search(r"==", line):
            problems.append(f"unpinned pip install: {line}")
        if line.upper().startswith(("COPY", "ADD")) and re.search(r"\bdata\b|\.csv|\.parquet", line):
            problems.append(f"data copied into the image: {line}")
        requirement = re.search(r"pip3? install .*-r\s+(\S+)", line)
        if requirement and Path(requirement.group(1)).name not in copied and not re.search(r"COPY\s+\.\s", copied + " "):
            problems.append(f"installs {requirement.group(1)}, which was never copied into the image: {line}")
    if not any(line.upper().startswith("USER ") and not line.split()[1].startswith(("root", "0")) for line in lines):
        problems.append("runs as root: add a USER")
    if not any(line.upper().startswith("HEALTHCHECK") for line in lines):
        problems.append("no HEALTHCHECK")
    if not any(line.upper().startswith(("CMD", "ENTRYPOINT")) for line in lines):
        problems.append("no CMD or ENTRYPOINT: the container runs the base image's default command, not the service")
    return problems


# The service's direct dependencies; deploy/requirements-serving.txt pins them and everything they pull in.
SERVING_PACKAGES = ("torch", "numpy", "fastapi", "pydantic", "uvicorn", "prometheus-client", "safetensors")


def dependency_closure(roots=SERVING_PACKAGES) -> dict[str, str]:
    """Every package ``roots`` need on this platform, with the version installed here: {name: version}.

    What a lock file pins: the direct dependencies *and* theirs (starlette, anyio, h11, sympy, jinja2, ...),
    which a list of direct pins leaves free to change from one build to the next.
    """
    import importlib.metadata as metadata

    from packaging.markers import default_environment
    from packaging.requirements import Requirement

    environment = {**default_environment(), "extra": ""}
    normal = lambda name: re.sub(r"[-_.]+", "-", name).lower()  # noqa: E731
    found, stack = {}, [normal(name) for name in roots]
    while stack:
        name = stack.pop()
        if name in found:
            continue
        distribution = metadata.distribution(name)
        found[name] = distribution.version
        for text in distribution.requires or []:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate(environment):
                stack.append(normal(requirement.name))
    return dict(sorted(found.items()))


def request_schema(features: int, max_batch: int, *, low: float = -math.inf, high: float = math.inf):
    """The pydantic body of ``POST /predict``: ``{"instances": [[features floats], ...]}``, 1 to ``max_batch`` rows.

    Strict types (no strings or booleans posing as numbers), no unknown fields, every value finite and
    within [low, high]. A validator raises ``ValueError``, which FastAPI answers with 422 and the reason.

    >>> schema = request_schema(2, 4)
    >>> schema.model_validate({"instances": [[0.5, 1.0]]}).instances
    [[0.5, 1.0]]
    """
    from pydantic import BaseModel, ConfigDict, field_validator

    class PredictRequest(BaseModel):
        """A batch of rows; strict types (no strings or booleans posing as numbers), no unknown fields."""
        model_config = ConfigDict(strict=True, extra="forbid")
        instances: list[list[float]]

        @field_validator("instances")
        @classmethod
        def check_shape_and_values(cls, rows):
            if not rows:
                raise ValueError("instances is empty: send at least one row")
            if len(rows) > max_batch:
                raise ValueError(f"batch of {len(rows)} rows is larger than the limit of {max_batch}; split it")
            for i, row in enumerate(rows):
                if len(row) != features:
                    raise ValueError(f"row {i} has {len(row)} values; the model expects {features}")
                if not all(math.isfinite(v) for v in row):
                    raise ValueError(f"row {i} contains NaN or infinity")
                if min(row) < low or max(row) > high:
                    raise ValueError(f"row {i} has values outside [{low}, {high}], the range the model was trained on")
            return rows

    return PredictRequest


def onnx_parity(model: nn.Module, session, X: np.ndarray) -> float:
    """Largest absolute difference between the raw outputs of ``model`` and an ONNX Runtime ``session`` on ``X``.

    Compare logits, not predicted classes: an argmax hides drift until it flips a decision.
    The session's input must be named ``"x"``, as in lab 14's graphs (lesson 14's own export names it
    ``"pixels"`` and calls ``session.run`` directly).
    """
    X = np.asarray(X, dtype=np.float32)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        ours = model(torch.as_tensor(X)).numpy()
    model.train(was_training)
    return float(np.abs(ours - session.run(None, {"x": X})[0]).max())


def create_app(artifact_dir: Path | str, *, max_batch: int = 256, public_key=None, wait: bool = True):
    """The FastAPI service for one artifact: POST /predict, GET /health/live, GET /health/ready (= GET /health), GET /metrics.

    *Liveness* says the process answers; *readiness* says it may receive traffic: 200 only once the
    artifact is verified (hashes, and the signature when ``public_key`` is given) and the model is
    loaded, 503 with the reason before that or when the artifact was refused. ``/predict`` answers
    503 until ready. ``wait=True`` loads before returning and raises :class:`ArtifactError` on a bad
    artifact (convenient in tests); ``wait=False`` loads in a background thread, as a server should,
    so that liveness answers while a large model loads and a refused artifact keeps the pod alive but
    out of rotation, with the reason on ``/health/ready``.
    """
    import threading

    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, Response
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

    artifact_dir = Path(artifact_dir)
    manifest_path = artifact_dir / MANIFEST_FILE
    if not manifest_path.is_file():
        raise ArtifactError(f"{manifest_path} is missing: not a model artifact (create one with save_artifact)")
    declared = json.loads(manifest_path.read_text())   # shapes only, for the request schema; verified before use
    version, features = declared["version"], declared["input"]["features"]
    PredictRequest = request_schema(features, max_batch, low=declared["input"]["min"], high=declared["input"]["max"])
    state = {"status": "loading", "reason": None, "model": None}

    def load():
        try:
            state["model"], _ = load_artifact(artifact_dir, public_key=public_key)
            state["status"] = "ready"
        except Exception as error:  # reported on /health/ready; the process stays alive and out of rotation
            # without the server's paths: the probe is unauthenticated, and a path tells an attacker the layout
            state["status"], state["reason"] = "refused", str(error).replace(f"{artifact_dir}{os.sep}", "")

    if wait:
        state["model"], _ = load_artifact(artifact_dir, public_key=public_key)
        state["status"] = "ready"
    else:
        threading.Thread(target=load, name="artifact-loader", daemon=True).start()

    registry = CollectorRegistry()
    requests = Counter("requests", "Requests by endpoint and status", ["endpoint", "status"], registry=registry)
    latency = Histogram("request_latency_seconds", "Request latency", ["endpoint"], registry=registry,
                        buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0))
    errors = Counter("prediction_errors", "Requests answered with an error", ["kind"], registry=registry)
    app = FastAPI(title=f"{declared['name']} {version}")

    @app.middleware("http")
    async def measure(request: Request, call_next):
        start = time.perf_counter()
        response = await call_next(request)
        # Label by the route's template, never by the raw path: each new label value is a new time series, so a
        # client requesting made-up paths would grow the metrics store without bound. Unknown paths share one.
        route = request.scope.get("route")
        endpoint = getattr(route, "path", None) or "unmatched"
        if endpoint != "/metrics":
            requests.labels(endpoint, str(response.status_code)).inc()
            latency.labels(endpoint).observe(time.perf_counter() - start)
        return response

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError):
        errors.labels("invalid_request").inc()
        details = [{"field": ".".join(str(p) for p in e["loc"][1:]) or "body", "problem": e["msg"]} for e in exc.errors()]
        return JSONResponse(status_code=422, content={"error": "invalid request", "details": details,
                                                      "model_version": version})

    @app.get("/health/live")
    def live():
        return {"status": "alive"}

    @app.get("/health/ready")
    @app.get("/health")
    def ready():
        if state["status"] != "ready":
            return JSONResponse(status_code=503, content={"status": state["status"], "reason": state["reason"],
                                                          "model": declared["name"], "model_version": version})
        return {"status": "ready", "model": declared["name"], "model_version": version}

    @app.get("/metrics")
    def metrics():
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.post("/predict")
    def predict(request: PredictRequest):
        if state["status"] != "ready":
            errors.labels("not_ready").inc()
            return JSONResponse(status_code=503, content={"error": f"model not ready ({state['status']})",
                                                          "model_version": version})
        with torch.no_grad():
            probabilities = torch.softmax(state["model"](torch.tensor(request.instances, dtype=torch.float32)), dim=1)
        return {"model_version": version, "predictions": probabilities.argmax(dim=1).tolist(),
                "probabilities": probabilities.round(decimals=6).tolist()}

    return app


def public_key_from_env(environ=None):
    """The publisher's public key the service must verify with: $BML_PUBLIC_KEY (hex), or the file named by
    $BML_PUBLIC_KEY_FILE. None only when $BML_ALLOW_UNSIGNED is "1"; without a key, a ``RuntimeError``.

    Verification is the default: a server started without a key refuses to start rather than serve whatever
    artifact it finds (fail closed). Unsigned serving must be asked for by name, for local experiments.
    """
    environ = os.environ if environ is None else environ
    text = environ.get(PUBLIC_KEY_ENV, "").strip()
    if not text and environ.get(PUBLIC_KEY_FILE_ENV):
        text = Path(environ[PUBLIC_KEY_FILE_ENV]).read_text().strip()
    if text:
        return public_key_from_hex(text)
    if environ.get(ALLOW_UNSIGNED_ENV) == "1":
        return None
    raise RuntimeError(f"no public key: set {PUBLIC_KEY_ENV} (hex) or {PUBLIC_KEY_FILE_ENV} so that the service "
                       f"verifies the artifact's signature, or {ALLOW_UNSIGNED_ENV}=1 to serve an unsigned artifact "
                       "(local experiments only)")


def app_from_env():
    """Factory for ``uvicorn --factory utils.serving:app_from_env``: the artifact folder comes from $BML_ARTIFACT_DIR,
    and the manifest must carry a valid signature by the key of :func:`public_key_from_env`. Loads in the background."""
    if ARTIFACT_ENV not in os.environ:
        raise RuntimeError(f"set {ARTIFACT_ENV} to the artifact folder to serve")
    return create_app(os.environ[ARTIFACT_ENV], public_key=public_key_from_env(), wait=False)


async def load_test(base_url: str, payloads: list[dict], *, concurrency: int = 16, timeout: float = 10.0,
                    after: tuple[int, object] | None = None) -> dict:
    """POST every payload to /predict with at most ``concurrency`` in flight; return latencies (s), statuses
    (-1: no HTTP answer, such as a refused connection), each request's start (s from the first), and wall time.

    ``after=(n, action)`` calls ``action()`` once, as soon as ``n`` requests have been answered (to stop the
    server in the middle of the load); the result's ``"action_at"`` says when, on the same clock as ``starts``.
    """
    import httpx

    if concurrency < 1 or not payloads:
        raise ValueError("need at least one payload and a concurrency of at least 1")
    gate = asyncio.Semaphore(concurrency)
    n = len(payloads)
    latencies, statuses, starts = np.zeros(n), np.zeros(n, dtype=int), np.zeros(n)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    done = {"count": 0, "action_at": None}
    origin = time.perf_counter()

    async def one(client, i, payload):
        async with gate:
            start = time.perf_counter()
            starts[i] = start - origin
            try:
                response = await client.post("/predict", json=payload)
                statuses[i] = response.status_code
            except httpx.HTTPError:
                statuses[i] = -1
            latencies[i] = time.perf_counter() - start
            done["count"] += 1
            if after is not None and done["count"] == after[0]:
                done["action_at"] = time.perf_counter() - origin
                after[1]()

    async with httpx.AsyncClient(base_url=base_url, timeout=timeout, limits=limits) as client:
        await asyncio.gather(*(one(client, i, p) for i, p in enumerate(payloads)))
    return {"latencies": latencies, "statuses": statuses, "starts": starts, "action_at": done["action_at"],
            "seconds": time.perf_counter() - origin}


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def serve_in_background(artifact_dir: Path | str, *, startup_timeout: float = 120.0, probe: str = "/health/ready",
                        public_key=None, allow_unsigned: bool = False):
    """Start uvicorn on 127.0.0.1 in a child process and wait until ``probe`` answers 200; return (process, base_url).

    ``probe="/health/live"`` returns as soon as the process answers, ready or not (to watch a refused
    artifact). ``public_key`` is passed to the server through $BML_PUBLIC_KEY; without one, the server
    refuses to start unless ``allow_unsigned=True`` ($BML_ALLOW_UNSIGNED=1).

    Start-up imports torch and loads the artifact: a few seconds on a quiet machine, far more on a busy
    2-core one, so the deadline is generous; a healthy server is used as soon as it answers.
    """
    import subprocess
    import sys

    import httpx

    port = free_port()
    env = {key: value for key, value in os.environ.items()
           if key not in (PUBLIC_KEY_ENV, PUBLIC_KEY_FILE_ENV, ALLOW_UNSIGNED_ENV)}
    env[ARTIFACT_ENV] = str(Path(artifact_dir).resolve())
    if public_key is not None:
        env[PUBLIC_KEY_ENV] = public_key_hex(public_key)
    elif allow_unsigned:
        env[ALLOW_UNSIGNED_ENV] = "1"
    process = subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory", "utils.serving:app_from_env",
                                "--host", "127.0.0.1", "--port", str(port), "--no-access-log"],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base_url, deadline = f"http://127.0.0.1:{port}", time.monotonic() + startup_timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited during start-up: {process.stdout.read().decode()[-2000:]}")
        try:
            if httpx.get(f"{base_url}{probe}", timeout=1.0).status_code == 200:
                return process, base_url
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"the server did not become ready within {startup_timeout} s")


def stop_server(process, timeout: float = 10.0) -> tuple[bool, str]:
    """Send SIGTERM (as Kubernetes does) and wait; return (clean, log). Clean: uvicorn finished its graceful
    shutdown with no traceback. (Recent uvicorn re-raises the signal after shutting down, so the exit code is -15.)"""
    import signal

    process.terminate()
    try:
        output, _ = process.communicate(timeout=timeout)
    except Exception:
        process.kill()
        output, _ = process.communicate()
        return False, output.decode(errors="replace")
    log = output.decode(errors="replace")
    clean = process.returncode in (0, -signal.SIGTERM) and "Finished server process" in log and "Traceback" not in log
    return clean, log
