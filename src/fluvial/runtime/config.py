"""An app's settings: checked once at start-up, so a bad value fails early and clearly.

Settings come in layers, each overriding the one before: a TOML file (``config_file``), the
environment (``FLUVIAL_<NAME>``, upper case), then explicit arguments or command-line flags.
An error names the setting and the layer it came from.

librdkafka properties: ``kafka_config`` goes to every client the app opens (consumers,
producers, admin clients, restore and global-table readers): the place for security settings.
``consumer_config`` / ``producer_config`` / ``admin_config`` override it for one kind of
client, like Kafka Streams' ``consumer.`` / ``producer.`` / ``admin.`` prefixes. In the
environment each is a JSON object (``FLUVIAL_KAFKA_CONFIG='{"security.protocol": "SSL"}'``);
the layers merge them key by key.

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
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from enum import StrEnum
from pathlib import Path
from typing import Any

from fluvial.errors import ConfigError
from fluvial.processing.errors import ErrorPolicy, OnError

_APP_ID = re.compile(r"[a-zA-Z0-9._-]{1,200}")
EOS_COMMIT_INTERVAL_MS = 100  # the default commit interval under exactly-once
CLIENT_CONFIGS = ("kafka_config", "consumer_config", "producer_config", "admin_config")


SourceOf = Callable[[str], str]  # a setting's name -> where its value came from


class SettingError(ConfigError):
    """A setting's value is malformed; ``setting`` names it, so the message can say where
    the value came from."""

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(message)
        self.setting = setting


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
    # how often records every task has committed past are deleted from repartition topics
    repartition_purge_interval_ms: int = 30_000
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
    kafka_config: dict[str, Any] = field(default_factory=dict)  # every client
    consumer_config: dict[str, Any] = field(default_factory=dict)  # consumers, over kafka_config
    producer_config: dict[str, Any] = field(default_factory=dict)  # producers, over kafka_config
    admin_config: dict[str, Any] = field(default_factory=dict)  # admin clients, over kafka_config

    @property
    def error_policy(self) -> ErrorPolicy:
        return ErrorPolicy(self.on_error, self.dead_letter_topic)

    def client_config(self, kind: str) -> dict[str, Any]:
        """The librdkafka properties of one kind of client: ``kafka_config`` under
        ``<kind>_config`` (kind: consumer, producer or admin)."""
        return {**self.kafka_config, **getattr(self, f"{kind}_config")}

    @classmethod
    def create(cls, config_file: str | os.PathLike[str] | None = None, *,
               flags: bool = False, defaults: Mapping[str, Any] | None = None,
               **settings: Any) -> StreamsConfig:
        """Layer ``defaults`` (a command's own, e.g. ``fluvial sql``'s application id),
        ``config_file`` (TOML), ``FLUVIAL_*`` environment variables and ``settings``
        (``flags``: they came from the command line), then validate."""
        layers: list[tuple[dict[str, Any], SourceOf]] = []
        if defaults:
            layers.append((dict(defaults), lambda n: "the command's default"))
        if config_file is not None:
            layers.append(_file_layer(Path(config_file)))
        layers.append(_environment_layer())
        layers.append(({k: v for k, v in settings.items() if v is not None},
                       (lambda n: f"--{n.replace('_', '-')}") if flags
                       else (lambda n: f"argument {n}")))
        merged: dict[str, Any] = {}
        sources: dict[str, str] = {}
        for values, source_of in layers:
            _check_names(values, source_of)
            for name, value in values.items():
                if name in CLIENT_CONFIGS:
                    value = {**merged.get(name, {}), **_client_properties(name, value,
                                                                          source_of(name))}
                merged[name] = value
                sources[name] = source_of(name)
        if "application_id" not in merged:
            raise ConfigError("application_id is required (or FLUVIAL_APPLICATION_ID)")
        try:
            coerced = _coerce(merged)
            if (coerced.get("processing_guarantee") is Guarantee.EXACTLY_ONCE
                    and "commit_interval_ms" not in coerced):
                coerced["commit_interval_ms"] = EOS_COMMIT_INTERVAL_MS
            return cls(**coerced)
        except SettingError as exc:
            raise ConfigError(f"{exc} (from {sources.get(exc.setting, 'the default')})") \
                from None

    def __post_init__(self) -> None:
        if not _APP_ID.fullmatch(self.application_id):
            raise SettingError("application_id",
                               f"application_id {self.application_id!r} may only use letters, "
                               f"digits, '.', '_' and '-' (it names topics and the group)")
        for name in ("commit_interval_ms", "max_poll_records", "poll_timeout_ms",
                     "connect_timeout_ms", "repartition_purge_interval_ms"):
            if getattr(self, name) <= 0:
                raise SettingError(name, f"{name} must be positive, got {getattr(self, name)}")
        if self.num_standby_replicas < 0:
            raise SettingError("num_standby_replicas", f"num_standby_replicas must be >= 0, "
                                                       f"got {self.num_standby_replicas}")
        if self.replication_factor == 0 or self.replication_factor < -1:
            raise SettingError("replication_factor", f"replication_factor must be -1 or >= 1, "
                                                     f"got {self.replication_factor}")
        if (self.group_protocol is GroupProtocol.CONSUMER
                and self.partition_assignment_strategy is not None):
            raise SettingError(
                "partition_assignment_strategy",
                f"partition_assignment_strategy={self.partition_assignment_strategy!r} applies "
                f"to group_protocol=classic only; group_protocol=consumer assigns partitions "
                f"on the broker (range, which keeps co-partitioned topics together)")
        if self.application_server is not None:
            host, _, port = self.application_server.rpartition(":")
            if not host or not port.isdigit():
                raise SettingError("application_server", f"application_server must be "
                                   f"host:port, got {self.application_server!r}")
        if self.group_instance_id is not None and not _APP_ID.fullmatch(self.group_instance_id):
            raise SettingError("group_instance_id",
                               f"group_instance_id {self.group_instance_id!r} may only use "
                               f"letters, digits, '.', '_' and '-'")
        if self.bootstrap_servers is not None and not self.bootstrap_servers.strip():
            raise SettingError("bootstrap_servers", "bootstrap_servers is empty; leave it "
                                                    "unset for the embedded broker")


def _coerce(values: dict[str, Any]) -> dict[str, Any]:
    """Turn strings (from the environment or the command line) into each field's type."""
    out = dict(values)
    for name in ("commit_interval_ms", "max_poll_records", "poll_timeout_ms",
                 "replication_factor", "connect_timeout_ms", "num_standby_replicas",
                 "repartition_purge_interval_ms"):
        if name in out and not isinstance(out[name], int):
            try:
                out[name] = int(out[name])
            except (TypeError, ValueError):
                raise SettingError(name, f"{name} must be an integer, got {out[name]!r}") from None
    if "record_cache" in out and isinstance(out["record_cache"], str):
        text = out["record_cache"].strip().lower()
        if text not in ("true", "false", "1", "0", "yes", "no"):
            raise SettingError("record_cache", f"record_cache must be true or false, "
                                               f"got {out['record_cache']!r}")
        out["record_cache"] = text in ("true", "1", "yes")
    for name, choices in (("processing_guarantee", Guarantee),
                          ("group_protocol", GroupProtocol)):
        if name in out:
            out[name] = _choice(name, out[name], choices)
    if "on_error" in out:
        try:
            out["on_error"] = ErrorPolicy.parse(out["on_error"]).on_error
        except ConfigError as exc:
            raise SettingError("on_error", str(exc)) from None
    if "state_dir" in out:
        out["state_dir"] = Path(out["state_dir"])
    return out


