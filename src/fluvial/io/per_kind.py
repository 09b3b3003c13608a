"""Clients that give each kind of client its own librdkafka properties.

Kafka Streams reads ``consumer.*``, ``producer.*`` and ``admin.*`` prefixed settings over the
common ones; here the common properties are the inner factories' own (``KafkaClients``'
``extra_config``) and the per-kind ones sit under whatever the caller asks for, so every
consumer the runtime opens (group member, restore reader, global-table reader) gets them
without the runtime knowing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fluvial.io.client import Admin, Clients, Consumer, Producer


class PerKindClients:
    """``Clients``: ``consumer_config`` under every consumer's own properties,
    ``producer_config`` under every producer's; admin clients from ``admin_clients``
    (built with the admin properties, as an admin client takes none of its own)."""

    def __init__(self, clients: Clients, admin_clients: Clients,
                 consumer_config: Mapping[str, Any],
                 producer_config: Mapping[str, Any]) -> None:
        self._clients = clients
        self._admin_clients = admin_clients
        self._consumer_config = dict(consumer_config)
        self._producer_config = dict(producer_config)

    def consumer(self, group_id: str | None, config: dict[str, Any]) -> Consumer:
        return self._clients.consumer(group_id, {**self._consumer_config, **config})

    def producer(self, config: dict[str, Any]) -> Producer:
        return self._clients.producer({**self._producer_config, **config})

    def admin(self) -> Admin:
        return self._admin_clients.admin()


def _conforms(clients: PerKindClients) -> Clients:
    """Never called: makes mypy check that the class implements the protocol."""
    return clients
