"""Windowed aggregations through the TestDriver; every expected output worked out by hand
from Kafka Streams' rules (KStreamWindowAggregate, KStreamSlidingWindowAggregate,
KStreamSessionWindowAggregate)."""

from __future__ import annotations

import struct
from datetime import timedelta
from typing import Any

import pytest

from fluvial import (
    EmitStrategy,
    Materialized,
    SessionWindows,
    SlidingWindows,
    StreamsBuilder,
    TestDriver,
    TimeWindows,
    TopologyError,
    ValueFieldTimestamp,
    Windowed,
)
from fluvial.serdes import Int64, SessionWindowed, String, TimeWindowed
from fluvial.testing.driver import TestOutputTopic

Row = tuple[str, int, int, Any, int]  # key, start, end, value, timestamp


def _count(windows: Any, emit: EmitStrategy | None = None) -> Any:
    b = StreamsBuilder()
    w = b.stream("in").group_by_key().windowed_by(windows)
    if emit is not None:
        w = w.emit_strategy(emit)
    w.count().to_stream().to("out")
    return b.build()


def _rows(out: TestOutputTopic) -> list[Row]:
    return [(r.key.key, r.key.start, r.key.end, r.value, r.timestamp)
            for r in out.read_records()]


def _pipe(d: TestDriver, *records: tuple[str | None, int]) -> None:
    t = d.input_topic("in")
    for key, ts in records:
        t.pipe("x", key=key, timestamp=ts)


# -- tumbling and hopping ---------------------------------------------------------------------

def test_tumbling_count_drops_records_of_closed_windows() -> None:
    with TestDriver(_count(TimeWindows.of_size_with_no_grace(10))) as d:
        out = d.output_topic("out")
        _pipe(d, ("a", 1), ("a", 5), ("a", 12), ("a", 3), ("a", 9))
        # stream time 12 closed [0,10): the records at 3 and 9 are late
        assert _rows(out) == [("a", 0, 10, 1, 1), ("a", 0, 10, 2, 5), ("a", 10, 20, 1, 12)]
        assert d.dropped_records == 2


def test_grace_lets_late_records_in_until_end_plus_grace() -> None:
    windows = TimeWindows.of_size_and_grace(timedelta(milliseconds=10), timedelta(
        milliseconds=5))
    with TestDriver(_count(windows)) as d:
        out = d.output_topic("out")
        _pipe(d, ("a", 1), ("a", 14), ("a", 3), ("a", 15), ("a", 4))
        assert _rows(out) == [
            ("a", 0, 10, 1, 1), ("a", 10, 20, 1, 14),
            ("a", 0, 10, 2, 3),    # 14 - 5 = 9 < end 10: still open; timestamp max(1, 3)
            ("a", 10, 20, 2, 15)]  # now 15 - 5 = 10 closes [0,10): the record at 4 is late
        assert d.dropped_records == 1


def test_hopping_windows_overlap() -> None:
    with TestDriver(_count(TimeWindows.of_size_with_no_grace(10).advance_by(5))) as d:
        out = d.output_topic("out")
        _pipe(d, ("a", 7), ("a", 12), ("b", 4))
        assert _rows(out) == [
            ("a", 0, 10, 1, 7), ("a", 5, 15, 1, 7),      # 7 is in [0,10) and [5,15)
            ("a", 5, 15, 2, 12), ("a", 10, 20, 1, 12),
            # 12 closed [0,10) (and hopping windows never start below 0): b at 4 only
            # reaches [0,10), which is late
        ]
        assert d.dropped_records == 1


