"""The conformance cases and their seeded inputs.

A case is a topology spec (chains of operators, see docs/conformance.md) and the topics to
compare; its inputs come from ``generate(case, seed, count)``: small key spaces so updates
collide, null keys and values, tombstones for tables, ties and out-of-order timestamps.
Window, suppress and join cases add entries to ``CASES`` the same way.
"""

from __future__ import annotations

import random
import struct
from dataclasses import dataclass, field
from typing import Any

S, L = "string", "long"
KEYS = ["a", "b", "c", "d"]
WORDS = ["", "x", "ab", "abc", "abcd", "yz", "xyz", "b"]


@dataclass(frozen=True)
class Case:
    name: str
    topology: list[dict[str, Any]]
    outputs: list[str]
    #: chance that a value is null (a tombstone, for a table's topic)
    null_values: float = 0.1
    notes: str = field(default="", compare=False)
    #: the oracle runs Kafka Streams' default RocksDB stores, not in-memory ones, where the
    #: backend changes what is emitted (see the oracle); ten times slower per case
    rocksdb: bool = False

    def sources(self) -> list[dict[str, Any]]:
        return [c["start"] for c in self.topology if isinstance(c["start"], dict)]


def stream(topic: str, value_serde: str = L) -> dict[str, Any]:
    return {"stream": topic, "key_serde": S, "value_serde": value_serde}


def table(topic: str, value_serde: str = L, store: str | None = None) -> dict[str, Any]:
    return {"table": topic, "key_serde": S, "value_serde": value_serde, "store": store}


def op(name: str, fn: str | None = None, **params: Any) -> dict[str, Any]:
    return {"op": name, **({"fn": fn} if fn else {}), **params}


def to(topic: str, value_serde: str = L, key_serde: str = S) -> dict[str, Any]:
    return op("to", topic=topic, key_serde=key_serde, value_serde=value_serde)


def serdes(value_serde: str = L, key_serde: str = S, store: str | None = None) -> dict[str, Any]:
    return {"key_serde": key_serde, "value_serde": value_serde, "store": store}


def chain(start: Any, *ops: dict[str, Any], name: str | None = None) -> dict[str, Any]:
    return {"start": start, "ops": list(ops), "name": name}


def _out(*ops: dict[str, Any], value_serde: str = L) -> tuple[dict[str, Any], ...]:
    """An aggregation's table written out: to_stream, then to ``out``."""
    return (*ops, op("to_stream"), to("out", value_serde))


