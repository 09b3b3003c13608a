"""What the deployment tests share: the Kubernetes versions core kinds are validated for,
custom resources (KEDA, Strimzi, ServiceMonitor) validated against the JSON schemas of their
published CRDs, committed in schemas/ (see schemas/README.md), and finding a resource."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
from kubernetes_validate.utils import all_versions

SCHEMAS = Path(__file__).resolve().parent / "schemas"


def _version(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in v.split("."))


# the oldest version checked: persistentVolumeClaimRetentionPolicy is beta (on) from 1.27
KUBERNETES_VERSIONS = sorted({min((v for v in all_versions() if _version(v) >= (1, 27)),
                                  key=_version),
                              kubernetes_validate.latest_version()}, key=_version)


def one(resources: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [r for r in resources if r["kind"] == kind
             and (name is None or r["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


@functools.cache
def _validator(api_version: str, kind: str) -> jsonschema.protocols.Validator:
    group, _, version = api_version.rpartition("/")
    path = SCHEMAS / f"{group}_{kind.lower()}_{version}.json"
    if not path.exists():
        raise AssertionError(f"no schema for {kind} {api_version}: expected {path}")
    schema = json.loads(path.read_text())
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
    cls.check_schema(schema)
    return cls(schema)


def validate_custom(resource: dict[str, Any]) -> None:
    """Raises ``jsonschema.ValidationError`` naming the first field the CRD refuses."""
    _validator(resource["apiVersion"], resource["kind"]).validate(resource)


def check_probes(container: dict[str, Any], http_port: int) -> dict[str, int]:
    """Liveness on /healthz, readiness on /readyz, a startup probe long enough for a restore
    (2 minutes or more), all on a named port that is the HTTP port; the ports by name."""
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 120
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["port"] in ports
    assert ports["http"] == http_port
    return ports
