"""Grouped streams: count, reduce, aggregate; null keys/values; result timestamps."""

from __future__ import annotations

from typing import Any

from fluvial import Materialized, StreamsBuilder, TestDriver


def _driver(build: Any, **kwargs: Any) -> TestDriver:
    b = StreamsBuilder()
    build(b)
    return TestDriver(b.build(), **kwargs)


def test_count_by_key_emits_every_update() -> None:
    with _driver(lambda b: b.stream("in").group_by_key().count("counts").to_stream()
                 .to("out")) as d:
        d.input_topic("in").pipe_key_values([("a", 1), ("b", 1), ("a", 1)])
        assert d.output_topic("out").read_key_values() == [("a", 1), ("b", 1), ("a", 2)]
        assert d.store("counts").to_dict() == {"a": 2, "b": 1}


def test_count_writes_int64_values() -> None:
    with _driver(lambda b: b.stream("in").group_by_key().count().to_stream().to("out")) as d:
        d.input_topic("in").pipe("x", key="a")
        assert d.read("out")[0].value() == (1).to_bytes(8, "big")


def test_count_skips_null_keys_and_null_values() -> None:
    with _driver(lambda b: b.stream("in").group_by_key().count("c").to_stream()
                 .to("out")) as d:
        d.input_topic("in").pipe_key_values([(None, "x"), ("a", None), ("a", "y")])
        assert d.output_topic("out").read_key_values() == [("a", 1)]
        assert d.store("c").to_dict() == {"a": 1}


def test_group_by_count_skips_records_whose_new_key_is_null() -> None:
    with _driver(lambda b: b.stream("in").group_by(lambda k, v: v.get("g")).count("c")) as d:
        d.input_topic("in").pipe_key_values([("1", {"g": "x"}), ("2", {}), ("3", {"g": "x"})])
        assert d.store("c").to_dict() == {"x": 2}


def test_word_count() -> None:
    def build(b: StreamsBuilder) -> None:
        (b.stream("text").flat_map_values(lambda line: line.lower().split())
         .group_by(lambda _, word: word).count(Materialized.as_("counts")).to_stream()
         .to("words", value_serde="int64"))

    with _driver(build) as d:
        d.input_topic("text").pipe_list(["Hello Kafka", "hello fluvial"])
        assert d.output_topic("words").read_key_values() == [
            ("hello", 1), ("kafka", 1), ("hello", 2), ("fluvial", 1)]
        assert d.store("counts").get("hello") == 2


def test_reduce_first_value_starts_the_aggregate() -> None:
    with _driver(lambda b: b.stream("in").group_by_key().reduce(lambda agg, v: agg + v, "sum")
                 .to_stream().to("out")) as d:
        d.input_topic("in").pipe_key_values([("a", 5), ("b", 1), ("a", 3), ("a", None),
                                             (None, 100)])
        assert d.output_topic("out").read_key_values() == [("a", 5), ("b", 1), ("a", 8)]
        assert d.store("sum").to_dict() == {"a": 8, "b": 1}


def test_reduce_keeps_the_value_serde() -> None:
    with _driver(lambda b: b.stream("in", value_serde="int64").group_by_key()
                 .reduce(max).to_stream().to("out")) as d:
        d.input_topic("in").pipe_key_values([("a", 3), ("a", 1), ("a", 7)])
        assert d.output_topic("out").read_values() == [3, 3, 7]
        assert d.read("out")[-1].value() == (7).to_bytes(8, "big")


def test_aggregate_with_initializer_and_aggregator() -> None:
    def build(b: StreamsBuilder) -> None:
        (b.stream("in").group_by_key()
         .aggregate(lambda: {"n": 0, "total": 0},
                    lambda k, v, agg: {"n": agg["n"] + 1, "total": agg["total"] + v},
                    Materialized(name="stats"))
         .to_stream().to("out"))

    with _driver(build) as d:
        d.input_topic("in").pipe_key_values([("a", 10), ("a", None), ("b", 1), ("a", 5),
                                             (None, 3)])
        assert d.output_topic("out").read_key_values() == [
            ("a", {"n": 1, "total": 10}), ("b", {"n": 1, "total": 1}),
            ("a", {"n": 2, "total": 15})]
        assert d.store("stats").get("a") == {"n": 2, "total": 15}


def test_aggregator_gets_the_key() -> None:
    with _driver(lambda b: b.stream("in").group_by_key()
                 .aggregate(list, lambda k, v, agg: [*agg, f"{k}:{v}"], "s")) as d:
        d.input_topic("in").pipe_key_values([("a", 1), ("a", 2)])
        assert d.store("s").get("a") == ["a:1", "a:2"]