CASES = [
    Case("stream_filter_map_values", [
        chain(stream("in"), name="s"),
        chain("s", op("filter", "value_even"), op("map_values", "double"), to("out1")),
        chain("s", op("filter_not", "value_small"), op("flat_map_values", "pair_if_even"),
              to("out2")),
        chain("s", op("map_values", "null_if_odd"), op("filter_not", "key_a_or_b"), to("out3")),
    ], ["out1", "out2", "out3"]),
    Case("stream_rekey", [
        chain(stream("in"), name="s"),
        chain("s", op("map", "mod3"), to("out1")),
        chain("s", op("select_key", "key_upper"), op("map_values", "str"), to("out2", S)),
        chain("s", op("flat_map", "fan"), to("out3")),
    ], ["out1", "out2", "out3"]),
    Case("stream_split_repartition", [
        chain(stream("in"), op("peek"), op("split", preds=["value_even", "key_a_or_b"]),
              name="split"),
        chain("split", op("branch", index=0), op("map_values", "half"), to("out0")),
        chain("split", op("branch", index=1), op("select_key", "mod3"),
              op("repartition", **serdes()), to("out1")),
        chain("split", op("branch", index=2), op("repartition", **serdes()),
              op("filter", "value_small"), to("out2")),
    ], ["out0", "out1", "out2"]),
    Case("stream_merge", [
        chain(stream("in2"), name="other"),
        chain(stream("in1"), op("merge", **{"with": "other"}), op("map_values", "half"), to("out")),
    ], ["out"]),
    Case("stream_count", [chain(stream("in"), *_out(
        op("group_by_key", **serdes()), op("count", **serdes())))], ["out"]),
    Case("stream_group_by_count", [chain(stream("in"), *_out(
        op("group_by", "mod3", **serdes()), op("count", **serdes(store="counts"))))], ["out"]),
    Case("stream_reduce_sum", [chain(stream("in"), *_out(
        op("group_by_key", **serdes()), op("reduce", "sum", **serdes())))], ["out"]),
    Case("stream_rekeyed_reduce_concat", [chain(stream("in", S), *_out(
        op("group_by", "first_char", **serdes(S)), op("reduce", "concat", **serdes(S)),
        value_serde=S))], ["out"]),
    Case("stream_aggregate", [chain(stream("in", S), *_out(
        op("group_by_key", **serdes(S)),
        op("aggregate", "add_len", init="zero", **serdes())))], ["out"]),
    Case("stream_map_then_aggregate", [chain(stream("in"), op("map", "mod3"), *_out(
        op("group_by_key", **serdes()), op("aggregate", "sum", init="zero", **serdes())))],
        ["out"]),
    Case("stream_to_table", [
        chain(stream("in"), op("to_table", **serdes()), name="t"),
        chain("t", op("to_stream"), to("out1")),
        chain("t", op("filter", "value_even"), op("to_stream"), to("out2")),
    ], ["out1", "out2"]),
    Case("table_source", [chain(table("in"), op("to_stream"), to("out"))], ["out"],
         null_values=0.3),
    Case("table_filter", [
        chain(table("in"), name="t"),
        chain("t", op("filter", "value_even"), op("to_stream"), to("out1")),
        chain("t", op("filter_not", "value_small", **serdes(store="big")), op("to_stream"),
              to("out2")),
    ], ["out1", "out2"], null_values=0.3),
    Case("table_map_values_filter", [chain(
        table("in", store="source"), op("map_values", "double"), op("filter", "value_small"),
        op("map_values", "null_if_odd", **serdes(store="mapped")), op("to_stream"),
        to("out"))], ["out"], null_values=0.3),
    Case("table_group_by_count", [chain(table("in"), *_out(
        op("group_by", "mod3", **serdes()), op("count", **serdes())))], ["out"],
        null_values=0.25),
    Case("table_group_by_reduce", [chain(table("in"), *_out(
        op("group_by", "mod3", **serdes()), op("reduce", "sum", sub="minus", **serdes())))],
        ["out"], null_values=0.25),
    Case("table_group_by_null_value", [chain(table("in"), *_out(
        op("group_by", "mod3_null_big", **serdes()),
        op("aggregate", "sum", sub="minus", init="zero", **serdes())))], ["out"],
        null_values=0.25),
    Case("table_group_by_null_key", [chain(table("in"), *_out(
        op("group_by", "null_key_odd", **serdes()), op("count", **serdes())))], ["out"],
        null_values=0.25),
    Case("table_filter_group_by", [chain(table("in"), op("filter", "value_even"), *_out(
        op("group_by", "mod3", **serdes()), op("count", **serdes())))], ["out"],
        null_values=0.25),
    Case("table_strings_group_by", [chain(table("in", S), op("filter", "value_short"), *_out(
        op("group_by", "first_char_len", **serdes()),
        op("aggregate", "sum", sub="minus", init="zero", **serdes())))], ["out"],
        null_values=0.25),
    Case("stream_count_having", [chain(
        stream("in"), op("group_by_key", **serdes()), op("count", **serdes()),
        op("filter", "value_even"), op("to_stream"), to("out"))], ["out"],
        notes="ksqlDB's HAVING: a filter below an aggregation"),
    Case("stream_count_regrouped", [chain(
        stream("in"), op("group_by_key", **serdes()), op("count", **serdes()), *_out(
            op("group_by", "mod3", **serdes()), op("reduce", "sum", sub="minus", **serdes())))],
        ["out"]),
    Case("table_aggregate_having", [chain(
        table("in"), op("group_by", "mod3", **serdes()),
        op("reduce", "sum", sub="minus", **serdes()), op("filter_not", "value_small"),
        op("to_stream"), to("out"))], ["out"], null_values=0.25),
    Case("table_named_source_filters", [
        chain(table("in", store="source"), op("filter", "value_even"), name="even"),
        chain("even", op("to_stream"), to("out1")),
        chain("even", op("filter", "value_small", **serdes(store="small")), op("to_stream"),
              to("out2")),
        chain("even", op("map_values", "null_if_odd"), op("to_stream"), to("out3")),
    ], ["out1", "out2", "out3"], null_values=0.3),
    Case("table_filter_chain_group_by", [
        chain(table("in"), op("filter", "value_small"), name="small"),
        chain("small", op("to_stream"), to("out1")),
        chain("small", op("filter", "value_even", **serdes(store="even")), name="even"),
        chain("even", op("to_stream"), to("out2")),
        chain("even", op("group_by", "mod3", **serdes()), op("count", **serdes()),
              op("to_stream"), to("out3")),
    ], ["out1", "out2", "out3"], null_values=0.3),
    Case("stream_fan_out_merge_count", [
        chain(stream("in"), op("split", preds=["value_small"]), name="split"),
        chain("split", op("branch", index=1), op("flat_map", "fan"), name="fanned"),
        chain("split", op("branch", index=0), op("merge", **{"with": "fanned"}),
              op("to", topic="merged", key_serde=S, value_serde=L), *_out(
                  op("group_by_key", **serdes()), op("reduce", "max", **serdes()))),
    ], ["merged", "out"]),
    Case("table_to_stream_aggregate", [chain(
        table("in"), op("to_stream"), op("group_by", "mod3", **serdes()), *_out(
            op("aggregate", "sum", init="zero", **serdes())))], ["out"], null_values=0.25),
    Case("table_map_values_null_group_by", [chain(
        table("in", store="source"), op("map_values", "null_if_odd"), *_out(
            op("group_by", "mod3", **serdes()),
            op("aggregate", "sum", sub="minus", init="zero", **serdes(store="sums"))))],
        ["out"], null_values=0.25),
    Case("stream_rekeyed_to_table_count", [chain(
        stream("in"), op("select_key", "mod3"), op("to_table", **serdes(store="latest")),
        *_out(op("group_by", "mod3", **serdes()), op("count", **serdes())))], ["out"]),
    Case("stream_to_table_group_by", [chain(
        stream("in"), op("to_table", **serdes()), op("map_values", "half"), *_out(
            op("group_by", "mod3", **serdes()), op("reduce", "sum", sub="minus", **serdes())))],
        ["out"]),
]


