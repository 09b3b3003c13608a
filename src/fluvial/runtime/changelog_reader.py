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


def read_to_end(reader: Consumer, start: dict[TopicPartition, int],
                end: dict[TopicPartition, int],
                apply: Callable[[TopicPartition, list[Message]], None],
                timeout: float, what: str) -> None:
    """Assign ``reader`` to ``start`` and hand ``apply`` each partition's records below its
    ``end``, a batch at a time, until every partition's position reaches its end."""
    todo = {tp: offset for tp, offset in start.items() if offset < end[tp]}
    if not todo:
        return
    reader.assign(list(todo.items()))
    position = dict(todo)
    deadline = time.monotonic() + timeout
    while todo:
        if time.monotonic() > deadline:
            behind = ", ".join(f"{tp.topic}[{tp.partition}]: {end[tp] - position[tp]}"
                               for tp in sorted(todo, key=lambda t: (t.topic, t.partition)))
            raise TimeoutError(f"{what}: not at the end after {timeout:.0f}s; offsets left: "
                               f"{behind}")
        batch: dict[TopicPartition, list[Message]] = {}
        for m in reader.poll_batch(MAX_RECORDS, 0.5):
            tp = TopicPartition(m.topic(), m.partition())
            if tp in todo and m.offset() < end[tp]:
                batch.setdefault(tp, []).append(m)
        for tp, messages in batch.items():
            apply(tp, messages)
            position[tp] = messages[-1].offset() + 1
        for tp in list(todo):
            pos = reader.position(tp)
            if pos is not None and pos > position[tp]:
                position[tp] = pos  # past markers and aborted records
            if position[tp] >= end[tp]:
                del todo[tp]
