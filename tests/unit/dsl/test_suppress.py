"""Table.suppress through the TestDriver; expected outputs worked out by hand from Kafka
Streams' KTableSuppressProcessor (the conformance suite compares it with Kafka Streams on
random inputs)."""

from __future__ import annotations

import struct
from typing import Any

import pytest

from fluvial import (
    BufferConfig,
    ProcessingError,
    StreamsBuilder,
    Suppressed,
    TestDriver,
    TimeWindows,
    Topology,
    TopologyError,
)
from fluvial.testing.driver import TestOutputTopic


def _final_counts(buffer: BufferConfig | None = None) -> Topology:
    """Counts per key in tumbling windows of 10 ms with 5 ms grace, final results only."""
    b = StreamsBuilder()
    (b.stream("in").group_by_key()
     .windowed_by(TimeWindows.of_size_and_grace(10, 5)).count()
     .suppress(Suppressed.until_window_closes(buffer or BufferConfig.unbounded()))
     .to_stream().to("out"))
    return b.build()


def _rate_limited(limit: int, buffer: BufferConfig) -> Topology:
    b = StreamsBuilder()
    (b.table("in", value_serde="string")
     .suppress(Suppressed.until_time_limit(limit, buffer)).to_stream().to("out"))
    return b.build()


def _pipe(d: TestDriver, *records: tuple[str, Any, int]) -> None:
    t = d.input_topic("in")
    for key, value, ts in records:
        t.pipe(value, key=key, timestamp=ts)


def _rows(out: TestOutputTopic) -> list[tuple[Any, ...]]:
    return [(r.key.key, r.key.start, r.value, r.timestamp) if hasattr(r.key, "start")
            else (r.key, r.value, r.timestamp) for r in out.read_records()]


FINAL_INPUT = [("a", "x", 1), ("b", "x", 3), ("a", "x", 8), ("a", "x", 12),
               ("a", "x", 9),    # late for its window, within grace: counted
               ("b", "x", 14),   # stream time 14: nothing closed yet ([0,10) closes at 15)
               ("a", "x", 15),   # closes [0,10): a=3, b=1 emitted, by key bytes
               ("b", "x", 2),    # its window closed: dropped by the aggregation
               ("c", "x", 30)]   # closes [10,20): a=2 (12, 15), b=1


def test_final_results_once_per_window_when_it_closes() -> None:
    with TestDriver(_final_counts()) as d:
        out = d.output_topic("out")
        _pipe(d, *FINAL_INPUT[:6])
        assert _rows(out) == []
        _pipe(d, *FINAL_INPUT[6:])
        # the timestamp is the window's latest record's, as the aggregation stamped it
        assert _rows(out) == [("a", 0, 3, 9), ("b", 0, 1, 3), ("a", 10, 2, 15),
                              ("b", 10, 1, 14)]


def test_time_limit_emits_latest_per_key_and_forwards_tombstones() -> None:
    with TestDriver(_rate_limited(10, BufferConfig.unbounded())) as d:
        out = d.output_topic("out", value_serde="string")
        _pipe(d, ("a", "1", 0), ("b", "1", 2), ("a", "2", 5),  # a keeps its buffer time 0
              ("b", None, 9),
              ("c", "1", 10))  # stream time 10: a (time 0) is due; b (time 2) not yet
        assert _rows(out) == [("a", "2", 5)]
        _pipe(d, ("c", "2", 12))  # b's delete is due, and is forwarded
        assert _rows(out) == [("b", None, 9)]


def test_full_buffer_emits_oldest_early() -> None:
    with TestDriver(_rate_limited(1000, BufferConfig.max_records(2))) as d:
        out = d.output_topic("out", value_serde="string")
        _pipe(d, ("a", "1", 0), ("b", "1", 1), ("a", "2", 2))
        assert _rows(out) == []
        _pipe(d, ("c", "1", 3))  # three keys: the oldest (a, buffered first) goes early
        assert _rows(out) == [("a", "2", 2)]


def test_full_strict_buffer_stops_the_application() -> None:
    topology = _final_counts(BufferConfig.max_records(1).shut_down_when_full())
    with TestDriver(topology) as d:
        _pipe(d, ("a", "x", 1))
        with pytest.raises(ProcessingError, match=r"suppress buffer .* exceeded its "
                                                  r"capacity at topic 'in' .*2/1 records"):
            _pipe(d, ("b", "x", 2))