# -- windows and suppress ------------------------------------------------------------------
# Inputs span ~600 ms (short form) with records 50-500 ms late, so windows of 30-100 ms
# close while records keep coming, and grace lets some late ones in.

def tumbling(size: int, grace: int = 0) -> dict[str, Any]:
    return hopping(size, size, grace)


def hopping(size: int, advance: int, grace: int = 0) -> dict[str, Any]:
    return {"kind": "time", "size": size, "advance": advance, "grace": grace}


def sliding(difference: int, grace: int = 0) -> dict[str, Any]:
    return {"kind": "sliding", "difference": difference, "grace": grace}


def session(gap: int, grace: int = 0) -> dict[str, Any]:
    return {"kind": "session", "gap": gap, "grace": grace}


def windowed(windows: dict[str, Any], on_close: bool = False) -> dict[str, Any]:
    return op("windowed_by", windows=windows, **({"emit": "close"} if on_close else {}))


def window_key(windows: dict[str, Any]) -> str:
    """The key serde of a windowed aggregation's output: Kafka Streams' windowed serdes."""
    if windows["kind"] == "session":
        return "session_windowed"
    return f"time_windowed:{windows.get('size', windows.get('difference'))}"


def window_case(name: str, windows: dict[str, Any], aggregation: dict[str, Any], *,
                on_close: bool = False, value_serde: str = L, result_serde: str = L,
                suppress: dict[str, Any] | None = None) -> Case:
    """A grouped stream's windowed aggregation, maybe suppressed, written to ``out``.

    Null values only where the aggregation is a count: windowed aggregations pass them to
    the user's function (only null keys are dropped), and the named functions take none.
    """
    return Case(name, [chain(
        stream("in", value_serde), op("group_by_key", **serdes(value_serde)),
        windowed(windows, on_close), aggregation, *([suppress] if suppress else []),
        op("to_stream"), to("out", result_serde, window_key(windows)))], ["out"],
        null_values=0.1 if aggregation["op"] == "count" else 0.0,
        rocksdb=on_close and windows["kind"] == "session")


def window_having(name: str, windows: dict[str, Any], aggregation: dict[str, Any]) -> Case:
    """A filter below a windowed aggregation (ksqlDB's HAVING): what it forwards depends on
    the old values the aggregation sends."""
    return Case(name, [chain(
        stream("in"), op("group_by_key", **serdes()), windowed(windows), aggregation,
        op("filter", "value_even"), op("to_stream"), to("out", key_serde=window_key(windows)))],
        ["out"], null_values=0.1 if aggregation["op"] == "count" else 0.0)


