"""deploy/kubernetes, validated offline.

Core resources (StatefulSet, Services, PodDisruptionBudget) go through kubernetes-validate's
bundled OpenAPI schemas in strict mode (an unknown or misspelt field fails); custom
resources (KEDA ScaledObject, Strimzi KafkaTopic), for which it has no schema, go through
their CRDs' JSON schemas (schemas/, deploy_checks.py) and a structural check; and the files
are checked against each other, the Dockerfile and the docs' settings (ports, paths, names,
the application id, partitions = max replicas).
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import kubernetes_validate  # the dev extra
import pytest
import yaml
from tests.unit.deploy.deploy_checks import (
    KUBERNETES_VERSIONS,
    check_probes,
    one,
    validate_custom,
)

REPO = Path(__file__).resolve().parents[3]
KUBE = REPO / "deploy" / "kubernetes"
DOCKERFILE = REPO / "deploy" / "docker" / "Dockerfile"

CORE_API_VERSIONS = {"v1", "apps/v1", "policy/v1", "autoscaling/v2"}
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def load_all() -> dict[str, list[dict[str, Any]]]:
    return {path.name: [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
            for path in sorted(KUBE.glob("*.yaml"))}


@pytest.fixture(scope="module")
def files() -> dict[str, list[dict[str, Any]]]:
    return load_all()


@pytest.fixture(scope="module")
def resources(files: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return [d for name, docs in files.items() if name != "kustomization.yaml" for d in docs]



def env_of(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in container.get("env", [])}


def test_kustomization_lists_every_file(files: dict[str, list[dict[str, Any]]]) -> None:
    (kustomization,) = files["kustomization.yaml"]
    assert kustomization["apiVersion"] == "kustomize.config.k8s.io/v1beta1"
    assert kustomization["kind"] == "Kustomization"
    listed = kustomization["resources"]
    assert sorted(listed) == sorted(set(files) - {"kustomization.yaml"})
    for image in kustomization.get("images", []):
        assert image["name"] == "fluvial-airline"


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_core_resources_pass_strict_schema_validation(resources: list[dict[str, Any]],
                                                      version: str) -> None:
    core = [r for r in resources if r["apiVersion"] in CORE_API_VERSIONS]
    assert {r["kind"] for r in core} >= {"StatefulSet", "Service", "PodDisruptionBudget"}
    for resource in core:
        kubernetes_validate.validate(resource, version, strict=True)


def test_strict_validation_catches_a_misspelt_field(resources: list[dict[str, Any]]) -> None:
    bad = copy.deepcopy(one(resources, "StatefulSet"))
    probe = bad["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]
    probe["periodSecond"] = probe.pop("periodSeconds")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, kubernetes_validate.latest_version(), strict=True)


def test_custom_resources_have_the_required_structure(resources: list[dict[str, Any]]) -> None:
    custom = [r for r in resources if r["apiVersion"] not in CORE_API_VERSIONS]
    assert {(r["apiVersion"], r["kind"]) for r in custom} == {
        ("keda.sh/v1alpha1", "ScaledObject"), ("kafka.strimzi.io/v1", "KafkaTopic")}
    for r in custom:
        validate_custom(r)
        assert set(r) == {"apiVersion", "kind", "metadata", "spec"}, r["metadata"]
        assert DNS_LABEL.match(r["metadata"]["name"]), r["metadata"]["name"]
    for topic in (r for r in custom if r["kind"] == "KafkaTopic"):
        spec = topic["spec"]
        assert topic["metadata"]["labels"]["strimzi.io/cluster"] == "airline"
        assert set(spec) <= {"topicName", "partitions", "replicas", "config"}
        assert isinstance(spec["partitions"], int) and spec["partitions"] >= 1
        assert spec["replicas"] == 3
        assert all(isinstance(v, str | int) for v in spec.get("config", {}).values())
        assert int(spec["config"]["min.insync.replicas"]) == 2
    scaled = one(custom, "ScaledObject")
    spec = scaled["spec"]
    assert set(spec) <= {"scaleTargetRef", "minReplicaCount", "maxReplicaCount",
                         "pollingInterval", "cooldownPeriod", "idleReplicaCount", "fallback",
                         "advanced", "triggers", "initialCooldownPeriod"}
    assert {"name"} <= set(spec["scaleTargetRef"])
    assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
    (trigger,) = spec["triggers"]
    assert trigger["type"] == "kafka"
    meta = trigger["metadata"]
    assert {"bootstrapServers", "consumerGroup", "topic", "lagThreshold"} <= set(meta)
    assert all(isinstance(v, str) for v in meta.values()), "KEDA trigger metadata are strings"
    assert meta["offsetResetPolicy"] in ("earliest", "latest")
    assert meta["allowIdleConsumers"] == "false"
    int(meta["lagThreshold"]), int(meta["activationLagThreshold"])


def test_topics(resources: list[dict[str, Any]]) -> None:
    topics = {r["spec"].get("topicName", r["metadata"]["name"]): r["spec"]
              for r in resources if r["kind"] == "KafkaTopic"}
    assert topics["AirlineInputTopic"]["partitions"] == 10
    assert topics["AirlineOutputTopic"]["partitions"] == 10
    models = topics["AirlineModels"]
    assert models["partitions"] == 1
    assert models["config"]["cleanup.policy"] == "compact"
    from fluvial.ml.sources import MODELS_TOPIC_CONFIG

    assert str(models["config"]["max.message.bytes"]) == MODELS_TOPIC_CONFIG["max.message.bytes"]
    assert "airline-delay-dead-letter" in topics  # <application id>-dead-letter


def test_statefulset_probes_state_and_settings(resources: list[dict[str, Any]]) -> None:
    sts = one(resources, "StatefulSet", "airline-delay")
    spec = sts["spec"]
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    env = env_of(container)

    assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()
    headless = one(resources, "Service", spec["serviceName"])
    assert headless["spec"]["clusterIP"] == "None"

    check_probes(container, int(env["FLUVIAL_HTTP_PORT"]))
    assert pod["terminationGracePeriodSeconds"] >= 30

    # the state directory is a volumeClaimTemplate
    (claim,) = spec["volumeClaimTemplates"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts[claim["metadata"]["name"]] == env["FLUVIAL_STATE_DIR"]

    assert env["FLUVIAL_APPLICATION_ID"] == "airline-delay"
    assert env["FLUVIAL_BOOTSTRAP_SERVERS"]
    assert env["FLUVIAL_PROCESSING_GUARANTEE"] in ("exactly_once", "at_least_once")
    assert int(env["FLUVIAL_REPLICATION_FACTOR"]) == 3
    resources_ = container["resources"]
    assert {"cpu", "memory"} <= set(resources_["requests"]) and "memory" in resources_["limits"]
    assert pod["securityContext"]["runAsNonRoot"] is True

    assert container["args"][0] == "examples.airline.service:build"
    assert "command" not in container, "keep the image's ENTRYPOINT (fluvial run)"


def test_statefulset_matches_the_image() -> None:
    """Same uid as the image's USER, same state dir as its VOLUME, same port as EXPOSE."""
    text = DOCKERFILE.read_text()
    uid = int(re.findall(r"^USER (\d+)", text, re.M)[-1])
    volume = re.search(r'^VOLUME \["([^"]+)"\]', text, re.M)
    expose = re.search(r"^EXPOSE (\d+)", text, re.M)
    assert volume and expose
    sts = one(load_all()["statefulset.yaml"], "StatefulSet")
    pod = sts["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsUser"] == uid
    assert pod["securityContext"]["fsGroup"] == uid
    (container,) = pod["containers"]
    assert env_of(container)["FLUVIAL_STATE_DIR"] == volume.group(1)
    assert container["ports"][0]["containerPort"] == int(expose.group(1))


