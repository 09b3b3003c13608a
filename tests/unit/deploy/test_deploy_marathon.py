"""deploy/marathon/airline.json: a Marathon app definition's structure (fields as in
Marathon's API docs), and agreement with the image and the Kubernetes manifests."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[3]
APP = REPO / "deploy" / "marathon" / "airline.json"
DOCKERFILE = REPO / "deploy" / "docker" / "Dockerfile"
TOP_LEVEL = {"id", "labels", "instances", "cpus", "mem", "disk", "container", "networks",
             "args", "cmd", "env", "healthChecks", "readinessChecks", "upgradeStrategy",
             "taskKillGracePeriodSeconds", "constraints", "unreachableStrategy",
             "backoffSeconds", "backoffFactor", "maxLaunchDelaySeconds", "portDefinitions",
             "fetch", "user", "killSelection", "secrets"}


@pytest.fixture(scope="module")
def app() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(APP.read_text())
    return data


def test_required_fields_and_types(app: dict[str, Any]) -> None:
    assert set(app) <= TOP_LEVEL, set(app) - TOP_LEVEL
    assert re.fullmatch(r"(/[a-z0-9]([a-z0-9-]*[a-z0-9])?)+", app["id"]), app["id"]
    assert app["instances"] == 5  # the talk's 5 instances
    assert app["cpus"] > 0 and app["mem"] >= 512
    assert "cmd" not in app, "cmd would replace the image's ENTRYPOINT with a shell"
    assert app["args"][0] == "examples.airline.service:build"
    assert all(isinstance(v, str) for v in app["env"].values()), "Marathon env values are strings"
    assert app["env"]["FLUVIAL_APPLICATION_ID"] == "airline-delay"
    assert app["env"]["FLUVIAL_BOOTSTRAP_SERVERS"].endswith(":9092")


def test_container_ports_and_vip(app: dict[str, Any]) -> None:
    container = app["container"]
    assert container["type"] in ("DOCKER", "MESOS")
    assert container["docker"]["image"].split("/")[-1].startswith("fluvial-airline:")
    (network,) = app["networks"]
    assert network["mode"] == "container/bridge"
    (mapping,) = container["portMappings"]
    assert mapping["containerPort"] == int(app["env"]["FLUVIAL_HTTP_PORT"])
    assert mapping["protocol"] == "tcp" and mapping["hostPort"] == 0
    vip = mapping["labels"]["VIP_0"]
    assert re.fullmatch(r"/[a-z0-9-]+:\d+", vip), vip
    assert int(vip.rsplit(":", 1)[1]) == mapping["containerPort"]
    expose = re.search(r"^EXPOSE (\d+)", DOCKERFILE.read_text(), re.M)
    assert expose and int(expose.group(1)) == mapping["containerPort"]
    (volume,) = container["volumes"]
    assert volume["containerPath"] == app["env"]["FLUVIAL_STATE_DIR"]
    assert volume["mode"] == "RW"


def test_health_and_readiness_checks(app: dict[str, Any]) -> None:
    (health,) = app["healthChecks"]
    assert health["protocol"] in ("MESOS_HTTP", "HTTP")
    assert health["path"] == "/healthz"
    assert health["portIndex"] == 0
    for key in ("gracePeriodSeconds", "intervalSeconds", "timeoutSeconds",
                "maxConsecutiveFailures"):
        assert isinstance(health[key], int) and health[key] > 0, key
    assert health["timeoutSeconds"] < health["intervalSeconds"]
    (ready,) = app["readinessChecks"]
    assert ready["path"] == "/readyz"
    assert ready["portName"] == app["container"]["portMappings"][0]["name"]
    assert ready["httpStatusCodesForReady"] == [200]


def test_upgrade_and_shutdown(app: dict[str, Any]) -> None:
    strategy = app["upgradeStrategy"]
    assert 0 <= strategy["minimumHealthCapacity"] <= 1
    assert 0 <= strategy["maximumOverCapacity"] <= 1
    # a rolling upgrade keeps most instances (and so most partitions) where they are
    assert strategy["minimumHealthCapacity"] * app["instances"] >= app["instances"] - 1
    assert app["taskKillGracePeriodSeconds"] >= 30  # SIGTERM: commit and leave the group
