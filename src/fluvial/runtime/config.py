"""An app's settings: checked once at start-up, so a bad value fails early and clearly.

Every setting can also come from an environment variable ``FLUVIAL_<NAME>`` (upper case);
explicit arguments win over the environment. ``FLUVIAL_CONSUMER_CONFIG`` and
``FLUVIAL_PRODUCER_CONFIG`` hold a JSON object of client properties.

Under ``processing_guarantee=exactly_once`` the commit interval defaults to 100 ms (as in
Kafka Streams): a commit is what makes results visible to read_committed readers.

``group_instance_id`` makes the instance a static group member (``group.instance.id``): a
restart within the session timeout gets its partitions back without a rebalance.

``num_standby_replicas`` keeps that many warm copies of each task's state on other instances
(runtime/standby.py), so a fail-over restores only the changelog's tail.

``group_protocol`` picks Kafka's group protocol on a real cluster: ``consumer`` (KIP-848, the
default) rebalances incrementally with the broker-side ``range`` assignor, which keeps
partition *p* of every topic of a sub-topology on one instance; ``classic`` uses the client-side
``partition_assignment_strategy`` (eager ``range`` by default). The embedded broker ignores both.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass, field, fields
from enum import StrEnum
from pathlib import Path
from typing import Any

from fluvial.errors import ConfigError
from fluvial.processing.errors import ErrorPolicy, OnError

_APP_ID = re.compile(r"[a-zA-Z0-9._-]{1,200}")
EOS_COMMIT_INTERVAL_MS = 100  # the default commit interval under exactly-once


class GroupProtocol(StrEnum):
    CONSUMER = "consumer"  # KIP-848: incremental, assignment computed by the broker
    CLASSIC = "classic"  # JoinGroup/SyncGroup: eager range by default


class Guarantee(StrEnum):
    AT_LEAST_ONCE = "at_least_once"
    EXACTLY_ONCE = "exactly_once"


@dataclass(frozen=True)
class StreamsConfig:
    application_id: str
    bootstrap_servers: str | None = None  # None: the embedded in-process broker
    processing_guarantee: Guarantee = Guarantee.AT_LEAST_ONCE
    state_dir: Path = field(default_factory=lambda: Path(tempfile.gettempdir()) / "fluvial")
    commit_interval_ms: int = 1000
    max_poll_records: int = 5000
    poll_timeout_ms: int = 100
    record_cache: bool = True
    on_error: OnError = OnError.STOP
    dead_letter_topic: str | None = None
    replication_factor: int = -1  # of internal topics; -1: the broker's default
    connect_timeout_ms: int = 30_000  # at start-up, how long to wait for a broker to answer
    group_protocol: GroupProtocol = GroupProtocol.CONSUMER
    partition_assignment_strategy: str | None = None  # classic only; None: "range"
    group_instance_id: str | None = None  # static membership (group.instance.id)
    num_standby_replicas: int = 0  # warm copies of each task's state on other instances
    application_server: str | None = None  # host:port other instances query; None: bound one
    consumer_config: dict[str, Any] = field(default_factory=dict)
    producer_config: dict[str, Any] = field(default_factory=dict)

    @property
    def error_policy(self) -> ErrorPolicy:
        return ErrorPolicy(self.on_error, self.dead_letter_topic)

    @classmethod
    def create(cls, **settings: Any) -> StreamsConfig:
        """Merge ``FLUVIAL_*`` environment variables under ``settings``, then validate."""
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(settings) - set(known))
        if unknown:
            raise ConfigError(f"unknown setting(s): {', '.join(unknown)}; "
                              f"known settings are: {', '.join(sorted(known))}")
        merged: dict[str, Any] = {}
        for name in known:
            env = os.environ.get(f"FLUVIAL_{name.upper()}")
            if env is None:
                continue
            if name in ("consumer_config", "producer_config"):
                try:
                    parsed = json.loads(env)
                except ValueError:
                    parsed = None
                if not isinstance(parsed, dict):
                    raise ConfigError(f"FLUVIAL_{name.upper()} must be a JSON object, "
                                      f"got {env!r}")
                merged[name] = parsed
            else:
                merged[name] = env
        merged.update({k: v for k, v in settings.items() if v is not None})
        if "application_id" not in merged:
            raise ConfigError("application_id is required (or FLUVIAL_APPLICATION_ID)")
        coerced = _coerce(merged)
        if (coerced.get("processing_guarantee") is Guarantee.EXACTLY_ONCE
                and "commit_interval_ms" not in coerced):
            coerced["commit_interval_ms"] = EOS_COMMIT_INTERVAL_MS
        return cls(**coerced)

    def __post_init__(self) -> None:
        if not _APP_ID.fullmatch(self.application_id):
            raise ConfigError(f"application_id {self.application_id!r} may only use letters, "
                              f"digits, '.', '_' and '-' (it names topics and the group)")
        for name in ("commit_interval_ms", "max_poll_records", "poll_timeout_ms",
                     "connect_timeout_ms"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)}")
        if self.num_standby_replicas < 0:
            raise ConfigError(f"num_standby_replicas must be >= 0, "
                              f"got {self.num_standby_replicas}")
        if self.replication_factor == 0 or self.replication_factor < -1:
            raise ConfigError(f"replication_factor must be -1 or >= 1, "
                              f"got {self.replication_factor}")
        if (self.group_protocol is GroupProtocol.CONSUMER
                and self.partition_assignment_strategy is not None):
            raise ConfigError(
                f"partition_assignment_strategy={self.partition_assignment_strategy!r} applies "
                f"to group_protocol=classic only; group_protocol=consumer assigns partitions "
                f"on the broker (range, which keeps co-partitioned topics together)")
        if self.application_server is not None:
            host, _, port = self.application_server.rpartition(":")
            if not host or not port.isdigit():
                raise ConfigError(f"application_server must be host:port, "
                                  f"got {self.application_server!r}")
        if self.group_instance_id is not None and not _APP_ID.fullmatch(self.group_instance_id):
            raise ConfigError(f"group_instance_id {self.group_instance_id!r} may only use "
                              f"letters, digits, '.', '_' and '-'")
        if self.bootstrap_servers is not None and not self.bootstrap_servers.strip():
            raise ConfigError("bootstrap_servers is empty; leave it unset for the embedded broker")


def _coerce(values: dict[str, Any]) -> dict[str, Any]:
    """Turn strings (from the environment or the command line) into each field's type."""
    out = dict(values)
    for name in ("commit_interval_ms", "max_poll_records", "poll_timeout_ms",
                 "replication_factor", "connect_timeout_ms"):
        if name in out and not isinstance(out[name], int):
            try:
                out[name] = int(out[name])
            except (TypeError, ValueError):
                raise ConfigError(f"{name} must be an integer, got {out[name]!r}") from None
    if "record_cache" in out and isinstance(out["record_cache"], str):
        text = out["record_cache"].strip().lower()
        if text not in ("true", "false", "1", "0", "yes", "no"):
            raise ConfigError(f"record_cache must be true or false, got {out['record_cache']!r}")
        out["record_cache"] = text in ("true", "1", "yes")
    for name, choices in (("processing_guarantee", Guarantee),
                          ("group_protocol", GroupProtocol)):
        if name in out:
            out[name] = _choice(name, out[name], choices)
    if "on_error" in out:
        out["on_error"] = ErrorPolicy.parse(out["on_error"]).on_error
    if "state_dir" in out:
        out["state_dir"] = Path(out["state_dir"])
    return out


def _choice(name: str, value: Any, choices: type[StrEnum]) -> StrEnum:
    try:
        return choices(str(value).lower())
    except ValueError:
        allowed = ", ".join(c.value for c in choices)
        raise ConfigError(f"{name} {value!r} is not one of: {allowed}") from None