def until_window_closes(**buffer: Any) -> dict[str, Any]:
    return op("suppress", until="window_close", buffer=buffer,
              **({"full": "shut_down"} if buffer else {}))


def until_time_limit(limit: int, full: str = "emit", **buffer: Any) -> dict[str, Any]:
    return op("suppress", until="time_limit", limit=limit, buffer=buffer, full=full)


WINDOW_CASES = [
    window_case("window_tumbling_count", tumbling(100), op("count", **serdes())),
    window_case("window_hopping_reduce_grace", hopping(100, 30, grace=50),
                op("reduce", "sum", **serdes())),
    # a retention that outlasts the inputs where the cache would show (the full form's
    # longer inputs find more): Kafka Streams' record cache serves windows its store has
    # dropped (docs/streams.md, "Windows past their retention")
    window_case("window_tumbling_aggregate_on_close", tumbling(100, grace=20),
                op("aggregate", "sum", init="zero", retention=10_000, **serdes()),
                on_close=True),
    window_case("window_hopping_count_on_close", hopping(100, 40, grace=30),
                op("count", retention=10_000, **serdes(store="hopping")), on_close=True),
    window_case("window_sliding_count", sliding(50, grace=30), op("count", **serdes())),
    window_case("window_sliding_reduce_on_close", sliding(50, grace=20),
                op("reduce", "sum", **serdes()), on_close=True),
    window_case("window_sliding_aggregate_strings", sliding(80, grace=100),
                op("aggregate", "add_len", init="zero", **serdes()), value_serde=S),
    window_case("window_session_count", session(30, grace=20),
                op("count", retention=10_000, **serdes())),
    window_case("window_session_aggregate", session(40, grace=50),
                op("aggregate", "sum", init="zero", merger="sum", retention=10_000,
                   **serdes())),
    window_case("window_session_reduce_on_close", session(30, grace=10),
                op("reduce", "concat", **serdes(S)), on_close=True, value_serde=S,
                result_serde=S),
    window_having("window_hopping_count_having", hopping(60, 20, grace=40),
                  op("count", **serdes())),
    window_having("window_sliding_aggregate_having", sliding(50, grace=30),
                  op("aggregate", "sum", init="zero", **serdes())),
    window_having("window_session_count_having", session(30, grace=20),
                  op("count", retention=10_000, **serdes())),
    window_case("suppress_tumbling_count_final", tumbling(100, grace=30),
                op("count", **serdes()), suppress=until_window_closes()),
    window_case("suppress_hopping_aggregate_final", hopping(100, 40, grace=20),
                op("aggregate", "sum", init="zero", **serdes(store="sums")),
                suppress=until_window_closes(max_records=1000)),
    window_case("suppress_sliding_reduce_final", sliding(50, grace=20),
                op("reduce", "sum", **serdes()), suppress=until_window_closes()),
    window_case("suppress_session_count_final", session(30, grace=20),
                op("count", retention=10_000, **serdes()),
                suppress={**until_window_closes(), "name": "final"}),
    Case("suppress_filtered_windows_final", [chain(
        stream("in"), op("group_by_key", **serdes()),
        windowed(hopping(60, 20, grace=40)), op("count", **serdes()),
        op("filter", "value_even"), until_window_closes(), op("to_stream"),
        to("out", key_serde=window_key(hopping(60, 20))))], ["out"],
        notes="the grace found through a filter; its tombstones dropped as final results"),
    Case("suppress_windows_time_limit_max_bytes", [chain(
        stream("in"), op("group_by_key", **serdes()), windowed(tumbling(100, grace=50)),
        op("reduce", "sum", **serdes()), until_time_limit(30, max_bytes=150), op("to_stream"),
        to("out", key_serde=window_key(tumbling(100))))], ["out"], null_values=0.0),
    Case("suppress_table_time_limit", [chain(
        table("in"), until_time_limit(50), op("to_stream"), to("out"))], ["out"],
        null_values=0.25),
    Case("suppress_count_time_limit_max_records", [chain(
        stream("in"), op("group_by_key", **serdes()), op("count", **serdes()),
        until_time_limit(200, max_records=2), op("to_stream"), to("out"))], ["out"]),
    Case("suppress_table_time_limit_max_bytes", [chain(
        table("in", store="source"), until_time_limit(100, max_bytes=120),
        op("filter", "value_even"), op("to_stream"), to("out"))], ["out"], null_values=0.25),
    Case("suppress_regrouped_count_time_limit_max_bytes", [chain(
        stream("in"), op("group_by", "mod3", **serdes()), op("count", **serdes()),
        until_time_limit(150, max_bytes=200, max_records=3), op("to_stream"), to("out"))],
        ["out"]),
]
CASES += WINDOW_CASES
# -- joins -------------------------------------------------------------------------------