def test_reduce_and_aggregate_take_the_largest_timestamp() -> None:
    b = StreamsBuilder(default_value_serde="int64")
    grouped = b.stream("in").group_by_key()
    windows = TimeWindows.of_size_and_grace(10, 100)
    grouped.windowed_by(windows).reduce(lambda agg, v: agg + v).to_stream().to("sums")
    grouped.windowed_by(windows).aggregate(
        lambda: "", lambda k, v, agg: f"{agg}{k}{v}", Materialized(value_serde="string"),
    ).to_stream().to("trail", value_serde="string")
    with TestDriver(b.build()) as d:
        t = d.input_topic("in")
        t.pipe(1, key="a", timestamp=5)
        t.pipe(10, key="b", timestamp=3)
        t.pipe(2, key="a", timestamp=2)
        sums = [(r.key.key, r.key.start, r.value, r.timestamp)
                for r in d.output_topic("sums").read_records()]
        trail = [(r.key.key, r.value, r.timestamp)
                 for r in d.output_topic("trail").read_records()]
    assert sums == [("a", 0, 1, 5), ("b", 0, 10, 3), ("a", 0, 3, 5)]
    assert trail == [("a", "a1", 5), ("b", "b10", 3), ("a", "a1a2", 5)]


def test_null_keys_are_dropped_and_counted() -> None:
    with TestDriver(_count(TimeWindows.of_size_with_no_grace(10))) as d:
        out = d.output_topic("out")
        _pipe(d, (None, 1), ("a", 2))
        assert _rows(out) == [("a", 0, 10, 1, 2)]
        assert d.dropped_records == 1


def test_on_window_close_emits_each_window_once_when_it_closes() -> None:
    topology = _count(TimeWindows.of_size_with_no_grace(10), EmitStrategy.on_window_close())
    with TestDriver(topology) as d:
        out = d.output_topic("out")
        _pipe(d, ("a", 1), ("a", 5))
        assert _rows(out) == []
        _pipe(d, ("b", 12))                 # stream time 12 closes [0,10)
        assert _rows(out) == [("a", 0, 10, 2, 5)]
        _pipe(d, ("b", 25))
        assert _rows(out) == [("b", 10, 20, 1, 12)]
        _pipe(d, ("b", 26), ("a", 8))       # nothing more closed; 8 is late
        assert _rows(out) == []
        assert d.dropped_records == 1


def test_on_window_close_looks_for_closed_windows_once_a_second_in_an_app() -> None:
    topology = _count(TimeWindows.of_size_with_no_grace(10), EmitStrategy.on_window_close())
    with TestDriver(topology, wall_clock_ms=0) as d:
        for task in d._unique_tasks():
            task.emit_interval_ms = 1000    # the runtime's setting (Kafka Streams' default)
        out = d.output_topic("out")
        _pipe(d, ("a", 1), ("b", 12))       # the look at 1 found nothing; none again yet
        assert _rows(out) == []
        d.advance_wall_clock(1000)
        _pipe(d, ("b", 13))
        assert _rows(out) == [("a", 0, 10, 1, 1)]


def test_windowed_keys_are_written_as_kafka_streams_writes_them() -> None:
    with TestDriver(_count(TimeWindows.of_size_with_no_grace(60_000))) as d:
        _pipe(d, ("sensor-1", 125_000))
        (m,) = d.read("out")
    # TimeWindowedSerializer: the key's bytes, then the window start (8 bytes, big-endian)
    assert m.key() == b"sensor-1" + struct.pack(">q", 120_000)
    assert m.value() == struct.pack(">q", 1)  # Serdes.Long
    serde = TimeWindowed(String(), 60_000)
    assert serde.deserialize(m.key()) == Windowed("sensor-1", 120_000, 180_000)


def test_extracted_time_drives_windows() -> None:
    b = StreamsBuilder()
    (b.stream("in", timestamp_extractor=ValueFieldTimestamp("at"))
     .group_by_key().windowed_by(TimeWindows.of_size_with_no_grace(100)).count()
     .to_stream().map(lambda k, v: (f"{k.key}@{k.start}", v)).to("out", value_serde="int64"))
    with TestDriver(b.build()) as d:
        t = d.input_topic("in")
        for at in (5, 150, 160):
            t.pipe({"at": at}, key="a", timestamp=0)  # the record timestamps all say 0
        assert d.output_topic("out").read_key_values() == [("a@0", 1), ("a@100", 1),
                                                           ("a@100", 2)]