def _choice(name: str, value: Any, choices: type[StrEnum]) -> StrEnum:
    try:
        return choices(str(value).lower())
    except ValueError:
        allowed = ", ".join(c.value for c in choices)
        raise SettingError(name, f"{name} {value!r} is not one of: {allowed}") from None



def _file_layer(path: Path) -> tuple[dict[str, Any], SourceOf]:
    try:
        values = tomllib.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"config file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path}: not valid TOML: {exc}") from None
    return values, lambda name: f"{path} key {name}"


def _environment_layer() -> tuple[dict[str, Any], SourceOf]:
    values: dict[str, Any] = {}
    for name in (f.name for f in fields(StreamsConfig)):
        text = os.environ.get(f"FLUVIAL_{name.upper()}")
        if text is None:
            continue
        if name in CLIENT_CONFIGS:
            try:
                values[name] = json.loads(text)
            except ValueError:
                raise ConfigError(f"FLUVIAL_{name.upper()} must be a JSON object, "
                                  f"got {text!r}") from None
        else:
            values[name] = text
    return values, lambda name: f"FLUVIAL_{name.upper()}"


def _check_names(values: dict[str, Any], source_of: SourceOf) -> None:
    known = {f.name for f in fields(StreamsConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"unknown setting(s): {', '.join(unknown)} (from "
                          f"{source_of(unknown[0])}); known settings are: "
                          f"{', '.join(sorted(known))}")


def _client_properties(name: str, value: Any, source: str) -> dict[str, Any]:
    """A ``*_config`` setting: librdkafka property names to plain values. Nested tables
    are dotted names (TOML reads ``security.protocol = "SSL"`` as ``{"security":
    {"protocol": "SSL"}}``)."""
    if not isinstance(value, dict):
        raise ConfigError(f"{name} must be a table of librdkafka properties "
                          f"(a JSON object in the environment), got {value!r} (from {source})")
    flat: dict[str, Any] = {}
    for key, item in value.items():
        if isinstance(item, dict):
            flat.update({f"{key}.{k}": v for k, v in
                         _client_properties(name, item, source).items()})
        elif isinstance(item, str | int | float | bool) or callable(item):
            flat[key] = item
        else:
            raise ConfigError(f"{name}: property {key!r} must be a string, number or boolean, "
                              f"got {item!r} (from {source})")
    return flat
