"""The sink: serialize and hand to the collector (a producer, or the test driver)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fluvial.io.serdes import Serde, fast_serializer
from fluvial.processing.processor import Processor
from fluvial.record import Record

TopicChooser = Callable[[Any, Any, Record], str]


class Sink(Processor):
    fans_out = False

    def __init__(self, topic: str | TopicChooser, key_serde: Serde, value_serde: Serde,
                 internal: bool) -> None:
        self.topic = topic
        self.key_serde = key_serde
        self.value_serde = value_serde
        self.internal = internal
        self._fast_key = fast_serializer(key_serde)
        self._fast_value = fast_serializer(value_serde)

    def init(self, context: Any) -> None:
        super().init(context)
        if isinstance(self.topic, str):
            self.resolved = context.topic_name(self.topic) if self.internal else self.topic

    def process(self, batch: list[Record]) -> None:
        if isinstance(self.topic, str):
            topic = self.resolved
            ks, vs = self._fast_key, self._fast_value
            try:
                encoded = [(None if (k := r.key) is None else ks(k),
                            None if (v := r.value) is None else vs(v), r.timestamp, r.headers)
                           for r in batch]
            except Exception:
                self._one_by_one(batch)
                return
            self.context.collector.send_many(topic, encoded)
        else:
            self._one_by_one(batch)

    def _one_by_one(self, batch: list[Record]) -> None:
        """Serialize per record so the error policy sees exactly the record that failed."""
        send = self.context.collector.send
        for r in batch:
            try:
                topic = (self.resolved if isinstance(self.topic, str)
                         else self.topic(r.key, r.value, r))
                key, value = self.key_serde.serialize(r.key), self.value_serde.serialize(r.value)
            except Exception as exc:
                self.context.on_error(r, exc, f"sink to {self.topic}")
                continue
            send(topic, key, value, r.timestamp, r.headers, None)
