"""The DSL side of a stream-stream join: the nodes and stores Kafka Streams builds for it.

Below each stream a processor keeps its records in a window store
(``KSTREAM-WINDOWED-``); below those, one join processor per side reads the other side's
store (``KSTREAM-JOINTHIS-``/``-JOINOTHER-``, ``OUTER`` where that side's unmatched records
are emitted); a pass-through merges their outputs (``KSTREAM-MERGE-``). A left or outer
join adds the store where unmatched records wait for their window to close.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fluvial.dsl.options import StreamJoined
from fluvial.processing import stateless
from fluvial.processing import stream_join as sj
from fluvial.topology.nodes import StoreSpec
from fluvial.windows import JoinWindows

if TYPE_CHECKING:
    from fluvial.dsl.builder import StreamsBuilder
    from fluvial.dsl.stream import Stream


def stream_stream_join(this: Stream, other: Stream, joiner: Callable[[Any, Any], Any],
                       windows: JoinWindows, sj_opts: StreamJoined, kind: str) -> Stream:
    """``kind``: "inner", "left" or "outer"."""
    from fluvial.dsl.stream import Stream

    b = this._builder
    graph = b.graph
    left_outer, right_outer = kind in ("left", "outer"), kind == "outer"
    ks = b.key_serde(sj_opts.key_serde or this.key_serde)
    vs = b.value_serde(sj_opts.value_serde or this.value_serde)
    ovs = b.value_serde(sj_opts.other_value_serde or other.value_serde)
    name = sj_opts.name
    # as Kafka Streams: each side repartitioned by its new key; a left/outer join keeps
    # null keys (they are emitted unjoined)
    if this._repartition_required:
        this = Stream(b, this._through_repartition(
            f"{name}-left" if name else this.node, ks, vs, drop_null_keys=not left_outer,
            keep_null_keys=left_outer), ks, vs)
    if other._repartition_required:
        other = Stream(b, other._through_repartition(
            f"{name}-right" if name else other.node, ks, ovs, drop_null_keys=not left_outer,
            keep_null_keys=left_outer), ks, ovs)

    this_suffix = "-outer-this-join" if right_outer else "-this-join"
    other_suffix = "-outer-other-join" if left_outer else "-other-join"
    this_windowed = f"{name}-this-windowed" if name else graph.new_name("KSTREAM-WINDOWED-")
    other_windowed = f"{name}-other-windowed" if name else graph.new_name("KSTREAM-WINDOWED-")
    this_generated = graph.new_name("KSTREAM-OUTERTHIS-" if right_outer else "KSTREAM-JOINTHIS-")
    other_generated = graph.new_name("KSTREAM-OUTEROTHER-" if left_outer
                                     else "KSTREAM-JOINOTHER-")
    this_name = f"{name}{this_suffix}" if name else this_generated
    other_name = f"{name}{other_suffix}" if name else other_generated
    merge_name = f"{name}-merge" if name else graph.new_name("KSTREAM-MERGE-")

    base = sj_opts.store_name
    this_store = _window_store(b, f"{base}{this_suffix}" if base else this_generated,
                               ks, vs, windows, sj_opts.logging)
    other_store = _window_store(b, f"{base}{other_suffix}" if base else other_generated,
                                ks, ovs, windows, sj_opts.logging)
    outer_store = None
    if left_outer and windows.spurious_result_fix:  # else unmatched records go out at once
        shared = ("-outer-shared-join" if right_outer else "-left-shared-join")
        outer_name = (f"{base}{shared}" if base else this_generated.replace(
            "OUTERTHIS-", "OUTERSHARED-").replace("JOINTHIS-", "OUTERSHARED-"))
        outer_store = graph.add_store(StoreSpec(
            f"{outer_name}-store", sj.TimeSideKeySerde(ks), sj.SideValueSerde(vs, ovs),
            timestamped=False, logged=sj_opts.logging))

    time = sj.JoinTime()
    shared_stores = [outer_store] if outer_store else []
    graph.add_processor(this_windowed, lambda: sj.JoinWindowPut(this_store), [this.node],
                        [this_store])
    graph.add_processor(other_windowed, lambda: sj.JoinWindowPut(other_store), [other.node],
                        [other_store])
    graph.add_processor(this_name, lambda: sj.StreamJoinSide(
        other_store, joiner, windows, True, left_outer, outer_store, time),
        [this_windowed], [other_store, *shared_stores])
    graph.add_processor(other_name, lambda: sj.StreamJoinSide(
        this_store, _reverse(joiner), windows, False, right_outer, outer_store, time),
        [other_windowed], [this_store, *shared_stores])
    node = graph.add_processor(merge_name, stateless.Passthrough, [this_name, other_name])
    return Stream(b, node, ks, None)


def _window_store(b: StreamsBuilder, name: str, key_serde: Any, value_serde: Any,
                  windows: JoinWindows, logged: bool) -> str:
    """A join side's store: every record kept (duplicates too) for the window plus grace;
    its changelog only deletes by time, as Kafka Streams' (records are never updated)."""
    return b.graph.add_store(StoreSpec(
        f"{name}-store", key_serde, value_serde, timestamped=False, logged=logged,
        kind="window", window_size_ms=windows.size_ms, retention_ms=windows.retention_ms,
        retain_duplicates=True, changelog_config={"cleanup.policy": "delete"}))


def _reverse(joiner: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """The joiner as the right side calls it: its own value first."""
    return lambda this_value, other_value: joiner(other_value, this_value)
