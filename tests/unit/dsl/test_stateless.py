"""Stateless Stream operators, driven through the TestDriver."""

from __future__ import annotations

from typing import Any

import pytest

from fluvial import Grouped, Repartitioned, StreamsBuilder, TestDriver


def _run(build: Any, records: list[tuple[Any, Any]], out: str = "out",
         **driver_kwargs: Any) -> list[tuple[Any, Any]]:
    b = StreamsBuilder()
    build(b.stream("in"))
    with TestDriver(b.build(), **driver_kwargs) as d:
        d.input_topic("in").pipe_key_values(records)
        return d.output_topic(out).read_key_values()


def test_filter_keeps_matching_records_in_order() -> None:
    got = _run(lambda s: s.filter(lambda k, v: v % 2 == 0).to("out"),
               [("a", 1), ("b", 2), ("c", 3), ("d", 4)])
    assert got == [("b", 2), ("d", 4)]


def test_filter_not_drops_matching_records() -> None:
    got = _run(lambda s: s.filter_not(lambda k, v: v % 2 == 0).to("out"),
               [("a", 1), ("b", 2), ("c", 3)])
    assert got == [("a", 1), ("c", 3)]


def test_filter_sees_key_and_value() -> None:
    got = _run(lambda s: s.filter(lambda k, v: k == "keep").to("out"),
               [("keep", 1), ("drop", 2), ("keep", 3)])
    assert got == [("keep", 1), ("keep", 3)]


def test_map_changes_key_and_value() -> None:
    got = _run(lambda s: s.map(lambda k, v: (v["id"], k)).to("out"),
               [("a", {"id": "x"}), ("b", {"id": "y"})])
    assert got == [("x", "a"), ("y", "b")]


def test_map_values_keeps_key() -> None:
    got = _run(lambda s: s.map_values(lambda v: v * 10).to("out"), [("a", 1), ("b", 2)])
    assert got == [("a", 10), ("b", 20)]


def test_flat_map_emits_zero_or_more_pairs_per_record() -> None:
    got = _run(lambda s: s.flat_map(lambda k, v: [(f"{k}{i}", i) for i in range(v)]).to("out"),
               [("a", 2), ("b", 0), ("c", 1)])
    assert got == [("a0", 0), ("a1", 1), ("c0", 0)]


def test_flat_map_values_keeps_key() -> None:
    got = _run(lambda s: s.flat_map_values(lambda v: v.split()).to("out"),
               [("k", "hello big world"), ("j", "")])
    assert got == [("k", "hello"), ("k", "big"), ("k", "world")]


def test_select_key_keeps_value() -> None:
    got = _run(lambda s: s.select_key(lambda k, v: v["user"]).to("out"),
               [(None, {"user": "u1"}), ("x", {"user": "u2"})])
    assert got == [("u1", {"user": "u1"}), ("u2", {"user": "u2"})]


def test_peek_sees_every_record_and_passes_them_on() -> None:
    seen: list[tuple[Any, Any]] = []
    got = _run(lambda s: s.peek(lambda k, v: seen.append((k, v))).to("out"),
               [("a", 1), ("b", 2)])
    assert seen == [("a", 1), ("b", 2)]
    assert got == [("a", 1), ("b", 2)]


def test_foreach_is_terminal_and_sees_every_record() -> None:
    seen: list[tuple[Any, Any]] = []
    b = StreamsBuilder()
    b.stream("in").foreach(lambda k, v: seen.append((k, v)))
    with TestDriver(b.build()) as d:
        d.input_topic("in").pipe_key_values([("a", 1), ("b", None)])
    assert seen == [("a", 1), ("b", None)]


def test_stateless_operators_keep_timestamps_and_headers() -> None:
    b = StreamsBuilder()
    (b.stream("in").map_values(lambda v: v + 1).flat_map_values(lambda v: [v, v])
     .select_key(lambda k, v: "k").to("out"))
    with TestDriver(b.build()) as d:
        d.input_topic("in").pipe(1, key="a", timestamp=42, headers=[("h", b"1")])
        records = d.output_topic("out").read_records()
    assert [(r.key, r.value, r.timestamp, r.headers) for r in records] == [
        ("k", 2, 42, [("h", b"1")]), ("k", 2, 42, [("h", b"1")])]


def test_chained_operators_run_in_order() -> None:
    got = _run(lambda s: (s.filter(lambda k, v: v > 0).map_values(lambda v: v * 2)
                          .filter(lambda k, v: v < 10).to("out")),
               [("a", -1), ("b", 1), ("c", 4), ("d", 6)])
    assert got == [("b", 2), ("c", 8)]


def test_one_stream_feeding_two_sinks() -> None:
    b = StreamsBuilder()
    s = b.stream("in")
    s.filter(lambda k, v: v > 1).to("big")
    s.map_values(lambda v: -v).to("neg")
    with TestDriver(b.build()) as d:
        d.input_topic("in").pipe_key_values([("a", 1), ("b", 2)])
        assert d.output_topic("big").read_key_values() == [("b", 2)]
        assert d.output_topic("neg").read_key_values() == [("a", -1), ("b", -2)]


