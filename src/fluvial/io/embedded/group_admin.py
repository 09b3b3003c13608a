"""``fluvial.io.group_admin.GroupAdmin`` on the embedded broker, for `fluvial reset`."""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Mapping, Sequence

from fluvial.io.client import TopicPartition
from fluvial.io.embedded.broker import EmbeddedBroker


class EmbeddedGroupAdmin:
    def __init__(self, broker: EmbeddedBroker) -> None:
        self.broker = broker

    def active_members(self, group_id: str) -> list[str]:
        return sorted(m.member_id for m in self.broker.group_members(group_id))

    def topics(self) -> dict[str, int]:
        return self.broker.partition_counts()

    def committed(self, group_id: str) -> dict[TopicPartition, int]:
        return self.broker.group_offsets(group_id)

    def offsets_at(self, partitions: Sequence[TopicPartition],
                   timestamp_ms: int | None) -> dict[TopicPartition, int]:
        found = {}
        for tp in partitions:
            if timestamp_ms is None:
                found[tp] = self.broker.watermarks(tp)[0]
                continue
            # Kafka's time index: the first record with a timestamp at or after the time,
            # scanning in offset order (timestamps need not be ordered); the end if none
            stamps = [m.timestamp()[1] for m in self.broker.records(tp.topic, tp.partition)]
            running_max = list(itertools.accumulate(stamps, max))
            found[tp] = bisect.bisect_left(running_max, timestamp_ms)
        return found

    def commit(self, group_id: str, offsets: Mapping[TopicPartition, int]) -> None:
        self.broker.commit(group_id, offsets)

    def delete_topics(self, topics: Sequence[str]) -> None:
        for name in topics:
            self.broker.delete_topic(name)

    def close(self) -> None:
        """The broker belongs to whoever opened it."""
