"""split() into named branches, and merge(), including per-record order after a merge."""

from __future__ import annotations

import pytest

from fluvial import StreamsBuilder, TestDriver, TopologyError
from fluvial.processing.processor import CollectorBase


def test_split_routes_to_first_matching_branch_and_default() -> None:
    b = StreamsBuilder()
    branches = (b.stream("in").split(name="p-")
                .branch(lambda k, v: v < 10, name="small")
                .branch(lambda k, v: v < 100, name="medium")
                .default_branch(name="large"))
    assert set(branches) == {"p-small", "p-medium", "p-large"}
    for name, stream in branches.items():
        stream.to(name)
    with TestDriver(b.build()) as d:
        d.input_topic("in").pipe_key_values([("a", 5), ("b", 50), ("c", 500), ("d", 1)])
        assert d.output_topic("p-small").read_key_values() == [("a", 5), ("d", 1)]
        # 5 also satisfies the medium predicate, but goes only to the first match
        assert d.output_topic("p-medium").read_key_values() == [("b", 50)]
        assert d.output_topic("p-large").read_key_values() == [("c", 500)]


def test_split_without_default_drops_unmatched() -> None:
    b = StreamsBuilder()
    branches = (b.stream("in").split(name="s-")
                .branch(lambda k, v: v == "x", name="x")
                .no_default_branch())
    assert list(branches) == ["s-x"]
    branches["s-x"].to("out")
    with TestDriver(b.build()) as d:
        d.input_topic("in").pipe_key_values([("a", "x"), ("b", "y"), ("c", "x")])
        assert d.output_topic("out").read_key_values() == [("a", "x"), ("c", "x")]


def test_unnamed_branches_are_numbered_after_the_splitter() -> None:
    b = StreamsBuilder()
    branches = (b.stream("in").split()
                .branch(lambda k, v: v == 1)
                .branch(lambda k, v: v == 2)
                .default_branch())
    # Kafka Streams: the prefix is the splitter's name, branches numbered from 1, default 0
    assert list(branches) == ["KSTREAM-BRANCH-00000000011", "KSTREAM-BRANCH-00000000012",
                              "KSTREAM-BRANCH-00000000010"]


def test_two_unnamed_splits_in_one_topology() -> None:
    b = StreamsBuilder()
    first = b.stream("a").split().branch(lambda k, v: True).no_default_branch()
    second = b.stream("b").split().branch(lambda k, v: True).no_default_branch()
    assert set(first).isdisjoint(second)
    for name, s in [*first.items(), *second.items()]:
        s.to(f"out-{name}")
    b.build()


def test_split_named_splitter_node() -> None:
    b = StreamsBuilder()
    b.stream("in").split(name="route-").branch(lambda k, v: True, name="all").no_default_branch()
    topology = b.build()
    assert "route-" in topology.nodes
    assert topology.nodes["route-"].children == ["route-all"]


def test_duplicate_branch_names_are_rejected() -> None:
    b = StreamsBuilder()
    split = b.stream("in").split(name="p-").branch(lambda k, v: True, name="a")
    with pytest.raises(TopologyError, match="unique"):
        split.branch(lambda k, v: False, name="a").no_default_branch()


def test_branch_after_default_branch_is_rejected() -> None:
    b = StreamsBuilder()
    split = b.stream("in").split()
    split.default_branch()
    with pytest.raises(TopologyError):
        split.branch(lambda k, v: True)


def test_merge_two_streams() -> None:
    b = StreamsBuilder()
    b.stream("a").merge(b.stream("b")).to("out")
    with TestDriver(b.build()) as d:
        d.input_topic("a").pipe("a1", key="k")
        d.input_topic("b").pipe("b1", key="k")
        d.input_topic("a").pipe("a2", key="k")
        assert d.output_topic("out").read_values() == ["a1", "b1", "a2"]


def test_merge_after_split_keeps_per_record_order() -> None:
    b = StreamsBuilder()
    branches = (b.stream("in").split(name="s-")
                .branch(lambda k, v: v % 3 == 0, name="three")
                .branch(lambda k, v: v % 2 == 0, name="two")
                .default_branch(name="other"))
    tagged = [branches["s-three"].map_values(lambda v: f"3:{v}"),
              branches["s-two"].map_values(lambda v: f"2:{v}"),
              branches["s-other"].map_values(lambda v: f"o:{v}")]
    tagged[0].merge(tagged[1]).merge(tagged[2]).to("out")
    with TestDriver(b.build()) as d:
        d.input_topic("in").pipe_key_values([("k", i) for i in range(1, 8)])
        assert d.output_topic("out").read_values() == [
            "o:1", "2:2", "3:3", "2:4", "o:5", "3:6", "o:7"]


def test_merge_after_fan_out_keeps_per_record_order() -> None:
    # one input record becomes two; they take different branches back into one merge:
    # per-record processing gives them in the order flat_map produced them
    b = StreamsBuilder()
    branches = (b.stream("in").flat_map_values(lambda v: [f"{v}-b", f"{v}-a"])
                .split(name="s-")
                .branch(lambda k, v: v.endswith("-a"), name="a")
                .default_branch(name="b"))
    branches["s-a"].merge(branches["s-b"]).to("out")
    with TestDriver(b.build()) as d:
        d.input_topic("in").pipe_list(["x", "y"])
        assert d.output_topic("out").read_values() == ["x-b", "x-a", "y-b", "y-a"]


def test_merge_of_two_paths_from_one_stream_keeps_per_record_order() -> None:
    b = StreamsBuilder()
    s = b.stream("in")
    first = s.filter(lambda k, v: True)        # defined first: its records come first
    second = s.map_values(lambda v: v * 10)
    first.map_values(lambda v: v + 1).merge(second).to("out")
    with TestDriver(b.build()) as d:
        d.input_topic("in").pipe_list([1, 2])
        assert d.output_topic("out").read_values() == [2, 10, 3, 20]


def test_merge_in_one_task_batch_sorts_by_offset() -> None:
    """A poll batch of several records: the merge sees them in offset order."""
    from fluvial.io.embedded.message import EmbeddedMessage
    from fluvial.processing.errors import ErrorPolicy
    from fluvial.processing.task import Task

    b = StreamsBuilder(default_key_serde="string", default_value_serde="int64")
    branches = (b.stream("in").split(name="s-")
                .branch(lambda k, v: v % 2 == 0, name="even")
                .default_branch(name="odd"))
    branches["s-even"].merge(branches["s-odd"]).to("out", value_serde="int64")
    topology = b.build()
    sent: list[int] = []

    class Collector(CollectorBase):
        def send(self, topic, key, value, timestamp, headers, partition):  # type: ignore[no-untyped-def]
            sent.append(int.from_bytes(value, "big"))

    task = Task("0_0", topology.subtopologies[0], 0, "app", {}, Collector(), ErrorPolicy(),
                lambda: 0)
    messages = [EmbeddedMessage("in", 0, i, b"k", i.to_bytes(8, "big"), i, None) for i in range(6)]
    task.process("in", messages)
    assert sent == [0, 1, 2, 3, 4, 5]
