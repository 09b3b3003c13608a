"""Nodes of the logical graph and the stores they use."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fluvial.io.serdes import Serde
from fluvial.processing.processor import Processor
from fluvial.processing.timestamps import TimestampExtractor

_CHANGELOG_EXTRA_RETENTION_MS = 24 * 3600 * 1000  # Kafka Streams' default, for time-bound stores


@dataclass
class StoreSpec:
    """A store: ``kind`` is "kv", "window", "session" or "versioned" (``state/stack.py``)."""

    name: str
    key_serde: Serde
    value_serde: Serde
    timestamped: bool = True
    persistent: bool = True
    logged: bool = True
    changelog_config: dict[str, str] = field(default_factory=dict)
    kind: str = "kv"
    window_size_ms: int | None = None
    retention_ms: int | None = None  # window and session stores
    history_retention_ms: int | None = None  # versioned stores
    retain_duplicates: bool = False  # window stores: a stream-stream join keeps every record

    def changelog_topic(self, application_id: str) -> str:
        return f"{application_id}-{self.name}-changelog"

    def changelog_topic_config(self) -> dict[str, str]:
        """As Kafka Streams: window and session changelogs are compacted and deleted after
        the retention plus a day; a versioned one keeps history a day past its retention."""
        config = {"cleanup.policy": "compact"}
        if self.kind in ("window", "session") and self.retention_ms is not None:
            config = {"cleanup.policy": "compact,delete",
                      "retention.ms": str(self.retention_ms + _CHANGELOG_EXTRA_RETENTION_MS)}
        elif self.kind == "versioned" and self.history_retention_ms is not None:
            config["min.compaction.lag.ms"] = str(self.history_retention_ms
                                                  + _CHANGELOG_EXTRA_RETENTION_MS)
        return {**config, **self.changelog_config}


@dataclass
class Node:
    name: str
    parents: list[str] = field(default_factory=list)
    children: list[str] = field(default_factory=list)


@dataclass
class SourceNode(Node):
    topics: list[str] = field(default_factory=list)
    key_serde: Serde | None = None
    value_serde: Serde | None = None
    internal: bool = False  # reads a repartition topic, named without the application id
    #: where records' event time comes from; None = the Kafka record's timestamp
    timestamp_extractor: TimestampExtractor | None = None


@dataclass
class ProcessorNode(Node):
    supplier: Callable[[], Processor] | None = None
    stores: list[str] = field(default_factory=list)


@dataclass
class SinkNode(Node):
    topic: str = ""
    key_serde: Serde | None = None
    value_serde: Serde | None = None
    internal: bool = False
    partitions: int | None = None  # of an internal topic: None = as many as its upstream inputs
    #: a record's partition from its (key, value); None = the producer hashes the key
    partitioner: Callable[[Any, Any], int] | None = None


@dataclass
class GlobalStoreSpec:
    """A store fed from a whole topic on every instance (``global_table``)."""

    store: StoreSpec
    topic: str
    key_serde: Serde
    value_serde: Serde
    source_name: str = ""     # node names for describe()
    processor_name: str = ""
