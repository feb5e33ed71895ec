"""The serving app: artifacts are verified, every malformed request gets a clear 4xx, valid ones match the
model in-process, metrics count, and a real uvicorn server survives a bounded load and shuts down cleanly."""

import asyncio
import json
import math

import pytest
import torch
from fastapi.testclient import TestClient

from utils import serving

SIZES = [4, 8, 3]


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    torch.manual_seed(0)
    model = serving.mlp_from_sizes(SIZES)
    directory = tmp_path_factory.mktemp("artifact") / "1"
    serving.save_artifact(model, directory, name="toy", version="1.0.0", sizes=SIZES, input_range=(0.0, 1.0),
                          metrics={"accuracy": 0.5})
    return directory, model.eval()


@pytest.fixture(scope="module")
def client(artifact):
    return TestClient(serving.create_app(artifact[0], max_batch=8))


def test_valid_request_matches_the_model_in_process(client, artifact):
    rows = [[0.1, 0.2, 0.3, 0.4], [1.0, 0.0, 0.5, 0.25]]
    response = client.post("/predict", json={"instances": rows})
    assert response.status_code == 200
    body = response.json()
    with torch.no_grad():
        expected = torch.softmax(artifact[1](torch.tensor(rows)), dim=1)
    assert body["model_version"] == "1.0.0"
    assert body["predictions"] == expected.argmax(1).tolist()
    assert torch.allclose(torch.tensor(body["probabilities"]), expected, atol=1e-6)


MALFORMED = {
    "missing field": ({"rows": [[0.1, 0.2, 0.3, 0.4]]}, "instances"),
    "empty batch": ({"instances": []}, "empty"),
    "oversized batch": ({"instances": [[0.1] * 4] * 9}, "larger than the limit"),
    "wrong row length": ({"instances": [[0.1, 0.2]]}, "expects 4"),
    "string value": ({"instances": [[0.1, "0.2", 0.3, 0.4]]}, "valid number"),
    "boolean value": ({"instances": [[True, 0.2, 0.3, 0.4]]}, "valid number"),
    "not a list": ({"instances": "0.1,0.2"}, "valid list"),
    "out of range": ({"instances": [[0.1, 0.2, 0.3, 7.0]]}, "outside"),
    "unknown field": ({"instances": [[0.1] * 4], "debug": True}, "Extra inputs"),
}


