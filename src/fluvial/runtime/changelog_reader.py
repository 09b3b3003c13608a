"""Reading partitions to their end: the one routine restore and global tables share.

The end of a partition is its high watermark when reading starts. Three things keep a naive
"read until offset end - 1" loop from getting there, and this routine steps over each:
- transaction markers (and aborted records) take offsets but are never delivered to a
  read_committed reader: the consumer's position moves past them, so progress is taken from
  ``position()``, not from the last record seen;
- compaction leaves gaps: offsets jump, so a partition is done when its position reaches
  the end, not when a record with offset end - 1 arrives;
- a partition that never gets there (an open transaction of a dead producer is held until
  the broker aborts it) must not block for ever: past ``timeout`` it raises, naming what is
  left.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from fluvial.io.client import Consumer, Message, TopicPartition

MAX_RECORDS = 10_000


class CatchUp:
    """Reads ``start``..``end`` of each partition into ``apply``, a poll at a time: the
    stream thread restores tasks in steps between its own polls (so a long restore neither
    blocks the loop nor a shutdown), global tables in one go (``read_to_end``)."""

    def __init__(self, reader: Consumer, start: dict[TopicPartition, int],
                 end: dict[TopicPartition, int],
                 apply: Callable[[TopicPartition, list[Message]], None],
                 timeout: float, what: str) -> None:
        self._reader = reader
        self._end = end
        self._apply = apply
        self._timeout = timeout
        self._what = what
        self._todo = {tp: offset for tp, offset in start.items() if offset < end[tp]}
        self.position = dict(start)  # per partition: every offset below it is applied
        self._deadline = time.monotonic() + timeout
        if self._todo:
            reader.assign(list(self._todo.items()))

    @property
    def done(self) -> bool:
        return not self._todo

    def step(self, wait: float) -> bool:
        """Apply one poll's records (waiting up to ``wait`` s for some); True once done."""
        todo, end, position = self._todo, self._end, self.position
        if not todo:
            return True
        if time.monotonic() > self._deadline:
            behind = ", ".join(f"{tp.topic}[{tp.partition}]: {end[tp] - position[tp]}"
                               for tp in sorted(todo, key=lambda t: (t.topic, t.partition)))
            raise TimeoutError(f"{self._what}: not at the end after {self._timeout:.0f}s; "
                               f"offsets left: {behind}")
        batch: dict[TopicPartition, list[Message]] = {}
        for m in self._reader.poll_batch(MAX_RECORDS, wait):
            tp = TopicPartition(m.topic(), m.partition())
            if tp in todo and m.offset() < end[tp]:
                batch.setdefault(tp, []).append(m)
        for tp, messages in batch.items():
            self._apply(tp, messages)
            position[tp] = messages[-1].offset() + 1
        for tp in list(todo):
            pos = self._reader.position(tp)
            if pos is not None and pos > position[tp]:
                position[tp] = pos  # past markers and aborted records
            if position[tp] >= end[tp]:
                del todo[tp]
        return not todo


def read_to_end(reader: Consumer, start: dict[TopicPartition, int],
                end: dict[TopicPartition, int],
                apply: Callable[[TopicPartition, list[Message]], None],
                timeout: float, what: str) -> None:
    """Assign ``reader`` to ``start`` and hand ``apply`` each partition's records below its
    ``end``, a batch at a time, until every partition's position reaches its end."""
    catch_up = CatchUp(reader, start, end, apply, timeout, what)
    while not catch_up.step(0.5):
        pass
