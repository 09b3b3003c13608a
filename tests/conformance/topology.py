"""Build a conformance case's topology with fluvial's DSL and run it in fluvial's TestDriver.

The spec is the one the Java oracle reads (tools/conformance, TopologyFromSpec.java): a list
of chains, each starting at a source (or at an earlier chain's result, by name) and applying
its operators in order; docs/conformance.md describes the format.
"""

from __future__ import annotations

from typing import Any

from tests.conformance import functions as fn
from tests.conformance.records import Output, Outputs

from fluvial.dsl import StreamsBuilder
from fluvial.dsl.grouped import GroupedStream, GroupedTable
from fluvial.dsl.options import Grouped, Joined, Materialized, Repartitioned, StreamJoined
from fluvial.dsl.stream import Stream
from fluvial.dsl.suppressed import BufferConfig, Suppressed
from fluvial.dsl.table import Table
from fluvial.dsl.windowed import SessionWindowedStream, TimeWindowedStream
from fluvial.io.serdes import Serde, StringSerde
from fluvial.io.windowed_serdes import SessionWindowedSerde, TimeWindowedSerde
from fluvial.testing.driver import TestDriver
from fluvial.topology.topology import Topology
from fluvial.windows import (
    EmitStrategy,
    JoinWindows,
    SessionWindows,
    SlidingWindows,
    TimeWindows,
)

Op = dict[str, Any]


def materialized(op: Op) -> Materialized:
    return Materialized(name=op.get("store"), key_serde=op["key_serde"],
                        value_serde=op["value_serde"], retention=op.get("retention"))


def grouped(op: Op) -> Grouped:
    return Grouped(key_serde=op["key_serde"], value_serde=op["value_serde"])


def build(chains: list[dict[str, Any]]) -> Topology:
    builder = StreamsBuilder(default_key_serde="string", default_value_serde="string")
    named: dict[str, Any] = {}
    for chain in chains:
        current = _start(builder, named, chain["start"])
        for op in chain["ops"]:
            current = _apply(current, op, named)
        if chain.get("name"):
            named[chain["name"]] = current
    return builder.build()


def _start(builder: StreamsBuilder, named: dict[str, Any], start: Any) -> Any:
    if isinstance(start, str):
        return named[start]
    if "stream" in start:
        return builder.stream(start["stream"], start["key_serde"], start["value_serde"])
    if "global_table" in start:
        return builder.global_table(start["global_table"], start["key_serde"],
                                    start["value_serde"])
    return builder.table(start["table"], start["key_serde"], start["value_serde"],
                         materialized=materialized(start) if start.get("store") else None)


def _apply(current: Any, op: Op, named: dict[str, Any]) -> Any:
    name, f = op["op"], op.get("fn", "")
    if isinstance(current, list):  # a split's branches, the default last
        if name != "branch":
            raise ValueError(f"a split has no operator {name!r}; take a branch first")
        return current[op["index"]]
    if isinstance(current, Stream):
        return _stream(current, name, f, op, named)
    if isinstance(current, Table):
        if name in TABLE_JOIN_OPS:
            return _table_join(current, name, f, op, named)
        if name in FK_JOIN_OPS:
            return _fk_join(current, name, f, op, named)
        return _table(current, name, f, op)
    if isinstance(current, GroupedStream) and name == "windowed_by":
        return _windowed_by(current, op)
    if isinstance(current, TimeWindowedStream | SessionWindowedStream):
        return _windowed(current, name, f, op)
    if isinstance(current, GroupedStream):
        if name == "count":
            return current.count(materialized(op))
        if name == "reduce":
            return current.reduce(fn.named(fn.REDUCERS, f, "reducer"), materialized(op))
        if name == "aggregate":
            return current.aggregate(fn.named(fn.INITIALIZERS, op["init"], "initializer"),
                                     fn.named(fn.AGGREGATORS, f, "aggregator"), materialized(op))
    if isinstance(current, GroupedTable):
        if name == "count":
            return current.count(materialized(op))
        if name == "reduce":
            return current.reduce(fn.named(fn.REDUCERS, f, "reducer"),
                                  fn.named(fn.REDUCERS, op["sub"], "reducer"), materialized(op))
        if name == "aggregate":
            return current.aggregate(fn.named(fn.INITIALIZERS, op["init"], "initializer"),
                                     fn.named(fn.AGGREGATORS, f, "aggregator"),
                                     fn.named(fn.AGGREGATORS, op["sub"], "aggregator"),
                                     materialized(op))
    raise ValueError(f"{type(current).__name__} has no operator {name!r}")


