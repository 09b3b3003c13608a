"""Consumer-group coordination for consumers in one process: membership and range assignment.

The group follows Kafka's *eager* protocol. A join, a leave or a subscription change starts a
new generation with a freshly computed assignment; every member that still owns partitions
must first revoke them all (``on_revoke``, in its own poll), and only when no member owns
anything from an older generation does any member receive its new partitions (``on_assign``).
That barrier is what guarantees no partition is ever owned by two live members at once.

A member that holds the barrier up by not polling for ``max.poll.interval.ms`` is evicted,
as a real coordinator would do; it learns of it at its next poll (``on_lost``) and rejoins.
All state here is guarded by the broker's lock.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field

from fluvial.io.client import TopicPartition


def range_assign(subscriptions: Mapping[str, frozenset[str]],
                 partition_counts: Mapping[str, int]) -> dict[str, list[TopicPartition]]:
    """Kafka's RangeAssignor: per topic, members sorted by id take consecutive ranges.

    With equally partitioned topics, partition p of each lands on the same member, which is
    what co-partitioned joins rely on.
    """
    result: dict[str, list[TopicPartition]] = {m: [] for m in subscriptions}
    topics = sorted({t for subs in subscriptions.values() for t in subs})
    for topic in topics:
        count = partition_counts.get(topic)
        if not count:
            continue
        members = sorted(m for m, subs in subscriptions.items() if topic in subs)
        per, extra = divmod(count, len(members))
        for i, member in enumerate(members):
            start = i * per + min(i, extra)
            length = per + (1 if i < extra else 0)
            result[member].extend(TopicPartition(topic, p) for p in range(start, start + length))
    for parts in result.values():
        parts.sort()
    return result


@dataclass(eq=False)
class Member:
    """What the group knows of one consumer; the consumer keeps a reference to it."""

    member_id: str
    topics: frozenset[str]
    max_poll_interval: float
    last_poll: float
    client_id: str = ""
    generation: int = 0  # the generation whose assignment this member holds
    owned: list[TopicPartition] = field(default_factory=list)
    lost: bool = False  # evicted: its partitions went to others behind its back


_member_seq = itertools.count(1)


def new_member_id(client_id: str) -> str:
    """Ids sort in join order (zero-padded sequence), which makes range assignment stable."""
    return f"{client_id}-{next(_member_seq):08d}"


class Group:
    """One consumer group: its members, generation and current target assignment."""

    def __init__(self, group_id: str) -> None:
        self.group_id = group_id
        self.members: dict[str, Member] = {}
        self.generation = 0
        self.assignment: dict[str, list[TopicPartition]] = {}

    def rebalance(self, partition_counts: Mapping[str, int]) -> None:
        """Start a new generation with a new target assignment."""
        self.generation += 1
        subs = {m.member_id: m.topics for m in self.members.values()}
        self.assignment = range_assign(subs, partition_counts)

    def blockers(self) -> list[Member]:
        """Members that must revoke before the current generation's assignment is handed out."""
        return [m for m in self.members.values() if m.owned and m.generation < self.generation]

    def subscribes_to(self, topic: str) -> bool:
        return any(topic in m.topics for m in self.members.values())
