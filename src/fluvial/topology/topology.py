"""The built topology: nodes split into sub-topologies, stores, internal topics, describe()."""

from __future__ import annotations

from dataclasses import dataclass, field

from fluvial.errors import TopologyError
from fluvial.topology.nodes import (
    GlobalStoreSpec,
    Node,
    ProcessorNode,
    SinkNode,
    SourceNode,
    StoreSpec,
)


@dataclass
class SubTopology:
    id: int
    nodes: list[Node]  # parents before children
    stores: list[StoreSpec] = field(default_factory=list)

    @property
    def sources(self) -> list[SourceNode]:
        return [n for n in self.nodes if isinstance(n, SourceNode)]

    @property
    def sinks(self) -> list[SinkNode]:
        return [n for n in self.nodes if isinstance(n, SinkNode)]

    def source_topics(self, application_id: str = "") -> list[str]:
        """Its input topics; internal ones get the application id when one is given."""
        topics: list[str] = []
        for source in self.sources:
            for topic in source.topics:
                topics.append(f"{application_id}-{topic}" if source.internal and application_id
                              else topic)
        return topics


class Topology:
    def __init__(self, nodes: list[Node], stores: dict[str, StoreSpec],
                 global_stores: list[GlobalStoreSpec]) -> None:
        self.nodes = {n.name: n for n in nodes}
        self.stores = stores
        self.global_stores = global_stores
        self.subtopologies = _split(nodes, stores)
        if not self.subtopologies and not global_stores:
            raise TopologyError("the topology is empty: add a stream or table before build()")

    def repartition_topics(self) -> list[SinkNode]:
        return [n for n in self.nodes.values() if isinstance(n, SinkNode) and n.internal]

    def external_source_topics(self) -> list[str]:
        topics = [t for st in self.subtopologies for s in st.sources if not s.internal
                  for t in s.topics]
        return topics + [g.topic for g in self.global_stores]

    def subtopology_of_store(self, store: str) -> SubTopology:
        for st in self.subtopologies:
            if any(s.name == store for s in st.stores):
                return st
        raise KeyError(store)

    def describe(self) -> str:
        """Sub-topologies, sources, processors with stores, sinks and arrows, in the text
        Kafka Streams' ``TopologyDescription`` prints: within a sub-topology (and within each
        arrow) nodes come largest sub-tree first, then by name."""
        out = ["Topologies:\n "]
        for st in self.subtopologies:
            size = _subtree_sizes(st.nodes)

            def order(names: list[str], size: dict[str, int] = size) -> str:
                return ", ".join(sorted(names, key=lambda n: (-size[n], n))) or "none"

            text = [f"  Sub-topology: {st.id}\n"]
            for node in sorted(st.nodes, key=lambda n: (-size[n.name], n.name)):
                if isinstance(node, SourceNode):
                    text.append(f"    Source: {node.name} (topics: [{', '.join(node.topics)}])\n"
                                f"      --> {order(node.children)}\n")
                elif isinstance(node, ProcessorNode):
                    text.append(f"    Processor: {node.name} (stores: [{', '.join(node.stores)}])"
                                f"\n      --> {order(node.children)}"
                                f"\n      <-- {order(node.parents)}\n")
                elif isinstance(node, SinkNode):
                    target = (f"topic: {node.topic}" if isinstance(node.topic, str) else
                              f"extractor class: {getattr(node.topic, '__qualname__', node.topic)}")
                    text.append(f"    Sink: {node.name} ({target})\n"
                                f"      <-- {order(node.parents)}\n")
            out.append("".join(text) + "\n")
        for i, g in enumerate(self.global_stores, start=len(self.subtopologies)):
            out.append(f"  Sub-topology: {i} for global store (will not generate tasks)\n"
                       f"    Source: {g.source_name} (topics: [{g.topic}])\n"
                       f"      --> {g.processor_name}\n"
                       f"    Processor: {g.processor_name} (stores: [{g.store.name}])\n"
                       f"      --> none\n"
                       f"      <-- {g.source_name}\n")
        return "".join(out)

    def __str__(self) -> str:
        return self.describe()


def _split(nodes: list[Node], stores: dict[str, StoreSpec]) -> list[SubTopology]:
    """Connected parts of the graph: nodes joined by an edge or a shared store."""
    parent = {n.name: n.name for n in nodes}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(a: str, b: str) -> None:
        parent[find(a)] = find(b)

    by_store: dict[str, str] = {}
    for node in nodes:
        for child in node.children:
            union(node.name, child)
        if isinstance(node, ProcessorNode):
            for store in node.stores:
                if store not in stores:
                    raise TopologyError(f"processor {node.name} uses unknown store {store!r}")
                if store in by_store:
                    union(node.name, by_store[store])
                by_store[store] = node.name

    groups: dict[str, list[Node]] = {}
    for node in nodes:  # builder order keeps parents before children
        groups.setdefault(find(node.name), []).append(node)
    result: list[SubTopology] = []
    for members in groups.values():
        if not any(isinstance(n, SourceNode) for n in members):
            names = ", ".join(n.name for n in members)
            raise TopologyError(f"nodes without a source: {names}")
        used = {s for n in members if isinstance(n, ProcessorNode) for s in n.stores}
        result.append(SubTopology(len(result), _ordered(members),
                                  [stores[s] for s in sorted(used)]))
    return result


def _subtree_sizes(nodes: list[Node]) -> dict[str, int]:
    """Nodes reachable from each node, itself included (paths counted, as Kafka Streams does)."""
    size: dict[str, int] = {}
    for node in reversed(nodes):  # children before parents
        size[node.name] = 1 + sum(size[c] for c in node.children)
    return size


def _ordered(members: list[Node]) -> list[Node]:
    """Parents before children (Kahn), ties in builder order."""
    names = {n.name for n in members}
    indegree = {n.name: sum(1 for p in n.parents if p in names) for n in members}
    by_name = {n.name: n for n in members}
    ready = [n.name for n in members if indegree[n.name] == 0]
    order: list[Node] = []
    position = {n.name: i for i, n in enumerate(members)}
    while ready:
        ready.sort(key=position.__getitem__)
        name = ready.pop(0)
        order.append(by_name[name])
        for child in by_name[name].children:
            indegree[child] -= 1
            if indegree[child] == 0:
                ready.append(child)
    if len(order) != len(members):
        raise TopologyError("the topology has a cycle")
    return order