@pytest.mark.parametrize("name", MALFORMED)
def test_malformed_request_gets_a_clear_4xx(client, name):
    body, message = MALFORMED[name]
    response = client.post("/predict", json=body)
    assert 400 <= response.status_code < 500
    payload = response.json()
    assert payload["error"] == "invalid request" and payload["model_version"] == "1.0.0"
    assert message in json.dumps(payload["details"])


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_refused(client, token):
    raw = '{"instances": [[0.1, %s, 0.3, 0.4]]}' % token
    response = client.post("/predict", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 422 and "NaN or infinity" in response.text


def test_broken_json_is_a_4xx(client):
    response = client.post("/predict", content="{not json", headers={"content-type": "application/json"})
    assert response.status_code == 422


def test_health_and_metrics(client):
    assert client.get("/health").json() == {"status": "ready", "model": "toy", "model_version": "1.0.0"}
    client.post("/predict", json={"instances": []})
    text = client.get("/metrics").text
    assert 'requests_total{endpoint="/predict",status="422"}' in text
    assert "request_latency_seconds_bucket" in text and 'prediction_errors_total{kind="invalid_request"}' in text


def test_tampered_or_incomplete_artifact_is_refused(artifact, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(artifact[0], copy)
    weights = copy / serving.WEIGHTS_FILE
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(serving.ArtifactError, match="does not match its SHA-256"):
        serving.load_artifact(copy)
    weights.unlink()
    with pytest.raises(serving.ArtifactError, match="missing"):
        serving.load_artifact(copy)
    with pytest.raises(serving.ArtifactError, match="not a model artifact"):
        serving.load_artifact(tmp_path)


def test_real_server_survives_a_bounded_load_and_shuts_down_cleanly(artifact):
    process, url = serving.serve_in_background(artifact[0], allow_unsigned=True)
    try:
        payloads = [{"instances": [[0.1, 0.2, 0.3, 0.4]] * (1 + i % 4)} for i in range(200)]
        calls = []
        result = asyncio.run(serving.load_test(url, payloads, concurrency=8, after=(50, lambda: calls.append(1))))
        assert (result["statuses"] == 200).all(), "every request in the bounded load succeeds"
        assert math.isfinite(result["latencies"].max())
        assert calls == [1] and 0 < result["action_at"] < result["seconds"], "after=(n, action) runs once"
        assert (result["starts"] >= 0).all() and result["starts"].max() <= result["seconds"]
    finally:
        clean, log = serving.stop_server(process)
    assert clean, f"uvicorn shuts down cleanly on SIGTERM; its log:\n{log}"


def test_dockerfile_review_flags_the_classic_mistakes():
    bad = "FROM python\nCOPY data/ /app/data\nRUN pip install torch flask\nCMD python app.py\n"
    problems = serving.dockerfile_problems(bad)
    assert len(problems) == 5
    # the question bank's own Dockerfile: requirements.txt is installed but never copied, and nothing starts a server
    seed = ("FROM tensorflow/tensorflow:2.6.0\nCOPY model.py /model.py\nCOPY data /data\n"
            "RUN pip install -r requirements.txt\nEXPOSE 8080\n")
    found = serving.dockerfile_problems(seed)
    assert any("never copied" in p for p in found) and any("no CMD" in p for p in found)
    assert not any("never copied" in p for p in serving.dockerfile_problems("COPY requirements.txt .\n" + seed))
    assert serving.dockerfile_problems(open(serving_root() / "deploy" / "Dockerfile").read()) == []


def serving_root():
    from pathlib import Path

    return Path(serving.__file__).resolve().parent.parent


def signed_copy(artifact, tmp_path):
    import shutil

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    copy = tmp_path / "signed"
    shutil.copytree(artifact[0], copy)
    serving.sign_manifest(copy, key)
    return copy, key


def rewrite_weights_and_manifest(directory):
    """The attacker who can write both files: new weights, and a manifest whose hash matches them."""
    weights = directory / serving.WEIGHTS_FILE
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    manifest = json.loads((directory / serving.MANIFEST_FILE).read_text())
    manifest["files"][serving.WEIGHTS_FILE] = serving.sha256_of(weights)
    (directory / serving.MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=True))


def test_a_signature_catches_weights_and_manifest_rewritten_together(artifact, tmp_path):
    copy, key = signed_copy(artifact, tmp_path)
    serving.load_artifact(copy, public_key=key.public_key())                  # the genuine artifact loads
    rewrite_weights_and_manifest(copy)
    serving.load_artifact(copy)                                                 # hashes alone are fooled...
    with pytest.raises(serving.ArtifactError, match="not signed by the expected key"):
        serving.load_artifact(copy, public_key=key.public_key())              # ...the signature is not
    (copy / serving.SIGNATURE_FILE).unlink()
    with pytest.raises(serving.ArtifactError, match="signed artifact is required"):
        serving.load_artifact(copy, public_key=key.public_key())


def test_public_key_hex_round_trip_and_clear_errors(artifact, tmp_path):
    _, key = signed_copy(artifact, tmp_path)
    text = serving.public_key_hex(key.public_key())
    assert len(text) == 64 and serving.public_key_hex(serving.public_key_from_hex(text)) == text
    with pytest.raises(ValueError, match="64 hex"):
        serving.public_key_from_hex("not hex")
    with pytest.raises(ValueError, match="32 bytes"):
        serving.public_key_from_hex("00" * 16)


def test_readiness_differs_from_liveness_for_a_refused_artifact(artifact, tmp_path):
    import time

    copy, key = signed_copy(artifact, tmp_path)
    rewrite_weights_and_manifest(copy)
    client = TestClient(serving.create_app(copy, public_key=key.public_key(), wait=False))
    for _ in range(200):                                  # the loader thread finishes in milliseconds
        if client.get("/health/ready").json()["status"] != "loading":
            break
        time.sleep(0.01)
    assert client.get("/health/live").status_code == 200
    ready = client.get("/health/ready")
    assert ready.status_code == 503 and ready.json()["status"] == "refused" and "signed" in ready.json()["reason"]
    assert client.get("/health").status_code == 503
    assert client.post("/predict", json={"instances": [[0.1, 0.2, 0.3, 0.4]]}).status_code == 503


def test_a_background_load_becomes_ready(artifact):
    import time

    client = TestClient(serving.create_app(artifact[0], wait=False))
    for _ in range(200):
        if client.get("/health/ready").status_code == 200:
            break
        time.sleep(0.01)
    assert client.get("/health/ready").status_code == 200
    assert client.post("/predict", json={"instances": [[0.1, 0.2, 0.3, 0.4]]}).status_code == 200


def test_the_service_refuses_to_start_without_a_public_key(artifact, tmp_path, monkeypatch):
    """Verification is the default: no key and no explicit opt-out is an error, not an unverified service."""
    for name in (serving.PUBLIC_KEY_ENV, serving.PUBLIC_KEY_FILE_ENV, serving.ALLOW_UNSIGNED_ENV):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(serving.ARTIFACT_ENV, str(artifact[0]))
    with pytest.raises(RuntimeError, match="no public key"):
        serving.app_from_env()
    copy, key = signed_copy(artifact, tmp_path)
    key_file = tmp_path / "public_key.hex"                   # as the ConfigMap mounts it
    key_file.write_text(serving.public_key_hex(key.public_key()) + "\n")
    assert serving.public_key_hex(serving.public_key_from_env({serving.PUBLIC_KEY_FILE_ENV: str(key_file)})) == \
        serving.public_key_hex(key.public_key())
    assert serving.public_key_from_env({serving.ALLOW_UNSIGNED_ENV: "1"}) is None
    with pytest.raises(RuntimeError, match="no public key"):
        serving.public_key_from_env({serving.ALLOW_UNSIGNED_ENV: "yes"})    # only "1" opts out
    # the env's key is enforced: the unsigned artifact is refused, the signed copy served
    monkeypatch.setenv(serving.PUBLIC_KEY_ENV, serving.public_key_hex(key.public_key()))
    client = TestClient(serving.app_from_env())
    wait_until_loaded(client)
    assert client.get("/health/ready").status_code == 503 and "signed" in client.get("/health/ready").json()["reason"]
    monkeypatch.setenv(serving.ARTIFACT_ENV, str(copy))
    client = TestClient(serving.app_from_env())
    wait_until_loaded(client)
    assert client.get("/health/ready").status_code == 200


def wait_until_loaded(client):
    import time

    for _ in range(500):
        if client.get("/health/ready").json()["status"] != "loading":
            return
        time.sleep(0.01)


def test_the_readiness_reason_does_not_show_the_servers_paths(artifact, tmp_path):
    copy, key = signed_copy(artifact, tmp_path)
    rewrite_weights_and_manifest(copy)
    client = TestClient(serving.create_app(copy, public_key=key.public_key(), wait=False))
    wait_until_loaded(client)
    reason = client.get("/health/ready").json()["reason"]
    assert "manifest.json is not signed" in reason and str(tmp_path) not in reason


def test_metrics_label_by_route_so_made_up_paths_add_no_series(artifact):
    client = TestClient(serving.create_app(artifact[0], max_batch=8))
    client.post("/predict", json={"instances": [[0.1, 0.2, 0.3, 0.4]]})
    for i in range(5):
        assert client.get(f"/probe-{i}").status_code == 404
    series = [line for line in client.get("/metrics").text.splitlines() if line.startswith("requests_total")]
    assert not any("probe" in line for line in series), series
    assert 'requests_total{endpoint="unmatched",status="404"} 5.0' in series
    assert 'requests_total{endpoint="/predict",status="200"} 1.0' in series


def test_dockerfile_review_knows_registry_ports_and_end_of_life_pythons():
    tail = "USER app\nHEALTHCHECK CMD true\nCMD [\"serve\"]\n"
    assert serving.dockerfile_problems("FROM registry.local:5000/python\n" + tail) == \
        ["base image registry.local:5000/python is not pinned to a version"]
    assert serving.dockerfile_problems("FROM registry.local:5000/python:3.11-slim\n" + tail) == []
    assert serving.dockerfile_problems("FROM python@sha256:" + "a" * 64 + "\n" + tail) == []
    eol = serving.dockerfile_problems("FROM python:3.8\n" + tail)     # 002 Q4's base image
    assert len(eol) == 1 and "end of life" in eol[0]
    assert serving.dockerfile_problems("FROM python:3.12.4-slim\n" + tail) == []
