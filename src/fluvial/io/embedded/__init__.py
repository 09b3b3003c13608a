"""An in-process Kafka stand-in: apps run with nothing installed, unit tests run without Kafka.

``EmbeddedClients(EmbeddedBroker())`` implements ``fluvial.io.client.Clients``. Modules:
``broker`` (topics, logs, offsets), ``group`` (eager range rebalancing), ``consumer``,
``clients`` (producer, admin, factory), ``storage`` (optional files), ``partitioner``
(Kafka's murmur2), ``message`` (confluent-shaped records).
"""

from fluvial.io.embedded.broker import EmbeddedBroker
from fluvial.io.embedded.clients import EmbeddedAdmin, EmbeddedClients, EmbeddedProducer
from fluvial.io.embedded.consumer import (
    OFFSET_BEGINNING,
    OFFSET_END,
    OFFSET_INVALID,
    OFFSET_STORED,
    EmbeddedConsumer,
)
from fluvial.io.embedded.group import range_assign
from fluvial.io.embedded.message import EmbeddedMessage
from fluvial.io.embedded.partitioner import murmur2, partition_for_key

__all__ = [
    "OFFSET_BEGINNING",
    "OFFSET_END",
    "OFFSET_INVALID",
    "OFFSET_STORED",
    "EmbeddedAdmin",
    "EmbeddedBroker",
    "EmbeddedClients",
    "EmbeddedConsumer",
    "EmbeddedMessage",
    "EmbeddedProducer",
    "murmur2",
    "partition_for_key",
    "range_assign",
]
