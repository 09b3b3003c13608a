"""The batch fast path of sources: C-level readers, with the per-record path for the rest."""

from __future__ import annotations

import fluvial
from fluvial.io.serdes import BytesSerde, JsonSerde, StringSerde, fast_deserializer


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
