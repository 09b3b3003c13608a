"""Errors a user can meet, each saying what went wrong, where, and why."""

from __future__ import annotations


class FluvialError(Exception):
    """Base of every error fluvial raises on purpose."""


class ConfigError(FluvialError):
    """A setting is missing, malformed or contradicts another."""


class TopologyError(FluvialError):
    """The topology cannot be built or run as written (missing topic, co-partitioning...)."""


class DeliveryError(FluvialError):
    """The broker did not acknowledge a produced record."""


class RegistryUnavailableError(FluvialError):
    """The schema registry did not answer. No record is at fault, so no error policy applies:
    skipping or dead-lettering would drop good records while the registry is down."""


class ProcessingError(FluvialError):
    """A record could not be deserialized or processed; names task, topic, partition, offset."""

    def __init__(self, message: str, *, application_id: str = "", task_id: str = "",
                 topic: str = "", partition: int = -1, offset: int = -1,
                 stage: str = "") -> None:
        super().__init__(message)
        self.application_id = application_id
        self.task_id = task_id
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.stage = stage


class StoreMovingError(FluvialError):
    """The task holding a key's partition is moving (a rebalance, a restore): no running owner
    is known right now. Retry shortly; an interactive query never answers from a task that is
    not running, so a value it returns is never half-restored."""
