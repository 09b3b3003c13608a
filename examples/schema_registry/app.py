"""Late flights in Avro: flights in, delay alerts out, both with their schemas in a registry.

Run it with a broker and a registry at hand (``python tools/schema_registry.py up`` starts a
real one and prints its URL)::

    FLUVIAL_SCHEMA_REGISTRY=http://127.0.0.1:PORT/apis/ccompat/v7 \\
        fluvial run examples.schema_registry.app:build -a late-flights -b localhost:9092
"""

from __future__ import annotations

import json
import os
from typing import Any

import fluvial
from fluvial.errors import ConfigError
from fluvial.schema_registry import AvroSerde, Registry, registry_client

INPUT = "flights"
OUTPUT = "delay-alerts"
LATE_MINUTES = 15

FLIGHT = json.dumps({"type": "record", "name": "Flight", "namespace": "demo", "fields": [
    {"name": "carrier", "type": "string"},
    {"name": "delay", "type": "int", "doc": "minutes late at departure"}]})
ALERT = json.dumps({"type": "record", "name": "DelayAlert", "namespace": "demo", "fields": [
    {"name": "carrier", "type": "string"},
    {"name": "minutes", "type": "int"}]})


def alert(flight: dict[str, Any]) -> dict[str, Any]:
    return {"carrier": flight["carrier"], "minutes": flight["delay"]}


def build(source: str = INPUT, sink: str = OUTPUT,
          registry: Registry | None = None) -> fluvial.Topology:
    """Flights (Avro, subject ``<source>-value``) → alerts for the late ones (Avro, subject
    ``<sink>-value``); the registry is ``registry`` or ``$FLUVIAL_SCHEMA_REGISTRY``."""
    if registry is None:
        registry = os.environ.get("FLUVIAL_SCHEMA_REGISTRY")
        if not registry:
            raise ConfigError("the late-flights example needs a schema registry: set "
                              "FLUVIAL_SCHEMA_REGISTRY to its URL")
    client = registry_client(registry)  # one client: its schema cache serves both serdes
    builder = fluvial.StreamsBuilder()
    (builder.stream(source, value_serde=AvroSerde(client, FLIGHT))
        .filter(lambda _key, flight: flight["delay"] > LATE_MINUTES)
        .map_values(alert)
        .to(sink, value_serde=AvroSerde(client, ALERT)))
    return builder.build()
