"""Tables: source tables, filter, map_values, to_stream, regrouping with subtractors, globals."""

from __future__ import annotations

from typing import Any

import pytest

from fluvial import Materialized, StreamsBuilder, TestDriver


def _driver(build: Any, **kwargs: Any) -> TestDriver:
    b = StreamsBuilder()
    build(b)
    return TestDriver(b.build(), **kwargs)


# -- source tables -------------------------------------------------------------------------

def test_table_updates_and_tombstones() -> None:
    with _driver(lambda b: b.table("users", materialized="users-store").to_stream()
                 .to("out")) as d:
        d.input_topic("users").pipe_key_values([("u1", "A"), ("u2", "B"), ("u1", "C"),
                                                ("u2", None)])
        assert d.output_topic("out").read_key_values() == [
            ("u1", "A"), ("u2", "B"), ("u1", "C"), ("u2", None)]
        assert d.store("users-store").to_dict() == {"u1": "C"}


def test_table_without_a_name_is_still_materialized() -> None:
    b = StreamsBuilder()
    table = b.table("users")
    with TestDriver(b.build()) as d:
        d.input_topic("users").pipe("A", key="u1")
        assert table.store_name is not None
        assert d.store(table.store_name).get("u1") == "A"


def test_table_delete_of_an_absent_key_forwards_a_tombstone() -> None:
    # as Kafka Streams: the source table forwards every delete, present key or not
    with _driver(lambda b: b.table("t").to_stream().to("out")) as d:
        d.input_topic("t").pipe(None, key="ghost")
        assert d.output_topic("out").read_key_values() == [("ghost", None)]


@pytest.mark.parametrize("materialized", [None, "t-store"])
def test_with_the_record_cache_a_named_table_forwards_no_delete_of_an_absent_key(
        materialized: str | None) -> None:
    # as Kafka Streams: only a table it materializes (named) goes through its cache, which
    # drops a change absent before and after
    with _driver(lambda b: b.table("t", materialized=materialized).to_stream().to("out"),
                 record_cache=True) as d:
        d.input_topic("t").pipe_key_values([("ghost", None), ("k", "v"), ("k", None)])
        expected = [("k", "v"), ("k", None)]
        assert d.output_topic("out").read_key_values() == (
            expected if materialized else [("ghost", None), *expected])


def test_table_skips_null_keys() -> None:
    with _driver(lambda b: b.table("t", materialized="s").to_stream().to("out")) as d:
        d.input_topic("t").pipe("v", key=None)
        assert d.output_topic("out").is_empty()
        assert d.store("s").to_dict() == {}


# -- filter --------------------------------------------------------------------------------

AGES = [
    ("ann", 20),   # in
    ("bob", 10),   # never in
    ("ann", 15),   # leaves: tombstone
    ("bob", 12),   # still out
    ("bob", 30),   # in
    ("bob", None), # deleted while in: tombstone
    ("ann", None), # deleted while out
]


@pytest.mark.parametrize("materialized", [None, "adults"])
def test_table_filter_below_an_unnamed_table_forwards_every_tombstone(
        materialized: str | None) -> None:
    # as Kafka Streams: the table above cannot send old values, so the filter cannot tell
    # "was out, still out" from "left", and forwards a tombstone for every record it keeps out
    def build(b: StreamsBuilder) -> None:
        (b.table("ages").filter(lambda k, age: age >= 18, materialized=materialized)
         .to_stream().to("out"))

    with _driver(build) as d:
        d.input_topic("ages").pipe_key_values(AGES)
        assert d.output_topic("out").read_key_values() == [
            ("ann", 20), ("bob", None), ("ann", None), ("bob", None), ("bob", 30),
            ("bob", None), ("ann", None)]
        if materialized:
            assert d.store(materialized).to_dict() == {}


@pytest.mark.parametrize("materialized", [None, "adults"])
def test_table_filter_below_a_named_table_emits_tombstone_only_when_a_key_leaves(
        materialized: str | None) -> None:
    def build(b: StreamsBuilder) -> None:
        (b.table("ages", materialized="ages-store")
         .filter(lambda k, age: age >= 18, materialized=materialized).to_stream().to("out"))

    with _driver(build) as d:
        d.input_topic("ages").pipe_key_values(AGES)
        assert d.output_topic("out").read_key_values() == [
            ("ann", 20), ("ann", None), ("bob", 30), ("bob", None)]
        if materialized:
            assert d.store(materialized).to_dict() == {}


