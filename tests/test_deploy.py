"""The shipping files: the Dockerfile passes review, dependencies are pinned, and the Kubernetes manifests
carry different readiness and liveness probes, an image pinned by digest, resource requests and limits, a
Service and an autoscaler."""

from pathlib import Path

import yaml

from utils.serving import dockerfile_problems

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"


def manifests():
    return {doc["kind"]: doc for doc in yaml.safe_load_all((DEPLOY / "k8s.yaml").read_text())}


def test_dockerfile_passes_review():
    assert dockerfile_problems((DEPLOY / "Dockerfile").read_text()) == []


def test_serving_requirements_are_pinned():
    lines = [l for l in (DEPLOY / "requirements-serving.txt").read_text().splitlines() if l and not l.startswith("#")]
    assert lines and all("==" in line for line in lines)


def test_deployment_has_probes_and_resources():
    container = manifests()["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert set(container["resources"]) == {"requests", "limits"}
    assert {"cpu", "memory"} <= set(container["resources"]["requests"]) and {"cpu", "memory"} <= set(container["resources"]["limits"])
    assert "@sha256:" in container["image"]                     # a digest names the bytes; a tag can move


def test_service_and_autoscaler_point_at_the_deployment():
    docs = manifests()
    assert set(docs) == {"Deployment", "Service", "HorizontalPodAutoscaler"}
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
