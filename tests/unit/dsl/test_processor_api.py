"""Stream.process: custom processors with state stores and punctuators."""

from __future__ import annotations

from typing import Any

import pytest

from fluvial import (
    Processor,
    PunctuationType,
    Record,
    RecordProcessor,
    StreamsBuilder,
    TestDriver,
    TopologyError,
)


class Dedupe(RecordProcessor):
    """Forwards a key's first value only; remembers keys in a store."""

    def init(self, context: Any) -> None:
        super().init(context)
        self.seen = context.get_store("seen")

    def process_record(self, record: Record) -> None:
        if self.seen.get(record.key) is None:
            self.seen.put(record.key, record.value)
            self.forward_record(record)


def test_record_processor_with_a_state_store() -> None:
    b = StreamsBuilder()
    b.add_state_store("seen")
    b.stream("in").process(Dedupe, stores=["seen"]).to("out")
    with TestDriver(b.build()) as d:
        d.input_topic("in").pipe_key_values([("a", 1), ("b", 2), ("a", 3), ("b", 4), ("c", 5)])
        assert d.output_topic("out").read_key_values() == [("a", 1), ("b", 2), ("c", 5)]
        # add_state_store stores keep values as given, without a timestamp
        assert d.store("seen").to_dict() == {"a": 1, "b": 2, "c": 5}


def test_forward_record_can_change_key_and_value() -> None:
    class Swap(RecordProcessor):
        def process_record(self, record: Record) -> None:
            self.forward_record(record, key=record.value, value=record.key)
            self.forward_record(record, value="again")

    b = StreamsBuilder()
    b.stream("in").process(Swap).to("out")
    with TestDriver(b.build()) as d:
        d.input_topic("in").pipe("v", key="k", timestamp=9)
        records = d.output_topic("out").read_records()
        assert [(r.key, r.value, r.timestamp) for r in records] == [
            ("v", "k", 9), ("k", "again", 9)]


def test_process_with_an_unknown_store_is_rejected() -> None:
    b = StreamsBuilder()
    with pytest.raises(TopologyError, match="add_state_store"):
        b.stream("in").process(Dedupe, stores=["seen"])


def test_a_store_not_connected_to_the_processor_is_refused() -> None:
    b = StreamsBuilder()
    b.add_state_store("seen")
    b.stream("other").process(Dedupe, stores=["seen"])
    b.stream("in").process(Dedupe)  # does not name the store
    with pytest.raises(TopologyError, match="not connected"):
        TestDriver(b.build())


def test_process_marks_the_stream_for_repartitioning() -> None:
    b = StreamsBuilder()
    b.stream("in").process(Dedupe2).group_by_key().count("c")
    assert len(b.build().subtopologies) == 2


class Dedupe2(RecordProcessor):
    def process_record(self, record: Record) -> None:
        self.forward_record(record)


def test_store_shared_by_two_processors_joins_their_subtopologies() -> None:
    b = StreamsBuilder()
    b.add_state_store("shared")

    class Put(RecordProcessor):
        def process_record(self, record: Record) -> None:
            self.context.get_store("shared").put(record.key, record.value)

    class Get(RecordProcessor):
        def process_record(self, record: Record) -> None:
            self.forward_record(record, value=self.context.get_store("shared").get(record.key))

    b.stream("writes").process(Put, stores=["shared"])
    b.stream("reads").process(Get, stores=["shared"]).to("out")
    topology = b.build()
    assert len(topology.subtopologies) == 1
    with TestDriver(topology) as d:
        d.input_topic("writes").pipe("hello", key="k")
        d.input_topic("reads").pipe(None, key="k")
        assert d.output_topic("out").read_key_value() == ("k", "hello")


class Totals(RecordProcessor):
    """Sums per key; a punctuator emits the sums and clears them."""

    def __init__(self, kind: PunctuationType, interval: int = 10) -> None:
        self.kind = kind
        self.interval = interval
        self.fired: list[int] = []

    def init(self, context: Any) -> None:
        super().init(context)
        self.store = context.get_store("totals")
        context.schedule(self.interval, self.kind, self.punctuate)

    def process_record(self, record: Record) -> None:
        self.store.put(record.key, (self.store.get(record.key) or 0) + record.value)

    def punctuate(self, timestamp: int) -> None:
        self.fired.append(timestamp)
        for key, total in list(self.store.all()):
            self.forward_record(Record(key, total, timestamp))
            self.store.delete(key)


def _totals(kind: PunctuationType, interval: int = 10) -> tuple[Any, list[Totals]]:
    made: list[Totals] = []

    def supply() -> Totals:
        made.append(Totals(kind, interval))
        return made[-1]

    b = StreamsBuilder()
    b.add_state_store("totals", value_serde="int64")
    b.stream("in", value_serde="int64").process(supply, stores=["totals"]).map_values(
        lambda v: v * 1).to("out", value_serde="int64")
    return b.build(), made