def _stream(s: Stream, name: str, f: str, op: Op, named: dict[str, Any]) -> Any:
    simple = {
        "filter": lambda: s.filter(fn.named(fn.PREDICATES, f, "predicate")),
        "filter_not": lambda: s.filter_not(fn.named(fn.PREDICATES, f, "predicate")),
        "map_values": lambda: s.map_values(fn.named(fn.VALUE_MAPPERS, f, "value mapper")),
        "map": lambda: s.map(fn.named(fn.PAIR_MAPPERS, f, "pair mapper")),
        "select_key": lambda: s.select_key(fn.named(fn.KEY_SELECTORS, f, "key selector")),
        "flat_map_values": lambda: s.flat_map_values(
            fn.named(fn.FLAT_VALUE_MAPPERS, f, "flat value mapper")),
        "flat_map": lambda: s.flat_map(fn.named(fn.FLAT_MAPPERS, f, "flat mapper")),
        "merge": lambda: s.merge(named[op["with"]]),
        "to_table": lambda: s.to_table(materialized(op)),
        "peek": lambda: s.peek(lambda k, v: None),
        "repartition": lambda: s.repartition(Repartitioned(key_serde=op["key_serde"],
                                                           value_serde=op["value_serde"])),
        "group_by_key": lambda: s.group_by_key(grouped(op)),
        "group_by": lambda: s.group_by(fn.named(fn.KEY_SELECTORS, f, "key selector"),
                                       grouped(op)),
    }
    if name == "to":
        s.to(op["topic"], serde(op["key_serde"]), op["value_serde"])
        return s
    if name == "split":
        branched = s.split(name="split-")
        for i, predicate in enumerate(op["preds"]):
            branched.branch(fn.named(fn.PREDICATES, predicate, "predicate"), name=str(i))
        by_name = branched.default_branch(name="default")
        return [by_name[f"split-{i}"] for i in range(len(op["preds"]))] + [
            by_name["split-default"]]
    if name in JOIN_OPS:
        return _stream_join(s, name, f, op, named)
    if name not in simple:
        raise ValueError(f"a stream has no operator {name!r}")
    return simple[name]()


# -- joins -------------------------------------------------------------------------------

JOIN_OPS = ("join", "left_join", "join_key", "stream_join", "stream_left_join",
            "stream_outer_join")


def _stream_join(s: Stream, name: str, f: str, op: Op, named: dict[str, Any]) -> Any:
    """``join``/``left_join`` with the table (or global table, with ``key_mapper``) named
    by ``with``; ``join_key`` rekeys with a join key selector first."""
    if name == "join_key":
        return s.select_key(fn.named(fn.JOIN_KEY_SELECTORS, f, "join key selector"))
    if name.startswith("stream_"):
        windows = (JoinWindows.of_time_difference_and_grace(0, op["grace"])
                   .after(op["after"]).before(op["before"]))
        stream_joined = StreamJoined(key_serde=op["key_serde"], value_serde=op["value_serde"],
                                     other_value_serde=op["other_value_serde"])
        join = {"stream_join": s.join, "stream_left_join": s.left_join,
                "stream_outer_join": s.outer_join}[name]
        return join(named[op["with"]], fn.named(fn.JOINERS, f, "joiner"), windows,
                    stream_joined)
    joiner = fn.named(fn.JOINERS, f, "joiner")
    other = named[op["with"]]
    mapper = (fn.named(fn.JOIN_KEY_MAPPERS, op["key_mapper"], "join key mapper")
              if op.get("key_mapper") else None)
    joined = Joined(key_serde=op.get("key_serde"), value_serde=op.get("value_serde"))
    join = s.left_join if name == "left_join" else s.join
    return join(other, joiner, joined, key_mapper=mapper)


def _table(t: Table, name: str, f: str, op: Op) -> Any:
    m = materialized(op) if op.get("store") else None
    if name == "filter":
        return t.filter(fn.named(fn.PREDICATES, f, "predicate"), materialized=m)
    if name == "filter_not":
        return t.filter_not(fn.named(fn.PREDICATES, f, "predicate"), materialized=m)
    if name == "map_values":
        return t.map_values(fn.named(fn.VALUE_MAPPERS, f, "value mapper"), materialized=m)
    if name == "to_stream":
        return t.to_stream()
    if name == "suppress":
        return t.suppress(suppressed(op))
    if name == "group_by":
        return t.group_by(fn.named(fn.PAIR_MAPPERS, f, "pair mapper"), grouped(op))
    raise ValueError(f"a table has no operator {name!r}")


def serde(name: str) -> Serde | str:
    """A serde by name; windowed keys of strings as ``time_windowed:SIZE`` or
    ``session_windowed``."""
    if name.startswith("time_windowed:"):
        return TimeWindowedSerde(StringSerde(), int(name.split(":", 1)[1]))
    if name == "session_windowed":
        return SessionWindowedSerde(StringSerde())
    return name


