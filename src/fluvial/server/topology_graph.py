"""The topology as a graph for the dashboard: topics, sources, processors, sinks and stores,
laid out in layers (left to right, as records flow), so the page only draws boxes and lines.

Built from the Topology's own nodes (the same facts ``describe()`` prints), once per server.
"""

from __future__ import annotations

from typing import Any

from fluvial.topology.nodes import ProcessorNode, SinkNode, SourceNode
from fluvial.topology.topology import Topology

COLUMN_PX = 185  # one layer's width
NODE_PX = 165  # one node's width
ROW_PX = 56  # one node's height with its gap


def topology_graph(topology: Topology, application_id: str) -> dict[str, Any]:
    """``{"nodes": [{id, kind, label, subtopology, x, y}], "edges": [[from, to]],
    "node_width", "width", "height"}``; kinds: topic, source, processor, sink, store."""
    nodes: dict[str, dict[str, Any]] = {}
    edges: list[tuple[str, str]] = []

    def add(node_id: str, kind: str, label: str, subtopology: int | None) -> str:
        nodes.setdefault(node_id, {"id": node_id, "kind": kind, "label": label,
                                   "subtopology": subtopology})
        return node_id

    def topic(name: str, internal: bool) -> str:
        full = f"{application_id}-{name}" if internal else name
        return add(f"topic:{full}", "topic", full, None)

    for st in topology.subtopologies:
        for node in st.nodes:
            if isinstance(node, SourceNode):
                me = add(f"node:{node.name}", "source", node.name, st.id)
                edges.extend((topic(t, node.internal), me) for t in node.topics)
            elif isinstance(node, SinkNode):
                me = add(f"node:{node.name}", "sink", node.name, st.id)
                if isinstance(node.topic, str):
                    edges.append((me, topic(node.topic, node.internal)))
            else:
                me = add(f"node:{node.name}", "processor", node.name, st.id)
                if isinstance(node, ProcessorNode):
                    edges.extend((me, add(f"store:{s}", "store", s, st.id))
                                 for s in node.stores)
            edges.extend((me, f"node:{child}") for child in node.children)
    for i, g in enumerate(topology.global_stores, start=len(topology.subtopologies)):
        source = add(f"node:{g.source_name}", "source", g.source_name, i)
        processor = add(f"node:{g.processor_name}", "processor", g.processor_name, i)
        edges += [(topic(g.topic, False), source), (source, processor),
                  (processor, add(f"store:{g.store.name}", "store", g.store.name, i))]
    edges = sorted(set(edges))
    _lay_out(nodes, edges)
    return {"nodes": list(nodes.values()), "edges": [list(e) for e in edges],
            "node_width": NODE_PX,
            "width": max((n["x"] for n in nodes.values()), default=0) + NODE_PX,
            "height": max((n["y"] for n in nodes.values()), default=0) + ROW_PX}


def _lay_out(nodes: dict[str, dict[str, Any]], edges: list[tuple[str, str]]) -> None:
    """Layer = the longest path from a node without inputs (so a store sits right of the
    processors that use it); within a layer, nodes sit near their parents' mean row."""
    layer = dict.fromkeys(nodes, 0)
    for _ in range(len(nodes)):  # longest paths; at most n rounds even if a cycle existed
        moved = False
        for a, b in edges:
            if layer[b] < layer[a] + 1:
                layer[b] = layer[a] + 1
                moved = True
        if not moved:
            break
    parents: dict[str, list[str]] = {n: [] for n in nodes}
    for a, b in edges:
        parents[b].append(a)
    row: dict[str, float] = {}
    for depth in range(max(layer.values(), default=-1) + 1):
        here = [n for n in nodes if layer[n] == depth]

        def place(n: str) -> tuple[float, str]:
            seen = [row[p] for p in parents[n] if p in row]
            return (sum(seen) / len(seen) if seen else 0.0, n)

        for i, n in enumerate(sorted(here, key=place)):
            row[n] = i
            nodes[n]["x"], nodes[n]["y"] = depth * COLUMN_PX, i * ROW_PX
