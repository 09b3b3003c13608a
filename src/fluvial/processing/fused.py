"""Fused chains: source → filter / map_values … → sink, run without ``Record`` objects.

The most common stateless pipeline (decode, filter, map the value, encode) needs none of the
machinery of the general batch path: no stores, no fan-out, no ordering to restore. For a
sub-topology that is exactly such a chain the task runs each poll batch over parallel lists
(messages, keys, values) narrowed with ``itertools.compress``, then streams the survivors into
the producer. That saves a ``Record`` per record per operator and a pass per node: it is what
brings the stateless benchmark close to a hand-written loop (bench/README.md).

Anything the fast path does not take sends the batch down the general path before anything is
produced: a user function that raises, a key or value the source's fast reader refuses (the
general path runs the user functions again: stateless operators' functions must be free of
side effects, as docs/streams.md says). A value the sink's fast writer refuses, once records
are already being produced, takes the sink's careful path and its error policy, and the rest
go on (``Sink.stream``, shared with the sink processor). Stream time is not tracked here:
only processors read it, and a fused chain has none that do.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from itertools import compress
from typing import Any

from fluvial.io.client import Message, OutRecord
from fluvial.processing.processor import Processor
from fluvial.processing.sink import Sink
from fluvial.processing.stateless import Filter, MapValues
from fluvial.record import Record

Step = Filter | MapValues


class FusedChain:
    """One source's linear chain of ``Filter``/``MapValues`` ending in a topic ``Sink``."""

    def __init__(self, steps: list[Step], sink: Sink, read_key: Callable[[Any], Any],
                 read_value: Callable[[Any], Any]) -> None:
        self.steps = steps
        self.sink = sink
        self.read_key = read_key
        self.read_value = read_value
        self.batches = 0  # batches run fused (the rest took the general path)

    @classmethod
    def find(cls, children: Sequence[Sequence[int]], parents: Sequence[int],
             processors: Sequence[Processor | None], source: int, read_key: Callable[[Any], Any],
             read_value: Callable[[Any], Any]) -> FusedChain | None:
        """The chain below node ``source`` if it is one that can be fused, else ``None``.

        ``children[i]``/``parents[i]``: node i's child indexes and parent count. Exact types
        only: a subclass may rely on the general path.
        """
        steps: list[Step] = []
        node = source
        while True:
            if len(children[node]) != 1:
                return None
            node = children[node][0]
            processor = processors[node]
            if parents[node] != 1:
                return None
            if type(processor) is Sink:
                if not isinstance(processor.topic, str):
                    return None
                return cls(steps, processor, read_key, read_value)
            if type(processor) not in (Filter, MapValues):
                return None
            steps.append(processor)  # type: ignore[arg-type]  # checked just above

    def run(self, topic: str, partition: int, messages: list[Message]) -> bool:
        """Process the batch; ``False`` (nothing done) if it must take the general path."""
        kd, vd = self.read_key, self.read_value
        try:
            keys = [None if (k := m.key()) is None else kd(k) for m in messages]
            values = [None if (v := m.value()) is None else vd(v) for m in messages]
            alive: list[Message] = messages
            for step in self.steps:
                if type(step) is Filter:
                    p = step.predicate
                    keep = ([not p(k, v) for k, v in zip(keys, values, strict=True)]
                            if step.negate else
                            [p(k, v) for k, v in zip(keys, values, strict=True)])
                    alive = list(compress(alive, keep))
                    keys = list(compress(keys, keep))
                    values = list(compress(values, keep))
                else:
                    fn = step.mapper  # type: ignore[union-attr]  # MapValues
                    values = [fn(v) for v in values]
        except Exception:
            return False
        self.batches += 1
        if alive:
            self._send(topic, partition, alive, keys, values)
        return True

    def _send(self, topic: str, partition: int, alive: list[Message], keys: list[Any],
              values: list[Any]) -> None:
        """Stream the survivors into the producer through the sink (its fallback included)."""
        sink = self.sink
        ks, vs = sink.fast_key, sink.fast_value

        def encode(rest: Iterator[int]) -> Iterator[OutRecord]:
            return ((None if (k := keys[i]) is None else ks(k),
                     None if (v := values[i]) is None else vs(v),
                     (m := alive[i]).timestamp()[1], m.headers()) for i in rest)

        def as_record(i: int) -> Record:
            m = alive[i]
            return Record(keys[i], values[i], m.timestamp()[1], m.headers(), topic, partition,
                          m.offset())

        sink.stream(range(len(alive)), encode, as_record)