def _windowed_by(g: GroupedStream, op: Op) -> TimeWindowedStream | SessionWindowedStream:
    w = op["windows"]
    windowed: TimeWindowedStream | SessionWindowedStream
    if w["kind"] == "time":
        windowed = g.windowed_by(TimeWindows.of_size_and_grace(w["size"], w["grace"])
                                 .advance_by(w["advance"]))
    elif w["kind"] == "sliding":
        windowed = g.windowed_by(SlidingWindows.of_time_difference_and_grace(
            w["difference"], w["grace"]))
    else:
        windowed = g.windowed_by(SessionWindows.of_inactivity_gap_and_grace(w["gap"], w["grace"]))
    if op.get("emit") == "close":
        windowed.emit_strategy(EmitStrategy.on_window_close())
    return windowed


def _windowed(w: TimeWindowedStream | SessionWindowedStream, name: str, f: str, op: Op) -> Table:
    if name == "count":
        return w.count(materialized(op))
    if name == "reduce":
        return w.reduce(fn.named(fn.REDUCERS, f, "reducer"), materialized(op))
    if name != "aggregate":
        raise ValueError(f"a windowed stream has no operator {name!r}")
    init = fn.named(fn.INITIALIZERS, op["init"], "initializer")
    aggregator = fn.named(fn.AGGREGATORS, f, "aggregator")
    if isinstance(w, SessionWindowedStream):
        return w.aggregate(init, aggregator, fn.named(fn.MERGERS, op["merger"], "merger"),
                           materialized(op))
    return w.aggregate(init, aggregator, materialized(op))


def suppressed(op: Op) -> Suppressed:
    """The spec's suppress (see the oracle's Windows.suppressed)."""
    b = op.get("buffer") or {}
    buffer = BufferConfig.unbounded()
    if "max_records" in b or "max_bytes" in b:
        buffer = (BufferConfig.max_records(b["max_records"]) if "max_records" in b
                  else BufferConfig.max_bytes(b["max_bytes"]))
        if "max_records" in b and "max_bytes" in b:
            buffer = buffer.with_max_bytes(b["max_bytes"])
        buffer = (buffer.shut_down_when_full() if op.get("full") == "shut_down"
                  else buffer.emit_early_when_full())
    s = (Suppressed.until_window_closes(buffer) if op["until"] == "window_close"
         else Suppressed.until_time_limit(op["limit"], buffer))
    return s.with_name(op["name"]) if op.get("name") else s
TABLE_JOIN_OPS = ("table_join", "table_left_join", "table_outer_join")


def _table_join(t: Table, name: str, f: str, op: Op, named: dict[str, Any]) -> Table:
    """A table-table join with the table chain named by ``with``, materialized under
    ``store`` where given."""
    join = {"table_join": t.join, "table_left_join": t.left_join,
            "table_outer_join": t.outer_join}[name]
    return join(named[op["with"]], fn.named(fn.JOINERS, f, "joiner"),
                materialized(op) if op.get("store") else None)


FK_JOIN_OPS = ("fk_join", "fk_left_join")


def _fk_join(t: Table, name: str, f: str, op: Op, named: dict[str, Any]) -> Table:
    """A foreign-key join with the table chain named by ``with``, the foreign key from the
    function named by ``fk``, with the serdes and ``store`` where given."""
    join = t.left_join if name == "fk_left_join" else t.join
    return join(named[op["with"]], fn.named(fn.JOINERS, f, "joiner"),
                materialized(op) if "value_serde" in op else None,
                foreign_key=fn.named(fn.FOREIGN_KEYS, op["fk"], "foreign key extractor"))


def run(case: dict[str, Any]) -> Outputs:
    """Pipe the case's input bytes through fluvial's TestDriver; the output topics' records."""
    with TestDriver(build(case["topology"]), application_id="conformance",
                    record_cache=case.get("record_cache", False)) as driver:
        topics = {}
        for r in case["inputs"]:
            topic = topics.get(r["topic"])
            if topic is None:
                topic = topics[r["topic"]] = driver.input_topic(r["topic"], "bytes", "bytes")
            topic.pipe(to_bytes(r["value"]), key=to_bytes(r["key"]), timestamp=r["ts"])
        return {name: [Output(to_hex(m.key()), to_hex(m.value()), m.timestamp()[1])
                       for m in driver.read(name)] for name in case["outputs"]}


def to_bytes(hex_text: str | None) -> bytes | None:
    return None if hex_text is None else bytes.fromhex(hex_text)


def to_hex(data: bytes | None) -> str | None:
    return None if data is None else data.hex()
