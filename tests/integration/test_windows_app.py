"""A windowed count on the real broker: its window store restored from the changelog."""

from __future__ import annotations

import struct
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import orjson
from tests.integration.kafka_helpers import KafkaTestBroker

import fluvial
from fluvial.runtime.app import App

SIZE_MS = 1_000
# event times of this hour, not 1970's: the broker's log cleaner deletes a window changelog's
# records older than its retention (plus a day) — mid-test, whenever its pass falls there
BASE_MS = int(time.time() * 1000) // 3_600_000 * 3_600_000
Window = tuple[str, int]  # key, window start


def _topology(source: str, sink: str) -> fluvial.Topology:
    builder = fluvial.StreamsBuilder()
    (builder.stream(source, timestamp_extractor=fluvial.ValueFieldTimestamp("at"))
        .group_by_key()
        .windowed_by(fluvial.TimeWindows.of_size_and_grace(SIZE_MS, 60_000))
        .count(materialized="window-counts")
        .to_stream()
        .to(sink))
    return builder.build()


def _events(keys: str, times: range) -> list[tuple[bytes, bytes]]:
    return [(k.encode(), orjson.dumps({"at": BASE_MS + t})) for t in times for k in keys]


def _expected(events: list[tuple[bytes, bytes]]) -> Counter[Window]:
    return Counter((k.decode(), orjson.loads(v)["at"] // SIZE_MS * SIZE_MS) for k, v in events)


def _window(key: bytes) -> Window:
    """Kafka Streams' time-windowed key: the key's bytes, then the window start (8 bytes)."""
    return key[:-8].decode(), struct.unpack(">q", key[-8:])[0]


def test_windowed_count_survives_a_restart_on_a_new_machine(
        kafka: KafkaTestBroker, unique_topic: Callable[[str], str], tmp_path: Path) -> None:
    source, sink, app_id = unique_topic("in"), unique_topic("out"), unique_topic("app")
    kafka.create_topic(source, partitions=2)
    kafka.create_topic(sink, partitions=2)
    topology = _topology(source, sink)
    first = _events("abc", range(0, 2_000, 100))      # windows [0,1000) and [1000,2000)
    kafka.produce(source, first)
    with App(topology, app_id, bootstrap_servers=kafka.bootstrap_servers,
             state_dir=tmp_path / "a") as app:
        counts = kafka.counts_reaching(sink, _expected(first), _window, 90)
        assert app.error is None
    assert counts == _expected(first)

    # the same windows again, on an instance with an empty state dir: the counts go on from
    # what the window store's changelog restored (without it they would start again at 1)
    second = _events("abc", range(50, 2_000, 100))
    kafka.produce(source, second)
    with App(topology, app_id, bootstrap_servers=kafka.bootstrap_servers,
             state_dir=tmp_path / "b") as app:
        both = _expected(first + second)
        counts = kafka.counts_reaching(sink, both, _window, 90)
        assert app.error is None
        assert app.stream_thread is not None
        restored = sum(n for t in app.stream_thread.restored.values() for n in t.values())
    assert counts == both == {(k, BASE_MS + s): 20 for k in "abc" for s in (0, 1_000)}
    assert restored >= len(_expected(first))

    # the changelog holds Kafka Streams' window keys: key + start (8 bytes) + seqnum (4)
    changelog = kafka.consume_all(f"{app_id}-window-counts-changelog", 1)
    key = changelog[0].key
    assert key is not None and key[:-12].decode() in "abc"
    assert struct.unpack(">qi", key[-12:])[0] - BASE_MS in (0, 1_000)