def test_retention_shorter_than_size_plus_grace_is_refused() -> None:
    b = StreamsBuilder()
    w = b.stream("in").group_by_key().windowed_by(TimeWindows.of_size_and_grace(10, 5))
    with pytest.raises(ValueError, match=r"size=\[10\], grace=\[5\], retention=\[14\]"):
        w.count(Materialized(name="counts", retention=14))


def test_window_definitions_are_checked() -> None:
    with pytest.raises(ValueError, match="size must be larger than zero"):
        TimeWindows.of_size_with_no_grace(0)
    with pytest.raises(ValueError, match="advance"):
        TimeWindows.of_size_with_no_grace(10).advance_by(11)
    with pytest.raises(ValueError, match="grace period must not be negative"):
        SessionWindows.of_inactivity_gap_and_grace(10, -1)
    with pytest.raises(TypeError, match="timedelta or milliseconds"):
        SlidingWindows.of_time_difference_and_grace(1.5, 0)  # type: ignore[arg-type]


# -- sliding -----------------------------------------------------------------------------------

def test_sliding_windows_left_and_right_windows() -> None:
    windows = SlidingWindows.of_time_difference_and_grace(10, 100)
    with TestDriver(_count(windows)) as d:
        out = d.output_topic("out")
        _pipe(d, ("a", 5))
        # before the time difference: the shared left window [0,10]
        assert _rows(out) == [("a", 0, 10, 1, 5)]
        _pipe(d, ("a", 15))
        # the record at 5 gets its right window [6,16]; 15's left window [5,15] holds both
        assert _rows(out) == [("a", 6, 16, 1, 15), ("a", 5, 15, 2, 15)]
        _pipe(d, ("a", 12))
        # out of order: newest windows first, then 12's own left [2,12] and right [13,23]
        assert _rows(out) == [("a", 6, 16, 2, 15), ("a", 5, 15, 3, 15), ("a", 2, 12, 2, 12),
                            ("a", 13, 23, 1, 15)]


def test_sliding_windows_drop_records_whose_window_closed() -> None:
    with TestDriver(_count(SlidingWindows.of_time_difference_with_no_grace(10))) as d:
        out = d.output_topic("out")
        _pipe(d, ("a", 30), ("a", 15), ("a", 20))
        # 15 + 10 < 30: dropped. 20 + 10 is not before stream time 30, so 20 is taken: 30's
        # left window [20,30] gains it, 20's own left window [10,20] is closed (dropped,
        # counted), and its right window [21,31] gets 30's aggregate
        assert _rows(out) == [("a", 20, 30, 1, 30), ("a", 20, 30, 2, 30),
                            ("a", 21, 31, 1, 30)]
        assert d.dropped_records == 2


# -- sessions ----------------------------------------------------------------------------------

def test_sessions_grow_and_merge() -> None:
    windows = SessionWindows.of_inactivity_gap_and_grace(10, 100)
    with TestDriver(_count(windows)) as d:
        out = d.output_topic("out")
        _pipe(d, ("a", 0), ("a", 5), ("a", 30), ("a", 18))
        assert _rows(out) == [
            ("a", 0, 0, 1, 0),
            ("a", 0, 0, None, 0), ("a", 0, 5, 2, 5),  # 5 extends [0,0]: old session removed
            ("a", 30, 30, 1, 30),
            ("a", 18, 18, 1, 18)]                      # 12 from 30, 13 from 5: on its own
        _pipe(d, ("a", 24))                            # within 10 of 18 and of 30: merges
        assert _rows(out) == [("a", 18, 18, None, 18), ("a", 30, 30, None, 30),
                            ("a", 18, 30, 3, 30)]


