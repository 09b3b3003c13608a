"""Assembles the graph node by node; the DSL and the low-level processor API both use it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fluvial.errors import TopologyError
from fluvial.io.serdes import Serde
from fluvial.processing.processor import Processor
from fluvial.processing.timestamps import TimestampExtractor
from fluvial.topology.nodes import (
    GlobalStoreSpec,
    Node,
    ProcessorNode,
    SinkNode,
    SourceNode,
    StoreSpec,
)
from fluvial.topology.topology import Topology


class TopologyBuilder:
    def __init__(self) -> None:
        self._counter = 0
        self._nodes: list[Node] = []
        self._by_name: dict[str, Node] = {}
        self.stores: dict[str, StoreSpec] = {}
        self.global_stores: list[GlobalStoreSpec] = []
        self._source_topics: dict[str, str] = {}

    def new_name(self, prefix: str) -> str:
        """Kafka Streams' scheme: one counter numbers every generated name."""
        name = f"{prefix}{self._counter:010d}"
        self._counter += 1
        return name

    def _add(self, node: Node, parents: list[str]) -> str:
        if node.name in self._by_name:
            raise TopologyError(f"two nodes are named {node.name!r}; names must be unique")
        for p in parents:
            if p not in self._by_name:
                raise TopologyError(f"unknown parent node {p!r} for {node.name!r}")
        self._nodes.append(node)
        self._by_name[node.name] = node
        for p in parents:
            self._by_name[p].children.append(node.name)
            node.parents.append(p)
        return node.name

    def add_source(self, name: str, topics: list[str], key_serde: Serde | None,
                   value_serde: Serde | None, internal: bool = False,
                   timestamp_extractor: TimestampExtractor | None = None) -> str:
        if not topics:
            raise TopologyError("a source needs at least one topic")
        for topic in topics:
            if topic in self._source_topics:
                raise TopologyError(f"topic {topic!r} is read by two sources "
                                    f"({self._source_topics[topic]} and {name}); "
                                    f"read it once and reuse the stream")
            self._source_topics[topic] = name
        return self._add(SourceNode(name, topics=list(topics), key_serde=key_serde,
                                    value_serde=value_serde, internal=internal,
                                    timestamp_extractor=timestamp_extractor), [])

    def add_processor(self, name: str, supplier: Callable[[], Processor], parents: list[str],
                      stores: list[str] | None = None) -> str:
        return self._add(ProcessorNode(name, supplier=supplier, stores=list(stores or [])),
                         parents)

    def add_sink(self, name: str, topic: str, parents: list[str], key_serde: Serde | None,
                 value_serde: Serde | None, internal: bool = False,
                 partitions: int | None = None,
                 partitioner: Callable[[Any, Any], int] | None = None) -> str:
        return self._add(SinkNode(name, topic=topic, key_serde=key_serde,
                                  value_serde=value_serde, internal=internal,
                                  partitions=partitions, partitioner=partitioner), parents)

    def add_store(self, spec: StoreSpec) -> str:
        if spec.name in self.stores:
            raise TopologyError(f"two stores are named {spec.name!r}")
        self.stores[spec.name] = spec
        return spec.name

    def connect_store(self, processor: str, store: str) -> None:
        node = self._by_name[processor]
        if not isinstance(node, ProcessorNode):
            raise TopologyError(f"{processor!r} is not a processor")
        node.stores.append(store)

    def add_global_store(self, spec: GlobalStoreSpec) -> None:
        self.add_store(spec.store)
        self.global_stores.append(spec)

    def build(self) -> Topology:
        return Topology(list(self._nodes), dict(self.stores), list(self.global_stores))