def test_table_filter_store_holds_only_passing_rows() -> None:
    with _driver(lambda b: b.table("ages").filter(lambda k, a: a >= 18,
                                                  materialized=Materialized.as_("adults"))) as d:
        d.input_topic("ages").pipe_key_values([("ann", 20), ("bob", 10), ("cid", 40)])
        assert d.store("adults").to_dict() == {"ann": 20, "cid": 40}
        d.input_topic("ages").pipe(17, key="cid")
        assert d.store("adults").to_dict() == {"ann": 20}


def test_table_filter_not() -> None:
    with _driver(lambda b: b.table("ages", materialized="ages-store")
                 .filter_not(lambda k, a: a >= 18, materialized="kids")
                 .to_stream().to("out")) as d:
        d.input_topic("ages").pipe_key_values([("ann", 20), ("bob", 10), ("bob", 19)])
        assert d.output_topic("out").read_key_values() == [("bob", 10), ("bob", None)]
        assert d.store("kids").to_dict() == {}


def test_unmaterialized_filter_has_no_store() -> None:
    b = StreamsBuilder()
    filtered = b.table("t").filter(lambda k, v: True)
    assert filtered.store_name is None


# -- map_values / to_stream ----------------------------------------------------------------

def test_table_map_values_with_store_and_deletes() -> None:
    with _driver(lambda b: b.table("t").map_values(lambda v: v.upper(), materialized="up")
                 .to_stream().to("out")) as d:
        d.input_topic("t").pipe_key_values([("a", "x"), ("a", "y"), ("a", None)])
        assert d.output_topic("out").read_key_values() == [("a", "X"), ("a", "Y"), ("a", None)]
        assert d.store("up").to_dict() == {}
        d.input_topic("t").pipe("z", key="b")
        assert d.store("up").to_dict() == {"b": "Z"}


def test_table_to_stream_keeps_timestamps() -> None:
    with _driver(lambda b: b.table("t").to_stream().to("out")) as d:
        d.input_topic("t").pipe("x", key="a", timestamp=123)
        assert d.output_topic("out").read_record().timestamp == 123


def test_table_chain_filter_then_map_values() -> None:
    with _driver(lambda b: b.table("t").filter(lambda k, v: v > 0).map_values(lambda v: v * 2)
                 .to_stream().to("out")) as d:
        d.input_topic("t").pipe_key_values([("a", 1), ("a", -1), ("b", 3)])
        assert d.output_topic("out").read_key_values() == [("a", 2), ("a", None), ("b", 6)]


# -- group_by with subtractors ---------------------------------------------------------------

def _regions(b: StreamsBuilder) -> Any:
    """users: user -> region; regrouped by region."""
    return b.table("users").group_by(lambda user, region: (region, user))


def test_grouped_table_count_moves_and_deletes() -> None:
    with _driver(lambda b: _regions(b).count("per-region").to_stream().to("out")) as d:
        users = d.input_topic("users")
        users.pipe_key_values([("u1", "A"), ("u2", "A"), ("u3", "B")])
        assert d.store("per-region").to_dict() == {"A": 2, "B": 1}
        users.pipe("B", key="u1")           # move u1 from A to B
        assert d.store("per-region").to_dict() == {"A": 1, "B": 2}
        users.pipe(None, key="u2")          # delete u2
        assert d.store("per-region").to_dict() == {"A": 0, "B": 2}
        out = d.output_topic("out").read_key_values()
        # the move first decrements A, then increments B
        assert out == [("A", 1), ("A", 2), ("B", 1), ("A", 1), ("B", 2), ("A", 0)]


def test_grouped_table_reduce_with_subtractor() -> None:
    def build(b: StreamsBuilder) -> None:
        (b.table("balances").group_by(lambda acct, v: (v["branch"], v["amount"]))
         .reduce(lambda agg, v: agg + v, lambda agg, v: agg - v, "totals"))

    with _driver(build) as d:
        t = d.input_topic("balances")
        t.pipe({"branch": "x", "amount": 10}, key="a1")
        t.pipe({"branch": "x", "amount": 5}, key="a2")
        assert d.store("totals").to_dict() == {"x": 15}
        t.pipe({"branch": "x", "amount": 7}, key="a1")    # update in place: 15 - 10 + 7
        assert d.store("totals").to_dict() == {"x": 12}
        t.pipe({"branch": "y", "amount": 7}, key="a1")    # move a1 to y
        assert d.store("totals").to_dict() == {"x": 5, "y": 7}
        t.pipe(None, key="a2")
        assert d.store("totals").to_dict() == {"x": 0, "y": 7}


