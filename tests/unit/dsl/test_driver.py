"""The TestDriver's API: input and output topics, stores, time, errors."""

from __future__ import annotations

import pytest

from fluvial import Repartitioned, StreamsBuilder, TestDriver, TopologyError
from fluvial.testing import TestRecord


def _passthrough() -> TestDriver:
    b = StreamsBuilder()
    b.stream("in").to("out")
    b.stream("counts-in").group_by_key().count("counts")
    return TestDriver(b.build(), wall_clock_ms=1_000)


def test_pipe_value_key_timestamp_and_headers() -> None:
    with _passthrough() as d:
        d.input_topic("in").pipe("v", key="k", timestamp=42, headers=[("h", b"x")])
        record = d.output_topic("out").read_record()
    assert record == TestRecord("k", "v", 42, [("h", b"x")])


def test_pipe_without_key_or_timestamp_uses_the_topic_clock() -> None:
    with _passthrough() as d:
        d.input_topic("in").pipe("v")
        record = d.output_topic("out").read_record()
    assert (record.key, record.value, record.timestamp) == (None, "v", 1_000)


def test_input_topic_start_timestamp_and_auto_advance() -> None:
    with _passthrough() as d:
        topic = d.input_topic("in", start_timestamp=100, auto_advance_ms=10)
        topic.pipe_list(["a", "b"])
        topic.advance_time(5)
        topic.pipe("c")
        topic.pipe("d", timestamp=7)        # explicit: the topic clock does not move
        topic.pipe("e")
        assert [r.timestamp for r in d.output_topic("out").read_records()] == [
            100, 110, 125, 7, 135]


def test_pipe_list_and_pipe_key_values() -> None:
    with _passthrough() as d:
        d.input_topic("in").pipe_list(["a", "b"], timestamp=3)
        d.input_topic("in").pipe_key_values([("k1", 1), ("k2", 2)], timestamp=4)
        records = d.output_topic("out").read_records()
    assert [(r.key, r.value, r.timestamp) for r in records] == [
        (None, "a", 3), (None, "b", 3), ("k1", 1, 4), ("k2", 2, 4)]


def test_input_topic_serde_override() -> None:
    with _passthrough() as d:
        d.input_topic("in", value_serde="string").pipe('{"a": 1}', key="k")
        assert d.output_topic("out").read_value() == {"a": 1}


def test_read_value_and_key_value_advance_one_by_one() -> None:
    with _passthrough() as d:
        d.input_topic("in").pipe_key_values([("a", 1), ("b", 2), ("c", 3)])
        out = d.output_topic("out")
        assert out.queue_size() == 3
        assert out.read_value() == 1
        assert out.read_key_value() == ("b", 2)
        assert out.queue_size() == 1
        assert not out.is_empty()
        assert out.read_record().value == 3
        assert out.is_empty()
        assert out.queue_size() == 0


def test_read_lists_drain_the_topic() -> None:
    with _passthrough() as d:
        d.input_topic("in").pipe_key_values([("a", 1), ("b", 2)])
        assert d.output_topic("out").read_values() == [1, 2]
        out = d.output_topic("out")   # a new reader starts at the beginning
        assert out.read_key_values() == [("a", 1), ("b", 2)]
        assert out.read_key_values() == []
        assert out.read_records() == []


def test_readers_see_records_piped_after_they_were_created() -> None:
    with _passthrough() as d:
        out = d.output_topic("out")
        assert out.is_empty()
        d.input_topic("in").pipe(1, key="a")
        assert out.read_value() == 1


def test_read_key_values_to_map_keeps_latest_and_honours_tombstones() -> None:
    with _passthrough() as d:
        d.input_topic("in").pipe_key_values([("a", 1), ("b", 2), ("a", 3), ("b", None),
                                             ("c", 4)])
        assert d.output_topic("out").read_key_values_to_map() == {"a": 3, "c": 4}


def test_reading_past_the_end_is_a_clear_error() -> None:
    with _passthrough() as d:
        out = d.output_topic("out")
        with pytest.raises(LookupError, match="'out' has no more records"):
            out.read_value()
        d.input_topic("in").pipe(1)
        out.read_value()
        with pytest.raises(LookupError, match="no more records"):
            out.read_key_value()


def test_reading_a_topic_nothing_writes_is_empty() -> None:
    with _passthrough() as d:
        assert d.output_topic("nobody-writes-this").is_empty()


def test_piping_to_an_unknown_topic_is_a_clear_error() -> None:
    with _passthrough() as d, pytest.raises(TopologyError) as info:
        d.input_topic("typo").pipe("x")
    message = str(info.value)
    assert "no source reads topic 'typo'" in message
    assert "counts-in, in" in message