def test_stream_time_punctuation_fires_as_stream_time_passes() -> None:
    topology, made = _totals(PunctuationType.STREAM_TIME)
    with TestDriver(topology) as d:
        t = d.input_topic("in")
        t.pipe(1, key="a", timestamp=5)     # first data: fires at once (aligned to 0)
        out = d.output_topic("out")
        assert out.read_records()[0].timestamp == 5
        t.pipe(2, key="a", timestamp=7)
        t.pipe(3, key="b", timestamp=9)
        assert out.is_empty()
        t.pipe(4, key="a", timestamp=3)     # out of order: stream time stays at 9
        assert out.is_empty()
        t.pipe(5, key="b", timestamp=10)    # reaches 10: fires
        assert [(r.key, r.value, r.timestamp) for r in out.read_records()] == [
            ("a", 6, 10), ("b", 8, 10)]
        assert made[0].fired == [5, 10]
        t.pipe(1, key="c", timestamp=45)    # several intervals at once: fires once
        t.pipe(1, key="c", timestamp=49)
        assert made[0].fired == [5, 10, 45]
        t.pipe(1, key="c", timestamp=50)
        assert made[0].fired == [5, 10, 45, 50]


def test_stream_time_punctuation_output() -> None:
    topology, _ = _totals(PunctuationType.STREAM_TIME)
    with TestDriver(topology) as d:
        t = d.input_topic("in")
        t.pipe(1, key="a", timestamp=0)
        out = d.output_topic("out")
        assert out.read_key_values() == [("a", 1)]
        t.pipe_key_values([("a", 2), ("b", 3)], timestamp=4)
        assert out.is_empty()
        t.pipe(4, key="a", timestamp=11)
        records = out.read_records()
        # the punctuator is handed the stream time, 11, not the due time, 10
        assert [(r.key, r.value, r.timestamp) for r in records] == [("a", 6, 11), ("b", 3, 11)]


def test_stream_time_punctuation_is_not_moved_by_wall_clock() -> None:
    topology, made = _totals(PunctuationType.STREAM_TIME)
    with TestDriver(topology, wall_clock_ms=0) as d:
        d.advance_wall_clock(1000)
        assert made[0].fired == []


def test_wall_clock_punctuation_fires_on_advance() -> None:
    topology, made = _totals(PunctuationType.WALL_CLOCK_TIME, interval=100)
    with TestDriver(topology, wall_clock_ms=1000) as d:
        d.input_topic("in").pipe_key_values([("a", 1), ("a", 2)], timestamp=5)
        out = d.output_topic("out")
        assert out.is_empty()                  # records alone never fire it
        d.advance_wall_clock(99)
        assert out.is_empty()
        d.advance_wall_clock(1)                # 1100: first interval elapsed
        assert [(r.key, r.value, r.timestamp) for r in out.read_records()] == [("a", 3, 1100)]
        d.advance_wall_clock(350)              # 1450: fires once, next at 1500
        d.advance_wall_clock(49)
        assert made[0].fired == [1100, 1450]
        d.advance_wall_clock(1)
        assert made[0].fired == [1100, 1450, 1500]


def test_punctuation_interval_must_be_positive() -> None:
    topology, _ = _totals(PunctuationType.STREAM_TIME, interval=0)
    with pytest.raises(ValueError, match="positive"):
        TestDriver(topology)


def test_batch_processor_subclass() -> None:
    """A Processor gets whole batches and forwards lists."""

    class Double(Processor):
        def process(self, batch: list[Record]) -> None:
            self.context.forward([r.with_value(r.value * 2) for r in batch])

    b = StreamsBuilder()
    b.stream("in").process(Double).to("out")
    with TestDriver(b.build()) as d:
        d.input_topic("in").pipe_key_values([("a", 1), ("b", 2)])
        assert d.output_topic("out").read_values() == [2, 4]


def test_processor_context_exposes_task_and_time() -> None:
    seen: list[tuple[Any, ...]] = []

    class Inspect(RecordProcessor):
        def process_record(self, record: Record) -> None:
            c = self.context
            seen.append((c.application_id, c.task_id, c.partition, c.wall_clock_time,
                         record.topic, record.offset))

    b = StreamsBuilder()
    b.stream("in").process(Inspect)
    with TestDriver(b.build(), application_id="app", wall_clock_ms=777) as d:
        d.input_topic("in").pipe_list(["x", "y"])
    assert seen == [("app", "0_0", 0, 777, "in", 0), ("app", "0_0", 0, 777, "in", 1)]


def test_punctuator_output_through_a_merge_after_fan_out() -> None:
    class Ticker(RecordProcessor):
        def init(self, context: Any) -> None:
            super().init(context)
            context.schedule(10, PunctuationType.STREAM_TIME, self.tick)

        def process_record(self, record: Record) -> None:
            self.forward_record(record)

        def tick(self, timestamp: int) -> None:
            self.forward_record(Record("tick", f"t{timestamp}", timestamp))

    b = StreamsBuilder()
    s = b.stream("in").process(Ticker)
    branches = (s.flat_map_values(lambda v: [v, v.upper()]).split(name="s-")
                .branch(lambda k, v: v.isupper(), name="up").default_branch(name="low"))
    branches["s-up"].merge(branches["s-low"]).to("out")
    with TestDriver(b.build()) as d:
        d.input_topic("in").pipe("a", key="k", timestamp=0)
        d.input_topic("in").pipe("b", key="k", timestamp=12)
        assert d.output_topic("out").read_values() == [
            "a", "A", "t0", "T0", "b", "B", "t12", "T12"]