def test_to_with_topic_chooser() -> None:
    b = StreamsBuilder()
    b.stream("in").to(lambda k, v, r: f"out-{v['kind']}")
    with TestDriver(b.build()) as d:
        d.input_topic("in").pipe_key_values([("a", {"kind": "x"}), ("b", {"kind": "y"}),
                                             ("c", {"kind": "x"})])
        # the chooser's sink serdes apply to the topics it names
        assert d.output_topic("out-x").read_key_values() == [("a", {"kind": "x"}),
                                                             ("c", {"kind": "x"})]
        assert d.output_topic("out-y").read_value() == {"kind": "y"}


def test_to_chooser_gets_the_record() -> None:
    b = StreamsBuilder()
    b.stream("in").to(lambda k, v, r: "late" if r.timestamp > 100 else "early")
    with TestDriver(b.build()) as d:
        d.input_topic("in").pipe("v1", key="a", timestamp=50)
        d.input_topic("in").pipe("v2", key="a", timestamp=150)
        assert d.output_topic("early").read_value() == "v1"
        assert d.output_topic("late").read_value() == "v2"


def test_to_with_explicit_serdes_writes_those_bytes() -> None:
    b = StreamsBuilder()
    b.stream("in", value_serde="int64").map_values(lambda v: v * 2).to(
        "out", value_serde="int64")
    with TestDriver(b.build()) as d:
        d.input_topic("in").pipe(21, key="a")
        raw = d.read("out")[0]
        assert raw.value() == (42).to_bytes(8, "big")
        assert d.output_topic("out").read_value() == 42


def test_repartition_passes_records_through_an_internal_topic() -> None:
    b = StreamsBuilder()
    b.stream("in").select_key(lambda k, v: v).repartition(Repartitioned(name="by-value")).to(
        "out")
    topology = b.build()
    assert len(topology.subtopologies) == 2
    with TestDriver(topology, application_id="app") as d:
        d.input_topic("in").pipe_key_values([("a", "x"), ("b", "y")])
        assert d.output_topic("out").read_key_values() == [("x", "x"), ("y", "y")]
        # the internal topic carries the application id
        assert [m.key() for m in d.read("app-by-value-repartition")] == [b"x", b"y"]


def test_repartition_with_generated_name() -> None:
    b = StreamsBuilder()
    b.stream("in").repartition().to("out")
    topology = b.build()
    sinks = [s.topic for s in topology.repartition_topics()]
    assert sinks == ["KSTREAM-REPARTITION-0000000001-repartition"]
    with TestDriver(topology) as d:
        d.input_topic("in").pipe("v", key="k", timestamp=7)
        d.input_topic("in").pipe("no key")      # null keys cannot be partitioned: dropped
        out = d.output_topic("out")
        r = out.read_record()
        assert (r.key, r.value, r.timestamp) == ("k", "v", 7)
        assert out.is_empty()


def test_to_table_keeps_latest_value_per_key() -> None:
    b = StreamsBuilder()
    b.stream("in").to_table("latest").to_stream().to("out")
    with TestDriver(b.build()) as d:
        d.input_topic("in").pipe_key_values([("a", 1), ("b", 2), ("a", 3), ("b", None)])
        assert d.output_topic("out").read_key_values() == [("a", 1), ("b", 2), ("a", 3),
                                                           ("b", None)]
        assert d.store("latest").to_dict() == {"a": 3}


def test_to_table_after_key_change_repartitions() -> None:
    b = StreamsBuilder()
    b.stream("in").select_key(lambda k, v: v["id"]).to_table("t")
    topology = b.build()
    assert len(topology.subtopologies) == 2
    with TestDriver(topology) as d:
        d.input_topic("in").pipe_key_values([("x", {"id": "a", "n": 1}),
                                             ("y", {"id": "a", "n": 2})])
        assert d.store("t").to_dict() == {"a": {"id": "a", "n": 2}}


def test_group_by_key_without_key_change_does_not_repartition() -> None:
    b = StreamsBuilder()
    b.stream("in").map_values(lambda v: v).group_by_key().count("c")
    assert len(b.build().subtopologies) == 1


def test_group_by_repartitions_with_grouped_name() -> None:
    b = StreamsBuilder()
    b.stream("in").group_by(lambda k, v: v, Grouped(name="byv")).count("c")
    topology = b.build()
    assert [s.topic for s in topology.repartition_topics()] == ["byv-repartition"]
    with TestDriver(topology, application_id="app") as d:
        d.input_topic("in").pipe_key_values([("a", "x"), ("b", "x"), ("c", "y")])
        assert d.store("c").to_dict() == {"x": 2, "y": 1}
        assert len(d.read("app-byv-repartition")) == 3


@pytest.mark.parametrize("op", ["map", "flat_map", "select_key"])
def test_key_changing_operators_mark_the_stream_for_repartitioning(op: str) -> None:
    b = StreamsBuilder()
    s = b.stream("in")
    if op == "map":
        s = s.map(lambda k, v: (v, v))
    elif op == "flat_map":
        s = s.flat_map(lambda k, v: [(v, v)])
    else:
        s = s.select_key(lambda k, v: v)
    s.map_values(lambda v: v).filter(lambda k, v: True).group_by_key().count("c")
    assert len(b.build().subtopologies) == 2
