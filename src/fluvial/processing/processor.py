"""The processor contract: a batch of records in, batches forwarded to children.

A batch is the records of one source partition in offset order; an operator must give the
same outputs, in the same order, as processing those records one at a time would.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from enum import Enum
from typing import Any, Protocol

from fluvial.record import Headers, Record


class PunctuationType(Enum):
    STREAM_TIME = "stream_time"
    WALL_CLOCK_TIME = "wall_clock_time"


Punctuator = Callable[[int], None]


class Collector(Protocol):
    """Where sinks send serialized records: a producer, or the test driver's topics."""

    def send(self, topic: str, key: bytes | None, value: bytes | None, timestamp: int,
             headers: Headers | None, partition: int | None) -> None: ...

    def send_many(self, topic: str,
                  records: Iterable[tuple[bytes | None, bytes | None, int, Headers | None]],
                  ) -> None:
        """``(key, value, timestamp, headers)`` records, each to the partition of its key,
        taken one at a time (see ``Producer.produce_many``)."""


class CollectorBase:
    """A collector that only knows ``send``: ``send_many`` falls back to one call per record."""

    def send(self, topic: str, key: bytes | None, value: bytes | None, timestamp: int,
             headers: Headers | None, partition: int | None) -> None:
        raise NotImplementedError

    def send_many(self, topic: str,
                  records: Iterable[tuple[bytes | None, bytes | None, int, Headers | None]],
                  ) -> None:
        for key, value, timestamp, headers in records:
            self.send(topic, key, value, timestamp, headers, None)


class ProcessorContext(Protocol):
    @property
    def application_id(self) -> str: ...
    @property
    def task_id(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def stream_time(self) -> int: ...
    @property
    def wall_clock_time(self) -> int: ...
    @property
    def collector(self) -> Collector: ...
    @property
    def emit_interval_ms(self) -> int:
        """How often (wall clock) on-window-close operators look for closed windows."""
    @property
    def caching(self) -> bool:
        """Whether the record cache is on: aggregates then emit one update per key per batch."""

    def forward(self, batch: list[Record], child: str | None = None) -> None:
        """Send ``batch`` to every child, or to the named one."""

    def get_store(self, name: str) -> Any:
        """A store connected to this processor (key-value, window, session or versioned: see
        ``fluvial.state``), or any global store (read it, never write it: its topic feeds
        it, between batches). Values of global and DSL stores are ``(value, timestamp)``."""
    def schedule(self, interval_ms: int, kind: PunctuationType, callback: Punctuator) -> None: ...
    def topic_name(self, name: str) -> str:
        """The real name of a topic, with the application id in front of internal ones."""

    def on_error(self, record: Record, error: BaseException, stage: str) -> None:
        """Apply the error policy to a record that failed: raise, or log/dead-letter and go on."""

    def record_dropped(self, record: Record, reason: str) -> None:
        """Count a record the operator dropped by its semantics (late for a closed window);
        not an error: the error policy does not see it."""


class Processor:
    """Base of every operator; subclasses override ``process`` (a batch at a time)."""

    context: ProcessorContext
    #: Whether one input record can give several outputs (flat_map, custom processors). The
    #: task uses it to keep per-record order where such records meet again in a merge.
    fans_out: bool = True

    def init(self, context: ProcessorContext) -> None:
        self.context = context

    def process(self, batch: list[Record]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Release what ``init`` took; stores are closed by the task."""


class RecordProcessor(Processor):
    """A processor written one record at a time, for user code (``Stream.process``).

    Subclasses implement ``process_record`` and call ``forward_record``; fluvial still hands it
    whole batches and forwards the collected outputs as one batch.
    """

    _out: list[Record] | None = None

    def process(self, batch: list[Record]) -> None:
        out: list[Record] = []
        self._out = out
        try:
            for record in batch:
                try:
                    self.process_record(record)
                except Exception as exc:
                    self.context.on_error(record, exc, type(self).__name__)
        finally:
            self._out = None
        if out:
            self.context.forward(out)

    def process_record(self, record: Record) -> None:
        raise NotImplementedError

    def forward_record(self, record: Record, key: Any = ..., value: Any = ...) -> None:
        if key is not ... or value is not ...:
            record = record.with_key_value(record.key if key is ... else key,
                                           record.value if value is ... else value)
        if self._out is None:  # from a punctuator: nothing to batch with
            self.context.forward([record])
        else:
            self._out.append(record)