def test_piping_to_an_internal_topic_is_not_offered() -> None:
    b = StreamsBuilder()
    b.stream("in").group_by(lambda k, v: v, "g").count("c")
    with TestDriver(b.build(), application_id="app") as d, pytest.raises(TopologyError) as info:
        d.input_topic("elsewhere").pipe("x")
    assert "repartition" not in str(info.value)


def test_store_access() -> None:
    with _passthrough() as d:
        d.input_topic("counts-in").pipe_key_values([("b", 1), ("a", 1), ("b", 1)])
        store = d.store("counts")
        assert store.get("b") == 2
        assert store.get("missing") is None
        assert store.to_dict() == {"a": 1, "b": 2}
        assert list(store.range("a", "a")) == [("a", 1)]
        assert store.approximate_num_entries() == 2
        assert store.name == "counts"


def test_unknown_store_is_a_clear_error() -> None:
    with _passthrough() as d, pytest.raises(KeyError, match="no store 'nope'; stores: counts"):
        d.store("nope")


def test_advance_wall_clock_moves_the_clock() -> None:
    with _passthrough() as d:
        d.advance_wall_clock(500)
        d.input_topic("in").pipe("v")   # topics made now start at the new clock
        assert d.output_topic("out").read_record().timestamp == 1_500


def test_every_record_is_committed_before_pipe_returns() -> None:
    b = StreamsBuilder()
    b.stream("in").group_by(lambda k, v: v, "g").count("c").to_stream().to("out")
    with TestDriver(b.build()) as d:
        t = d.input_topic("in")
        out = d.output_topic("out")
        t.pipe("x", key="1")
        assert out.read_key_value() == ("x", 1)     # through the repartition topic already
        t.pipe("x", key="2")
        assert out.read_key_value() == ("x", 2)


def test_driver_as_context_manager_closes() -> None:
    closed: list[bool] = []
    from fluvial import RecordProcessor

    class Closing(RecordProcessor):
        def process_record(self, record: object) -> None:
            pass

        def close(self) -> None:
            closed.append(True)

    b = StreamsBuilder()
    b.stream("in").process(Closing)
    with TestDriver(b.build()):
        assert closed == []
    assert closed == [True]


def test_empty_topology_is_rejected() -> None:
    with pytest.raises(TopologyError, match="empty"):
        StreamsBuilder().build()


def test_a_topic_read_twice_is_rejected() -> None:
    b = StreamsBuilder()
    b.stream("in")
    with pytest.raises(TopologyError, match="read by two sources"):
        b.stream("in")


def test_stream_of_several_topics() -> None:
    b = StreamsBuilder()
    b.stream(["a", "b"]).map_values(str.upper).to("out")
    with TestDriver(b.build()) as d:
        d.input_topic("a").pipe("x")
        d.input_topic("b").pipe("y")
        assert d.output_topic("out").read_values() == ["X", "Y"]


def test_records_written_to_a_topic_the_topology_reads_are_piped_back_in() -> None:
    b = StreamsBuilder()
    b.stream("raw").map_values(str.strip).to("clean")
    b.stream("clean").map_values(str.upper).to("out")
    with TestDriver(b.build()) as d:
        d.input_topic("raw").pipe("  hi ", key="k")
        assert d.output_topic("clean").read_value() == "hi"
        assert d.output_topic("out").read_value() == "HI"


def test_records_written_to_a_global_table_topic_update_its_store() -> None:
    b = StreamsBuilder()
    b.global_table("latest", materialized="latest-store")
    b.stream("in").to("latest")
    with TestDriver(b.build()) as d:
        d.input_topic("in").pipe_key_values([("a", 1), ("a", 2)])
        assert d.store("latest-store").to_dict() == {"a": 2}


def test_chained_repartitions_process_each_record_once() -> None:
    b = StreamsBuilder(default_key_serde="int64", default_value_serde="int64")
    (b.stream("in").select_key(lambda k, v: v).repartition(Repartitioned(name="one"))
     .select_key(lambda k, v: v * 2).repartition(Repartitioned(name="two")).to("out"))
    with TestDriver(b.build(), application_id="app") as d:
        d.input_topic("in").pipe_list([1, 2])
        d.input_topic("in").pipe(3)
        assert d.output_topic("out").read_key_values() == [(2, 1), (4, 2), (6, 3)]
        assert len(d.read("app-one-repartition")) == 3
        assert len(d.read("app-two-repartition")) == 3
