"""Final results (suppress until windows close) on the real broker, across a fail-over: what
the first instance buffered is restored from the buffer's changelog by the next one and
emitted there, once."""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path

import orjson
from tests.integration.kafka_helpers import KafkaTestBroker, wait_until

import fluvial
from fluvial.runtime.app import App

SIZE_MS = 1_000


def _topology(source: str, sink: str) -> fluvial.Topology:
    builder = fluvial.StreamsBuilder()
    (builder.stream(source, timestamp_extractor=fluvial.ValueFieldTimestamp("at"))
        .group_by_key()
        .windowed_by(fluvial.TimeWindows.of_size_with_no_grace(SIZE_MS))
        .count()
        .suppress(fluvial.Suppressed.until_window_closes(fluvial.BufferConfig.unbounded())
                  .with_name("final-counts"))
        .to_stream()
        .to(sink))
    return builder.build()


def _events(keys: str, times: range) -> list[tuple[bytes, bytes]]:
    return [(k.encode(), orjson.dumps({"at": t})) for t in times for k in keys]


def _final(key: bytes | None, value: bytes | None) -> tuple[str, int, int]:
    """(key, window start, count) of a time-windowed key and a Kafka Long count."""
    assert key is not None and value is not None
    return key[:-8].decode(), struct.unpack(">q", key[-8:])[0], struct.unpack(">q", value)[0]


def test_buffered_final_results_survive_a_fail_over(
        kafka: KafkaTestBroker, unique_topic: Callable[[str], str], tmp_path: Path) -> None:
    source, sink, app_id = unique_topic("in"), unique_topic("out"), unique_topic("app")
    kafka.create_topic(source, partitions=1)
    kafka.create_topic(sink, partitions=1)
    topology = _topology(source, sink)
    settings = {"bootstrap_servers": kafka.bootstrap_servers, "commit_interval_ms": 200,
                "processing_guarantee": "exactly_once"}
    # [0,1000) closes at the first record of [1000,2000), whose windows stay buffered
    first = _events("abc", range(0, 1_000, 100)) + _events("abc", range(1_000, 1_500, 100))
    kafka.produce(source, first)
    with App(topology, app_id, state_dir=tmp_path / "a", **settings) as app:
        wait_until(lambda: kafka.committed_offsets(app_id, source).get(0) == len(first),
                   timeout=90, interval=0.5,
                   message="the first instance committed every input")
        assert app.error is None
    emitted = [_final(m.key, m.value) for m in kafka.consume_all(sink, 3, timeout=30)]
    assert sorted(emitted) == [("a", 0, 10), ("b", 0, 10), ("c", 0, 10)]

    # a new instance with an empty state dir; only other keys come: the windows of a, b and
    # c in [1000,2000) reach it only through the buffer's changelog (lost without it), and
    # z at 3000 closes z's window after theirs, so z's result is the last one to read
    kafka.produce(source, _events("z", range(2_000, 2_001)) + _events("y", range(3_000, 3_001)))
    with App(topology, app_id, state_dir=tmp_path / "b", **settings) as app:
        out = [_final(m.key, m.value) for m in kafka.consume_all(sink, 7, timeout=90)]
        assert app.error is None
    assert out[:3] == emitted
    assert out[3:] == [("a", 1_000, 5), ("b", 1_000, 5), ("c", 1_000, 5), ("z", 2_000, 1)]
