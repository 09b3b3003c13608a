"""deploy/helm/fluvial, rendered by the real helm (``make helm``) and validated offline.

Core kinds go through kubernetes-validate in strict mode; custom resources (KEDA
ScaledObject and TriggerAuthentication, Strimzi KafkaTopic, ServiceMonitor) through the JSON
schemas of their published CRDs (schemas/); then the rendered objects are checked against
each other, fluvial's settings and the image, with the default values and with a secured
cluster's.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import shutil
import subprocess
from dataclasses import fields
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate  # the dev extra
import pytest
import yaml
from tests.unit.deploy.deploy_checks import (
    KUBERNETES_VERSIONS,
    check_probes,
    one,
    validate_custom,
)

from fluvial.cli.main import cli
from fluvial.runtime.config import StreamsConfig

REPO = Path(__file__).resolve().parents[3]
CHART = REPO / "deploy" / "helm" / "fluvial"
DOCKERFILE = REPO / "deploy" / "docker" / "Dockerfile"
CORE_API_VERSIONS = {"v1", "apps/v1", "policy/v1", "batch/v1"}
KUBE_VERSION = "1.31.0"  # what `helm template` checks the chart's kubeVersion against


SECURED = {
    "kafka": {
        "bootstrapServers": "kafka.example.com:9094",
        "config": {"security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512",
                   "ssl.ca.location": "/etc/fluvial/kafka-ca/ca.crt"},
        "credentialsSecret": {"name": "airline-kafka-credentials", "key": "fluvial.toml"},
        "caSecret": {"name": "airline-cluster-ca-cert", "key": "ca.crt"},
    },
    "autoscaling": {"sasl": "scram_sha512", "tls": True},
    "http": {"tokenSecret": "airline-http-token"},
    "persistence": {"size": "20Gi", "storageClassName": "fast-ssd"},
}


def helm() -> str:
    found = sorted(REPO.glob(".tools/helm-*/helm")) or \
        [Path(p) for p in [shutil.which("helm")] if p]
    if not found:
        pytest.skip("no helm: `make helm` builds it into .tools/ (needs Go)")
    return str(found[-1])


def render(tmp_path: Path, values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    args = [helm(), "template", "airline", str(CHART), "--namespace", "kafka",
            "--kube-version", KUBE_VERSION]
    if values is not None:
        path = tmp_path / "values.yaml"
        path.write_text(yaml.safe_dump(values))
        args += ["--values", str(path)]
    result = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d is not None]


@pytest.fixture(scope="module")
def default(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    return render(tmp_path_factory.mktemp("default"))


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    return render(tmp_path_factory.mktemp("secured"), SECURED)



def container_of(workload: dict[str, Any]) -> dict[str, Any]:
    (container,) = workload["spec"]["template"]["spec"]["containers"]
    return container


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def test_helm_lint_is_clean() -> None:
    result = subprocess.run([helm(), "lint", "--strict", str(CHART), "--kube-version",
                             KUBE_VERSION], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout


def test_the_chart_renders_every_kind(default: list[dict[str, Any]],
                                      secured: list[dict[str, Any]]) -> None:
    assert sorted({r["kind"] for r in default}) == [
        "Job", "KafkaTopic", "PodDisruptionBudget", "ScaledObject", "Service",
        "ServiceMonitor", "StatefulSet"]
    assert {r["kind"] for r in secured} - {r["kind"] for r in default} == \
        {"TriggerAuthentication"}


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_core_kinds_pass_strict_schema_validation(default: list[dict[str, Any]],
                                                  secured: list[dict[str, Any]],
                                                  version: str) -> None:
    for resource in (r for r in default + secured if r["apiVersion"] in CORE_API_VERSIONS):
        kubernetes_validate.validate(resource, version, strict=True)


def test_custom_resources_pass_their_crd_schemas(default: list[dict[str, Any]],
                                                 secured: list[dict[str, Any]]) -> None:
    custom = [r for r in default + secured if r["apiVersion"] not in CORE_API_VERSIONS]
    assert {(r["apiVersion"], r["kind"]) for r in custom} == {
        ("keda.sh/v1alpha1", "ScaledObject"), ("keda.sh/v1alpha1", "TriggerAuthentication"),
        ("kafka.strimzi.io/v1", "KafkaTopic"), ("monitoring.coreos.com/v1", "ServiceMonitor")}
    for resource in custom:
        validate_custom(resource)


def test_the_crd_schemas_catch_a_misspelt_field(default: list[dict[str, Any]]) -> None:
    for kind, path in (("ScaledObject", ("spec", "maxReplicaCount")),
                       ("KafkaTopic", ("spec", "partitions")),
                       ("ServiceMonitor", ("spec", "endpoints"))):
        bad = copy.deepcopy(next(r for r in default if r["kind"] == kind))
        parent = bad
        for key in path[:-1]:
            parent = parent[key]
        parent[path[-1] + "s"] = parent.pop(path[-1])
        with pytest.raises(jsonschema.ValidationError):
            validate_custom(bad)


def test_every_fluvial_variable_is_a_setting_fluvial_reads(
        default: list[dict[str, Any]], secured: list[dict[str, Any]]) -> None:
    """A misspelt FLUVIAL_* variable would be ignored silently: each must be a settings
    field, an option of `fluvial run`, or the airline service's own."""
    run = cli.commands["run"]
    known = {f"FLUVIAL_{f.name.upper()}" for f in fields(StreamsConfig)}
    known |= {p.envvar for command in (cli, run) for p in command.params
              if isinstance(p.envvar, str)}
    service = (REPO / "examples" / "airline" / "service.py").read_text()
    for workload in (r for r in default + secured if r["kind"] in ("StatefulSet", "Job")):
        for name in env_of(container_of(workload)):
            assert name in known or f'"{name}"' in service, name