@pytest.mark.parametrize(("grace", "expected"), [
    # merger(initial, first session), then with the second, then the record added
    (20, (Windowed("k", 0, 20), "((+x)+y)z", 20)),
    # retention = gap + grace = 10: at stream time 20, [0,0] is gone from the store (as in
    # Kafka Streams' session store), so z only joins [20,20]
    (0, (Windowed("k", 10, 20), "(+y)z", 20)),
])
def test_session_merger_joins_the_sessions_still_kept(grace: int, expected: Any) -> None:
    b = StreamsBuilder(default_value_serde="string")
    (b.stream("in").group_by_key()
     .windowed_by(SessionWindows.of_inactivity_gap_and_grace(10, grace))
     .aggregate(lambda: "", lambda k, v, agg: agg + v, lambda k, one, two: f"({one}+{two})")
     .to_stream().to("out"))
    with TestDriver(b.build()) as d:
        t = d.input_topic("in")
        t.pipe("x", key="k", timestamp=0)
        t.pipe("y", key="k", timestamp=20)
        t.pipe("z", key="k", timestamp=10)  # within the gap of [0,0] and of [20,20]
        last = d.output_topic("out").read_records()[-1]
    assert (last.key, last.value, last.timestamp) == expected


def test_sessions_drop_late_records() -> None:
    with TestDriver(_count(SessionWindows.of_inactivity_gap_with_no_grace(10))) as d:
        out = d.output_topic("out")
        _pipe(d, ("a", 100), ("b", 50), ("a", 85), ("a", 95))
        # closed: sessions ending before 100 - 0 - 10 = 90; [95,100] merges with [100,100]
        assert _rows(out) == [("a", 100, 100, 1, 100), ("a", 100, 100, None, 100),
                            ("a", 95, 100, 2, 100)]
        assert d.dropped_records == 2


def test_session_keys_are_written_as_kafka_streams_writes_them() -> None:
    with TestDriver(_count(SessionWindows.of_inactivity_gap_with_no_grace(10))) as d:
        _pipe(d, ("u", 3), ("u", 7))
        keys = [m.key() for m in d.read("out")]
    # SessionWindowedSerializer: the key's bytes, the end, then the start
    assert keys == [b"u" + struct.pack(">qq", 3, 3), b"u" + struct.pack(">qq", 3, 3),
                    b"u" + struct.pack(">qq", 7, 3)]
    assert SessionWindowed(String()).deserialize(keys[-1]) == Windowed("u", 3, 7)
    assert SessionWindowed(String()).serialize(Windowed("u", 3, 7)) == keys[-1]


def test_session_on_window_close() -> None:
    topology = _count(SessionWindows.of_inactivity_gap_with_no_grace(10),
                      EmitStrategy.on_window_close())
    with TestDriver(topology) as d:
        out = d.output_topic("out")
        _pipe(d, ("a", 0), ("a", 5))
        _pipe(d, ("b", 30))  # sessions ending before 30 - 10 = 20 are closed
        assert _rows(out) == [("a", 0, 5, 2, 5)]


def test_windowed_count_of_int64_values_reads_back() -> None:
    b = StreamsBuilder(default_value_serde=Int64())
    (b.stream("in").group_by_key().windowed_by(TimeWindows.of_size_with_no_grace(10))
     .reduce(max).to_stream().to("out"))
    with TestDriver(b.build()) as d:
        t = d.input_topic("in")
        for v, ts in ((3, 1), (9, 2), (4, 3)):
            t.pipe(v, key="k", timestamp=ts)
        assert [r.value for r in d.output_topic("out").read_records()] == [3, 9, 9]


# -- names and describe() ----------------------------------------------------------------------

WINDOWED_COUNT = """\
Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000000 (topics: [in])
      --> KSTREAM-AGGREGATE-0000000002
    Processor: KSTREAM-AGGREGATE-0000000002 (stores: [KSTREAM-AGGREGATE-STATE-STORE-0000000001])
      --> KTABLE-TOSTREAM-0000000003
      <-- KSTREAM-SOURCE-0000000000
    Processor: KTABLE-TOSTREAM-0000000003 (stores: [])
      --> KSTREAM-SINK-0000000004
      <-- KSTREAM-AGGREGATE-0000000002
    Sink: KSTREAM-SINK-0000000004 (topic: out)
      <-- KTABLE-TOSTREAM-0000000003

"""


@pytest.mark.parametrize("windows", [TimeWindows.of_size_with_no_grace(10),
                                     SlidingWindows.of_time_difference_with_no_grace(10),
                                     SessionWindows.of_inactivity_gap_with_no_grace(10)])
