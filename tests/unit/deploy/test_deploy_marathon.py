"""deploy/marathon/airline.json: valid for the JSON schema Marathon published for app
definitions (schemas/marathon_appdefinition_v2.json, see schemas/README.md), and what that
schema leaves open: the talk's sizing, agreement with the image, the env, the checks' paths."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from tests.unit.deploy.deploy_checks import SCHEMAS

REPO = Path(__file__).resolve().parents[3]
APP = REPO / "deploy" / "marathon" / "airline.json"
DOCKERFILE = REPO / "deploy" / "docker" / "Dockerfile"


@pytest.fixture(scope="module")
def app() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(APP.read_text())
    return data


@pytest.fixture(scope="module")
def schema() -> jsonschema.Draft4Validator:
    # its "$schema" is the unversioned "http://json-schema.org/schema#", which jsonschema does
    # not resolve; Marathon checked it with fge json-schema-validator 2.2, i.e. draft-04
    raw = json.loads((SCHEMAS / "marathon_appdefinition_v2.json").read_text())
    jsonschema.Draft4Validator.check_schema(raw)
    return jsonschema.Draft4Validator(raw)


def test_valid_for_marathons_schema(app: dict[str, Any],
                                    schema: jsonschema.Draft4Validator) -> None:
    errors = [f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}"
              for e in schema.iter_errors(app)]
    assert not errors, errors


def _set(path: tuple[str | int, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    def change(app: dict[str, Any]) -> None:
        parent: Any = app
        for key in path[:-1]:
            parent = parent[key]
        parent[path[-1]] = value
    return change


def _rename(path: tuple[str | int, ...], new: str) -> Callable[[dict[str, Any]], None]:
    def change(app: dict[str, Any]) -> None:
        parent: Any = app
        for key in path[:-1]:
            parent = parent[key]
        parent[new] = parent.pop(path[-1])
    return change


@pytest.mark.parametrize(("change", "validator"), [
    (_rename(("instances",), "instance"), "additionalProperties"),
    (_rename(("healthChecks", 0, "intervalSeconds"), "intervalSecond"),
     "additionalProperties"),
    (_set(("cmd",), "python -m fluvial run examples.airline.service:build"), "not"),
    (_set(("networks", 0, "mode"), "bridge"), "enum"),
], ids=["misspelt-field", "misspelt-nested-field", "cmd-and-args", "unknown-network-mode"])
def test_the_schema_is_applied(app: dict[str, Any], schema: jsonschema.Draft4Validator,
                               change: Callable[[dict[str, Any]], None],
                               validator: str) -> None:
    bad = copy.deepcopy(app)
    change(bad)
    assert [e.validator for e in schema.iter_errors(bad)] == [validator]


def test_sizing_command_and_env(app: dict[str, Any]) -> None:
    # the schema also accepts a relative id, which Marathon resolves against the group posted to
    assert app["id"].startswith("/"), app["id"]
    assert app["instances"] == 5  # the talk's 5 instances
    assert app["cpus"] > 0 and app["mem"] >= 512
    assert "cmd" not in app, "cmd would replace the image's ENTRYPOINT with a shell"
    assert app["args"][0] == "examples.airline.service:build"
    # the schema also accepts {"secret": ...} references, which need a secret store
    assert all(isinstance(v, str) for v in app["env"].values()), "env values are plain strings"
    assert app["env"]["FLUVIAL_APPLICATION_ID"] == "airline-delay"
    assert app["env"]["FLUVIAL_BOOTSTRAP_SERVERS"].endswith(":9092")


def test_container_ports_and_vip(app: dict[str, Any]) -> None:
    container = app["container"]
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
    # the schema's minimum is 0
    for key in ("gracePeriodSeconds", "intervalSeconds", "timeoutSeconds",
                "maxConsecutiveFailures"):
        assert health[key] > 0, key
    assert health["timeoutSeconds"] < health["intervalSeconds"]
    (ready,) = app["readinessChecks"]
    assert ready["path"] == "/readyz"
    assert ready["portName"] == app["container"]["portMappings"][0]["name"]
    assert ready["httpStatusCodesForReady"] == [200]


def test_upgrade_and_shutdown(app: dict[str, Any]) -> None:
    strategy = app["upgradeStrategy"]
    # a rolling upgrade keeps most instances (and so most partitions) where they are
    assert strategy["minimumHealthCapacity"] * app["instances"] >= app["instances"] - 1
    assert app["taskKillGracePeriodSeconds"] >= 30  # SIGTERM: commit and leave the group
