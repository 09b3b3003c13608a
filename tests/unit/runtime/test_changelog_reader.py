"""read_to_end: progress by position, past markers and compaction gaps; a deadline."""

from __future__ import annotations

from typing import Any

import pytest

from fluvial.io.client import TopicPartition
from fluvial.io.embedded.message import EmbeddedMessage
from fluvial.runtime.changelog_reader import read_to_end

TP = TopicPartition("log", 0)


class Reader:
    """A read_committed consumer over offsets -> records; missing offsets are compacted away
    or are transaction markers: skipped, but the position moves past them."""

    def __init__(self, records: dict[int, bytes], end: int, stuck_at: int | None = None
                 ) -> None:
        self.records, self.end, self.stuck_at = records, end, stuck_at
        self.pos = 0

    def assign(self, partitions: list[tuple[TopicPartition, int]]) -> None:
        ((_, self.pos),) = partitions

    def poll_batch(self, max_records: int, timeout: float) -> list[Any]:
        limit = self.end if self.stuck_at is None else self.stuck_at
        out = [EmbeddedMessage("log", 0, o, b"k", v, 0, None)
               for o, v in sorted(self.records.items()) if self.pos <= o < limit][:2]
        self.pos = out[-1].offset() + 1 if out else limit
        return out

    def position(self, tp: TopicPartition) -> int:
        return self.pos


def test_reads_past_gaps_and_a_trailing_marker() -> None:
    reader = Reader({0: b"a", 3: b"b", 4: b"c", 8: b"d"}, end=10)  # 9: a commit marker
    seen: list[bytes] = []
    read_to_end(reader, {TP: 0}, {TP: 10},
                lambda tp, ms: seen.extend(m.value() for m in ms), 5.0, "test")
    assert seen == [b"a", b"b", b"c", b"d"]


def test_a_partition_that_never_gets_there_times_out_naming_what_is_left() -> None:
    reader = Reader({0: b"a"}, end=10, stuck_at=4)  # an open transaction from offset 4
    with pytest.raises(TimeoutError, match=r"restoring x: .* log\[0\]: 6"):
        read_to_end(reader, {TP: 0}, {TP: 10}, lambda tp, ms: None,
                    0.3, "restoring x")


def test_nothing_to_read_assigns_nothing() -> None:
    reader = Reader({}, end=0)
    read_to_end(reader, {TP: 5}, {TP: 5}, lambda tp, ms: None, 1.0, "x")
    assert reader.pos == 0
