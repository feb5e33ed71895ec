"""The shipping files: the Dockerfile passes review and installs the whole pinned dependency closure with torch's
CPU build, and the Kubernetes manifests carry different readiness and liveness probes, an image pinned by digest,
resource requests and limits, the publisher's public key (so the service verifies signatures), a drain before
SIGTERM, a rollout that never lowers capacity, pods spread over nodes, a disruption budget, a Service and an
autoscaler."""

from pathlib import Path

import pytest
import yaml

from utils import serving
from utils.serving import dockerfile_problems

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"


def manifests():
    return {doc["kind"]: doc for doc in yaml.safe_load_all((DEPLOY / "k8s.yaml").read_text())}


def test_dockerfile_passes_review():
    assert dockerfile_problems((DEPLOY / "Dockerfile").read_text()) == []


def test_serving_requirements_pin_the_whole_dependency_closure_with_cpu_torch():
    """Every package the service's direct dependencies pull in is pinned, at the version the tests ran with."""
    lines = [l for l in (DEPLOY / "requirements-serving.txt").read_text().splitlines() if l and not l.startswith("#")]
    pins = dict(line.split("==") for line in lines)
    assert set(serving.SERVING_PACKAGES) < set(pins) and {"starlette", "anyio", "h11", "sympy", "jinja2"} <= set(pins)
    assert pins["torch"].endswith("+cpu"), "the image gets torch's CPU build"
    # The course's venv may hold torch's CUDA build (PyPI's default on Linux): its nvidia-* and triton packages and
    # the build's local label (+cpu, +cu128) are the only differences the image may have from what the tests ran.
    gpu_only = ("nvidia-", "triton", "cuda-")
    closure = {name: version.split("+")[0] for name, version in serving.dependency_closure().items()
               if not name.startswith(gpu_only)}
    assert {name: version.split("+")[0] for name, version in pins.items()} == closure, \
        "regenerate deploy/requirements-serving.txt from utils.serving.dependency_closure()"
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert "--no-deps" in dockerfile, "nothing outside the pinned list may be installed"
    assert "--index-url https://download.pytorch.org/whl/cpu" in dockerfile, "PyPI's Linux torch is the CUDA build"
    assert "OMP_NUM_THREADS=1" in dockerfile


def container(doc):
    return doc["spec"]["template"]["spec"]["containers"][0]


@pytest.mark.parametrize("path", ["k8s.yaml", "k8s-canary.yaml"])
def test_every_deployment_verifies_the_signature_with_the_shipped_public_key(path):
    """The service refuses to start without a key (tests/test_serving.py); both tracks are given one."""
    docs = [doc for name in ("k8s.yaml", path) for doc in yaml.safe_load_all((DEPLOY / name).read_text())]
    config_maps = {doc["metadata"]["name"]: doc["data"] for doc in docs if doc["kind"] == "ConfigMap"}
    deployment = next(doc for doc in yaml.safe_load_all((DEPLOY / path).read_text()) if doc["kind"] == "Deployment")
    env = {item["name"]: item for item in container(deployment)["env"]}
    reference = env[serving.PUBLIC_KEY_ENV]["valueFrom"]["configMapKeyRef"]
    assert reference["key"] in config_maps[reference["name"]]
    assert serving.ALLOW_UNSIGNED_ENV not in env
    assert env["OMP_NUM_THREADS"]["value"] == container(deployment)["resources"]["limits"]["cpu"]


def test_a_rollout_or_a_node_drain_keeps_a_ready_pod_serving():
    docs = manifests()
    deployment, spec = docs["Deployment"], docs["Deployment"]["spec"]["template"]["spec"]
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    sleep = container(deployment)["lifecycle"]["preStop"]["exec"]["command"]
    assert sleep[0] == "sleep" and 0 < int(sleep[1]) < spec["terminationGracePeriodSeconds"]
    pods = deployment["spec"]["template"]["metadata"]["labels"]
    spread = spec["topologySpreadConstraints"][0]
    assert spread["topologyKey"] == "kubernetes.io/hostname" and spread["whenUnsatisfiable"] == "DoNotSchedule"
    assert all(pods.get(k) == v for k, v in spread["labelSelector"]["matchLabels"].items())
    budget = docs["PodDisruptionBudget"]["spec"]
    assert all(pods.get(k) == v for k, v in budget["selector"]["matchLabels"].items())
    assert 1 <= budget["minAvailable"] < deployment["spec"]["replicas"]


def test_deployment_has_probes_and_resources():
    container = manifests()["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert set(container["resources"]) == {"requests", "limits"}
    assert {"cpu", "memory"} <= set(container["resources"]["requests"]) and {"cpu", "memory"} <= set(container["resources"]["limits"])
    assert "@sha256:" in container["image"]                     # a digest names the bytes; a tag can move


def test_service_and_autoscaler_point_at_the_deployment():
    docs = manifests()
    assert set(docs) == {"ConfigMap", "Deployment", "Service", "PodDisruptionBudget", "HorizontalPodAutoscaler"}
    assert docs["Service"]["spec"]["selector"] == docs["Deployment"]["spec"]["selector"]["matchLabels"]
    hpa = docs["HorizontalPodAutoscaler"]["spec"]
    assert hpa["scaleTargetRef"]["name"] == docs["Deployment"]["metadata"]["name"]
    assert 1 <= hpa["minReplicas"] <= hpa["maxReplicas"]


def test_canary_gets_its_stated_share_and_never_mixes_with_the_stable_pods():
    canary = {doc["kind"]: doc for doc in yaml.safe_load_all((DEPLOY / "k8s-canary.yaml").read_text())}
    stable = manifests()
    weights = {ref["name"]: ref["weight"] for ref in canary["HTTPRoute"]["spec"]["rules"][0]["backendRefs"]}
    assert weights == {stable["Service"]["metadata"]["name"]: 90, canary["Service"]["metadata"]["name"]: 10}
    stable_pods = stable["Deployment"]["spec"]["template"]["metadata"]["labels"]
    canary_pods = canary["Deployment"]["spec"]["template"]["metadata"]["labels"]
    selects = lambda selector, labels: all(labels.get(k) == v for k, v in selector.items())  # noqa: E731
    assert selects(stable["Service"]["spec"]["selector"], stable_pods)
    assert not selects(stable["Service"]["spec"]["selector"], canary_pods)
    assert selects(canary["Service"]["spec"]["selector"], canary_pods)
    assert not selects(canary["Service"]["spec"]["selector"], stable_pods)
    stable_probes = {k: v for k, v in stable["Deployment"]["spec"]["template"]["spec"]["containers"][0].items()
                     if k.endswith("Probe")}
    assert stable_probes == {k: v for k, v in canary["Deployment"]["spec"]["template"]["spec"]["containers"][0].items()
                             if k.endswith("Probe")}