def test_statefulset_probes_state_and_image(default: list[dict[str, Any]]) -> None:
    sts = one(default, "StatefulSet")
    pod = sts["spec"]["template"]["spec"]
    container = container_of(sts)
    env = env_of(container)
    ports = check_probes(container, int(env["FLUVIAL_HTTP_PORT"]))
    (claim,) = sts["spec"]["volumeClaimTemplates"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "1Gi"
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts[claim["metadata"]["name"]] == env["FLUVIAL_STATE_DIR"]
    assert env["FLUVIAL_APPLICATION_ID"] == "airline-delay"
    assert env["FLUVIAL_LOG_FORMAT"] == "json"
    assert container["args"] == ["examples.airline.service:build"]
    assert "command" not in container, "keep the image's ENTRYPOINT (fluvial run)"
    assert "replicas" not in sts["spec"], "KEDA owns the replica count"
    headless = one(default, "Service", sts["spec"]["serviceName"])
    assert headless["spec"]["clusterIP"] == "None"
    # the image's user, state volume and port
    text = DOCKERFILE.read_text()
    assert f"USER {pod['securityContext']['runAsUser']}:" in text
    assert f'VOLUME ["{env["FLUVIAL_STATE_DIR"]}"]' in text
    assert f"EXPOSE {ports['http']}" in text


def test_metrics_scaling_and_disruptions_select_the_pods(default: list[dict[str, Any]]) -> None:
    sts = one(default, "StatefulSet")
    labels = sts["spec"]["template"]["metadata"]["labels"]
    env = env_of(container_of(sts))
    metrics = one(default, "Service", "airline-fluvial-metrics")
    assert metrics["spec"]["selector"].items() <= labels.items()
    monitor = one(default, "ServiceMonitor")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= \
        metrics["metadata"]["labels"].items()
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {p["name"] for p in metrics["spec"]["ports"]}
    assert endpoint["path"] == "/metrics"
    pdb = one(default, "PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()

    scaled = one(default, "ScaledObject")
    target = scaled["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("StatefulSet", sts["metadata"]["name"])
    (trigger,) = scaled["spec"]["triggers"]
    meta = trigger["metadata"]
    assert meta["consumerGroup"] == env["FLUVIAL_APPLICATION_ID"]
    assert meta["bootstrapServers"] == env["FLUVIAL_BOOTSTRAP_SERVERS"]
    assert meta["topic"] == env["FLUVIAL_AIRLINE_INPUT"]
    assert all(isinstance(v, str) for v in meta.values()), "KEDA trigger metadata are strings"
    assert "authenticationRef" not in trigger
    topics = {t["spec"].get("topicName", t["metadata"]["name"]): t
              for t in default if t["kind"] == "KafkaTopic"}
    assert scaled["spec"]["maxReplicaCount"] == topics[meta["topic"]]["spec"]["partitions"]
    assert f"{env['FLUVIAL_APPLICATION_ID']}-dead-letter" in topics
    models = topics[env["FLUVIAL_AIRLINE_MODELS"]]["spec"]
    from fluvial.ml.sources import MODELS_TOPIC_CONFIG

    assert models["partitions"] == 1
    assert str(models["config"]["max.message.bytes"]) == MODELS_TOPIC_CONFIG["max.message.bytes"]
    assert all(t["metadata"]["labels"]["strimzi.io/cluster"] == "airline"
               for t in topics.values())


def test_the_model_job_publishes_with_the_service_s_settings(
        default: list[dict[str, Any]], secured: list[dict[str, Any]]) -> None:
    for resources in (default, secured):
        job = one(resources, "Job")
        sts = one(resources, "StatefulSet")
        container = container_of(job)
        assert job["metadata"]["annotations"]["helm.sh/hook"] == "post-install,post-upgrade"
        assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
        assert container["image"] == container_of(sts)["image"]
        python, flag, module = container["command"]
        assert (python, flag) == ("python", "-m")
        assert importlib.util.find_spec(module) is not None, module
        job_env, sts_env = env_of(container), env_of(container_of(sts))
        for name in ("FLUVIAL_BOOTSTRAP_SERVERS", "FLUVIAL_KAFKA_CONFIG", "FLUVIAL_CONFIG",
                     "FLUVIAL_AIRLINE_MODELS"):
            assert job_env.get(name) == sts_env.get(name), name
        job_volumes = job["spec"]["template"]["spec"]["volumes"]
        sts_volumes = sts["spec"]["template"]["spec"]["volumes"]
        assert job_volumes == sts_volumes


def test_a_secured_cluster_s_credentials_come_from_secrets(
        secured: list[dict[str, Any]]) -> None:
    sts = one(secured, "StatefulSet")
    container = container_of(sts)
    env = env_of(container)
    # the secret settings: a TOML file from the Secret, named by FLUVIAL_CONFIG
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in sts["spec"]["template"]["spec"]["volumes"]}
    config_file = Path(env["FLUVIAL_CONFIG"])
    (credentials,) = [name for name, path in mounts.items() if path == str(config_file.parent)]
    secret = volumes[credentials]["secret"]
    assert secret["secretName"] == "airline-kafka-credentials"
    assert secret["items"] == [{"key": "fluvial.toml", "path": config_file.name}]
    # the rest: a JSON object fluvial's settings accept, naming the mounted CA
    kafka_config = json.loads(env["FLUVIAL_KAFKA_CONFIG"])
    assert kafka_config["security.protocol"] == "SASL_SSL"
    ca = Path(kafka_config["ssl.ca.location"])
    assert volumes["kafka-ca"]["secret"]["items"] == [{"key": "ca.crt", "path": ca.name}]
    assert mounts["kafka-ca"] == str(ca.parent)
    assert env["FLUVIAL_HTTP_TOKEN"] == {"secretKeyRef": {"name": "airline-http-token",
                                                         "key": "token"}}
    assert not [e for e in container["env"] if "password" in json.dumps(e).lower()]
    # KEDA reads the lag with the same Secret's username and password
    scaled = one(secured, "ScaledObject")
    (trigger,) = scaled["spec"]["triggers"]
    assert (trigger["metadata"]["sasl"], trigger["metadata"]["tls"]) == ("scram_sha512",
                                                                        "enable")
    auth = one(secured, "TriggerAuthentication", trigger["authenticationRef"]["name"])
    refs = {r["parameter"]: (r["name"], r["key"]) for r in auth["spec"]["secretTargetRef"]}
    assert refs == {"username": ("airline-kafka-credentials", "username"),
                    "password": ("airline-kafka-credentials", "password"),
                    "ca": ("airline-cluster-ca-cert", "ca.crt")}
    (claim,) = sts["spec"]["volumeClaimTemplates"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "20Gi"
    assert claim["spec"]["storageClassName"] == "fast-ssd"


def test_without_autoscaling_the_replica_count_is_the_chart_s(tmp_path: Path) -> None:
    resources = render(tmp_path, {"autoscaling": {"enabled": False}, "replicaCount": 3,
                                  "podDisruptionBudget": {"enabled": False},
                                  "metrics": {"serviceMonitor": {"enabled": False}},
                                  "topics": {"create": False},
                                  "modelJob": {"enabled": False}})
    assert sorted(r["kind"] for r in resources) == ["Service", "Service", "StatefulSet"]
    assert one(resources, "StatefulSet")["spec"]["replicas"] == 3


def test_a_missing_bootstrap_address_fails_the_render(tmp_path: Path) -> None:
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump({"kafka": {"bootstrapServers": ""}}))
    result = subprocess.run([helm(), "template", "airline", str(CHART), "--kube-version",
                             KUBE_VERSION, "--values", str(path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "kafka.bootstrapServers is required" in result.stderr


def test_the_rendered_settings_and_the_secret_s_file_make_one_client_config(
        secured: list[dict[str, Any]], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """What an instance of the secured release reads: the env as rendered, and the Secret's
    TOML file at FLUVIAL_CONFIG (here a stand-in with the documented content)."""
    env = env_of(container_of(one(secured, "StatefulSet")))
    credentials = tmp_path / "fluvial.toml"
    credentials.write_text('[kafka_config]\n"sasl.username" = "airline-delay"\n'
                           '"sasl.password" = "s3cret"\n')
    for name in [n for n in os.environ if n.startswith("FLUVIAL_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        if isinstance(value, str) and name != "FLUVIAL_CONFIG":
            monkeypatch.setenv(name, value)
    config = StreamsConfig.create(credentials)
    assert config.bootstrap_servers == "kafka.example.com:9094"
    assert config.application_id == "airline-delay"
    assert config.client_config("consumer") == {
        "security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512",
        "ssl.ca.location": "/etc/fluvial/kafka-ca/ca.crt",
        "sasl.username": "airline-delay", "sasl.password": "s3cret"}