def test_a_restarted_instance_emits_each_buffered_result_once() -> None:
    """Buffered results survive a fail-over in the buffer's changelog: the two halves of a
    run around a restart emit exactly what one uninterrupted run emits."""
    with TestDriver(_final_counts()) as d:
        _pipe(d, *FINAL_INPUT)
        whole = _rows(d.output_topic("out"))
    with TestDriver(_final_counts()) as first:
        # restarted past the late record: a new instance's aggregation starts its observed
        # stream time afresh (as Kafka Streams'), so it would count that record again
        _pipe(first, *FINAL_INPUT[:8])
        before = _rows(first.output_topic("out"))
        with first.restarted() as second:
            _pipe(second, *FINAL_INPUT[8:])
            after = _rows(second.output_topic("out"))
    assert before and after
    assert before + after == whole


def test_buffer_changelog_is_kafka_streams_layout() -> None:
    """Key: the serialized key; value: record context, prior, old and new value, buffer
    time (Kafka Streams' version-3 buffer value); a tombstone once emitted."""
    with TestDriver(_rate_limited(10, BufferConfig.unbounded())) as d:
        _pipe(d, ("a", "1", 7))
        log = d.read("test-app-KTABLE-SUPPRESS-STATE-STORE-0000000004-changelog")
        assert [m.key() for m in log] == [b"a"]
        value = log[0].value()
        assert value is not None
        topic = b"in"
        context = struct.pack(">qqi", 7, 0, len(topic)) + topic + struct.pack(">ii", 0, 0)
        prior_old_new = struct.pack(">ii", -1, -1) + struct.pack(">i", 1) + b"1"
        assert value == context + prior_old_new + struct.pack(">q", 7)
        _pipe(d, ("b", "1", 17))  # a is due and emitted: its entry deleted
        latest = {m.key(): m.value() for m in d.read(
            "test-app-KTABLE-SUPPRESS-STATE-STORE-0000000004-changelog")}
        assert latest[b"a"] is None and latest[b"b"] is not None


def test_final_results_need_windows_and_a_strict_buffer() -> None:
    with pytest.raises(TopologyError, match="strict buffer"):
        Suppressed.until_window_closes(BufferConfig.max_records(5))
    b = StreamsBuilder()
    table = b.table("in")
    with pytest.raises(TopologyError, match="only defined for windowed computations"):
        table.suppress(Suppressed.until_window_closes(BufferConfig.unbounded()))


def test_names_drawn_as_kafka_streams_draws_them() -> None:
    b = StreamsBuilder()
    t = b.table("in")
    t.suppress(Suppressed.until_time_limit(5, BufferConfig.unbounded())).to_stream().to("o1")
    t.suppress(Suppressed.until_time_limit(5, BufferConfig.unbounded()).with_name("limit"))
    text = b.build().describe()
    # the source table is materialized for the buffer's old values, as Kafka Streams does
    assert "KTABLE-SOURCE-0000000002 (stores: [in-STATE-STORE-0000000000])" in str(text)
    assert "KTABLE-SUPPRESS-0000000003 (stores: [KTABLE-SUPPRESS-STATE-STORE-0000000004])" \
        in str(text)
    assert "limit (stores: [limit-store])" in str(text)


def test_a_join_reads_a_suppressed_table_as_last_emitted() -> None:
    """Kafka Streams' suppress view: a key still buffered reads as its value before the
    buffered updates; once emitted, as the table holds it."""
    b = StreamsBuilder()
    prices = b.table("prices", value_serde="string").suppress(
        Suppressed.until_time_limit(10, BufferConfig.unbounded()))
    b.stream("orders", value_serde="string").join(
        prices, lambda order, price: f"{order}@{price}").to("out", value_serde="string")
    with TestDriver(b.build()) as d:
        price_in = d.input_topic("prices", value_serde="string")
        order_in = d.input_topic("orders", value_serde="string")
        out = d.output_topic("out", value_serde="string")
        price_in.pipe("1", key="EUR", timestamp=0)
        order_in.pipe("tea", key="EUR", timestamp=1)   # buffered, nothing emitted: no row
        price_in.pipe("2", key="EUR", timestamp=5)
        price_in.pipe("9", key="USD", timestamp=10)    # EUR is emitted at 10
        order_in.pipe("jam", key="EUR", timestamp=11)
        assert out.read_key_values() == [("EUR", "jam@2")]