def global_table(topic: str, value_serde: str = L) -> dict[str, Any]:
    return {"global_table": topic, "key_serde": S, "value_serde": value_serde}


def join(kind: str, fn: str, other: str, **params: Any) -> dict[str, Any]:
    """``kind`` ("join", "left_join") with the chain named ``other``; a join after a rekey
    repartitions with the stream's serdes (``serdes()``)."""
    return op(kind, fn, **{"with": other}, **params)


JOIN_CASES = [
    Case("stream_table_join", [
        chain(table("tin"), name="t"),
        chain(stream("sin"), name="s"),
        chain("s", join("join", "plus", "t"), to("out1")),
        chain("s", join("left_join", "plus", "t"), to("out2")),
    ], ["out1", "out2"], null_values=0.2),
    Case("stream_table_join_filtered_mapped", [
        chain(table("tin", store="source"), name="t"),
        chain("t", op("filter", "value_even"), name="even"),
        chain("t", op("map_values", "null_if_odd"), op("map_values", "half"), name="halves"),
        chain(stream("sin"), name="s"),
        chain("s", join("join", "plus", "even"), to("out1")),
        chain("s", join("left_join", "plus", "halves"), to("out2")),
    ], ["out1", "out2"], null_values=0.2),
    Case("stream_table_join_rekeyed", [
        chain(table("tin"), name="t"),
        chain(stream("sin"), name="s"),
        chain("s", op("join_key", "next_letter"), join("join", "plus", "t", **serdes()),
              to("out1")),
        chain("s", op("map_values", "double"), op("join_key", "next_letter"),
              join("left_join", "plus", "t", **serdes()), to("out2")),
    ], ["out1", "out2"], null_values=0.2),
    Case("stream_global_table_join", [
        chain(global_table("gin"), name="g"),
        chain(stream("sin"), name="s"),
        chain("s", join("join", "plus", "g", key_mapper="value_letter"), to("out1")),
        chain("s", join("left_join", "plus", "g", key_mapper="value_letter"), to("out2")),
        chain("s", join("left_join", "plus", "g", key_mapper="key"), to("out3")),
    ], ["out1", "out2", "out3"], null_values=0.2),
]
TABLE_JOIN_CASES = [
    Case(f"table_{kind}", [
        chain(table("tleft"), name="l"),
        chain(table("tright"), name="r"),
        chain("l", op(kind, "plus", **{"with": "r"}), op("to_stream"), to("out1")),
        chain("l", op(kind, "plus", **{"with": "r"}, **serdes(store="joined")),
              op("to_stream"), to("out2")),
    ], ["out1", "out2"], null_values=0.3)
    for kind in ("table_join", "table_left_join", "table_outer_join")
] + [
    Case("table_join_filtered_then_filter", [
        chain(table("tleft", store="lsource"), op("filter", "value_even"), name="l"),
        chain(table("tright"), op("map_values", "half"), name="r"),
        chain("l", op("table_left_join", "plus", **{"with": "r"}), name="j"),
        chain("j", op("to_stream"), to("out1")),
        chain("j", op("filter", "value_small"), op("to_stream"), to("out2")),
        chain("j", op("group_by", "mod3", **serdes()),
              op("reduce", "sum", sub="minus", **serdes()), op("to_stream"), to("out3")),
    ], ["out1", "out2", "out3"], null_values=0.3),
    Case("table_outer_join_chained", [
        chain(table("ta"), name="a"),
        chain(table("tb"), name="b"),
        chain(table("tc"), name="c"),
        chain("a", op("table_outer_join", "plus", **{"with": "b"}), name="ab"),
        chain("c", op("table_join", "plus", **{"with": "ab"}), op("to_stream"), to("out")),
    ], ["out"], null_values=0.3),
]