def test_update_within_one_group_emits_one_result() -> None:
    # Kafka Streams 3.5+ (KIP-904): subtract and add in one step, no intermediate result
    def build(b: StreamsBuilder) -> None:
        (b.table("balances").group_by(lambda acct, v: (v["branch"], v["amount"]))
         .reduce(lambda agg, v: agg + v, lambda agg, v: agg - v, "totals")
         .to_stream().to("out"))

    with _driver(build) as d:
        t = d.input_topic("balances")
        t.pipe({"branch": "x", "amount": 10}, key="a1")
        t.pipe({"branch": "x", "amount": 7}, key="a1")
        t.pipe({"branch": "y", "amount": 7}, key="a1")
        assert d.output_topic("out").read_key_values() == [
            ("x", 10), ("x", 7), ("x", 0), ("y", 7)]


def test_regroup_selector_must_return_a_pair() -> None:
    with _driver(lambda b: b.table("t").group_by(lambda k, v: v).count("c"),
                 on_error="skip") as d:
        d.input_topic("t").pipe("abc", key="k")      # 3 items: not a (key, value) pair
        d.input_topic("t").pipe("ab", key="j")       # "a", "b": a pair
        assert d.store("c").to_dict() == {"a": 1}


@pytest.mark.parametrize("selected", [("A", None), (None, "u")], ids=["null value", "null key"])
def test_regroup_to_a_null_key_or_value_joins_no_group(selected: tuple[Any, Any]) -> None:
    # as Kafka Streams: no group is created for it (fluvial emitted ("A", 0) before)
    def build(b: StreamsBuilder) -> None:
        (b.table("users").group_by(lambda user, region: selected if user == "ghost"
                                   else (region, user)).count("c").to_stream().to("out"))

    with _driver(build) as d:
        d.input_topic("users").pipe_key_values([("ghost", "A"), ("u1", "B"), ("ghost", None)])
        assert d.output_topic("out").read_key_values() == [("B", 1)]
        assert d.store("c").to_dict() == {"B": 1}


def test_grouped_table_aggregate_with_subtractor() -> None:
    def build(b: StreamsBuilder) -> None:
        (_regions(b).aggregate(list, lambda region, user, agg: sorted([*agg, user]),
                               lambda region, user, agg: [u for u in agg if u != user],
                               Materialized(name="members"))
         .to_stream().to("out"))

    with _driver(build) as d:
        users = d.input_topic("users")
        users.pipe_key_values([("u1", "A"), ("u2", "A"), ("u1", "B"), ("u2", None)])
        assert d.store("members").to_dict() == {"A": [], "B": ["u1"]}
        assert d.output_topic("out").read_key_values() == [
            ("A", ["u1"]), ("A", ["u1", "u2"]), ("A", ["u2"]), ("B", ["u1"]), ("A", [])]


def test_grouped_table_aggregate_uses_a_repartition_topic() -> None:
    b = StreamsBuilder()
    _regions(b).count("per-region")
    topology = b.build()
    assert [s.topic for s in topology.repartition_topics()] == ["per-region-repartition"]
    assert len(topology.subtopologies) == 2


def test_grouped_table_aggregate_timestamp_is_max() -> None:
    with _driver(lambda b: _regions(b).count("c").to_stream().to("out")) as d:
        d.input_topic("users").pipe("A", key="u1", timestamp=10)
        d.input_topic("users").pipe("A", key="u2", timestamp=5)
        assert [r.timestamp for r in d.output_topic("out").read_records()] == [10, 10]


# -- global tables -------------------------------------------------------------------------

def test_global_table_store_is_queryable() -> None:
    b = StreamsBuilder()
    g = b.global_table("countries", materialized="countries-store")
    b.stream("in").to("out")
    assert g.store_name == "countries-store"
    with TestDriver(b.build()) as d:
        d.input_topic("countries").pipe_key_values([("fr", "France"), ("de", "Germany")])
        assert d.store("countries-store").to_dict() == {"fr": "France", "de": "Germany"}
        d.input_topic("countries").pipe(None, key="fr")
        assert d.store("countries-store").to_dict() == {"de": "Germany"}
        assert d.store("countries-store").get("de") == "Germany"


def test_global_table_alone_is_a_valid_topology() -> None:
    b = StreamsBuilder()
    g = b.global_table("countries", value_serde="string")
    with TestDriver(b.build()) as d:
        d.input_topic("countries").pipe("France", key="fr")
        assert d.store(g.store_name).get("fr") == "France"
