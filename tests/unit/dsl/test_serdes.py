"""Serdes: built-ins byte for byte, None pass-through, errors, custom serdes, names."""

from __future__ import annotations

import math
import struct
from typing import Any

import pytest

from fluvial import ConfigError, StreamsBuilder, TestDriver, serdes
from fluvial.io.serdes import resolve
from fluvial.serdes import SerdeError


def test_string_round_trip_is_utf8() -> None:
    s = serdes.String()
    assert s.serialize("héllo") == "héllo".encode()
    assert s.deserialize(b"h\xc3\xa9llo") == "héllo"


def test_bytes_pass_through() -> None:
    s = serdes.Bytes()
    assert s.serialize(b"\x00\xff") == b"\x00\xff"
    assert s.serialize(bytearray(b"ab")) == b"ab"
    assert s.deserialize(b"\x01") == b"\x01"


@pytest.mark.parametrize(("value", "raw"), [
    (0, b"\x00" * 8),
    (1, b"\x00\x00\x00\x00\x00\x00\x00\x01"),
    (-1, b"\xff" * 8),
    (256, b"\x00\x00\x00\x00\x00\x00\x01\x00"),
    (2**63 - 1, b"\x7f" + b"\xff" * 7),
    (-(2**63), b"\x80" + b"\x00" * 7),
])
def test_int64_is_big_endian_like_kafka_long_serializer(value: int, raw: bytes) -> None:
    s = serdes.Int64()
    assert s.serialize(value) == raw
    assert s.deserialize(raw) == value


def test_float64_is_big_endian_ieee754() -> None:
    s = serdes.Float64()
    assert s.serialize(1.5) == b"\x3f\xf8" + b"\x00" * 6
    assert s.deserialize(struct.pack(">d", -2.25)) == -2.25
    assert math.isnan(s.deserialize(s.serialize(float("nan"))))


def test_json_round_trip() -> None:
    s = serdes.Json()
    value = {"a": [1, 2.5, None, True], "b": "é"}
    assert s.deserialize(s.serialize(value)) == value
    assert s.serialize({"a": 1}) == b'{"a":1}'


@pytest.mark.parametrize("serde", [serdes.String(), serdes.Bytes(), serdes.Int64(),
                                   serdes.Float64(), serdes.Json()])
def test_none_passes_through_every_serde(serde: Any) -> None:
    assert serde.serialize(None) is None
    assert serde.deserialize(None) is None


@pytest.mark.parametrize(("serde", "data", "message"), [
    (serdes.Int64(), b"\x00\x01\x02", "int64 needs 8 bytes, got 3"),
    (serdes.Float64(), b"\x00" * 9, "float64 needs 8 bytes, got 9"),
    (serdes.String(), b"\xff\xfe", "not UTF-8"),
    (serdes.Json(), b"{not json", "invalid JSON"),
])
def test_malformed_bytes_raise_serde_error(serde: Any, data: bytes, message: str) -> None:
    with pytest.raises(SerdeError, match=message):
        serde.deserialize(data)


@pytest.mark.parametrize(("serde", "value", "message"), [
    (serdes.Int64(), "12", "int64 serde cannot write '12'"),
    (serdes.Int64(), 2**64, "int64 serde cannot write"),
    (serdes.Float64(), "x", "float64 serde cannot write"),
    (serdes.String(), 12, "string serde cannot write a int"),
    (serdes.Bytes(), "text", "bytes serde cannot write a str"),
    (serdes.Json(), {1, 2}, "json serde cannot write"),
])
def test_unwritable_values_raise_serde_error(serde: Any, value: Any, message: str) -> None:
    with pytest.raises(SerdeError, match=message):
        serde.serialize(value)


def test_serde_error_is_a_value_error() -> None:
    assert issubclass(SerdeError, ValueError)


@pytest.mark.parametrize(("name", "cls"), [
    ("string", serdes.String), ("str", serdes.String), ("bytes", serdes.Bytes),
    ("int64", serdes.Int64), ("long", serdes.Int64), ("float64", serdes.Float64),
    ("double", serdes.Float64), ("json", serdes.Json), ("JSON", serdes.Json),
])
def test_serde_names(name: str, cls: type) -> None:
    assert isinstance(resolve(name), cls)


def test_unknown_serde_name_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"unknown serde 'avro'.*json"):
        resolve("avro")
    with pytest.raises(ConfigError, match="unknown serde"):
        StreamsBuilder().stream("in", value_serde="protobuf")
    with pytest.raises(ConfigError, match="unknown serde"):
        StreamsBuilder(default_value_serde="nope")


def test_object_that_is_not_a_serde_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="is not a serde"):
        resolve(42)  # type: ignore[arg-type]


def test_serde_class_is_accepted_like_an_instance() -> None:
    b = StreamsBuilder()
    b.stream("in", value_serde=serdes.Int64).to("out", value_serde=serdes.Int64)  # type: ignore[arg-type]
    with TestDriver(b.build()) as d:
        d.input_topic("in").pipe(7, key="k")
        assert d.read("out")[0].value() == (7).to_bytes(8, "big")


class UpperSerde:
    """A user serde: upper-case text on the wire, lower-case in the app."""

    def serialize(self, value: Any) -> bytes | None:
        return None if value is None else value.upper().encode()

    def deserialize(self, data: bytes | None) -> Any:
        return None if data is None else data.decode().lower()


def test_custom_serde_object_on_source_and_sink() -> None:
    b = StreamsBuilder()
    b.stream("in", value_serde=UpperSerde()).map_values(lambda v: v + "!").to(
        "out", value_serde=UpperSerde())
    with TestDriver(b.build()) as d:
        d.input_topic("in").pipe("hi", key="k")
        assert d.read("in")[0].value() == b"HI"
        assert d.read("out")[0].value() == b"HI!"
        assert d.output_topic("out").read_value() == "hi!"


def test_default_serdes_of_the_builder() -> None:
    b = StreamsBuilder(default_key_serde="int64", default_value_serde="string")
    b.stream("in").to("out")
    with TestDriver(b.build()) as d:
        d.input_topic("in").pipe("v", key=5)
        raw = d.read("out")[0]
        assert (raw.key(), raw.value()) == ((5).to_bytes(8, "big"), b"v")


def test_default_serdes_are_string_keys_and_json_values() -> None:
    b = StreamsBuilder()
    b.stream("in").to("out")
    with TestDriver(b.build()) as d:
        d.input_topic("in").pipe({"n": 1}, key="k")
        raw = d.read("out")[0]
        assert (raw.key(), raw.value()) == (b"k", b'{"n":1}')


def test_tombstones_survive_source_and_sink() -> None:
    b = StreamsBuilder(default_value_serde="int64")
    b.stream("in").to("out")
    with TestDriver(b.build()) as d:
        d.input_topic("in").pipe(None, key="k")
        assert d.read("out")[0].value() is None
        assert d.output_topic("out").read_key_value() == ("k", None)


def test_output_topic_serde_override() -> None:
    b = StreamsBuilder()
    b.stream("in").to("out")
    with TestDriver(b.build()) as d:
        d.input_topic("in").pipe([1], key="k")
        assert d.output_topic("out", value_serde="bytes").read_value() == b"[1]"
        assert d.output_topic("out", key_serde=serdes.Bytes()).read_key_value() == (b"k", [1])