#: foreign-key joins: the left value's foreign key moves between right keys a-d and null
#: (4 mod 5); tombstones on both sides
FK_JOIN_CASES = [
    Case(kind, [
        chain(table("tleft"), name="l"),
        chain(table("tright"), name="r"),
        chain("l", op(kind, "plus", fk="value_letter", **{"with": "r"}), op("to_stream"),
              to("out1")),
        chain("l", op(kind, "plus", fk="value_letter", **{"with": "r"}, **serdes(store="fk")),
              op("to_stream"), to("out2")),
    ], ["out1", "out2"], null_values=0.3)
    for kind in ("fk_join", "fk_left_join")
] + [
    # both sides filtered (so they forward old values only once the join asks them to), and
    # an aggregation below the unmaterialized result (which then needs its old values)
    Case("fk_left_join_filtered_then_grouped", [
        chain(table("tleft"), op("filter", "value_small"), name="l"),
        chain(table("tright"), op("filter", "value_even"), name="r"),
        chain("l", op("fk_left_join", "plus", fk="value_letter", **{"with": "r"}, **serdes()),
              name="j"),
        chain("j", op("to_stream"), to("out1")),
        chain("j", op("group_by", "mod3", **serdes()),
              op("reduce", "sum", sub="minus", **serdes()), op("to_stream"), to("out2")),
    ], ["out1", "out2"], null_values=0.3),
]


def stream_join(kind: str, other: str, before: int, after: int, grace: int) -> dict[str, Any]:
    """A stream-stream join (``kind``: stream_join, stream_left_join, stream_outer_join) with
    the stream chain ``other``, in windows of ``before``/``after`` ms and ``grace`` ms."""
    return op(kind, "plus", **{"with": other}, before=before, after=after, grace=grace,
              key_serde=S, value_serde=L, other_value_serde=L)


STREAM_JOIN_CASES = [
    Case(f"stream_{kind}", [
        chain(stream("sleft"), name="l"),
        chain(stream("sright"), name="r"),
        chain("l", stream_join(kind, "r", 100, 100, 50), to("out1")),
        chain("l", stream_join(kind, "r", 0, 200, 0), to("out2")),
    ], ["out1", "out2"], null_values=0.1)
    for kind in ("stream_join", "stream_left_join", "stream_outer_join")
] + [
    Case("stream_outer_join_rekeyed_asymmetric", [
        chain(stream("sleft"), op("join_key", "next_letter"), name="l"),
        chain(stream("sright"), name="r"),
        chain("l", stream_join("stream_outer_join", "r", 30, 150, 200), to("out")),
    ], ["out"], null_values=0.1),
]
CASES += JOIN_CASES + TABLE_JOIN_CASES + FK_JOIN_CASES + STREAM_JOIN_CASES
CASES_BY_NAME = {c.name: c for c in CASES}


def _encode(value: Any, serde: str) -> str | None:
    if value is None:
        return None
    if serde == L:
        return struct.pack(">q", value).hex()
    return str(value).encode().hex()


def _topic(source: dict[str, Any]) -> str:
    return source.get("stream") or source.get("table") or source["global_table"]


def generate(case: Case, seed: int, count: int) -> list[dict[str, Any]]:
    """``count`` input records for the case's source topics, the same for every run of a seed.

    Timestamps mostly rise, with ties (the previous timestamp again) and records that arrive
    late (up to half a second behind).
    """
    rng = random.Random(f"{case.name}/{seed}")
    sources = case.sources()
    records = []
    ts = 1000
    for i in range(count):
        source = rng.choice(sources)
        roll = rng.random()
        if roll < 0.15:
            pass  # a tie with the previous record
        elif roll < 0.25:
            ts = max(0, 1000 + 10 * i - rng.randint(50, 500))  # late
        else:
            ts = 1000 + 10 * i + rng.randint(0, 9)
        key = None if rng.random() < 0.08 else rng.choice(KEYS)
        value: Any = None
        if rng.random() >= case.null_values:
            value = rng.randint(0, 99) if source["value_serde"] == L else rng.choice(WORDS)
        records.append({"topic": _topic(source),
                        "key": _encode(key, S), "value": _encode(value, source["value_serde"]),
                        "ts": ts})
    return records


def spec(case: Case, seed: int, count: int, record_cache: bool = False) -> dict[str, Any]:
    """What the oracle reads: one case with one seed's inputs, with the record cache on or
    off on both sides."""
    return {"id": f"{case.name}/{seed}{'/cached' if record_cache else ''}",
            "topology": case.topology, "inputs": generate(case, seed, count),
            "outputs": case.outputs, "record_cache": record_cache, "rocksdb": case.rocksdb}