def test_windowed_count_describe_matches_kafka_streams(windows: Any) -> None:
    assert _count(windows).describe() == WINDOWED_COUNT


def test_count_with_unnamed_materialized_draws_a_spare_name_as_kafka_streams() -> None:
    b = StreamsBuilder()
    (b.stream("in").group_by(lambda k, v: v)
     .windowed_by(TimeWindows.of_size_with_no_grace(10)).count(Materialized(persistent=False))
     .to_stream().to("out"))
    topology = b.build()
    # 2 is drawn and left unused (Kafka Streams keeps doing so for compatibility)
    assert list(topology.stores) == ["KSTREAM-AGGREGATE-STATE-STORE-0000000003"]
    assert [s.topic for s in topology.repartition_topics()] == [
        "KSTREAM-AGGREGATE-STATE-STORE-0000000003-repartition"]
    assert "KSTREAM-AGGREGATE-0000000004" in topology.nodes
    spec = topology.stores["KSTREAM-AGGREGATE-STATE-STORE-0000000003"]
    assert (spec.kind, spec.window_size_ms, spec.retention_ms) == ("window", 10, 10)


def test_store_specs_carry_kind_and_retention() -> None:
    b = StreamsBuilder()
    g = b.stream("in").group_by_key()
    g.windowed_by(TimeWindows.of_size_and_grace(60_000, 5_000).advance_by(10_000)).count(
        "hop")
    g.windowed_by(SlidingWindows.of_time_difference_and_grace(1_000, 200)).count("slide")
    g.windowed_by(SessionWindows.of_inactivity_gap_and_grace(300, 50)).count(
        Materialized(name="sess", retention=timedelta(hours=1)))
    stores = b.build().stores
    assert [(s.kind, s.window_size_ms, s.retention_ms) for s in stores.values()] == [
        ("window", 60_000, 65_000), ("window", 1_000, 2_200), ("session", None, 3_600_000)]


# -- opt-in: closing windows of an idle partition by the wall clock ------------------------------

def _idle_count(idle_ms: int | None) -> Any:
    b = StreamsBuilder()
    w = (b.stream("in").group_by_key().windowed_by(TimeWindows.of_size_with_no_grace(10_000))
         .emit_strategy(EmitStrategy.on_window_close()))
    if idle_ms is not None:
        w = w.close_when_idle(timedelta(milliseconds=idle_ms))
    w.count().to_stream().to("out")
    return b.build()


def test_close_when_idle_closes_windows_by_the_wall_clock() -> None:
    with TestDriver(_idle_count(5_000), wall_clock_ms=0) as d:
        out = d.output_topic("out")
        _pipe(d, ("a", 1_000), ("a", 8_000))
        d.advance_wall_clock(4_000)
        assert _rows(out) == []          # idle 4 s: not yet
        d.advance_wall_clock(1_000)      # idle 5 s: stream time moves to 8 s + 5 s = 13 s
        assert _rows(out) == [("a", 0, 10_000, 2, 8_000)]
        _pipe(d, ("a", 9_000))           # the trade-off: now late for [0, 10 s)
        assert d.dropped_records == 1
        assert _rows(out) == []


def test_without_close_when_idle_a_quiet_partition_keeps_its_windows_open() -> None:
    with TestDriver(_idle_count(None), wall_clock_ms=0) as d:
        out = d.output_topic("out")
        _pipe(d, ("a", 1_000), ("a", 8_000))
        d.advance_wall_clock(60_000)
        assert _rows(out) == []
        _pipe(d, ("a", 9_000))           # not late: stream time is still 8 s
        assert d.dropped_records == 0


def test_close_when_idle_needs_on_window_close() -> None:
    b = StreamsBuilder()
    w = (b.stream("in").group_by_key().windowed_by(SessionWindows.of_inactivity_gap_with_no_grace(
        10)).close_when_idle(1_000))
    with pytest.raises(TopologyError, match="on_window_close"):
        w.count()
