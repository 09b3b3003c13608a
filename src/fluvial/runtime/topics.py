"""Which topics an app needs, how many partitions each has, and creating the internal ones."""

from __future__ import annotations

import time
from dataclasses import dataclass

from fluvial.errors import TopologyError
from fluvial.io.client import Admin, TopicSpec
from fluvial.topology.topology import SubTopology, Topology


@dataclass
class TopicPlan:
    """Partition counts resolved for one app: per sub-topology (= tasks) and per topic."""

    task_counts: dict[int, int]
    internal: list[TopicSpec]  # repartition and changelog topics: their sizes are checked
    extra: list[TopicSpec]     # the dead-letter topic: any size will do
    source_topics: dict[int, list[str]]  # sub-topology id -> real topic names

    def subtopology_of(self) -> dict[str, int]:
        return {t: st for st, topics in self.source_topics.items() for t in topics}


def output_topics(topology: Topology) -> list[str]:
    """The topics the app writes by name (a topic chosen per record is known only then)."""
    return sorted({s.topic for st in topology.subtopologies for s in st.sinks
                   if not s.internal and isinstance(s.topic, str)})


def plan(topology: Topology, application_id: str, admin: Admin, replication: int,
         dead_letter_topic: str | None, create_missing: bool = False) -> TopicPlan:
    """Check the topics the app reads and writes exist and that sources are co-partitioned,
    then size repartition and changelog topics.

    ``create_missing`` is for the embedded broker, where nobody else could have created them:
    there, missing source and sink topics are created; on a real cluster every missing one
    is named in one error.
    """
    external = sorted(set(topology.external_source_topics()))
    outputs = sorted(set(output_topics(topology)) - set(external))
    counts = admin.partition_counts(external + outputs)
    if create_missing:
        admin.create_topics([TopicSpec(t, -1, replication) for t in external + outputs
                             if t not in counts])
        counts = admin.partition_counts(external + outputs)
    missing_in = [t for t in external if t not in counts]
    missing_out = [t for t in outputs if t not in counts]
    if missing_in or missing_out:
        named = [f"{kind} topic(s) {', '.join(ts)}" for kind, ts in
                 (("source", missing_in), ("sink", missing_out)) if ts]
        raise TopologyError(f"application {application_id!r}: {' and '.join(named)} missing; "
                            f"create them first (fluvial creates only its internal topics on "
                            f"a Kafka cluster)")
    counts = {t: n for t, n in counts.items() if t in external}
    sinks_by_topic = {s.topic: s for s in topology.repartition_topics()}
    writer: dict[str, SubTopology] = {}
    for st in topology.subtopologies:
        for sink in st.sinks:
            if sink.internal:
                writer[sink.topic] = st

    sizes: dict[str, int] = dict(counts)
    resolving: set[int] = set()

    def size_of(st: SubTopology) -> int:
        if st.id in resolving:
            raise TopologyError("repartition topics form a cycle")
        resolving.add(st.id)
        per_topic: dict[str, int] = {}
        # as Kafka Streams: a repartition topic read beside source topics (a join after a
        # key change) is sized to be co-partitioned with them
        beside = max((sizes[t] for s in st.sources if not s.internal for t in s.topics),
                     default=None)
        for source in st.sources:
            for topic in source.topics:
                if source.internal:
                    sink = sinks_by_topic[topic]
                    if topic not in sizes:
                        sizes[topic] = sink.partitions or beside or size_of(writer[topic])
                per_topic[topic] = sizes[topic]
        resolving.discard(st.id)
        if len(set(per_topic.values())) > 1:
            detail = ", ".join(f"{t} ({n})" for t, n in sorted(per_topic.items()))
            raise TopologyError(f"application {application_id!r}: topics read by sub-topology "
                                f"{st.id} must have the same number of partitions "
                                f"(co-partitioning), but have: {detail}")
        return next(iter(per_topic.values()))

    task_counts = {st.id: size_of(st) for st in topology.subtopologies}
    internal: list[TopicSpec] = []
    for topic in sinks_by_topic:
        internal.append(TopicSpec(f"{application_id}-{topic}", sizes.get(topic) or
                                  size_of(writer[topic]), replication,
                                  dict(REPARTITION_TOPIC_CONFIG)))
    for st in topology.subtopologies:
        for store in st.stores:
            if store.logged:
                internal.append(TopicSpec(store.changelog_topic(application_id),
                                          task_counts[st.id], replication,
                                          store.changelog_topic_config()))
    extra = [TopicSpec(dead_letter_topic, 1, replication)] if dead_letter_topic else []
    return TopicPlan(task_counts, internal, extra,
                     {st.id: st.source_topics(application_id) for st in topology.subtopologies})


# A repartition topic keeps its records until every task has committed past them, then the
# stream thread deletes them (as Kafka Streams does): never by time, or records with old event
# times (reprocessing last year's data) would be deleted before they are read.
REPARTITION_TOPIC_CONFIG = {"cleanup.policy": "delete", "retention.ms": "-1",
                            "segment.bytes": str(50 * 1024 * 1024)}

# how long the internal topics may stay missing from metadata after they were created
METADATA_SETTLE_S = 10.0


def ensure(admin: Admin, plan: TopicPlan) -> None:
    """Create the internal topics; an existing one must have the partitions the plan needs.

    Only missing topics are created: a restart then needs no controller (seen: an instance
    restarting while the KRaft leader was down failed to "create" its existing topics)."""
    wanted = plan.internal + plan.extra
    existing = admin.partition_counts([t.name for t in wanted])
    admin.create_topics([t for t in wanted if t.name not in existing])
    names = [t.name for t in plan.internal]
    counts = admin.partition_counts(names)
    deadline = time.monotonic() + METADATA_SETTLE_S
    while len(counts) < len(names) and time.monotonic() < deadline:
        time.sleep(0.5)  # a metadata answer from a broker going down can miss a topic
        counts = admin.partition_counts(names)
    for spec in plan.internal:
        have = counts.get(spec.name)
        if have is None:
            raise TopologyError(f"internal topic {spec.name!r} could not be created")
        if have != spec.partitions:
            raise TopologyError(f"internal topic {spec.name!r} has {have} partitions but the "
                                f"topology needs {spec.partitions}; delete it (it is derived "
                                f"data) or use a new application_id")