def test_metrics_service_and_scaling_match(resources: list[dict[str, Any]]) -> None:
    sts = one(resources, "StatefulSet", "airline-delay")
    labels = sts["spec"]["template"]["metadata"]["labels"]
    (container,) = sts["spec"]["template"]["spec"]["containers"]
    env = env_of(container)
    for service in (r for r in resources if r["kind"] == "Service"):
        assert service["spec"]["selector"].items() <= labels.items()
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in {p["name"] for p in container["ports"]}
    metrics = one(resources, "Service", "airline-delay-metrics")
    annotations = metrics["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/path"] == "/metrics"
    assert int(annotations["prometheus.io/port"]) == int(env["FLUVIAL_HTTP_PORT"])

    scaled = one(resources, "ScaledObject")
    target = scaled["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("StatefulSet", sts["metadata"]["name"])
    meta = scaled["spec"]["triggers"][0]["metadata"]
    assert meta["consumerGroup"] == env["FLUVIAL_APPLICATION_ID"]
    assert meta["bootstrapServers"] == env["FLUVIAL_BOOTSTRAP_SERVERS"]
    assert meta["topic"] == env["FLUVIAL_AIRLINE_INPUT"]
    (input_topic,) = [r for r in resources if r["kind"] == "KafkaTopic"
                      and r["spec"].get("topicName") == meta["topic"]]
    assert scaled["spec"]["maxReplicaCount"] == input_topic["spec"]["partitions"]
    assert sts["spec"]["replicas"] <= scaled["spec"]["maxReplicaCount"]
    pdb = one(resources, "PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
