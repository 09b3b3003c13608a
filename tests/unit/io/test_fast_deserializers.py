"""The batch fast paths of sources and sinks: C-level readers and writers, with the
per-record path for the rest."""

from __future__ import annotations

import fluvial
from fluvial.io.serdes import (
    BytesSerde,
    JsonSerde,
    StringSerde,
    fast_deserializer,
    fast_serializer,
)


def test_fast_readers_are_the_c_functions_and_raise_on_none() -> None:
    assert fast_deserializer(JsonSerde())(b'{"a": 1}') == {"a": 1}
    assert fast_deserializer(StringSerde())(b"word") == "word"
    bytes_serde = BytesSerde()
    assert fast_deserializer(bytes_serde) == bytes_serde.deserialize  # no faster reader
    for serde in (JsonSerde(), StringSerde()):
        try:
            fast_deserializer(serde)(None)
        except Exception:
            pass
        else:
            raise AssertionError(f"{serde.name}: the fast reader must refuse None")


def test_a_tombstone_in_a_batch_still_reads_as_none() -> None:
    builder = fluvial.StreamsBuilder()
    builder.stream("in", value_serde="json").map_values(
        lambda v: "deleted" if v is None else v["n"]).to("out", value_serde="json")
    with fluvial.TestDriver(builder.build()) as driver:
        driver.input_topic("in").pipe(None, key="k")
        driver.input_topic("in").pipe({"n": 2}, key="k")
        assert driver.output_topic("out").read_values() == ["deleted", 2]


def test_fast_writers_are_the_c_functions() -> None:
    assert fast_serializer(JsonSerde())({"a": 1}) == b'{"a":1}'
    assert fast_serializer(StringSerde())("word") == b"word"
    bytes_serde = BytesSerde()
    assert fast_serializer(bytes_serde) == bytes_serde.serialize  # no faster writer


def test_a_json_sink_writes_none_as_a_tombstone_not_null() -> None:
    # orjson.dumps(None) is b"null": the sink's fast path must keep None for itself
    builder = fluvial.StreamsBuilder()
    builder.stream("in", value_serde="json").map_values(
        lambda v: None if v["n"] == 0 else v).to("out", value_serde="json")
    with fluvial.TestDriver(builder.build()) as driver:
        for n in (1, 0, 2):
            driver.input_topic("in").pipe({"n": n}, key="k")
        assert [m.value() for m in driver.read("out")] == [b'{"n":1}', None, b'{"n":2}']


def test_a_value_the_fast_writer_refuses_goes_to_the_error_policy() -> None:
    builder = fluvial.StreamsBuilder()
    builder.stream("in", value_serde="json").map_values(
        lambda v: {1, 2} if v["n"] == 0 else v).to("out", value_serde="json")
    with fluvial.TestDriver(builder.build(), on_error="skip") as driver:
        for n in (1, 0, 2):
            driver.input_topic("in").pipe({"n": n}, key="k")
        assert [m.value() for m in driver.read("out")] == [b'{"n":1}', b'{"n":2}']
