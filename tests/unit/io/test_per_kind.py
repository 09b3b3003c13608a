"""Per-kind client properties: each consumer and producer gets its kind's, under its own."""

from __future__ import annotations

from typing import Any

from fluvial.io.per_kind import PerKindClients


class Recorder:
    """A ``Clients`` that keeps the config each client was asked for."""

    def __init__(self) -> None:
        self.made: list[tuple[str, dict[str, Any]]] = []

    def consumer(self, group_id: str | None, config: dict[str, Any]) -> Any:
        self.made.append((f"consumer {group_id}", config))

    def producer(self, config: dict[str, Any]) -> Any:
        self.made.append(("producer", config))

    def admin(self) -> Any:
        self.made.append(("admin", {}))


def test_every_consumer_and_producer_gets_its_kinds_properties() -> None:
    inner, admins = Recorder(), Recorder()
    clients = PerKindClients(inner, admins, {"fetch.min.bytes": 1, "client.id": "c"},
                             {"linger.ms": 20})
    clients.consumer("app", {"group.protocol": "consumer", "client.id": "main"})
    clients.consumer(None, {})  # a restore or global-table reader
    clients.producer({"transactional.id": "t"})
    clients.admin()
    assert inner.made == [
        ("consumer app", {"fetch.min.bytes": 1, "client.id": "main", "group.protocol": "consumer"}),
        ("consumer None", {"fetch.min.bytes": 1, "client.id": "c"}),
        ("producer", {"linger.ms": 20, "transactional.id": "t"})]
    assert admins.made == [("admin", {})]  # admin clients come from their own factory
