"""Schema registry serdes without a registry: the wire format, malformed input, subjects, binding
to topics, and the error policy's exception for an unreachable registry. (Against a real
registry: tests/integration/test_schema_registry.py.)"""

from __future__ import annotations

import json
from typing import Any

import pytest

import fluvial
from fluvial.errors import ConfigError, ProcessingError
from fluvial.schema_registry import (
    AvroSerde,
    JsonSchemaSerde,
    ProtobufSerde,
    RecordNameStrategy,
    RegistryUnavailableError,
    TopicRecordNameStrategy,
    frame,
    schema_id_of,
)
from fluvial.serdes import SerdeError
from fluvial.testing import TestDriver

#: nothing listens there: a test that reached the registry would fail on it
NOWHERE = "http://127.0.0.1:9"
FLIGHT = json.dumps({"type": "record", "name": "Flight", "namespace": "demo",
                     "fields": [{"name": "delay", "type": "int"}]})


def test_frame_is_magic_byte_then_big_endian_id_then_payload() -> None:
    data = frame(0x01020304, b"payload")
    assert data == b"\x00\x01\x02\x03\x04payload"
    assert schema_id_of(data) == 0x01020304


@pytest.mark.parametrize(("data", "why"), [
    (b"", r"0 byte\(s\), fewer than the 5 of its header"),
    (b"\x00\x00\x01", r"3 byte\(s\), fewer than the 5 of its header"),
    (b'{"delay": 1}', r"the first byte is 0x7b, not the magic byte 0x00"),
    (b"\x01\x00\x00\x00\x01\x02", r"the first byte is 0x01, not the magic byte 0x00"),
])
def test_unframed_bytes_are_refused_before_any_registry_call(data: bytes, why: str) -> None:
    for serde in (AvroSerde(NOWHERE), JsonSchemaSerde(NOWHERE)):
        with pytest.raises(SerdeError, match=f"not in the schema registry wire format: {why}"):
            serde.deserialize(data)


def test_none_is_a_tombstone_both_ways() -> None:
    serde = AvroSerde(NOWHERE, FLIGHT)
    assert serde.serialize(None) is None
    assert serde.deserialize(None) is None


def test_subjects_follow_the_strategy_and_the_topic() -> None:
    serde = AvroSerde(NOWHERE, FLIGHT)
    assert serde.for_topic("flights", is_key=False).subject() == "flights-value"
    assert serde.for_topic("flights", is_key=True).subject() == "flights-key"
    by_record = AvroSerde(NOWHERE, FLIGHT, subject_strategy=RecordNameStrategy)
    assert by_record.subject() == "demo.Flight"
    assert by_record.for_topic("flights", False).subject() == "demo.Flight"
    both = AvroSerde(NOWHERE, FLIGHT, subject_strategy=TopicRecordNameStrategy)
    assert both.for_topic("flights", False).subject() == "flights-demo.Flight"
    titled = JsonSchemaSerde(NOWHERE, json.dumps({"title": "Flight", "type": "object"}),
                             subject_strategy=RecordNameStrategy)
    assert titled.subject() == "Flight"


def test_a_binding_is_made_once_per_topic_and_side() -> None:
    serde = AvroSerde(NOWHERE, FLIGHT)
    bound = serde.for_topic("a", False)
    assert serde.for_topic("a", False) is bound
    assert bound.for_topic("a", False) is bound
    assert serde.for_topic("a", True) is not bound
    assert (bound.topic, bound.is_key, serde.topic) == ("a", False, None)


def test_writing_without_a_topic_says_so() -> None:
    with pytest.raises(SerdeError, match=r"Avro serde has no topic to name its subject after "
                                         r"\(TopicNameStrategy\)"):
        AvroSerde(NOWHERE, FLIGHT).serialize({"delay": 1})


def test_writing_without_a_schema_says_how() -> None:
    for serde in (AvroSerde(NOWHERE), JsonSchemaSerde(NOWHERE)):
        with pytest.raises(SerdeError, match=f"^{type(serde).__name__} has no schema to write "
                                             f"with: pass one, or auto_register=False, "
                                             f"use_latest=True"):
            serde.for_topic("flights", False).serialize({"delay": 1})


def test_contradictory_or_malformed_settings_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="auto_register=True and use_latest=True contradict"):
        AvroSerde(NOWHERE, FLIGHT, use_latest=True)
    with pytest.raises(ConfigError, match="AvroSerde: the schema is not JSON"):
        AvroSerde(NOWHERE, "record Flight {}")
    with pytest.raises(ConfigError, match="ProtobufSerde needs a generated protobuf message"):
        ProtobufSerde(NOWHERE, dict)
    with pytest.raises(ConfigError, match="a schema registry is a URL"):
        AvroSerde(42)  # type: ignore[arg-type]


def test_the_dsl_binds_serdes_to_the_topics_they_read() -> None:
    builder = fluvial.StreamsBuilder()
    key, value = AvroSerde(NOWHERE, FLIGHT), AvroSerde(NOWHERE, FLIGHT)
    stream = builder.stream("flights", key_serde=key, value_serde=value)
    assert isinstance(stream.key_serde, AvroSerde) and isinstance(stream.value_serde, AvroSerde)
    assert (stream.key_serde.topic, stream.key_serde.is_key) == ("flights", True)
    assert (stream.value_serde.topic, stream.value_serde.is_key) == ("flights", False)
    table = builder.table("carriers", value_serde=value)
    assert isinstance(table.value_serde, AvroSerde) and table.value_serde.topic == "carriers"


class _RegistryDown:
    """A serde whose registry never answers."""

    def serialize(self, value: Any) -> bytes | None:
        raise RegistryUnavailableError("the schema registry at http://sr did not answer")

    def deserialize(self, data: bytes | None) -> Any:
        raise RegistryUnavailableError("the schema registry at http://sr did not answer")


@pytest.mark.parametrize("on_error", ["skip", "dead_letter"])
def test_no_error_policy_drops_records_while_the_registry_is_down(on_error: str) -> None:
    builder = fluvial.StreamsBuilder()
    builder.stream("in", value_serde=_RegistryDown()).to("out", value_serde="json")
    with TestDriver(builder.build(), on_error=on_error) as driver:
        source = driver.input_topic("in", value_serde="bytes")
        with pytest.raises((RegistryUnavailableError, ProcessingError), match="did not answer"):
            source.pipe(b"\x00\x00\x00\x00\x01", key="k")
        assert driver.read("out") == []
        assert driver.read("app-dead-letter") == []
