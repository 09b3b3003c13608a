"""Stream-table joins: each stream record looks its key up in the table, as Kafka Streams'
``KStreamKTableJoin`` and ``KStreamGlobalKTableJoin`` do.

Only the stream side triggers output; a table update emits nothing. The output keeps the
stream record's key and timestamp. A stream record with a null value is dropped (and
counted); so is one whose lookup key is null, except in a left join, where it joins with
nothing (Kafka Streams' KIP-962; 4.1 relaxes it for any null lookup key, a global table's
key mapper's too).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fluvial.processing.getters import ValueGetterSupplier
from fluvial.processing.processor import Processor
from fluvial.record import Record

Joiner = Callable[[Any, Any], Any]
KeyMapper = Callable[[Any, Any], Any]


class StreamTableJoin(Processor):
    """``joiner(stream_value, table_value)`` for each stream record whose key the table
    holds; a left join calls it with ``None`` for a key the table lacks.

    ``key_mapper(key, value)`` gives the table key (a global table's join); None = the
    stream record's own key.
    """

    fans_out = False

    def __init__(self, table: ValueGetterSupplier, joiner: Joiner, left: bool,
                 key_mapper: KeyMapper | None = None) -> None:
        self.table = table
        self.joiner = joiner
        self.left = left
        self.key_mapper = key_mapper

    def init(self, context: Any) -> None:
        super().init(context)
        self.get = self.table.make(context)

    def process(self, batch: list[Record]) -> None:
        get, joiner, left, key_mapper = self.get, self.joiner, self.left, self.key_mapper
        out: list[Record] = []
        for r in batch:
            key, value = r.key, r.value
            try:
                if value is None:
                    self.context.record_dropped(r, "null join value")
                    continue
                table_key = key if key_mapper is None else key_mapper(key, value)
                if table_key is None:
                    if not left:
                        self.context.record_dropped(r, "null join key")
                        continue
                    found = None
                else:
                    found = get(table_key)
                if found is None:
                    if not left:
                        continue
                    joined = joiner(value, None)
                else:
                    joined = joiner(value, found[0])
            except Exception as exc:
                self.context.on_error(r, exc, "stream-table join")
                continue
            out.append(Record(key, joined, r.timestamp, r.headers, r.topic, r.partition,
                              r.offset))
        if out:
            self.context.forward(out)