def test_aggregation_timestamp_is_the_max_of_its_inputs() -> None:
    with _driver(lambda b: b.stream("in").group_by_key().count("c").to_stream()
                 .to("out")) as d:
        topic = d.input_topic("in")
        topic.pipe("x", key="a", timestamp=100)
        topic.pipe("x", key="a", timestamp=50)    # out of order: the result keeps 100
        topic.pipe("x", key="b", timestamp=60)    # another key has its own time
        topic.pipe("x", key="a", timestamp=200)
        records = d.output_topic("out").read_records()
        assert [(r.key, r.value, r.timestamp) for r in records] == [
            ("a", 1, 100), ("a", 2, 100), ("b", 1, 60), ("a", 3, 200)]


def test_aggregation_after_repartition_keeps_timestamps() -> None:
    with _driver(lambda b: b.stream("in").group_by(lambda k, v: v).count("c").to_stream()
                 .to("out")) as d:
        d.input_topic("in").pipe("g", key="x", timestamp=70)
        d.input_topic("in").pipe("g", key="y", timestamp=30)
        assert [(r.value, r.timestamp) for r in d.output_topic("out").read_records()] == [
            (1, 70), (2, 70)]


def test_aggregations_in_separate_stores_do_not_interfere() -> None:
    def build(b: StreamsBuilder) -> None:
        grouped = b.stream("in").group_by_key()
        grouped.count("n")
        grouped.reduce(lambda a, v: a + v, "sum")

    with _driver(build) as d:
        d.input_topic("in").pipe_key_values([("a", 2), ("a", 3)])
        assert d.store("n").get("a") == 2
        assert d.store("sum").get("a") == 5


def test_aggregator_returning_none_deletes_the_key() -> None:
    with _driver(lambda b: b.stream("in").group_by_key()
                 .aggregate(lambda: 0, lambda k, v, agg: None if v == "reset" else agg + v, "s")
                 .to_stream().to("out")) as d:
        d.input_topic("in").pipe_key_values([("a", 1), ("a", "reset")])
        assert d.output_topic("out").read_key_values() == [("a", 1), ("a", None)]
        assert d.store("s").get("a") is None


def test_grouped_serdes_for_non_string_keys() -> None:
    from fluvial import Grouped

    with _driver(lambda b: b.stream("in").group_by(lambda k, w: len(w),
                                                   Grouped(name="by-len", key_serde="int64"))
                 .count("c").to_stream().to("out")) as d:
        d.input_topic("in").pipe_list(["ab", "cd", "efg"])
        assert d.output_topic("out").read_key_values() == [(2, 1), (2, 2), (3, 1)]
        assert d.read("out")[0].key() == (2).to_bytes(8, "big")
        assert d.store("c").to_dict() == {2: 2, 3: 1}


def test_count_of_counts_goes_through_two_repartitions() -> None:
    # how many words have been seen n times: a stream count regrouped as a table count
    def build(b: StreamsBuilder) -> None:
        (b.stream("in").group_by(lambda k, w: w).count("per-word")
         .group_by(lambda w, n: (str(n), w)).count("per-count"))

    with _driver(build) as d:
        topology = d.topology
        assert len(topology.subtopologies) == 3
        d.input_topic("in").pipe_list(["a", "b", "a", "c", "a"])
        assert d.store("per-word").to_dict() == {"a": 3, "b": 1, "c": 1}
        assert d.store("per-count").to_dict() == {"1": 2, "2": 0, "3": 1}


def test_table_filter_on_an_aggregate() -> None:
    with _driver(lambda b: b.stream("in").group_by_key().count("c")
                 .filter(lambda k, n: n >= 2).to_stream().to("out")) as d:
        d.input_topic("in").pipe_key_values([("a", 1), ("a", 1), ("b", 1)])
        assert d.output_topic("out").read_key_values() == [("a", 2)]


def test_filter_on_a_count_forwards_a_tombstone_when_a_key_leaves_it() -> None:
    # a new key's old value is the initializer's (0), as in Kafka Streams: 0 passes this
    # filter, so the first count (1) that fails it leaves it, and a tombstone says so
    with _driver(lambda b: b.stream("in").group_by_key().count("c")
                 .filter(lambda k, n: n % 2 == 0).to_stream().to("out")) as d:
        d.input_topic("in").pipe_key_values([("a", 1), ("a", 1), ("a", 1)])
        assert d.output_topic("out").read_key_values() == [("a", None), ("a", 2), ("a", None)]


def test_aggregate_with_materialized_serdes() -> None:
    with _driver(lambda b: b.stream("in").group_by_key()
                 .aggregate(lambda: "", lambda k, v, agg: agg + v,
                            Materialized(name="concat", value_serde="string"))
                 .to_stream().to("out")) as d:
        d.input_topic("in").pipe_key_values([("a", "x"), ("a", "y")])
        assert d.read("out")[-1].value() == b"xy"    # the store's value serde
        assert d.store("concat").get("a") == "xy"
